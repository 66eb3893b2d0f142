package consensus

import (
	"container/heap"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// The simulator runs whole clusters of Nodes in one goroutine under
// virtual time. One seed fixes everything: the cluster's size and options,
// the fault rates, and every drop, delay, crash and partition. A failing
// seed is replayed with the command it prints.

var (
	simSeeds   = flag.Int("sim.seeds", 2000, "simulator seeds to run")
	simFirst   = flag.Uint64("sim.first", 1, "first simulator seed")
	simSeed    = flag.Uint64("sim.seed", 0, "replay only this seed, with a trace")
	simVerbose = flag.Bool("sim.v", false, "trace every event of a replayed seed")
)

const tickUnit = 100 // virtual time units per nominal tick

type evKind uint8

const (
	evTick evKind = iota + 1
	evDeliver
	evPersist
	evCrash
	evRestart
	evPartition
	evHeal
	evPropose
	evRead
	evConfChange
	evTransfer
	evCompact
	evIsolate
)

type event struct {
	at   int64
	seq  uint64
	kind evKind
	node uint64
	inc  uint64 // incarnation of node the event belongs to
	msg  Message
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// simParams is one world's settings, all drawn from its seed.
type simParams struct {
	initial        int
	loss, dup      float64
	minDelay       int64
	maxDelay       int64
	fsyncMax       int64
	crashEvery     int64 // mean time between crashes (0: none)
	partitionEvery int64
	proposeEvery   int64
	readEvery      int64
	confEvery      int64
	transferEvery  int64
	compactEvery   int64
	preVote        bool
	checkQuorum    bool
	readOnly       ReadOnlyOption
	maxSizePerMsg  uint64
	electionTick   int
	faultPhase     int64
	livenessBound  int64
	rates          map[uint64]int64 // tick interval per node
	bugs           bugs

	// Faults at the moments that matter, as FoundationDB's BUGGIFY
	// places them: electFault is the chance that a new leader is cut off
	// from everyone, at once (before its first appends arrive) or within
	// a few round trips; commitFault, that a leader is cut off the moment
	// its commit index advances (before the others learn of it). They
	// leave logs that diverge in their last terms, which a wrong commit
	// rule (Raft's Figure 8) needs to be seen.
	electFault, commitFault float64
}

type simNode struct {
	id        uint64
	node      *Node
	storage   *MemoryStorage
	alive     bool
	inc       uint64
	pending   *Ready
	applied   uint64
	chain     uint64
	conf      ConfState
	committed uint64 // highest commit index checked
	lastLead  uint64 // last term in which we saw it lead
}

type readReq struct {
	node     uint64
	minIndex uint64
	done     bool
}

type logKey struct{ index, term uint64 }

type logVal struct {
	data     string
	typ      EntryType
	prevTerm uint64
}

type world struct {
	seed   uint64
	p      simParams
	rng    *rand.Rand
	now    int64
	seq    uint64
	q      eventQueue
	nodes  map[uint64]*simNode
	ids    []uint64 // every node ever created, ascending
	nextID uint64
	// blocked[from][to] drops messages on that link.
	blocked map[[2]uint64]bool
	faults  bool
	// lastArrival per link keeps delivery in order once faults stop.
	lastArrival map[[2]uint64]int64

	// checker state
	leaders   map[uint64]uint64 // term -> leader
	entries   map[logKey]logVal // (index, term) -> entry, as first seen
	committed map[uint64]logKey // index -> committed entry
	maxCommit uint64
	chains    map[uint64]uint64 // index -> application hash chain
	reads     map[string]*readReq
	proposals uint64
	readSeq   uint64
	failure   string
	trace     *strings.Builder
	stats     simStats
}

type simStats struct {
	events, delivered, dropped, crashes, partitions, reads, readsServed, confs, transfers, snapshots, commits uint64
}

func newParams(r *rand.Rand, b bugs) simParams {
	p := simParams{
		initial:        3 + 2*r.IntN(2),
		loss:           []float64{0, 0.01, 0.05, 0.15}[r.IntN(4)],
		dup:            []float64{0, 0.01, 0.05}[r.IntN(3)],
		minDelay:       int64(1 + r.IntN(20)),
		fsyncMax:       int64([]int{1, 50, 300}[r.IntN(3)]),
		crashEvery:     int64([]int{0, 3000, 8000}[r.IntN(3)]),
		partitionEvery: int64([]int{0, 2000, 6000}[r.IntN(3)]),
		proposeEvery:   int64(20 + r.IntN(200)),
		readEvery:      int64(50 + r.IntN(300)),
		confEvery:      int64([]int{0, 5000}[r.IntN(2)]),
		transferEvery:  int64([]int{0, 4000}[r.IntN(2)]),
		compactEvery:   int64([]int{0, 1000, 4000}[r.IntN(3)]),
		preVote:        r.IntN(3) != 0,
		checkQuorum:    r.IntN(3) != 0,
		maxSizePerMsg:  []uint64{1, 64, 1 << 20}[r.IntN(3)],
		electionTick:   10,
		faultPhase:     int64(150+r.IntN(150)) * tickUnit,
		rates:          map[uint64]int64{},
		bugs:           b,
	}
	p.maxDelay = p.minDelay + int64([]int{10, 60, 200}[r.IntN(3)])
	if p.checkQuorum && r.IntN(2) == 0 {
		p.readOnly = ReadOnlyLeaseBased
	}
	if b.leaseWithoutCheckQuor {
		p.readOnly, p.checkQuorum = ReadOnlyLeaseBased, false
		if p.partitionEvery == 0 {
			p.partitionEvery = 2000
		}
	}
	if b.voteBeforePersist {
		// The double vote needs a restarted member to vote at once; with
		// CheckQuorum it waits out its startup lease first.
		p.crashEvery = 600
		p.fsyncMax = 300
		p.partitionEvery = 2000
		p.checkQuorum, p.readOnly = false, ReadOnlySafe
	}
	if b.commitPriorTerm {
		// Figure 8 needs leaders cut off after replicating to a
		// minority (electFault and commitFault, below); membership
		// changes (a removed leader hands over at once) only smooth the
		// elections it needs.
		p.crashEvery = 0
		p.maxSizePerMsg = 1
		p.confEvery = 0
	}
	// Drawn last, so that the draws above stay as they were.
	if r.IntN(3) == 0 {
		p.electFault, p.commitFault = 1, 0.3
	}
	if b.commitPriorTerm {
		p.electFault, p.commitFault = 1, 0.3
	}
	p.livenessBound = int64(p.electionTick) * tickUnit * 40
	return p
}

func newWorld(seed uint64, b bugs) *world {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	w := &world{
		seed: seed, rng: rng, nodes: map[uint64]*simNode{}, blocked: map[[2]uint64]bool{},
		leaders: map[uint64]uint64{}, entries: map[logKey]logVal{}, committed: map[uint64]logKey{},
		chains: map[uint64]uint64{}, reads: map[string]*readReq{}, faults: true,
		lastArrival: map[[2]uint64]int64{},
	}
	w.p = newParams(rng, b)
	voters := make([]uint64, w.p.initial)
	for i := range voters {
		voters[i] = uint64(i + 1)
	}
	w.nextID = uint64(w.p.initial + 1)
	ents, hs := BootstrapEntries(voters)
	for _, id := range voters {
		ms := NewMemoryStorage()
		must(ms.Append(ents))
		ms.SetHardState(hs)
		w.addNode(id, ms)
	}
	return w
}

func (w *world) tracef(format string, args ...any) {
	if w.trace != nil {
		fmt.Fprintf(w.trace, "%8d ", w.now)
		fmt.Fprintf(w.trace, format, args...)
		w.trace.WriteByte('\n')
	}
}

func (w *world) fail(format string, args ...any) {
	if w.failure == "" {
		w.failure = fmt.Sprintf("t=%d: ", w.now) + fmt.Sprintf(format, args...)
		w.tracef("VIOLATION %s", w.failure)
	}
}

func (w *world) schedule(at int64, kind evKind, node, inc uint64, m Message) {
	w.seq++
	heap.Push(&w.q, &event{at: at, seq: w.seq, kind: kind, node: node, inc: inc, msg: m})
}

func (w *world) after(mean int64) int64 {
	if mean <= 0 {
		return -1
	}
	return w.now + 1 + w.rng.Int64N(2*mean)
}

func (w *world) addNode(id uint64, ms *MemoryStorage) {
	rate := int64(tickUnit*7/10) + w.rng.Int64N(tickUnit*6/10) // ticks run at 0.7x-1.3x
	w.p.rates[id] = rate
	sn := &simNode{id: id, storage: ms}
	w.nodes[id] = sn
	w.ids = append(w.ids, id)
	slices.Sort(w.ids)
	w.start(sn)
}

func (w *world) config(sn *simNode, applied uint64) *Config {
	return &Config{
		ID: sn.id, ElectionTick: w.p.electionTick, HeartbeatTick: 1, Storage: sn.storage, Applied: applied,
		MaxSizePerMsg: w.p.maxSizePerMsg, MaxInflightMsgs: 8, CheckQuorum: w.p.checkQuorum, PreVote: w.p.preVote,
		ReadOnlyOption: w.p.readOnly, Seed: w.seed, LearnerMaxLag: 50, bugs: w.p.bugs,
		CheckProposal: refusePoison,
	}
}

// poison marks proposals the simulated application could not apply: the
// leader's CheckProposal must keep every one of them out of the log, on
// whichever member it was proposed (so forwarded ones too).
const poison = "poison"

func refusePoison(e Entry) error {
	if e.Type == EntryNormal && strings.HasPrefix(string(e.Data), poison) {
		return fmt.Errorf("poisoned entry %q", e.Data)
	}
	return nil
}

// start boots (or reboots) a node from its durable storage.
func (w *world) start(sn *simNode) {
	snap, _ := sn.storage.Snapshot()
	n, err := NewNode(w.config(sn, snap.Meta.Index))
	if err != nil {
		w.fail("node %d cannot start: %v", sn.id, err)
		return
	}
	sn.node, sn.alive, sn.pending = n, true, nil
	sn.inc++
	sn.applied, sn.chain, sn.conf = snap.Meta.Index, 0, snap.Meta.ConfState
	if !snap.IsEmpty() {
		sn.chain = binary.BigEndian.Uint64(snap.Data)
	}
	sn.committed = n.r.log.committed
	w.schedule(w.now+1+w.rng.Int64N(w.p.rates[sn.id]), evTick, sn.id, sn.inc, Message{})
}

func (w *world) send(from *simNode, m Message) {
	w.tracef("send %s", m)
	if w.faults && w.rng.Float64() < w.p.loss {
		w.stats.dropped++
		w.dropped(from, m)
		return
	}
	copies := 1
	if w.faults && w.rng.Float64() < w.p.dup {
		copies = 2
	}
	for range copies {
		at := w.now + w.p.minDelay + w.rng.Int64N(w.p.maxDelay-w.p.minDelay+1)
		if !w.faults {
			// Healed links behave like a stream: in order.
			link := [2]uint64{m.From, m.To}
			at = max(at, w.lastArrival[link]+1)
			w.lastArrival[link] = at
		}
		w.schedule(at, evDeliver, m.To, 0, m)
	}
}

// dropped tells a leader about a lost snapshot, as a transport would.
func (w *world) dropped(from *simNode, m Message) {
	if m.Type == MsgSnap && from.alive {
		from.node.ReportSnapshot(m.To, true)
	}
}

func (w *world) deliver(m Message) {
	to := w.nodes[m.To]
	from := w.nodes[m.From]
	if to == nil || !to.alive || w.blocked[[2]uint64{m.From, m.To}] {
		w.stats.dropped++
		if from != nil && from.alive {
			w.dropped(from, m)
			if w.rng.IntN(4) == 0 {
				from.node.ReportUnreachable(m.To)
			}
		}
		return
	}
	w.stats.delivered++
	w.tracef("recv %s", m)
	_ = to.node.Step(m)
	if m.Type == MsgSnap && from != nil && from.alive {
		from.node.ReportSnapshot(m.To, false)
	}
	w.pump(to)
}

// pump hands a node's Ready to the "disk": messages that may go at once are
// sent, and persistence completes after a random fsync delay.
func (w *world) pump(sn *simNode) {
	if !sn.alive || sn.pending != nil || !sn.node.HasReady() {
		return
	}
	rd := sn.node.Ready()
	w.checkEntries(sn, rd.Entries)
	for _, m := range rd.Messages {
		w.send(sn, m)
	}
	sn.pending = &rd
	w.schedule(w.now+w.rng.Int64N(w.p.fsyncMax+1), evPersist, sn.id, sn.inc, Message{})
}

func (w *world) persist(sn *simNode) {
	rd := *sn.pending
	w.tracef("persist %d: entries=%d committed=%d hard=%+v snap=%d msgs=%d reads=%d", sn.id, len(rd.Entries), len(rd.CommittedEntries), rd.HardState, rd.Snapshot.Meta.Index, len(rd.MessagesAfterPersist), len(rd.ReadStates))
	if !rd.Snapshot.IsEmpty() {
		if err := sn.storage.ApplySnapshot(rd.Snapshot); err != nil {
			w.fail("node %d: apply snapshot %d: %v", sn.id, rd.Snapshot.Meta.Index, err)
		}
	}
	if err := sn.storage.Append(rd.Entries); err != nil {
		w.fail("node %d: append: %v", sn.id, err)
	}
	if !rd.HardState.IsEmpty() {
		sn.storage.SetHardState(rd.HardState)
	}
	for _, m := range rd.MessagesAfterPersist {
		w.send(sn, m)
	}
	if !rd.Snapshot.IsEmpty() {
		s := rd.Snapshot
		chain := binary.BigEndian.Uint64(s.Data)
		if c, ok := w.chains[s.Meta.Index]; ok && c != chain {
			w.fail("node %d installed snapshot %d with state %x, others applied %x", sn.id, s.Meta.Index, chain, c)
		}
		sn.applied, sn.chain, sn.conf = s.Meta.Index, chain, s.Meta.ConfState
		w.stats.snapshots++
	}
	for _, e := range rd.CommittedEntries {
		w.apply(sn, e)
	}
	for _, rs := range rd.ReadStates {
		w.readDone(sn, rs)
	}
	sn.pending = nil
	sn.node.Advance(rd)
	w.pump(sn)
}

func (w *world) apply(sn *simNode, e Entry) {
	if e.Index != sn.applied+1 {
		w.fail("node %d applied %d after %d", sn.id, e.Index, sn.applied)
		return
	}
	h := fnv.New64a()
	var b [25]byte
	binary.BigEndian.PutUint64(b[0:], sn.chain)
	binary.BigEndian.PutUint64(b[8:], e.Index)
	binary.BigEndian.PutUint64(b[16:], e.Term)
	b[24] = byte(e.Type)
	h.Write(b[:])
	h.Write(e.Data)
	sn.chain, sn.applied = h.Sum64(), e.Index
	if refusePoison(e) != nil {
		w.fail("node %d applied a refused proposal at %d: %q", sn.id, e.Index, e.Data)
	}
	if c, ok := w.chains[e.Index]; ok && c != sn.chain {
		w.fail("node %d applied a different entry at %d (term %d)", sn.id, e.Index, e.Term)
	} else {
		w.chains[e.Index] = sn.chain
	}
	if e.Type == EntryConfChange {
		var cc ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			w.fail("node %d: conf change at %d: %v", sn.id, e.Index, err)
			return
		}
		sn.conf = sn.node.ApplyConfChange(cc)
		if cc.Type != RemoveNode && w.nodes[cc.NodeID] == nil {
			w.tracef("create node %d", cc.NodeID)
			w.addNode(cc.NodeID, NewMemoryStorage())
		}
	}
}

func (w *world) readDone(sn *simNode, rs ReadState) {
	req := w.reads[string(rs.RequestCtx)]
	if req == nil || req.done {
		return
	}
	req.done = true
	w.stats.readsServed++
	if req.node != sn.id {
		w.fail("read %q issued at %d answered at %d", rs.RequestCtx, req.node, sn.id)
	}
	if rs.Index < req.minIndex {
		w.fail("stale read at node %d: read index %d, but %d was committed before the read began", sn.id, rs.Index, req.minIndex)
	}
}

// checkEntries checks log matching as entries are handed to the disk: an
// (index, term) pair always names the same entry, preceded by the same
// term.
func (w *world) checkEntries(sn *simNode, ents []Entry) {
	for _, e := range ents {
		pt, err := sn.node.r.log.term(e.Index - 1)
		if err != nil {
			continue
		}
		v := logVal{data: string(e.Data), typ: e.Type, prevTerm: pt}
		k := logKey{e.Index, e.Term}
		if old, ok := w.entries[k]; ok {
			if old != v {
				w.fail("log matching: node %d has a different entry at index %d term %d", sn.id, e.Index, e.Term)
			}
		} else {
			w.entries[k] = v
		}
	}
}

// check runs the invariants that look at every node after each event.
func (w *world) check() {
	for _, id := range w.ids {
		sn := w.nodes[id]
		if !sn.alive {
			continue
		}
		r := sn.node.r
		if r.state == StateLeader {
			if l, ok := w.leaders[r.term]; ok && l != id {
				w.fail("two leaders in term %d: %d and %d", r.term, l, id)
			}
			w.leaders[r.term] = id
			if sn.lastLead != r.term {
				sn.lastLead = r.term
				w.checkLeaderCompleteness(sn)
				if w.faults && w.rng.Float64() < w.p.electFault {
					at := w.now
					if w.rng.IntN(2) == 0 {
						at += w.rng.Int64N(6*w.p.maxDelay + 2*w.p.fsyncMax + 1)
					}
					w.schedule(at, evIsolate, id, sn.inc, Message{})
				}
			}
			if r.log.committed > sn.committed && w.faults && w.rng.Float64() < w.p.commitFault {
				w.schedule(w.now, evIsolate, id, sn.inc, Message{})
			}
		}
		// Nothing committed ever changes.
		c := r.log.committed
		for i := max(sn.committed+1, r.log.firstIndex()); i <= c; i++ {
			t, err := r.log.term(i)
			if err != nil {
				break
			}
			k := logKey{i, t}
			if old, ok := w.committed[i]; ok {
				if old != k {
					w.fail("committed entry %d changed: term %d, now node %d commits term %d", i, old.term, id, t)
				}
			} else {
				w.committed[i] = k
				w.stats.commits++
			}
		}
		sn.committed = max(sn.committed, c)
		w.maxCommit = max(w.maxCommit, c)
	}
}

// checkLeaderCompleteness: a new leader holds every committed entry.
func (w *world) checkLeaderCompleteness(sn *simNode) {
	l := sn.node.r.log
	if l.lastIndex() < w.maxCommit {
		w.fail("leader %d of term %d lacks committed entries: last index %d < %d", sn.id, sn.node.r.term, l.lastIndex(), w.maxCommit)
		return
	}
	for i := l.firstIndex(); i <= w.maxCommit; i++ {
		k, ok := w.committed[i]
		if !ok {
			continue
		}
		if t, err := l.term(i); err == nil && t != k.term {
			w.fail("leader %d of term %d has term %d at committed index %d (committed term %d)", sn.id, sn.node.r.term, t, i, k.term)
			return
		}
	}
}

func (w *world) alive() []*simNode {
	var out []*simNode
	for _, id := range w.ids {
		if sn := w.nodes[id]; sn.alive {
			out = append(out, sn)
		}
	}
	return out
}

func (w *world) pick() *simNode {
	a := w.alive()
	if len(a) == 0 {
		return nil
	}
	return a[w.rng.IntN(len(a))]
}

func (w *world) leader() *simNode {
	var best *simNode
	for _, sn := range w.alive() {
		if sn.node.r.state == StateLeader && (best == nil || sn.node.r.term > best.node.r.term) {
			best = sn
		}
	}
	return best
}

func (w *world) partition() {
	clear(w.blocked)
	ids := w.ids
	switch w.rng.IntN(4) {
	case 0: // isolate one node both ways
		x := ids[w.rng.IntN(len(ids))]
		for _, y := range ids {
			if y != x {
				w.blocked[[2]uint64{x, y}], w.blocked[[2]uint64{y, x}] = true, true
			}
		}
	case 1: // majority / minority
		perm := w.rng.Perm(len(ids))
		cut := len(ids) / 2
		for i, a := range perm {
			for j, b := range perm {
				if (i < cut) != (j < cut) {
					w.blocked[[2]uint64{ids[a], ids[b]}] = true
				}
			}
		}
	case 2: // one-way: a node can send but not receive (or the reverse)
		x := ids[w.rng.IntN(len(ids))]
		in := w.rng.IntN(2) == 0
		for _, y := range ids {
			if y != x {
				if in {
					w.blocked[[2]uint64{y, x}] = true
				} else {
					w.blocked[[2]uint64{x, y}] = true
				}
			}
		}
	case 3: // bridge: two groups that only one member hears both of
		perm := w.rng.Perm(len(ids))
		bridge := ids[perm[0]]
		cut := 1 + (len(ids)-1)/2
		for i, a := range perm[1:] {
			for j, b := range perm[1:] {
				if (i+1 < cut) != (j+1 < cut) {
					w.blocked[[2]uint64{ids[a], ids[b]}] = true
				}
			}
		}
		_ = bridge
	}
	w.stats.partitions++
	w.tracef("partition %v", w.blocked)
}

func (w *world) handle(ev *event) {
	sn := w.nodes[ev.node]
	switch ev.kind {
	case evTick:
		if sn.alive && sn.inc == ev.inc {
			sn.node.Tick()
			w.pump(sn)
			w.schedule(w.now+w.p.rates[sn.id], evTick, sn.id, sn.inc, Message{})
		}
	case evDeliver:
		w.deliver(ev.msg)
	case evPersist:
		if sn.alive && sn.inc == ev.inc && sn.pending != nil {
			w.persist(sn)
		}
	case evCrash:
		if w.faults {
			if v := w.pick(); v != nil && len(w.alive()) > 1 {
				w.tracef("crash %d (unpersisted ready lost: %v)", v.id, v.pending != nil)
				v.alive, v.pending = false, nil
				v.inc++
				w.stats.crashes++
				w.schedule(w.now+int64(1+w.rng.IntN(40))*tickUnit, evRestart, v.id, 0, Message{})
			}
			w.scheduleNext(evCrash, w.p.crashEvery)
		}
	case evRestart:
		if !sn.alive {
			w.tracef("restart %d", sn.id)
			w.start(sn)
		}
	case evPartition:
		if w.faults {
			w.partition()
			w.schedule(w.now+int64(5+w.rng.IntN(60))*tickUnit, evHeal, 0, 0, Message{})
			w.scheduleNext(evPartition, w.p.partitionEvery)
		}
	case evHeal:
		clear(w.blocked)
	case evIsolate:
		// Cut one node off both ways (added to any partition standing).
		if w.faults && sn.alive && sn.inc == ev.inc {
			for _, y := range w.ids {
				if y != sn.id {
					w.blocked[[2]uint64{sn.id, y}], w.blocked[[2]uint64{y, sn.id}] = true, true
				}
			}
			w.stats.partitions++
			w.tracef("isolate %d", sn.id)
			w.schedule(w.now+int64(5+w.rng.IntN(60))*tickUnit, evHeal, 0, 0, Message{})
		}
	case evPropose:
		if !w.faults {
			return // the liveness phase proposes only its marker
		}
		if v := w.pick(); v != nil {
			w.proposals++
			data := fmt.Sprintf("p%d", w.proposals)
			// One world in four proposes poison, every eighth proposal,
			// without drawing from the world's random stream: the other
			// worlds run exactly as they did before poison existed.
			if w.seed%4 == 0 && w.proposals%8 == 0 {
				data = poison + data
			}
			_ = v.node.Propose([]byte(data))
			w.pump(v)
		}
		w.scheduleNext(evPropose, w.p.proposeEvery)
	case evRead:
		if v := w.pick(); v != nil {
			w.readSeq++
			ctx := fmt.Sprintf("r%d", w.readSeq)
			w.reads[ctx] = &readReq{node: v.id, minIndex: w.maxCommit}
			w.stats.reads++
			_ = v.node.ReadIndex([]byte(ctx))
			w.pump(v)
		}
		w.scheduleNext(evRead, w.p.readEvery)
	case evConfChange:
		if w.faults {
			w.confChange()
			w.scheduleNext(evConfChange, w.p.confEvery)
		}
	case evTransfer:
		if w.faults {
			if l := w.leader(); l != nil {
				voters := l.node.r.prs.Voters
				to := voters[w.rng.IntN(len(voters))]
				w.tracef("transfer %d -> %d", l.id, to)
				_ = l.node.TransferLeadership(to)
				w.stats.transfers++
				w.pump(l)
			}
			w.scheduleNext(evTransfer, w.p.transferEvery)
		}
	case evCompact:
		for _, v := range w.alive() {
			w.compact(v)
		}
		w.scheduleNext(evCompact, w.p.compactEvery)
	}
}

func (w *world) scheduleNext(kind evKind, mean int64) {
	if at := w.after(mean); at >= 0 {
		w.schedule(at, kind, 0, 0, Message{})
	}
}

// confChange proposes a membership change at the leader: add a learner,
// promote one, or remove a member, keeping 3 to 5 voters.
func (w *world) confChange() {
	l := w.leader()
	if l == nil {
		return
	}
	prs := l.node.r.prs
	var cc ConfChange
	switch {
	case len(prs.Learners) > 0 && w.rng.IntN(2) == 0:
		cc = ConfChange{Type: AddVoter, NodeID: prs.Learners[0]}
	case len(prs.Voters)+len(prs.Learners) < 5 && w.rng.IntN(2) == 0:
		cc = ConfChange{Type: AddLearner, NodeID: w.nextID}
		w.nextID++
	case len(prs.Voters) > 3:
		cc = ConfChange{Type: RemoveNode, NodeID: prs.Voters[w.rng.IntN(len(prs.Voters))]}
	default:
		return
	}
	w.tracef("propose %v %d at %d", cc.Type, cc.NodeID, l.id)
	if err := l.node.ProposeConfChange(cc); err == nil {
		w.stats.confs++
	}
	w.pump(l)
}

// compact snapshots a node's applied state and trims its log.
func (w *world) compact(sn *simNode) {
	first, _ := sn.storage.FirstIndex()
	if sn.pending != nil || sn.applied < first+20 {
		return
	}
	var data [8]byte
	binary.BigEndian.PutUint64(data[:], sn.chain)
	cs := sn.conf
	if _, err := sn.storage.CreateSnapshot(sn.applied, &cs, data[:]); err != nil {
		return
	}
	_ = sn.storage.Compact(sn.applied - 5)
}

// run executes the fault phase, then heals and demands progress.
func (w *world) run() {
	w.scheduleNext(evPropose, w.p.proposeEvery)
	w.scheduleNext(evRead, w.p.readEvery)
	w.scheduleNext(evCrash, w.p.crashEvery)
	w.scheduleNext(evPartition, w.p.partitionEvery)
	w.scheduleNext(evConfChange, w.p.confEvery)
	w.scheduleNext(evTransfer, w.p.transferEvery)
	w.scheduleNext(evCompact, w.p.compactEvery)
	w.loop(w.p.faultPhase)
	if w.failure != "" {
		return
	}
	// Liveness: heal everything, restart everyone, and require a fresh
	// proposal to be applied by every live voter within the bound.
	w.faults = false
	clear(w.blocked)
	for _, id := range w.ids {
		if sn := w.nodes[id]; !sn.alive {
			w.start(sn)
		}
	}
	start := w.now
	marker := []byte("liveness")
	// The bound: a fixed allowance for electing a leader, plus time to
	// replicate the backlog left by the fault phase.
	var backlog uint64
	for _, sn := range w.alive() {
		backlog = max(backlog, sn.node.r.log.lastIndex()-min(w.maxCommit, sn.node.r.log.lastIndex()))
	}
	deadline := start + w.p.livenessBound + int64(backlog)*2*tickUnit
	for w.now < deadline && w.failure == "" {
		if l := w.leader(); l != nil && !w.markerProposed(l) {
			_ = l.node.Propose(marker)
			w.pump(l)
		}
		w.loop(w.now + 10*tickUnit)
		if w.markerApplied(marker) {
			return
		}
	}
	if w.failure == "" {
		w.fail("liveness: marker not committed within %d ticks after healing (backlog %d, leader: %v)", (deadline-start)/tickUnit, backlog, w.leader() != nil)
	}
}

// markerProposed reports whether the leader's log holds the marker
// anywhere (committed or not), so it is proposed once per leader.
func (w *world) markerProposed(l *simNode) bool {
	ents, err := l.node.r.log.slice(l.node.r.log.firstIndex(), l.node.r.log.lastIndex()+1, noLimit)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if string(e.Data) == "liveness" {
			return true
		}
	}
	return false
}

// markerApplied reports whether the marker is committed and applied by a
// quorum of the leader's voters.
func (w *world) markerApplied(marker []byte) bool {
	l := w.leader()
	if l == nil {
		return false
	}
	var idx uint64
	for i := l.node.r.log.firstIndex(); i <= l.node.r.log.committed; i++ {
		ents, err := l.node.r.log.slice(i, i+1, noLimit)
		if err == nil && len(ents) == 1 && string(ents[0].Data) == string(marker) {
			idx = i
			break
		}
	}
	if idx == 0 {
		return false
	}
	applied := 0
	for _, id := range l.node.r.prs.Voters {
		if sn := w.nodes[id]; sn != nil && sn.applied >= idx {
			applied++
		}
	}
	return applied >= len(l.node.r.prs.Voters)/2+1
}

func (w *world) loop(until int64) {
	for w.q.Len() > 0 && w.failure == "" {
		ev := w.q[0]
		if ev.at > until {
			break
		}
		heap.Pop(&w.q)
		w.now = ev.at
		w.stats.events++
		w.handle(ev)
		w.check()
	}
	w.now = max(w.now, until)
}

func (w *world) summary() string {
	s := w.stats
	return fmt.Sprintf("nodes=%d prevote=%v checkquorum=%v readonly=%d loss=%.2f dup=%.2f events=%d delivered=%d dropped=%d crashes=%d partitions=%d commits=%d reads=%d/%d confs=%d transfers=%d snapshots=%d",
		len(w.ids), w.p.preVote, w.p.checkQuorum, w.p.readOnly, w.p.loss, w.p.dup, s.events, s.delivered, s.dropped, s.crashes, s.partitions, s.commits, s.readsServed, s.reads, s.confs, s.transfers, s.snapshots)
}

// simulate runs one seed and returns its violation ("" if none).
func simulate(seed uint64, b bugs, trace bool) (*world, string) {
	w := newWorld(seed, b)
	if trace {
		w.trace = &strings.Builder{}
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				w.fail("panic: %v", p)
			}
		}()
		w.run()
	}()
	return w, w.failure
}

// runSeeds runs seeds [first, first+n) on every core and returns the first
// failing seed (0 if none) and its violation.
func runSeeds(first uint64, n int, b bugs) (uint64, string, simStats) {
	var next atomic.Uint64
	next.Store(first)
	var mu sync.Mutex
	var failSeed uint64
	var failMsg string
	var total simStats
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s := next.Add(1) - 1
				if s >= first+uint64(n) {
					return
				}
				mu.Lock()
				stop := failSeed != 0 && s > failSeed
				mu.Unlock()
				if stop {
					return
				}
				w, msg := simulate(s, b, false)
				mu.Lock()
				total.events += w.stats.events
				total.commits += w.stats.commits
				total.crashes += w.stats.crashes
				total.partitions += w.stats.partitions
				total.readsServed += w.stats.readsServed
				total.confs += w.stats.confs
				total.transfers += w.stats.transfers
				total.snapshots += w.stats.snapshots
				if msg != "" && (failSeed == 0 || s < failSeed) {
					failSeed, failMsg = s, msg
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failSeed, failMsg, total
}

func TestSimulation(t *testing.T) {
	if *simSeed != 0 {
		w, msg := simulate(*simSeed, bugs{}, *simVerbose)
		if w.trace != nil {
			t.Log(w.trace.String())
		}
		t.Logf("seed %d: %s", *simSeed, w.summary())
		if msg != "" {
			t.Fatalf("seed %d: %s", *simSeed, msg)
		}
		return
	}
	n := *simSeeds
	seed, msg, st := runSeeds(*simFirst, n, bugs{})
	t.Logf("%d seeds from %d: events=%d commits=%d crashes=%d partitions=%d reads=%d confs=%d transfers=%d snapshots=%d",
		n, *simFirst, st.events, st.commits, st.crashes, st.partitions, st.readsServed, st.confs, st.transfers, st.snapshots)
	if seed != 0 {
		t.Fatalf("seed %d: %s\nreplay: go test ./consensus -run 'TestSimulation$' -sim.seed=%d -sim.v -v", seed, msg, seed)
	}
}
