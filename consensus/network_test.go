package consensus

import (
	"fmt"
	"slices"
	"testing"
)

// network is a small, synchronous, deterministic harness for the paper
// and unit tests: it carries out each member's Ready the way the contract
// in node.go demands (Messages queued at once; Snapshot, Entries and
// HardState persisted into MemoryStorage; only then MessagesAfterPersist
// queued; committed entries applied; Advance), and delivers queued
// messages in FIFO order. Nothing in it reads a clock.
type network struct {
	t      testing.TB
	nodes  map[uint64]*Node
	stores map[uint64]*MemoryStorage
	cfgs   map[uint64]Config
	ids    []uint64

	// cut[{from,to}] drops messages on that link.
	cut map[[2]uint64]bool
	// filter, if set, drops every message for which it returns false.
	filter func(Message) bool
	// rewrite, if set, may change a message in flight (false drops it).
	rewrite func(*Message) bool
	// queue holds messages sent and not yet delivered.
	queue []Message

	// applied is every entry each member applied, in order.
	applied map[uint64][]Entry
	// reads is every ReadState each member received.
	reads map[uint64][]ReadState
	// snaps counts snapshots each member installed.
	snaps map[uint64]int
	// last is the last index each member applied.
	last map[uint64]uint64
	// sent records every message handed to the network (kept if trace).
	trace bool
	sent  []Message
}

// netConfig returns the configuration the harness uses for id; tweak may
// change it.
func netConfig(id uint64, s Storage) Config {
	return Config{ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: s, MaxInflightMsgs: 256, Seed: id}
}

// emptyNetwork returns a network without members.
func emptyNetwork(t testing.TB) *network {
	return &network{
		t: t, nodes: map[uint64]*Node{}, stores: map[uint64]*MemoryStorage{}, cfgs: map[uint64]Config{},
		cut: map[[2]uint64]bool{}, applied: map[uint64][]Entry{}, reads: map[uint64][]ReadState{}, snaps: map[uint64]int{},
		last: map[uint64]uint64{},
	}
}

// newNetwork starts members voters+learners from an empty log whose
// membership is given by the storage's ConfState.
func newNetwork(t testing.TB, voters, learners []uint64, tweak func(*Config)) *network {
	t.Helper()
	nw := emptyNetwork(t)
	cs := ConfState{Voters: slices.Clone(voters), Learners: slices.Clone(learners)}
	for _, id := range append(slices.Clone(voters), learners...) {
		ms := NewMemoryStorage()
		ms.SetConfState(cs)
		nw.add(id, ms, tweak)
	}
	return nw
}

// newNetworkLogs starts voters 1..len(logs); member i+1 holds entries with
// the terms logs[i] at indexes 1.., has committed commit, and is at the
// largest term of any log.
func newNetworkLogs(t testing.TB, logs [][]uint64, commit uint64, tweak func(*Config)) *network {
	t.Helper()
	nw := emptyNetwork(t)
	var term uint64
	for _, l := range logs {
		for _, x := range l {
			term = max(term, x)
		}
	}
	voters := idsUpTo(len(logs))
	for i, l := range logs {
		ms := NewMemoryStorage()
		ms.SetConfState(ConfState{Voters: voters})
		if err := ms.Append(entsAt(1, l...)); err != nil {
			t.Fatal(err)
		}
		ms.SetHardState(HardState{Term: term, Commit: min(commit, uint64(len(l)))})
		nw.add(uint64(i+1), ms, tweak)
	}
	nw.processAll()
	return nw
}

// newBootstrapNetwork starts voters the way a new cluster does: from
// BootstrapEntries, applying them to learn the membership.
func newBootstrapNetwork(t testing.TB, voters []uint64, tweak func(*Config)) *network {
	t.Helper()
	nw := emptyNetwork(t)
	ents, hs := BootstrapEntries(voters)
	for _, id := range voters {
		ms := NewMemoryStorage()
		if err := ms.Append(ents); err != nil {
			t.Fatal(err)
		}
		ms.SetHardState(hs)
		nw.add(id, ms, tweak)
	}
	nw.processAll()
	return nw
}

func idsUpTo(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// add starts member id on storage ms.
func (nw *network) add(id uint64, ms *MemoryStorage, tweak func(*Config)) *Node {
	nw.t.Helper()
	cfg := netConfig(id, ms)
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := NewNode(&cfg)
	if err != nil {
		nw.t.Fatalf("NewNode(%d): %v", id, err)
	}
	// A member that just started ignores votes for an election timeout
	// (with CheckQuorum): it may have heard a leader before it started.
	// Members of a test network start as if that window had passed, so a
	// test can elect at once; restart below keeps the window, as a real
	// restart does.
	n.r.ticks = uint64(cfg.ElectionTick)
	nw.nodes[id], nw.stores[id], nw.cfgs[id] = n, ms, cfg
	if !slices.Contains(nw.ids, id) {
		nw.ids = append(nw.ids, id)
		slices.Sort(nw.ids)
	}
	return n
}

// restart replaces member id by a fresh Node on the same storage, as after
// a crash: everything not persisted is lost.
func (nw *network) restart(id uint64) *Node {
	nw.t.Helper()
	cfg := nw.cfgs[id]
	ms := nw.stores[id]
	hs := ms.HardState()
	cfg.Applied = min(nw.last[id], hs.Commit)
	n, err := NewNode(&cfg)
	if err != nil {
		nw.t.Fatalf("restart %d: %v", id, err)
	}
	// Applied entries are not handed back; the membership is rebuilt from
	// the storage, so re-apply committed conf changes up to Applied.
	for _, e := range nw.applied[id] {
		if e.Type == EntryConfChange && e.Index > nw.snapIndex(id) {
			var cc ConfChange
			if err := cc.Unmarshal(e.Data); err == nil {
				n.ApplyConfChange(cc)
			}
		}
	}
	nw.nodes[id] = n
	return n
}

func (nw *network) snapIndex(id uint64) uint64 {
	s, _ := nw.stores[id].Snapshot()
	return s.Meta.Index
}

// node returns member id.
func (nw *network) node(id uint64) *Node { return nw.nodes[id] }

// raft returns member id's protocol state, for assertions.
func (nw *network) raft(id uint64) *raft { return nw.nodes[id].r }

// send queues m unless a cut or the filter drops it.
func (nw *network) send(m Message) {
	if nw.trace {
		nw.sent = append(nw.sent, m)
	}
	if nw.cut[[2]uint64{m.From, m.To}] || (nw.filter != nil && !nw.filter(m)) {
		return
	}
	if nw.rewrite != nil && !nw.rewrite(&m) {
		return
	}
	nw.queue = append(nw.queue, m)
}

// persist writes rd into id's storage and applies its committed entries,
// exactly what a member's run loop does between Ready and Advance.
func (nw *network) persist(id uint64, rd Ready) {
	nw.t.Helper()
	ms := nw.stores[id]
	if !rd.Snapshot.IsEmpty() {
		if err := ms.ApplySnapshot(rd.Snapshot); err != nil {
			nw.t.Fatalf("node %d: ApplySnapshot: %v", id, err)
		}
		nw.snaps[id]++
		nw.applied[id] = nil
		nw.last[id] = rd.Snapshot.Meta.Index
	}
	if err := ms.Append(rd.Entries); err != nil {
		nw.t.Fatalf("node %d: Append: %v", id, err)
	}
	if !rd.HardState.IsEmpty() {
		ms.SetHardState(rd.HardState)
	}
}

func (nw *network) apply(id uint64, rd Ready) {
	for _, e := range rd.CommittedEntries {
		nw.applied[id] = append(nw.applied[id], e)
		nw.last[id] = e.Index
		if e.Type == EntryConfChange {
			var cc ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				nw.t.Fatalf("node %d: bad conf change at %d: %v", id, e.Index, err)
			}
			nw.nodes[id].ApplyConfChange(cc)
		}
	}
	nw.reads[id] = append(nw.reads[id], rd.ReadStates...)
}

// process carries out every Ready member id has.
func (nw *network) process(id uint64) {
	nw.t.Helper()
	n := nw.nodes[id]
	for n.HasReady() {
		rd := n.Ready()
		for _, m := range rd.Messages {
			switch m.Type {
			case MsgAppResp, MsgVoteResp, MsgVote, MsgPreVoteResp:
				// These promise durable state: they must wait for it.
				nw.t.Errorf("node %d: %v in Ready.Messages, not MessagesAfterPersist", id, m)
			}
			nw.send(m)
		}
		nw.persist(id, rd)
		for _, m := range rd.MessagesAfterPersist {
			nw.send(m)
		}
		nw.apply(id, rd)
		n.Advance(rd)
	}
}

// processAll carries out every member's Ready.
func (nw *network) processAll() {
	for _, id := range nw.ids {
		nw.process(id)
	}
}

// deliverOne delivers the oldest queued message; false if none.
func (nw *network) deliverOne() bool {
	if len(nw.queue) == 0 {
		return false
	}
	m := nw.queue[0]
	nw.queue = nw.queue[1:]
	if n := nw.nodes[m.To]; n != nil {
		_ = n.Step(m)
		if m.Type == MsgSnap {
			if from := nw.nodes[m.From]; from != nil {
				from.ReportSnapshot(m.To, false)
			}
		}
		nw.process(m.To)
	}
	return true
}

// settle runs until no member has a Ready and nothing is queued.
func (nw *network) settle() {
	nw.t.Helper()
	for i := 0; ; i++ {
		if i > 100000 {
			nw.t.Fatalf("network does not settle")
		}
		nw.processAll()
		if !nw.deliverOne() {
			return
		}
	}
}

// tick ticks member id n times, carrying out its Ready after each tick
// but delivering nothing.
func (nw *network) tick(id uint64, n int) {
	for range n {
		nw.nodes[id].Tick()
		nw.process(id)
	}
}

// tickAll ticks every member once and settles, n times.
func (nw *network) tickAll(n int) {
	for range n {
		for _, id := range nw.ids {
			nw.nodes[id].Tick()
		}
		nw.settle()
	}
}

// campaign makes id campaign and settles.
func (nw *network) campaign(id uint64) {
	nw.t.Helper()
	if err := nw.nodes[id].Campaign(); err != nil {
		nw.t.Fatalf("Campaign(%d): %v", id, err)
	}
	nw.settle()
}

// campaignUntilLeader makes id campaign until it leads (at most tries
// elections), failing the test otherwise.
func (nw *network) campaignUntilLeader(id uint64, tries int) {
	nw.t.Helper()
	for range tries {
		nw.campaign(id)
		if nw.raft(id).state == StateLeader {
			return
		}
	}
	nw.t.Fatalf("node %d did not win in %d elections", id, tries)
}

// elect makes id the leader, failing the test otherwise.
func (nw *network) elect(id uint64) {
	nw.t.Helper()
	nw.campaign(id)
	if st := nw.raft(id).state; st != StateLeader {
		nw.t.Fatalf("node %d is %v after campaigning, want leader", id, st)
	}
}

// propose proposes data at id and settles.
func (nw *network) propose(id uint64, data string) {
	nw.t.Helper()
	if err := nw.nodes[id].Propose([]byte(data)); err != nil {
		nw.t.Fatalf("Propose at %d: %v", id, err)
	}
	nw.settle()
}

// isolate cuts every link to and from id.
func (nw *network) isolate(id uint64) {
	for _, o := range nw.ids {
		if o != id {
			nw.cut[[2]uint64{id, o}] = true
			nw.cut[[2]uint64{o, id}] = true
		}
	}
}

// cutLink cuts both directions between a and b.
func (nw *network) cutLink(a, b uint64) {
	nw.cut[[2]uint64{a, b}] = true
	nw.cut[[2]uint64{b, a}] = true
}

// heal restores every link and removes the filter.
func (nw *network) heal() {
	clear(nw.cut)
	nw.filter = nil
	nw.rewrite = nil
}

// take removes and returns queued messages matching f.
func (nw *network) take(f func(Message) bool) []Message {
	var out, keep []Message
	for _, m := range nw.queue {
		if f(m) {
			out = append(out, m)
		} else {
			keep = append(keep, m)
		}
	}
	nw.queue = keep
	return out
}

// drain empties the queue and returns what was in it.
func (nw *network) drain() []Message {
	q := nw.queue
	nw.queue = nil
	return q
}

// logOf returns member id's whole log (from its first index).
func (nw *network) logOf(id uint64) []Entry {
	nw.t.Helper()
	l := nw.raft(id).log
	ents, err := l.slice(l.firstIndex(), l.lastIndex()+1, noLimit)
	if err != nil {
		nw.t.Fatalf("log of %d: %v", id, err)
	}
	return ents
}

// appliedData returns the data of the normal, non-empty entries id applied.
func (nw *network) appliedData(id uint64) []string {
	var out []string
	for _, e := range nw.applied[id] {
		if e.Type == EntryNormal && len(e.Data) > 0 {
			out = append(out, string(e.Data))
		}
	}
	return out
}

// ofType selects messages of type t.
func ofType(t MessageType) func(Message) bool {
	return func(m Message) bool { return m.Type == t }
}

func msgTypes(ms []Message) []MessageType {
	out := make([]MessageType, len(ms))
	for i, m := range ms {
		out[i] = m.Type
	}
	return out
}

func describe(ms []Message) string {
	s := ""
	for _, m := range ms {
		s += fmt.Sprintf("\n  %v", m)
	}
	return s
}

// ents builds entries with the given terms at indexes from, from+1, ...
func entsAt(from uint64, terms ...uint64) []Entry {
	out := make([]Entry, len(terms))
	for i, t := range terms {
		out[i] = Entry{Index: from + uint64(i), Term: t}
	}
	return out
}

// newTestRaft builds a bare raft over a storage holding the given log
// (terms of entries 1..n), membership and hard state.
func newTestRaft(t testing.TB, id uint64, voters []uint64, terms []uint64, hs HardState, tweak func(*Config)) (*raft, *MemoryStorage) {
	t.Helper()
	ms := NewMemoryStorage()
	ms.SetConfState(ConfState{Voters: voters})
	if len(terms) > 0 {
		if err := ms.Append(entsAt(1, terms...)); err != nil {
			t.Fatal(err)
		}
	}
	ms.SetHardState(hs)
	cfg := netConfig(id, ms)
	if tweak != nil {
		tweak(&cfg)
	}
	r, err := newRaft(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, ms
}

// readMsgs returns and clears both of r's outboxes.
func readMsgs(r *raft) (now, afterPersist []Message) {
	now, afterPersist = r.msgs, r.msgsAfterPersist
	r.msgs, r.msgsAfterPersist = nil, nil
	return now, afterPersist
}

// allMsgs returns and clears r's outboxes, concatenated.
func allMsgs(r *raft) []Message {
	a, b := readMsgs(r)
	return append(a, b...)
}
