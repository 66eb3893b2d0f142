package server

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/consensus/tracker"
	"github.com/cairnkv/cairn/internal/simfs"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// The simulator's membership changes, and its network's word about peers.
//
// An operator changes the membership during the chaos as one replacing
// machines does: it removes a member (the leader or another, up or down)
// and adds a new one, with a new ID, a fresh data directory and disk,
// which joins as the product's new members do (Join and the member list
// of a running member) and which the leader promotes once it has caught
// up. Changes go through the member's own checks and proposal
// (addProposal, removeProposal: what AddMember and RemoveMember do before
// they wait), one at a time; refusals (a removal that would cost the
// quorum, a change while another is pending) are answers like any other.
// The operator learns what became of a change whose answer was lost from
// the member list of the member that applied most: an addition there is
// started. A removed member's process goes on (restarted after a crash,
// as a supervisor would) until it stops as removed (ErrRemoved); then it
// is never restarted.
//
// The simulated transport is as truthful as the peer transport about
// peers: it sends only to the members it was told of; it reports a peer
// unreachable when a message to it cannot be written (a cut link, a
// member that is down, a receiver that does not know the sender: 404); a
// receiver that knows the sender was removed answers 410 Gone, which the
// sender's driver hears as a report (a removed member stops once the
// members left have all refused it so); and ActiveWithin answers from the
// last sign of life heard from the peer in virtual time: a message, a
// keepalive frame on the stream from it, or a liveness byte on the stream
// to it. Each member writes a keepalive frame on its stream to each peer
// every simKeepAlive, which the peer answers with a liveness byte. A
// member that refuses a sender it does not know asks the members it knows
// about it (MemberConfig.askAbout; answerAbout stands for their peer
// endpoint /members), as the product does.
//
// Checkers (checkMembership, at the end): the members of the final
// configuration (the leader's) are all up and hold that same
// configuration and member list, with no learner left unpromoted; every
// other member that ran has stopped; no removed member applied an index
// beyond what the others applied (and, at every index, the same entry as
// they did: checkApplied). The registers stay linearizable and the
// members of the final configuration agree on them (check).

const (
	// simKeepAlive is the simulated streams' keepalive period (the
	// peer transport's is 5 s, 50 heartbeats; here 10): a member is up,
	// for RemoveMember's check, when heard from within three of them.
	simKeepAlive = time.Second
	// simMaxChanges bounds the membership changes one run proposes.
	simMaxChanges = 6
)

// simMemberState is a simulated machine's place in the membership.
type simMemberState struct {
	// join is the member list an added member joins with (nil: one of
	// the first members, which bootstrap the cluster).
	join []MemberInfo
	// waiting: added by the operator, not started yet (the addition is
	// not known to be applied).
	waiting bool
	// removed: the operator knows its removal applied, and makes no
	// change through it. Its process goes on (and restarts after a
	// crash, as a supervisor restarts it) until it stops as removed.
	removed bool
	// retired: it stopped as removed (ErrRemoved): never restarted.
	retired bool
	// appliedMax is the highest index it applied, in any incarnation.
	appliedMax uint64
}

// gone: stopped as removed, for good.
func (n *simNode) gone() bool { return n.retired }

// simOperator is the operator changing the membership.
type simOperator struct {
	every   time.Duration // mean time between changes (0: none in this world)
	next    time.Duration // the next change, not before
	changes int
	pending *simMemberOp
	// removedAt is the index of the entry that removed a member.
	removedAt map[uint64]uint64
	// asking: member, stranger it asks about (lookups only).
	asking map[[2]uint64]bool
}

// simMemberOp is a membership change waiting for its answer.
type simMemberOp struct {
	add    bool
	target uint64 // the member removed, or the new member's ID
	via    int    // the member the change was made through
	ch     chan result
	call   time.Duration
}

// initOperator draws the world's membership churn: none in half the
// worlds, else a change every 3 to 12 s on average.
func (w *simWorld) initOperator() {
	w.ops.removedAt = map[uint64]uint64{}
	w.ops.asking = map[[2]uint64]bool{}
	if w.rng.IntN(2) == 0 {
		w.ops.every = w.dur(3*time.Second, 12*time.Second)
	}
	w.trace("membership changes every %v on average (0: none)", w.ops.every)
}

func (w *simWorld) startOperator() {
	if w.ops.every > 0 {
		w.ops.next = w.exp(w.ops.every)
		w.at(w.dur(0, 200*time.Millisecond), &simEvent{kind: skOperator})
	}
}

// memberConfig sets a member's peer URLs and how it starts: the first
// members bootstrap with each other's URLs; an added member joins with
// the list it was given the first time and, once its data directory
// holds a member, restarts as the product restarts one, from the data
// directory alone.
func (w *simWorld) memberConfig(n *simNode, cfg *MemberConfig) {
	cfg.PeerURLs = []string{n.url}
	cfg.askAbout = func(id uint64) { w.askAbout(n, id) }
	if n.join == nil {
		cfg.Peers = map[uint64]string{}
		for _, o := range w.nodes[:simMembers] {
			cfg.Peers[o.id] = o.url
		}
		return
	}
	cfg.Voters = nil
	if !wal.Exist(cfg.WALDir, wal.Options{FS: n.fs}) {
		cfg.Join, cfg.InitialMembers = true, n.join
	}
}

// pickNode draws a member that is not gone (it may be down).
func (w *simWorld) pickNode() int {
	var idx []int
	for i, n := range w.nodes {
		if !n.gone() && !n.waiting {
			idx = append(idx, i)
		}
	}
	return idx[w.rng.IntN(len(idx))]
}

// runningIDs are the members that are not gone (up or down), in order.
func (w *simWorld) runningIDs() []uint64 {
	var ids []uint64
	for _, n := range w.nodes {
		if !n.gone() && !n.waiting {
			ids = append(ids, n.id)
		}
	}
	return ids
}

// ActiveWithin tells whether peer id gave a sign of life within d, as
// the peer transport does: a message from it, a keepalive frame on its
// stream to us, a liveness byte on our stream to it.
func (t *simTransport) ActiveWithin(id uint64, d time.Duration) bool {
	at, heard := t.heard[id]
	_, peer := t.peers[id]
	return peer && heard && t.w.now-at <= d
}

// admit is what the receiving side of the peer transport does with a
// request from member from to member i (a message, a stream frame, a
// snapshot): refused with 410 Gone when i knows from was removed (from
// stops), with 404 when from is not a member i knows of; else from was
// heard. A message that cannot be written (i down, or 404) is reported
// unreachable to its sender.
func (w *simWorld) admit(i int, from uint64, msg bool) bool {
	r := w.nodes[i]
	if r.m == nil {
		if msg {
			w.unreachable(from, r.id)
		}
		return false
	}
	if r.m.view.Load().removed[from] {
		s := w.byID[from]
		w.at(w.dur(w.p.minDelay, w.p.maxDelay), &simEvent{kind: skRemoved, member: s, inc: w.nodes[s].inc, from: r.id})
		return false
	}
	if !r.m.isPeer(from) {
		if msg {
			w.unreachable(from, r.id)
		}
		return false
	}
	t := r.m.transport.(*simTransport)
	if _, ok := t.peers[from]; ok {
		t.heard[from] = w.now
	}
	return true
}

// unreachable reports peer to to member from's incarnation of now, as
// the peer transport reports a write or a POST that failed.
func (w *simWorld) unreachable(from, to uint64) {
	s := w.byID[from]
	w.at(w.dur(w.p.minDelay, w.p.maxDelay), &simEvent{kind: skReport, member: s, inc: w.nodes[s].inc, rep: report{id: to}})
}

// askAbout: member n asks the members it knows about stranger id (their
// peer endpoint /members), one question at a time; the answer comes a
// round trip later (answerAbout).
func (w *simWorld) askAbout(n *simNode, id uint64) {
	if _, ok := w.byID[id]; !ok || w.ops.asking[[2]uint64{n.id, id}] {
		return
	}
	w.ops.asking[[2]uint64{n.id, id}] = true
	w.at(2*w.dur(w.p.minDelay, w.p.maxDelay), &simEvent{kind: skAskAbout, member: w.byID[n.id], inc: n.inc, from: id})
}

// answerAbout: the first member the asker knows (in ID order) that is up,
// reachable both ways and lists the stranger vouches for it.
func (w *simWorld) answerAbout(ev *simEvent) {
	n := w.nodes[ev.member]
	delete(w.ops.asking, [2]uint64{n.id, ev.from})
	if n.m == nil || n.inc != ev.inc {
		return
	}
	known := n.m.view.Load().ids()
	if _, joined := n.m.view.Load().members[n.id]; !joined {
		for _, mi := range n.m.cfg.InitialMembers {
			known = append(known, mi.ID)
		}
	}
	for _, k := range known {
		j, ok := w.byID[k]
		if !ok || k == n.id || w.nodes[j].m == nil || w.cut[[2]uint64{n.id, k}] || w.cut[[2]uint64{k, n.id}] {
			continue
		}
		if mi, ok := w.nodes[j].m.view.Load().members[ev.from]; ok {
			n.m.vouch(mi)
			return
		}
	}
}

// retire: member i stopped because it was removed.
func (w *simWorld) retire(i int) {
	n := w.nodes[i]
	w.trace("member %x stops: %v (applied %d)", n.id, n.m.Err(), n.m.applied)
	n.m.closeDown(nil) // as the shell does: waiting proposals are answered
	n.m = nil
	n.removed, n.retired = true, true
}

// noteApplied follows what each member applied, and the removals.
func (w *simWorld) noteApplied(id uint64, e consensus.Entry, first bool) {
	if i, ok := w.byID[id]; ok {
		n := w.nodes[i]
		n.appliedMax = max(n.appliedMax, e.Index)
	}
	if first && e.Type == consensus.EntryConfChange {
		var cc consensus.ConfChange
		if cc.Unmarshal(e.Data) == nil && cc.Type == consensus.RemoveNode {
			w.ops.removedAt[cc.NodeID] = e.Index
		}
	}
}

func (w *simWorld) handleMembership(ev *simEvent) {
	switch ev.kind {
	case skKeepAlive:
		n := w.nodes[ev.member]
		if n.m == nil || n.inc != ev.inc {
			return
		}
		w.at(simKeepAlive, ev)
		t := n.m.transport.(*simTransport)
		for _, id := range slices.Sorted(maps.Keys(t.peers)) {
			j, ok := w.byID[id]
			if ok && !w.cut[[2]uint64{n.id, id}] {
				w.at(w.dur(w.p.minDelay, w.p.maxDelay), &simEvent{kind: skFrame, member: j, from: n.id, inc: n.inc})
			}
		}
	case skFrame:
		if !w.admit(ev.member, ev.from, false) {
			return
		}
		if r := w.nodes[ev.member]; !w.cut[[2]uint64{r.id, ev.from}] {
			w.at(w.dur(w.p.minDelay, w.p.maxDelay), &simEvent{kind: skLiveness, member: w.byID[ev.from], from: r.id, inc: ev.inc})
		}
	case skLiveness:
		n := w.nodes[ev.member]
		if n.m == nil || n.inc != ev.inc {
			return
		}
		t := n.m.transport.(*simTransport)
		if _, ok := t.peers[ev.from]; ok {
			t.heard[ev.from] = w.now
		}
	case skRemoved:
		n := w.nodes[ev.member]
		if n.m == nil || n.inc != ev.inc {
			return
		}
		w.trace("member %x: %x refuses it as removed", n.id, ev.from)
		w.step(ev.member, event{kind: evReport, rep: report{id: ev.from, removed: true}})
	case skAskAbout:
		w.answerAbout(ev)
	case skOperator:
		w.operate()
		if !w.quiet {
			w.at(w.dur(50*time.Millisecond, 250*time.Millisecond), ev)
		}
	}
}

// operate is the operator's round: collect the answer of the pending
// change, learn what became of changes from the member lists, and, during
// the chaos, make the next change when it is due.
func (w *simWorld) operate() {
	if op := w.ops.pending; op != nil {
		select {
		case res := <-op.ch:
			w.ops.pending = nil
			w.trace("operator: %s: %v", op, res.err)
			if res.err == nil && !op.add {
				w.nodes[w.byID[op.target]].removed = true
			}
		default:
			if w.now-op.call >= simOpTimeout {
				w.ops.pending = nil
				w.trace("operator: %s: no answer (outcome unknown)", op)
			}
		}
	}
	w.reconcile()
	if w.ops.pending != nil || w.calm || w.ops.every == 0 || w.now < w.ops.next || w.ops.changes >= simMaxChanges {
		return
	}
	w.ops.next = w.now + w.exp(w.ops.every)
	w.change()
}

func (op *simMemberOp) String() string {
	if op.add {
		return fmt.Sprintf("add %x", op.target)
	}
	return fmt.Sprintf("remove %x", op.target)
}

// reconcile reads the member list of the member that applied most (a
// committed prefix): a member added there is started, one removed there
// is never restarted.
func (w *simWorld) reconcile() {
	var best *Member
	for _, n := range w.nodes {
		if n.m != nil && (best == nil || n.m.applied > best.applied) {
			best = n.m
		}
	}
	if best == nil {
		return
	}
	g := best.view.Load()
	for i, n := range w.nodes {
		if g.removed[n.id] && !n.removed {
			w.trace("operator: member %x was removed", n.id)
			n.removed = true
		}
		if _, ok := g.members[n.id]; ok && n.waiting && !n.removed {
			n.waiting = false
			n.join = g.list() // what JoinInfo reads from a running member
			w.trace("operator: starting the new member %x (%s)", n.id, n.url)
			w.start(i)
		}
	}
}

// change proposes the next membership change through a member that is
// up: an addition while fewer than simMembers are members, a removal
// while more, either at simMembers. A removal takes the leader half the
// time, else any member (a voter or a learner, up or down).
func (w *simWorld) change() {
	var up []int
	for i, n := range w.nodes {
		if n.m != nil && !n.removed && n.m.Joined() == nil {
			up = append(up, i)
		}
	}
	if len(up) == 0 {
		return
	}
	via := up[w.rng.IntN(len(up))]
	m := w.nodes[via].m
	cs := m.Conf()
	size := len(cs.Voters) + len(cs.Learners)
	add := size < simMembers || (size == simMembers && w.rng.IntN(2) == 0)
	w.ops.changes++
	op := &simMemberOp{add: add, via: via, call: w.now}
	var p proposal
	var err error
	if add {
		slot := len(w.nodes)
		url := fmt.Sprintf("sim://n%d", slot)
		var mi MemberInfo
		p, mi, err = m.addProposal([]string{url}, w.clock())
		if err == nil {
			w.newNode(mi.ID, url).waiting = true
			op.target = mi.ID
		}
	} else {
		ids := slices.Sorted(slices.Values(append(slices.Clone(cs.Voters), cs.Learners...)))
		if len(ids) == 0 {
			return
		}
		op.target = ids[w.rng.IntN(len(ids))]
		if l := w.leader(); l >= 0 && w.rng.IntN(2) == 0 {
			op.target = w.nodes[l].id
		}
		p, err = m.removeProposal(op.target)
	}
	if err != nil {
		w.trace("operator: %s through %x refused: %v", op, w.nodes[via].id, err)
		return
	}
	w.trace("operator: %s through %x", op, w.nodes[via].id)
	op.ch = m.register(p.id)
	w.ops.pending = op
	w.step(via, event{kind: evPropose, props: []proposal{p}})
}

// traceMembers traces every member that runs.
func (w *simWorld) traceMembers() {
	for _, n := range w.nodes {
		if n.m != nil {
			st := n.m.node.Status()
			last, _ := n.m.rs.LastIndex()
			w.trace("member %x: state %v term %d lead %x applied %d committed %d last %d conf %x members %x",
				n.id, st.State, st.Term, st.Lead, n.m.applied, st.Commit, last, n.m.Conf(), n.m.view.Load().ids())
		}
	}
}

// newNode is a new machine for member id, with a fresh data directory and
// disk, not started.
func (w *simWorld) newNode(id uint64, url string) *simNode {
	slot := len(w.nodes)
	n := &simNode{id: id, url: url, dir: simTempDir(w.tb), fs: simfs.New(w.seed*31+uint64(slot), w.p.disk)}
	w.byID[n.id] = slot
	w.nodes = append(w.nodes, n)
	return n
}

// checkMembership checks the membership at the end, the leader being
// member l, and returns the members of the final configuration.
func (w *simWorld) checkMembership(l int) ([]*simNode, error) {
	lm := w.nodes[l].m
	cs := lm.Conf()
	ids := slices.Sorted(slices.Values(append(slices.Clone(cs.Voters), cs.Learners...)))
	reg := lm.view.Load().ids()
	if !slices.Equal(ids, reg) {
		return nil, fmt.Errorf("membership: the leader %x has the configuration %x but the member list %x", lm.ID(), ids, reg)
	}
	var members []*simNode
	for _, n := range w.nodes {
		in := slices.Contains(ids, n.id)
		switch {
		case in && n.m == nil:
			return nil, fmt.Errorf("liveness: member %x of the final configuration %x is down (removed %v, waiting %v)", n.id, ids, n.removed, n.waiting)
		case in:
			members = append(members, n)
		case n.m != nil:
			return nil, fmt.Errorf("membership: member %x is not in the final configuration %x but still runs (removed at index %d)", n.id, ids, w.ops.removedAt[n.id])
		}
	}
	for _, n := range members {
		c := n.m.Conf()
		if !slices.Equal(c.Voters, cs.Voters) || !slices.Equal(c.Learners, cs.Learners) {
			return nil, fmt.Errorf("membership: member %x ends with voters %x learners %x, the leader %x with voters %x learners %x",
				n.id, c.Voters, c.Learners, lm.ID(), cs.Voters, cs.Learners)
		}
		if got := n.m.view.Load().ids(); !slices.Equal(got, reg) {
			return nil, fmt.Errorf("membership: member %x ends with the member list %x, the leader %x with %x", n.id, got, lm.ID(), reg)
		}
	}
	for _, n := range w.nodes {
		if !slices.Contains(ids, n.id) && n.appliedMax > lm.applied {
			return nil, fmt.Errorf("membership: member %x, removed at index %d, applied up to %d, beyond the %d the members applied",
				n.id, w.ops.removedAt[n.id], n.appliedMax, lm.applied)
		}
	}
	if len(cs.Learners) > 0 {
		return nil, fmt.Errorf("liveness: learners %x not promoted after healing", cs.Learners)
	}
	w.trace("membership: voters %x after %d changes proposed", cs.Voters, w.ops.changes)
	return members, nil
}

// simRemovedLeaderWriteBound bounds, in virtual time, how long a write
// issued right after the leader's removal takes to be applied where it was
// issued. The remaining voters forget the removed leader when they apply
// its removal and the lowest-ID of them campaigns at once (a leadership
// transfer's election, no pre-vote): learning of the commit, one vote
// round, one append round for the new leader's no-op and the held write,
// and the commit reaching the member it went through are about eight
// one-way network delays, at most 40 ms in this world (1 to 5 ms each,
// the disk instant). 250 ms leaves six times that, and is a quarter of
// the shortest election timeout (10 ticks of 100 ms, drawn between 1 and
// 2 s): without the hand-over, no member campaigns before its election
// timer runs out after the last heartbeat it heard from the leader.
const simRemovedLeaderWriteBound = 250 * time.Millisecond

// TestSimRemovedLeaderDoesNotStallWrites: on a calm simulated cluster of
// three, the leader is removed through a follower and a write is issued
// through that follower as soon as it answers; the write must be applied
// there within simRemovedLeaderWriteBound of virtual time. (Formerly the
// follower forwarded the write to the removed leader, which dropped it:
// the write waited out the whole request timeout, 7 s by default, and
// the next leader came an election timeout or more after the removal.)
// A hundred fixed seeds: the removed leader and the follower differ, so
// does which voter left has the lowest ID, and so do the delays (seed 5
// reorders the append that tells that voter the removal committed).
func TestSimRemovedLeaderDoesNotStallWrites(t *testing.T) {
	var slowest simRemovalResult
	var slowSeed uint64
	for seed := uint64(1); seed <= 100; seed++ {
		r, err := simWriteAfterRemovingLeader(t, seed, testing.Verbose() && *simSeed == seed)
		if err != nil {
			t.Errorf("seed %d: %v", seed, err)
			continue
		}
		if r.took > simRemovedLeaderWriteBound {
			t.Errorf("seed %d: the write through %x, issued right after the removal of the leader %x, was applied %v later (virtual time), more than %v (new leader %x, known there %v after the removal)",
				seed, r.via, r.leader, r.took, simRemovedLeaderWriteBound, r.next, r.nextAfter)
		}
		if r.took > slowest.took {
			slowest, slowSeed = r, seed
		}
	}
	t.Logf("the slowest write after the leader's removal: seed %d, leader %x removed through %x at %v, the write applied %v later (new leader %x, known there %v after the removal)",
		slowSeed, slowest.leader, slowest.via, slowest.removedAt, slowest.took, slowest.next, slowest.nextAfter)
}

type simRemovalResult struct {
	leader, via, next          uint64
	removedAt, took, nextAfter time.Duration
}

// simWriteAfterRemovingLeader plays one calm world: elect, remove the
// leader through a follower, write through that follower at once, and
// measure how long the write took to be applied there.
func simWriteAfterRemovingLeader(t *testing.T, seed uint64, verbose bool) (simRemovalResult, error) {
	var r simRemovalResult
	trace := func(string, ...any) {}
	if verbose {
		trace = func(format string, args ...any) { t.Logf(format, args...) }
	}
	w := calmSimWorld(t, seed, trace)
	defer w.close()
	l := w.leader()
	if l < 0 {
		return r, fmt.Errorf("no leader after %v", w.now)
	}
	if _, err := w.simWrite(l, "/r/a", "before"); err != nil {
		return r, fmt.Errorf("a write before the removal: %w", err)
	}
	f := (l + 1 + w.rng.IntN(2)) % simMembers
	m := w.nodes[f].m
	r.leader, r.via = w.nodes[l].id, m.ID()
	p, err := m.removeProposal(r.leader)
	if err != nil {
		return r, fmt.Errorf("removing the leader %x through %x refused: %w", r.leader, r.via, err)
	}
	ch := m.register(p.id)
	w.step(f, event{kind: evPropose, props: []proposal{p}})
	if res, ok := w.await(ch, 5*time.Second); !ok || res.err != nil {
		return r, fmt.Errorf("removing the leader %x through %x: answered %v, error %v", r.leader, r.via, ok, res.err)
	}
	r.removedAt = w.now
	took, err := w.simWrite(f, "/r/a", "after")
	r.took = took
	if r.next = m.lead.Load(); r.next != 0 {
		r.nextAfter = time.Unix(0, m.leadSince.Load()).Sub(w.base) - r.removedAt
	}
	if err != nil {
		return r, fmt.Errorf("the write through %x right after the removal of the leader %x: %w (the leader it knows: %x, since %v after the removal)",
			r.via, r.leader, err, r.next, r.nextAfter)
	}
	return r, nil
}

// simWrite writes key through member i and runs the world until it is
// applied there (at most 10 s), returning how long that took.
func (w *simWorld) simWrite(i int, key, value string) (time.Duration, error) {
	m := w.nodes[i].m
	start := w.now
	id := m.nextID.Add(1)
	req := &store.Request{Op: store.OpSet, Path: key, Value: value, Time: w.clock().UnixNano()}
	ch := m.register(id)
	w.step(i, event{kind: evPropose, props: []proposal{{id: id, data: encodeProposal(id, req)}}})
	res, ok := w.await(ch, 10*time.Second)
	if !ok {
		return 0, fmt.Errorf("not applied within %v (virtual time)", w.now-start)
	}
	return w.now - start, res.err
}

// await runs the world an event at a time until ch answers or d has
// passed.
func (w *simWorld) await(ch chan result, d time.Duration) (result, bool) {
	end := w.now + d
	for {
		select {
		case res := <-ch:
			return res, true
		default:
		}
		if len(w.q) == 0 || w.q[0].at > end || w.failure != nil {
			return result{}, false
		}
		w.next()
	}
}

// TestSimTransportTellsWhoIsUp: the simulated transport answers
// ActiveWithin from what it heard, as the peer transport does, and
// reports a peer behind a cut link unreachable. On a calm cluster every
// member hears every other (followers only through stream keepalives);
// once a follower is cut off, nobody counts it up three keepalives later,
// it counts nobody up, the leader probes it (it was reported
// unreachable), and RemoveMember's check refuses to remove the other
// follower (one voter of two left up) but lets the cut-off one go; after
// the cut heals, everyone is up again.
func TestSimTransportTellsWhoIsUp(t *testing.T) {
	w := calmSimWorld(t, 1, func(string, ...any) {})
	defer w.close()
	within := 3 * simKeepAlive
	up := func(from, to int) bool {
		return w.nodes[from].m.transport.ActiveWithin(w.nodes[to].id, within)
	}
	l := w.leader()
	if l < 0 {
		t.Fatal("no leader")
	}
	for a := range simMembers {
		for b := range simMembers {
			if a != b && !up(a, b) {
				t.Fatalf("calm cluster: member %x does not count %x up", w.nodes[a].id, w.nodes[b].id)
			}
		}
	}
	cut, other := (l+1)%simMembers, (l+2)%simMembers
	for _, o := range w.nodes {
		if o.id != w.nodes[cut].id {
			w.cut[[2]uint64{w.nodes[cut].id, o.id}] = true
			w.cut[[2]uint64{o.id, w.nodes[cut].id}] = true
		}
	}
	w.loop(w.now + within + simKeepAlive)
	if w.leader() != l {
		t.Fatalf("the leader changed while a follower was cut off")
	}
	for _, a := range []int{l, other} {
		if up(a, cut) || up(cut, a) {
			t.Fatalf("%x cut off: counted up by %x: %v; counts it up: %v", w.nodes[cut].id, w.nodes[a].id, up(a, cut), up(cut, a))
		}
	}
	if !up(l, other) || !up(other, l) {
		t.Fatal("the leader and the follower it reaches do not count each other up")
	}
	lm := w.nodes[l].m
	if pr := lm.node.Status().Progress[w.nodes[cut].id]; pr.State != tracker.StateProbe {
		t.Fatalf("the leader's progress of the cut-off follower: %v, want probe (reported unreachable)", pr.State)
	}
	if _, err := lm.removeProposal(w.nodes[other].id); !errors.Is(err, ErrUnsafeRemoval) {
		t.Fatalf("removing the follower that is up while the other is cut off: %v, want ErrUnsafeRemoval", err)
	}
	if _, err := lm.removeProposal(w.nodes[cut].id); err != nil {
		t.Fatalf("removing the cut-off follower: %v", err)
	}
	clear(w.cut)
	w.loop(w.now + 2*simKeepAlive)
	for a := range simMembers {
		for b := range simMembers {
			if a != b && !up(a, b) {
				t.Fatalf("healed: member %x does not count %x up", w.nodes[a].id, w.nodes[b].id)
			}
		}
	}
}

// TestSimRemovedMemberWaitsForTheOneLeft: in a cluster of two, the leader
// removes itself; the member left gets the removal but never the word
// that it committed (the link from the leader is cut just after it got
// the entry). The configuration it holds still counts the removed
// member, so it cannot elect itself: the removed member must stay up and
// answer it until it has applied the removal. It does: once the link is
// back, the member left leads, applies the removal, refuses the removed
// member as removed (410), which then stops, and writes go on. (Before,
// the removed member stopped three heartbeats after applying its removal
// and the member left waited for a leader forever.)
func TestSimRemovedMemberWaitsForTheOneLeft(t *testing.T) {
	w, L, B := simLeaderOfTwoRemoved(t)
	w.loop(w.now + 5*time.Second)
	if L.m == nil {
		t.Fatalf("the removed leader stopped before the member left applied its removal (retired %v)", L.retired)
	}
	clear(w.cut)
	w.loop(w.now + 5*time.Second)
	if !B.m.isLeader || slices.Contains(B.m.Conf().Voters, L.id) {
		t.Fatalf("the member left: leader %v, voters %x", B.m.isLeader, B.m.Conf().Voters)
	}
	if !L.retired {
		t.Fatal("the removed member still runs after the member left applied its removal")
	}
	if _, err := w.simWrite(w.byID[B.id], "/r/a", "after"); err != nil {
		t.Fatalf("a write after the removal: %v", err)
	}
}

// TestSimRemovedMemberStopsWhenNoVoterLeftSpeaks: the same, but the
// member left cannot reach the removed one either: the removed member
// hears nothing from a voter left, and stops removedLingerElections
// election timeouts later, not before.
func TestSimRemovedMemberStopsWhenNoVoterLeftSpeaks(t *testing.T) {
	w, L, B := simLeaderOfTwoRemoved(t)
	w.cut[[2]uint64{B.id, L.id}] = true
	linger := removedLingerElections * 10 * simHeartbeat // ElectionTicks 10
	w.loop(w.now + linger - 2*simHeartbeat)
	if L.m == nil {
		t.Fatalf("the removed leader stopped before %v of silence", linger)
	}
	w.loop(w.now + 4*simHeartbeat)
	if !L.retired {
		t.Fatalf("the removed leader still runs after %v of silence from the member left", linger+2*simHeartbeat)
	}
}

// simLeaderOfTwoRemoved plays a calm world down to two members, whose
// leader L then removes itself; the link from L to the member left B is
// cut as soon as B has the removal, so that B never learns it committed.
// It returns once L has applied its removal.
func simLeaderOfTwoRemoved(t *testing.T) (*simWorld, *simNode, *simNode) {
	t.Helper()
	w := calmSimWorld(t, 1, func(string, ...any) {})
	t.Cleanup(w.close)
	l := w.leader()
	if l < 0 {
		t.Fatal("no leader")
	}
	// Down to two: the leader removes a follower.
	f := (l + 1) % simMembers
	if err := w.simRemove(l, w.nodes[f].id); err != nil {
		t.Fatal(err)
	}
	w.loop(w.now + 2*time.Second)
	if !w.nodes[f].retired || w.leader() != l {
		t.Fatalf("setup: the removed follower stopped: %v; leader %d, want %d", w.nodes[f].retired, w.leader(), l)
	}
	L, B := w.nodes[l], w.nodes[(l+2)%simMembers]
	ch, r := w.proposeOwnRemoval(t, l, L)
	cut := false
	for L.m != nil && L.m.applied < r {
		if len(w.q) == 0 || w.now > 10*time.Minute {
			t.Fatal("setup: the leader never applied its removal")
		}
		w.next()
		if last, _ := B.m.rs.LastIndex(); !cut && last >= r {
			w.cut[[2]uint64{L.id, B.id}] = true // B acknowledges; it hears nothing more
			cut = true
		}
	}
	if res := <-ch; res.err != nil {
		t.Fatalf("the leader removing itself: %v", res.err)
	}
	if st := B.m.node.Status(); st.Commit >= r || !cut {
		t.Fatalf("setup: the member left knows commit %d (the removal is at %d)", st.Commit, r)
	}
	return w, L, B
}

// proposeOwnRemoval has member i propose its own removal. It returns the
// channel its answer comes on and the index the removal takes in a calm
// world: the one after leader L's commit index.
func (w *simWorld) proposeOwnRemoval(t *testing.T, i int, L *simNode) (chan result, uint64) {
	t.Helper()
	n := w.nodes[i]
	p, err := n.m.removeProposal(n.id)
	if err != nil {
		t.Fatal(err)
	}
	r := L.m.node.Status().Commit + 1
	ch := n.m.register(p.id)
	w.step(i, event{kind: evPropose, props: []proposal{p}})
	return ch, r
}

// simRemove removes member id through member i and runs the world until
// it answers (at most 5 s).
func (w *simWorld) simRemove(i int, id uint64) error {
	m := w.nodes[i].m
	p, err := m.removeProposal(id)
	if err != nil {
		return err
	}
	ch := m.register(p.id)
	w.step(i, event{kind: evPropose, props: []proposal{p}})
	res, ok := w.await(ch, 5*time.Second)
	if !ok {
		return fmt.Errorf("removing %x through %x: no answer", id, w.nodes[i].id)
	}
	return res.err
}

// TestSimLaggingMemberFollowsANewLeader: a member is cut off while a new
// member is added, promoted, and made leader. When the cut heals, the
// lagging member has not applied the new member's addition, so its
// transport refuses the new leader as a stranger (404); it asks the
// members it knows, which list the new member, accepts it, catches up and
// applies the addition. (Before, it refused the new leader for ever: it
// could apply nothing more, and the cluster had one voter fewer than it
// showed.)
func TestSimLaggingMemberFollowsANewLeader(t *testing.T) {
	w := calmSimWorld(t, 1, func(string, ...any) {})
	defer w.close()
	l := w.leader()
	if l < 0 {
		t.Fatal("no leader")
	}
	L, C := w.nodes[l], w.nodes[(l+1)%simMembers]
	for _, o := range w.nodes {
		if o != C {
			w.cut[[2]uint64{C.id, o.id}] = true
			w.cut[[2]uint64{o.id, C.id}] = true
		}
	}
	url := fmt.Sprintf("sim://n%d", len(w.nodes))
	p, mi, err := L.m.addProposal([]string{url}, w.clock())
	if err != nil {
		t.Fatal(err)
	}
	ch := L.m.register(p.id)
	w.step(l, event{kind: evPropose, props: []proposal{p}})
	if res, ok := w.await(ch, 5*time.Second); !ok || res.err != nil {
		t.Fatalf("adding a member: answered %v, %v", ok, res.err)
	}
	N := w.newNode(mi.ID, url)
	N.join = L.m.Members()
	w.start(w.byID[N.id])
	for end := w.now + 10*time.Second; !slices.Contains(L.m.Conf().Voters, N.id); {
		if w.now > end {
			t.Fatalf("the new member was not promoted: %v", L.m.Conf())
		}
		w.loop(w.now + 100*time.Millisecond)
	}
	if err := L.m.node.TransferLeadership(N.id); err != nil {
		t.Fatal(err)
	}
	w.step(l, event{})
	for end := w.now + 3*time.Second; !N.m.isLeader; {
		if w.now > end {
			t.Fatal("the new member did not take over the leadership")
		}
		w.loop(w.now + 100*time.Millisecond)
	}
	if _, err := w.simWrite(w.byID[N.id], "/r/a", "while cut off"); err != nil {
		t.Fatal(err)
	}
	if _, known := C.m.view.Load().members[N.id]; known {
		t.Fatal("setup: the cut-off member applied the new member's addition")
	}
	clear(w.cut)
	w.loop(w.now + 5*time.Second)
	if _, known := C.m.view.Load().members[N.id]; !known || C.m.applied != N.m.applied || !N.m.isLeader {
		t.Fatalf("the lagging member applied %d, the new leader %d (still leads: %v); knows the new leader: %v",
			C.m.applied, N.m.applied, N.m.isLeader, known)
	}
}

// calmSimWorld is a world of three members with no faults (no loss, no
// duplicates, 1-5 ms delays, perfect disks), run for 3 s of virtual time:
// a leader, and every member published. The caller closes it.
func calmSimWorld(t *testing.T, seed uint64, trace func(string, ...any)) *simWorld {
	t.Helper()
	w := newSimWorld(t, seed, "", trace)
	w.calm = true
	w.p = simParams{minDelay: time.Millisecond, maxDelay: 5 * time.Millisecond}
	for i, n := range w.nodes {
		n.fs.SetFaults(simfs.Faults{})
		w.start(i)
	}
	w.loop(3 * time.Second)
	return w
}

// TestSimMemberRemovingItselfIsAnswered: a follower is asked to remove
// itself (etcdctl member remove, sent to the member removed). The leader
// commits and applies the removal and stops sending to it, so the
// follower never learns that it committed: it learns that it was removed
// when a peer refuses it (410), and stops. The client that asked is
// answered success: what it asked for is done. (Before, it was answered
// "member stopped", a 500, for a removal that had taken place.)
func TestSimMemberRemovingItselfIsAnswered(t *testing.T) {
	w := calmSimWorld(t, 1, func(string, ...any) {})
	defer w.close()
	l := w.leader()
	if l < 0 {
		t.Fatal("no leader")
	}
	fi := (l + 1) % simMembers
	L, F := w.nodes[l], w.nodes[fi]
	ch, r := w.proposeOwnRemoval(t, fi, L)
	for {
		if len(w.q) == 0 || w.now > 10*time.Minute || F.m == nil {
			t.Fatal("setup: the removal never reached the follower")
		}
		w.next()
		if last, _ := F.m.rs.LastIndex(); last >= r {
			w.cut[[2]uint64{L.id, F.id}] = true // it hears nothing more from the leader
			break
		}
	}
	if c := F.m.node.Status().Commit; c >= r {
		t.Fatalf("setup: the follower knows commit %d (the removal is at %d)", c, r)
	}
	res, ok := w.await(ch, 30*time.Second)
	if !ok {
		t.Fatal("the follower removing itself was not answered within 30 s")
	}
	if res.err != nil {
		t.Fatalf("the follower removing itself was answered %v", res.err)
	}
	if !F.retired {
		t.Fatal("the removed follower still runs")
	}
	if slices.Contains(L.m.Conf().Voters, F.id) {
		t.Fatalf("the leader still counts the removed follower: %x", L.m.Conf().Voters)
	}
}
