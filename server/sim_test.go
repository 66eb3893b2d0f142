package server

import (
	"bytes"
	"container/heap"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/internal/simfs"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// The whole-cluster simulator runs members built from the real driver
// (handle, after), the real store (bbolt files in a temporary directory)
// and the real WAL on an in-memory file system with faults (internal/simfs),
// in one goroutine under virtual time. One seed fixes everything: the fault
// rates, every message's fate, ticks, crashes, partitions and the clients'
// operations. A failing seed prints the command that replays it.

var (
	simSeeds    = flag.Int("sim.seeds", 200, "whole-cluster simulator: seeds to run")
	simFirst    = flag.Uint64("sim.first", 1, "whole-cluster simulator: first seed")
	simSeed     = flag.Uint64("sim.seed", 0, "whole-cluster simulator: replay only this seed, with a trace")
	simBug      = flag.String("sim.bug", "", "whole-cluster simulator: switch on a deliberate bug (see simBugs)")
	simParallel = flag.Int("sim.parallel", runtime.GOMAXPROCS(0), "whole-cluster simulator: seeds run at once (each world in one goroutine)")
)

// simBugs are the deliberate bugs the simulator must catch, each switched
// on in the simulator only.
var simBugs = []string{
	"stale-read",            // reads answered from the local store without ReadIndex
	"ack-before-fsync",      // the WAL's fsync does nothing: writes acknowledged before they are durable
	"expiry-forgotten",      // an expiry proposed and dropped across a leader change blocks every later one
	"torn-tail-trusted",     // the WAL takes a torn record left by a crash as whole: lost unsynced data undetected
	"lock-double-grant",     // a lock client holds the lock as soon as it is queued (as locks.UnsafeGrant)
	"queue-double-delivery", // a queue consumer's ack deletes its item without the prevIndex compare
	"stop-empty-answer",     // a stopping member answers waiting proposals with no error and no event
	"watch-skips",           // a watch resumed with a past waitIndex starts from the next change instead
}

const (
	simMembers   = 3
	simChaos     = 30 * time.Second // faults on
	simHeal      = 15 * time.Second // faults off: a quorum must make progress
	simOpTimeout = 3 * time.Second  // a client gives up (outcome unknown)
	simHeartbeat = 100 * time.Millisecond
)

var simKeys = []string{"/r/a", "/r/b", "/r/c"}

type simKind uint8

const (
	skTick simKind = iota + 1
	skExpiry
	skDeliver
	skClient
	skCrash
	skPowerLoss
	skRestart
	skPartition
	skHealNet
	skReport
	skLock
	skWatch
	skQueue        // a queue producer's or consumer's next move (simqueue_test.go)
	skStop         // a graceful stop of a member (simstop_test.go)
	skStopDeadline // a stopping leader's handover took an election timeout
	skFree         // a member's WAL write is done: its loop takes events again
	skScript       // a scenario's scripted move
	skKeepAlive    // simmembers_test.go: a member's streams carry keepalives
	skFrame        // a keepalive frame arrives
	skLiveness     // the receiver's liveness byte arrives back
	skRemoved      // a peer answered 410 Gone: it applied the member's removal
	skOperator     // the operator's membership changes
	skAskAbout     // a member asks the members it knows about a stranger
)

type simEvent struct {
	at     time.Duration
	seq    uint64
	kind   simKind
	member int
	inc    int    // the member's incarnation it belongs to (ticks, expiry)
	from   uint64 // skDeliver, skFrame, skLiveness: the sending member; skRemoved: the refusing one
	client int
	msg    consensus.Message
	snap   []byte // skDeliver of a MsgSnap: the sender's applied state
	rep    report // skReport
	script func() // skScript
}

type simQueue []*simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// simParams are one world's fault rates, drawn from its seed.
type simParams struct {
	loss, dup          float64
	minDelay, maxDelay time.Duration
	crashEvery         time.Duration // mean time between crashes of one member (0: none)
	powerLossEvery     time.Duration // mean time between whole-cluster power losses (0: none)
	partitionEvery     time.Duration
	stopEvery          time.Duration // mean time between graceful stops of one member (0: none)
	disk               simfs.Faults
	latency            simfs.Latency // a slow disk's write and fsync times (zero: instant)
}

type simNode struct {
	id  uint64
	url string // its peer URL
	dir string
	fs  *simfs.FS
	m   *Member // nil while down
	inc int
	// The member's loop is busy writing its WAL until busyUntil (the
	// disk's latency); the events it gets meanwhile wait in deferred.
	busyUntil time.Duration
	deferred  []event
	mark      time.Duration // fs.Elapsed when the current step began
	stopping  bool          // stopped gracefully: handing over
	simMemberState
}

// simTransport is the simulated network as one member sees it. As the
// peer transport, it sends only to its peers, and ActiveWithin answers
// from the last sign of life heard from a peer (heard, virtual time:
// messages, keepalive frames and liveness bytes; simmembers_test.go).
type simTransport struct {
	w     *simWorld
	id    uint64
	peers map[uint64]string
	heard map[uint64]time.Duration
}

func (t *simTransport) Send(msgs []consensus.Message) {
	for _, msg := range msgs {
		if _, ok := t.peers[msg.To]; ok {
			t.w.send(t.id, msg)
		}
	}
}
func (t *simTransport) Stop()                         {}
func (t *simTransport) KeepAlive() time.Duration      { return simKeepAlive }
func (t *simTransport) Peers() map[uint64]string      { return maps.Clone(t.peers) }
func (t *simTransport) AddPeer(id uint64, url string) { t.peers[id] = url }
func (t *simTransport) RemovePeer(id uint64) {
	delete(t.peers, id)
	delete(t.heard, id)
}
func (t *simTransport) Handler() http.Handler { return http.NotFoundHandler() }

// simClient issues one operation at a time.
type simClient struct {
	n       int
	pending *simOp
}

type simOp struct {
	member int
	inc    int
	input  chInput
	call   time.Duration
	id     uint64        // a proposal's ID
	ch     chan result   // a proposal's waiter
	read   chan struct{} // a read's round
	ttl    bool          // a TTL write (not part of the register history)
}

type simWorld struct {
	seed    uint64
	bug     string
	rng     *rand.Rand
	now     time.Duration
	base    time.Time
	q       simQueue
	seq     uint64
	p       simParams
	nodes   []*simNode
	cut     map[[2]uint64]bool // from, to: the link drops everything
	calm    bool               // the healing phase: no more faults
	quiet   bool               // the last seconds: no more client operations
	clients []*simClient
	hist    []porcupine.Operation
	writes  int
	trace   func(format string, args ...any)
	failure error
	// applied is each index's entry as the first member to apply it
	// applied it: every member must apply the same entry at an index.
	applied map[uint64]simApplied
	lockers []*simLocker
	holds   []*simHold
	fenced  []simFenced
	lockLog simLockLog
	queue   simQueueWork
	shell   simShellLog
	wa      *simWatches
	tb      testing.TB
	byID    map[uint64]int // member ID -> index in nodes (lookups only)
	ops     simOperator    // membership changes (simmembers_test.go)
}

type simApplied struct {
	member uint64
	term   uint64
	typ    consensus.EntryType
	data   []byte
}

func (w *simWorld) at(d time.Duration, ev *simEvent) {
	w.seq++
	ev.at, ev.seq = w.now+d, w.seq
	heap.Push(&w.q, ev)
}

func (w *simWorld) clock() time.Time { return w.base.Add(w.now) }

func (w *simWorld) fail(format string, args ...any) {
	if w.failure == nil {
		w.failure = fmt.Errorf("at %v: %s", w.now, fmt.Sprintf(format, args...))
	}
}

func (w *simWorld) dur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)+1))
}

func newSimWorld(t testing.TB, seed uint64, bug string, trace func(string, ...any)) *simWorld {
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	w := &simWorld{seed: seed, bug: bug, rng: rng, base: time.Unix(1_700_000_000, 0), cut: map[[2]uint64]bool{}, trace: trace,
		applied: map[uint64]simApplied{}, wa: newSimWatches(seed), tb: t, byID: map[uint64]int{}}
	// The seed draws the world: some seeds are calm, some hostile.
	w.p = simParams{
		loss:     rng.Float64() * 0.2,
		dup:      rng.Float64() * 0.05,
		minDelay: time.Duration(rng.IntN(5)+1) * time.Millisecond,
	}
	w.p.maxDelay = w.p.minDelay + time.Duration(rng.IntN(60))*time.Millisecond
	if rng.IntN(4) != 0 {
		w.p.crashEvery = w.dur(3*time.Second, 20*time.Second)
	}
	if rng.IntN(3) == 0 || bug == "ack-before-fsync" {
		w.p.powerLossEvery = w.dur(5*time.Second, 20*time.Second)
	}
	if rng.IntN(4) != 0 {
		w.p.partitionEvery = w.dur(2*time.Second, 10*time.Second)
	}
	if rng.IntN(3) == 0 || bug == "torn-tail-trusted" {
		// (The members fsync entries, terms and votes before they answer;
		// besides commit-only hard states, which are not fsynced, only a
		// failed fsync or write leaves unsynced entries for a crash to
		// tear.)
		w.p.disk = simfs.Faults{SyncError: rng.Float64() * 0.002, WriteError: rng.Float64() * 0.002, TornWrite: 0.5}
	}
	if rng.IntN(3) == 0 || bug == "stop-empty-answer" {
		w.p.stopEvery = w.dur(4*time.Second, 20*time.Second)
	}
	w.p.latency = simDiskLatency(w)
	trace("params %+v", w.p)
	for i := range simMembers {
		n := &simNode{id: uint64(i + 1), url: fmt.Sprintf("sim://n%d", i), dir: simTempDir(t), fs: simfs.New(seed*31+uint64(i), w.p.disk)}
		n.fs.SetLatency(w.p.latency)
		w.byID[n.id] = len(w.nodes)
		w.nodes = append(w.nodes, n)
	}
	w.initOperator()
	for i := range 3 {
		w.clients = append(w.clients, &simClient{n: i})
	}
	for i := range simLockers {
		w.lockers = append(w.lockers, &simLocker{n: i})
	}
	w.initQueue()
	return w
}

// start brings member i up on its data directory and file system.
func (w *simWorld) start(i int) {
	n := w.nodes[i]
	if n.retired || n.waiting {
		return // stopped as removed, or added but not started by the operator yet
	}
	var fs wal.FS = n.fs
	if w.bug == "ack-before-fsync" {
		fs = simNoSync{n.fs}
	}
	voters := make([]uint64, simMembers)
	for j := range voters {
		voters[j] = uint64(j + 1)
	}
	before := n.fs.Elapsed()
	cfg := MemberConfig{
		ID: n.id, ClusterID: 0xc1, Voters: voters, DataDir: n.dir, WALDir: "/wal",
		HeartbeatInterval: simHeartbeat, ElectionTicks: 10,
		FlushInterval: 2 * time.Second, Logger: zerolog.Nop(), WALFS: fs,
		Now: w.clock, Seed: w.rng.Uint64() | 1,
		UnsafeLocalReads:      w.bug == "stale-read",
		transport:             &simTransport{w: w, id: n.id, peers: map[uint64]string{}, heard: map[uint64]time.Duration{}},
		syncPersist:           true,
		walSegmentSize:        64 << 10,
		unsafeKeepExpiry:      w.bug == "expiry-forgotten",
		unsafeTrustTornTail:   w.bug == "torn-tail-trusted",
		unsafeEmptyStopAnswer: w.bug == "stop-empty-answer",
		unsafeWatchFromNow:    w.bug == "watch-skips",
		EventHistory:          w.wa.history,
		onApply: func(e consensus.Entry) {
			w.checkApplied(n.id, e)
			w.tapSync(i)
		},
	}
	w.memberConfig(n, &cfg)
	m, err := newMember(cfg)
	if errors.Is(err, simfs.ErrInjected) {
		// The disk failed while the member started: try again later,
		// as an operator (or systemd) would.
		w.trace("member %x failed to start: %v", n.id, err)
		w.at(w.dur(200*time.Millisecond, time.Second), &simEvent{kind: skRestart, member: i})
		return
	}
	if err != nil {
		w.fail("member %x cannot restart: %v", n.id, err)
		return
	}
	n.m = m
	n.inc++
	w.tapStart(i)
	w.trace("member %x up (incarnation %d)", n.id, n.inc)
	w.busy(i, n.fs.Elapsed()-before) // recovery read and wrote the WAL
	w.at(w.dur(0, simHeartbeat), &simEvent{kind: skTick, member: i, inc: n.inc})
	w.at(w.dur(0, SyncInterval), &simEvent{kind: skExpiry, member: i, inc: n.inc})
	w.at(w.dur(0, simKeepAlive), &simEvent{kind: skKeepAlive, member: i, inc: n.inc})
	w.step(i, event{kind: evTick}) // the first after (a lone voter's campaign, nothing here)
}

// checkApplied is the state-machine-safety checker: every member applies
// the same entry (term, type, data) at an index.
func (w *simWorld) checkApplied(id uint64, e consensus.Entry) {
	a, ok := w.applied[e.Index]
	w.noteApplied(id, e, !ok)
	if !ok {
		w.applied[e.Index] = simApplied{member: id, term: e.Term, typ: e.Type, data: bytes.Clone(e.Data)}
		return
	}
	if a.term != e.Term || a.typ != e.Type || !bytes.Equal(a.data, e.Data) {
		w.fail("state machine safety: member %x applied at index %d term %d type %v %d bytes %.40x, member %x term %d type %v %d bytes %.40x",
			id, e.Index, e.Term, e.Type, len(e.Data), e.Data, a.member, a.term, a.typ, len(a.data), a.data)
	}
}

// crash drops member i as a power loss would: unsynced WAL data is lost,
// captured batches of applied state not yet written are lost.
func (w *simWorld) crash(i int, why string) {
	n := w.nodes[i]
	if n.m == nil {
		return
	}
	w.trace("member %x crashes (%s)", n.id, why)
	w.tapCrash(i)
	n.fs.Crash()
	_ = n.m.wal.Close()
	_ = n.m.store.Close()
	n.m = nil
	w.dropUnsent(i)
	n.busyUntil, n.deferred, n.stopping = 0, nil, false
	w.at(w.dur(200*time.Millisecond, 3*time.Second), &simEvent{kind: skRestart, member: i})
}

// step hands member i one event and what follows from it, or, while its
// loop is busy writing the WAL, keeps the event until it is free.
func (w *simWorld) step(i int, ev event) {
	n := w.nodes[i]
	if n.m == nil {
		return
	}
	if w.now < n.busyUntil || len(n.deferred) > 0 {
		w.deferEvent(n, ev)
		return
	}
	w.stepNow(i, ev)
}

func (w *simWorld) stepNow(i int, ev event) {
	n := w.nodes[i]
	m := n.m
	n.mark = n.fs.Elapsed()
	ev.now = w.clock()
	ok := m.handle(ev) && m.after()
	for ok && m.Err() == nil && len(m.flushedq) > 0 {
		idx := m.flushedq[0]
		m.flushedq = m.flushedq[1:]
		ok = m.handle(event{kind: evFlushed, index: idx, now: w.clock()}) && m.after()
	}
	if errors.Is(m.Err(), ErrRemoved) {
		w.retire(i)
	} else if !ok || m.Err() != nil {
		w.crash(i, fmt.Sprintf("failed: %v", m.Err()))
	} else {
		w.busy(i, n.fs.Elapsed()-n.mark)
		if n.stopping && !m.isLeader {
			w.finishStop(i, "handed over")
		}
	}
	w.poll()
}

func (w *simWorld) send(from uint64, msg consensus.Message) {
	to := msg.To
	var snap []byte
	if msg.Type == consensus.MsgSnap {
		// As the peer transport: the applied state, as last written,
		// streamed beside the message.
		var buf bytes.Buffer
		if err := w.nodes[w.byID[from]].m.writeSnapshot(&buf); err != nil {
			w.fail("member %x: writing a snapshot: %v", from, err)
			return
		}
		snap = buf.Bytes()
	}
	cut := w.cut[[2]uint64{from, to}]
	if cut || (!w.calm && w.rng.Float64() < w.p.loss) {
		if snap != nil {
			// The peer transport reports a snapshot it failed to send:
			// the leader waits for that word before it probes again.
			w.at(w.p.maxDelay, &simEvent{kind: skReport, member: w.byID[from], rep: report{id: to, snapshot: true, failed: true}})
		} else if cut {
			w.unreachable(from, to) // the write or the POST fails
		}
		return
	}
	copies := 1
	if !w.calm && w.rng.Float64() < w.p.dup && msg.Type != consensus.MsgProp {
		// (Raft takes any message twice, but a proposal delivered twice
		// is appended, and applied, twice: the peer transport never
		// delivers one twice, a stream or a POST never retried.)
		copies = 2
	}
	// A message leaves once the disk writes before it are done.
	sender := w.nodes[w.byID[from]]
	lag := sender.fs.Elapsed() - sender.mark
	for range copies {
		w.at(lag+w.dur(w.p.minDelay, w.p.maxDelay), &simEvent{kind: skDeliver, member: w.byID[to], from: from, msg: msg, snap: snap})
	}
}

// deliverSnapshot hands a snapshot to its member as the peer transport
// does (a file beside the applied state, then an evSnapshot), and tells
// the sender how it went.
func (w *simWorld) deliverSnapshot(ev *simEvent) {
	n := w.nodes[ev.member]
	failed := true
	if n.m != nil && w.admit(ev.member, ev.from, false) {
		in, err := n.m.readSnapshot(ev.msg, bytes.NewReader(ev.snap))
		if err == nil {
			failed = false
			w.step(ev.member, event{kind: evSnapshot, snap: in})
		} else {
			w.trace("member %x: snapshot refused: %v", n.id, err)
		}
	}
	w.at(w.dur(w.p.minDelay, w.p.maxDelay), &simEvent{kind: skReport, member: w.byID[ev.from],
		rep: report{id: ev.msg.To, snapshot: true, failed: failed}})
}

// poll collects the answers of pending operations.
func (w *simWorld) poll() {
	for _, c := range w.clients {
		op := c.pending
		if op == nil || w.loopBusy(op.member) {
			continue
		}
		n := w.nodes[op.member]
		if op.read != nil {
			select {
			case <-op.read:
				if n.m == nil || n.inc != op.inc {
					continue
				}
				w.finishRead(c, n.m)
			default:
			}
			continue
		}
		select {
		case res := <-op.ch:
			w.checkAnswer(res, fmt.Sprintf("client %d: %s %s", c.n, op.input.Op, op.input.Key))
			out := chOutput{Outcome: chOK}
			var se *store.Error
			switch {
			case res.err == nil:
			case errors.As(res.err, &se) && se.Code == store.EcodeTestFailed && op.input.Op == "cas":
				out.Outcome = chCompareFailed
			case errors.As(res.err, &se) && se.Code == store.EcodeKeyNotFound && op.input.Op == "cas":
				out.Outcome, out.Missing = chCompareFailed, true
			default:
				out.Outcome, out.Detail = chUnknown, res.err.Error()
			}
			w.finish(c, out)
		default:
		}
	}
	w.pollLocks()
	w.pollWatches()
	w.pollQueue()
}

func (w *simWorld) finish(c *simClient, out chOutput) {
	op := c.pending
	c.pending = nil
	w.trace("client %d: %s %s %q -> %s", c.n, op.input.Op, op.input.Key, op.input.Value, out.Outcome)
	if op.ttl {
		return
	}
	ret := int64(w.now)
	if out.Outcome == chUnknown {
		ret = int64(1 << 62)
	}
	w.hist = append(w.hist, porcupine.Operation{ClientId: c.n, Input: op.input, Output: out, Call: int64(op.call), Return: ret})
}

func (w *simWorld) finishRead(c *simClient, m *Member) {
	out := chOutput{Outcome: chOK}
	ev, err := m.Store().Get(c.pending.input.Key, false)
	var se *store.Error
	switch {
	case err == nil:
		out.Value = ev.Node.Value
	case errors.As(err, &se) && se.Code == store.EcodeKeyNotFound:
		out.Missing = true
	default:
		w.fail("read %s: %v", c.pending.input.Key, err)
	}
	w.finish(c, out)
}

// issue starts client c's next operation on a random member.
func (w *simWorld) issue(c *simClient) {
	if c.pending != nil {
		if w.now-c.pending.call >= simOpTimeout {
			if c.pending.read != nil {
				c.pending = nil // a read that never answered changed nothing
			} else {
				w.finish(c, chOutput{Outcome: chUnknown, Detail: "timed out"})
			}
		}
		return
	}
	i := w.pickNode()
	n := w.nodes[i]
	if n.m == nil || n.stopping {
		return
	}
	m := n.m
	key := simKeys[w.rng.IntN(len(simKeys))]
	op := &simOp{member: i, inc: n.inc, call: w.now}
	c.pending = op
	w.writes++
	val := fmt.Sprintf("c%d-%d", c.n, w.writes)
	var req *store.Request
	switch r := w.rng.IntN(10); {
	case r < 4:
		op.input = chInput{Op: "read", Key: key}
		if m.cfg.UnsafeLocalReads {
			w.finishRead(c, m)
			return
		}
		op.read = make(chan struct{})
		w.step(i, event{kind: evRead, read: op.read})
		return
	case r < 6:
		op.input = chInput{Op: "write", Key: key, Value: val}
		req = &store.Request{Op: store.OpSet, Path: key, Value: val}
	case r < 8:
		prev := w.lastValue(key)
		op.input = chInput{Op: "cas", Key: key, Prev: prev, Value: val}
		req = &store.Request{Op: store.OpCompareAndSwap, Path: key, Value: val, PrevValue: prev}
		if prev == "" {
			req.PrevValue = "none"
			op.input.Prev = "none"
		}
	default:
		op.ttl = true
		op.input = chInput{Op: "write", Key: fmt.Sprintf("/ttl/%s", val), Value: val}
		req = &store.Request{Op: store.OpSet, Path: op.input.Key, Value: val, HasTTL: true, TTL: uint64(w.rng.IntN(3) + 1)}
	}
	req.Time = w.clock().UnixNano()
	id := m.nextID.Add(1)
	op.ch = m.register(id)
	w.step(i, event{kind: evPropose, props: []proposal{{id: id, data: encodeProposal(id, req)}}})
}

// lastValue is a value key recently had, so that some CAS succeed.
func (w *simWorld) lastValue(key string) string {
	for i := len(w.hist) - 1; i >= 0; i-- {
		in := w.hist[i].Input.(chInput)
		if in.Key == key && in.Op != "read" && w.hist[i].Output.(chOutput).Outcome == chOK {
			return in.Value
		}
	}
	return ""
}

func (w *simWorld) leader() int {
	for i, n := range w.nodes {
		if n.m != nil && n.m.isLeader {
			return i
		}
	}
	return -1
}

func (w *simWorld) partition() {
	clear(w.cut)
	ids := w.runningIDs()
	if len(ids) < 2 {
		return
	}
	var alone uint64
	if l := w.leader(); l >= 0 && w.rng.IntN(2) == 0 {
		alone = w.nodes[l].id
	} else {
		alone = ids[w.rng.IntN(len(ids))]
	}
	oneWay := w.rng.IntN(4) == 0
	for _, o := range ids {
		if o == alone {
			continue
		}
		w.cut[[2]uint64{alone, o}] = true
		if !oneWay {
			w.cut[[2]uint64{o, alone}] = true
		}
	}
	w.trace("partition: member %x cut off (one way: %v)", alone, oneWay)
	w.at(w.dur(500*time.Millisecond, 5*time.Second), &simEvent{kind: skHealNet})
}

func (w *simWorld) exp(mean time.Duration) time.Duration {
	return time.Duration(w.rng.ExpFloat64() * float64(mean))
}

// run plays the world: chaos, then healing, then the checks.
func (w *simWorld) run() error {
	for i := range w.nodes {
		w.start(i)
	}
	for _, c := range w.clients {
		w.at(w.dur(0, 100*time.Millisecond), &simEvent{kind: skClient, client: c.n})
	}
	for _, l := range w.lockers {
		w.at(w.dur(0, 100*time.Millisecond), &simEvent{kind: skLock, client: l.n})
	}
	w.startWatchers()
	if w.p.crashEvery > 0 {
		w.at(w.exp(w.p.crashEvery), &simEvent{kind: skCrash})
	}
	if w.p.powerLossEvery > 0 {
		w.at(w.exp(w.p.powerLossEvery), &simEvent{kind: skPowerLoss})
	}
	if w.p.partitionEvery > 0 {
		w.at(w.exp(w.p.partitionEvery), &simEvent{kind: skPartition})
	}
	if w.p.stopEvery > 0 {
		w.at(w.exp(w.p.stopEvery), &simEvent{kind: skStop, member: -1})
	}
	w.startQueue()
	w.startOperator()
	w.loop(simChaos)
	// Healing: faults stop, every member comes back.
	w.calm = true
	clear(w.cut)
	for i, n := range w.nodes {
		n.fs.SetFaults(simfs.Faults{})
		if n.m == nil {
			w.start(i)
		}
	}
	w.trace("healing")
	w.loop(simChaos + simHeal - 6*time.Second)
	for _, c := range w.clients {
		if c.pending != nil && c.pending.read == nil && !c.pending.ttl {
			w.finish(c, chOutput{Outcome: chUnknown, Detail: "still pending at the end"})
		}
		c.pending = nil
	}
	w.quiet = true
	w.loop(simChaos + simHeal)
	if w.failure != nil {
		return w.failure
	}
	return w.check()
}

func (w *simWorld) loop(until time.Duration) {
	for len(w.q) > 0 && w.failure == nil {
		if w.q[0].at > until {
			w.now = until
			return
		}
		w.next()
	}
}

// next handles the earliest event, advancing the clock to it.
func (w *simWorld) next() {
	ev := heap.Pop(&w.q).(*simEvent)
	w.now = ev.at
	w.handle(ev)
}

func (w *simWorld) handle(ev *simEvent) {
	switch ev.kind {
	case skTick, skExpiry:
		n := w.nodes[ev.member]
		if n.m == nil || n.inc != ev.inc {
			return // a tick of an earlier incarnation
		}
		if ev.kind == skTick {
			w.at(simHeartbeat, ev)
			w.step(ev.member, event{kind: evTick})
		} else {
			w.at(SyncInterval, ev)
			w.step(ev.member, event{kind: evExpiry})
		}
	case skDeliver:
		if ev.msg.Type == consensus.MsgSnap {
			w.deliverSnapshot(ev)
			return
		}
		if w.admit(ev.member, ev.from, true) {
			w.step(ev.member, event{kind: evMessages, msgs: []consensus.Message{ev.msg}})
		}
	case skReport:
		if ev.inc == 0 || ev.inc == w.nodes[ev.member].inc {
			w.step(ev.member, event{kind: evReport, rep: ev.rep})
		}
	case skKeepAlive, skFrame, skLiveness, skRemoved, skOperator, skAskAbout:
		w.handleMembership(ev)
	case skClient:
		if !w.quiet {
			w.issue(w.clients[ev.client])
			w.at(w.dur(time.Millisecond, 200*time.Millisecond), ev)
		}
	case skLock:
		if !w.quiet {
			w.lockStep(w.lockers[ev.client])
			w.at(w.dur(10*time.Millisecond, 200*time.Millisecond), ev)
		}
	case skCrash:
		if !w.calm {
			w.crash(w.pickNode(), "injected")
			w.at(w.exp(w.p.crashEvery), ev)
		}
	case skPowerLoss:
		if !w.calm {
			for i := range w.nodes {
				w.crash(i, "power loss")
			}
			w.at(w.exp(w.p.powerLossEvery), ev)
		}
	case skRestart:
		if w.nodes[ev.member].m == nil {
			w.start(ev.member)
		}
	case skPartition:
		if !w.calm {
			w.partition()
			w.at(w.exp(w.p.partitionEvery), ev)
		}
	case skHealNet:
		clear(w.cut)
	case skWatch:
		w.watchStep(ev.client)
		w.at(w.wa.dur(50*time.Millisecond, time.Second), ev)
	case skQueue:
		if !w.quiet {
			w.queueStep(ev.client)
			w.at(w.queuePause(ev.client), ev)
		}
	case skStop:
		w.stopEvent(ev)
	case skStopDeadline:
		if n := w.nodes[ev.member]; n.m != nil && n.inc == ev.inc && n.stopping {
			w.finishStop(ev.member, "handover timed out")
		}
	case skFree:
		w.free(ev)
	case skScript:
		ev.script()
	}
}

// check runs the checkers at the end of a run.
func (w *simWorld) check() error {
	// Liveness: after healing, a leader, and every member caught up with
	// the same applied state.
	w.traceMembers()
	l := w.leader()
	if l < 0 {
		return errors.New("liveness: no leader after healing")
	}
	want := w.nodes[l].m.applied
	// The members of the final configuration, every one up; removed
	// members stopped (simmembers_test.go).
	members, err := w.checkMembership(l)
	if err != nil {
		return err
	}
	for _, n := range members {
		if n.m.applied != want {
			return fmt.Errorf("liveness: member %x applied %d, the leader %d", n.id, n.m.applied, want)
		}
	}
	// Every member agrees, and the final values are part of the history
	// as reads that start after everything else ended.
	end := int64(w.now)
	for _, key := range simKeys {
		var vals []string
		for _, n := range members {
			ev, err := n.m.Store().Get(key, false)
			v := "(absent)"
			if err == nil {
				v = ev.Node.Value
			}
			vals = append(vals, v)
		}
		if slices.ContainsFunc(vals, func(v string) bool { return v != vals[0] }) {
			return fmt.Errorf("members disagree on %s at index %d: %q", key, want, vals)
		}
		out := chOutput{Outcome: chOK, Value: vals[0], Missing: vals[0] == "(absent)"}
		if out.Missing {
			out.Value = ""
		}
		w.hist = append(w.hist, porcupine.Operation{ClientId: 99, Input: chInput{Op: "read", Key: key}, Output: out, Call: end, Return: end + 1})
	}
	// Expiry: no TTL key whose deadline passed a while ago is left.
	for _, n := range members {
		ev, err := n.m.Store().Get("/ttl", true)
		if err != nil {
			continue
		}
		for _, nd := range ev.Node.Nodes {
			if nd.Expiration != 0 && nd.Expiration < w.clock().Add(-5*time.Second).UnixNano() {
				return fmt.Errorf("expiry: member %x still has %s, expired at %v (%v ago)", n.id, nd.Key,
					time.Unix(0, nd.Expiration).Sub(w.base), w.clock().Sub(time.Unix(0, nd.Expiration)))
			}
		}
	}
	if err := w.checkLocks(); err != nil {
		return err
	}
	w.trace("locks: %s", w.lockSummary())
	w.trace("stops and disks: %+v", w.shell)
	if err := w.checkQueue(); err != nil {
		return err
	}
	if err := w.checkWatches(); err != nil {
		return err
	}
	res, _ := porcupine.CheckOperationsVerbose(chModel, w.hist, 20*time.Second)
	switch res {
	case porcupine.Illegal:
		return fmt.Errorf("linearizability: the history of the registers is not linearizable (%d operations)", len(w.hist))
	case porcupine.Unknown:
		w.trace("porcupine timed out: linearizability unknown")
	}
	return nil
}

func runSim(t testing.TB, seed uint64, bug string, verbose bool) error {
	trace := func(string, ...any) {}
	if verbose {
		trace = func(format string, args ...any) { t.Logf(format, args...) }
	}
	w := newSimWorld(t, seed, bug, trace)
	err := w.run()
	w.close()
	return err
}

func (w *simWorld) close() {
	for _, n := range w.nodes {
		if n.m != nil {
			_ = n.m.wal.Close()
			_ = n.m.store.Close()
			n.m = nil
		}
		if strings.HasPrefix(n.dir, "/dev/shm/") {
			_ = os.RemoveAll(n.dir)
		}
	}
}

func simReplay(seed uint64, bug string) string {
	s := fmt.Sprintf("go test ./server -run TestWholeClusterSimulation -sim.seed=%d -v", seed)
	if bug != "" {
		s += " -sim.bug=" + bug
	}
	return s
}

// TestWholeClusterSimulation runs -sim.seeds seeds from -sim.first (or
// replays -sim.seed with a trace) and ends with "N seeds, K failures".
func TestWholeClusterSimulation(t *testing.T) {
	if *simBug != "" && !slices.Contains(simBugs, *simBug) {
		t.Fatalf("unknown -sim.bug %q (known: %s)", *simBug, strings.Join(simBugs, ", "))
	}
	if *simSeed != 0 {
		if err := runSim(t, *simSeed, *simBug, true); err != nil {
			t.Fatalf("seed %d: %v\nreplay: %s", *simSeed, err, simReplay(*simSeed, *simBug))
		}
		return
	}
	seeds := *simSeeds
	if testing.Short() {
		seeds = min(seeds, 5)
	}
	// Worlds share nothing, so seeds run side by side, one per core; each
	// world still runs in one goroutine and replays alone exactly.
	start := time.Now()
	errs := make([]error, seeds)
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, *simParallel) {
		wg.Go(func() {
			for i := range next {
				errs[i] = runSim(t, *simFirst+uint64(i), *simBug, false)
			}
		})
	}
	for i := range seeds {
		next <- i
	}
	close(next)
	wg.Wait()
	var failed []uint64
	for i, err := range errs {
		if err != nil {
			s := *simFirst + uint64(i)
			failed = append(failed, s)
			t.Errorf("seed %d: %v\nreplay: %s", s, err, simReplay(s, *simBug))
		}
	}
	t.Logf("%v for %d seeds, %d at a time", time.Since(start).Round(time.Millisecond), seeds, max(1, *simParallel))
	fmt.Fprintf(os.Stdout, "%d seeds, %d failures\n", seeds, len(failed))
}

// simTempDir is a directory for a member's bbolt file: in memory when
// the machine has a tmpfs at /dev/shm (bbolt fsyncs every commit; on a
// disk that, not the simulation, would bound the seeds per minute).
func simTempDir(t testing.TB) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "cairn-sim-"); err == nil {
			return d // removed by simWorld.close
		}
	}
	return t.TempDir()
}

// simNoSync is a file system whose files never really sync: the bug of a
// write acknowledged before its fsync.
type simNoSync struct{ *simfs.FS }

func (n simNoSync) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	f, err := n.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return simNoSyncFile{f}, nil
}

type simNoSyncFile struct{ wal.File }

func (simNoSyncFile) Sync() error { return nil }

var simBugBudget = flag.Int("sim.bugseeds", 200, "whole-cluster simulator: seeds each deliberate bug may take to be caught")

// TestWholeClusterSimulatorCatchesBugs switches on each deliberate bug in
// turn and requires a seed to fail within -sim.bugseeds; it ends with
// "K of K bugs caught", naming the seed that caught each.
func TestWholeClusterSimulatorCatchesBugs(t *testing.T) {
	caught := 0
	for _, bug := range simBugs {
		found := false
		for s := uint64(1); s <= uint64(*simBugBudget); s++ {
			if err := runSim(t, s, bug, false); err != nil {
				t.Logf("%s: caught by seed %d: %v\nreplay: %s", bug, s, err, simReplay(s, bug))
				fmt.Fprintf(os.Stdout, "bug %s caught by seed %d\n", bug, s)
				caught++
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: not caught in %d seeds", bug, *simBugBudget)
		}
	}
	fmt.Fprintf(os.Stdout, "%d of %d bugs caught\n", caught, len(simBugs))
}
