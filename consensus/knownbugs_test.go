package consensus

import (
	"fmt"
	"testing"
)

// Tests in this file (and a few elsewhere, all calling knownBug) pin
// defects that were found in the core and fixed: each sets up its
// scenario (failing if the setup does not happen) and calls knownBug,
// which fails the test, if the defect reproduces.

// knownBug fails the test: a fixed defect came back.
func knownBug(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("regression: %s", fmt.Sprintf(format, args...))
}

// Thesis §6.4 step 1 ("If the leader has not yet marked an entry from its
// current term committed, it waits until it has done so") has no
// exception for a cluster with one voter: its commit index may lag
// entries an earlier leader committed.
//
// Scenario: voters {1, 2}, leader 1. Node 1 proposes RemoveNode(1) (index
// 2) and "x" (index 3); node 2 acknowledges both, so node 1 commits and
// applies both (acknowledging "x" to its client) and steps down. Node 2
// learns the commit index 2 only (the append carrying 3 is lost), applies
// its membership {2}, and campaigns at once (its leader was removed): a
// lone voter, it leads term 2 with commit index 2 and its no-op at 4 not
// yet persisted. A ReadIndex now is
// answered at 2, which does not include the acknowledged write "x".
func TestBugReadIndexLoneVoterBeforeTermCommit(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2}, nil, nil)
	nw.elect(1)
	n1, n2 := nw.node(1), nw.node(2)
	if err := n1.ProposeConfChange(ConfChange{Type: RemoveNode, NodeID: 1}); err != nil {
		t.Fatal(err)
	}
	// A leader now refuses proposals once its removal is in its log; the
	// scenario needs one appended after it, as leaders did before.
	nw.raft(1).leaseEnded = false
	if err := n1.Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	nw.raft(1).leaseEnded = true
	nw.process(1)
	for _, m := range nw.take(ofType(MsgApp)) {
		_ = n2.Step(m)
	}
	nw.process(2)
	for _, m := range nw.take(ofType(MsgAppResp)) {
		_ = n1.Step(m)
	}
	if nw.raft(1).log.committed != 3 {
		t.Fatalf("setup: leader committed %d", nw.raft(1).log.committed)
	}
	nw.process(1) // applies 2 (steps down) and 3: "x" is acknowledged
	if got := nw.appliedData(1); len(got) != 1 || got[0] != "x" || nw.raft(1).state == StateLeader {
		t.Fatalf("setup: node 1 applied %v, state %v", got, nw.raft(1).state)
	}
	for _, m := range nw.take(ofType(MsgApp)) {
		if m.To == 2 && m.Commit == 2 {
			_ = n2.Step(m) // the append announcing commit 3 is lost
		}
	}
	// One Ready of node 2: it applies the removal and, the voter left
	// whose leader was removed, campaigns at once; a lone voter, it leads
	// term 2 before its no-op at 4 is persisted.
	rd := n2.Ready()
	for _, m := range append(rd.Messages, rd.MessagesAfterPersist...) {
		nw.send(m)
	}
	nw.persist(2, rd)
	nw.apply(2, rd)
	n2.Advance(rd)
	if r2 := nw.raft(2); r2.log.committed != 2 || len(r2.prs.Voters) != 1 || r2.state != StateLeader {
		t.Fatalf("setup: node 2 commit %d voters %v state %v", r2.log.committed, r2.prs.Voters, r2.state)
	}
	if err := n2.ReadIndex([]byte("r")); err != nil {
		t.Fatal(err)
	}
	rd = n2.Ready()
	for _, rs := range rd.ReadStates {
		if rs.Index < 3 {
			knownBug(t, "lone-voter leader answered ReadIndex at %d before committing an entry of its term; the write at 3 was already committed and acknowledged by the previous leader (stale read, thesis §6.4 step 1)", rs.Index)
		}
	}
}

// Thesis §4.2.3 / §6.4.1: a lease is only sound if a member that heard
// the leader less than an election timeout ago grants no vote. That memory
// is volatile, so a member that has just started treats its first
// election timeout as a lease too: it may have heard a leader just before.
//
// Scenario: voters {1, 2, 3}, CheckQuorum, PreVote and lease reads; leader
// 1; node 3 cannot reach node 1. In one tick: node 1's heartbeat round is
// acknowledged by 2 (lease valid); node 2 crashes and restarts; node 3's
// pre-vote reaches the restarted node 2. Node 2 must refuse it, so node 3
// cannot lead while node 1 still serves reads from its lease. (Before the
// fix, node 2 granted the vote, node 3 committed "y" with it, and node 1
// answered a lease read without "y".)
func TestLeaseSurvivesFollowerRestart(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) {
		c.CheckQuorum, c.PreVote, c.ReadOnlyOption = true, true, ReadOnlyLeaseBased
	})
	nw.elect(1)
	nw.tickAll(1)
	nw.cutLink(1, 3)
	var held []Message
	for range 40 {
		for _, id := range nw.ids {
			nw.node(id).Tick()
		}
		nw.processAll()
		held = nw.take(func(m Message) bool { return m.From == 3 && m.Type == MsgPreVote })
		nw.settle()
		if len(held) > 0 {
			break
		}
	}
	if len(held) == 0 {
		t.Fatal("setup: node 3 never campaigned")
	}
	// Node 2 acknowledged this tick's heartbeat, then crashes and restarts.
	nw.restart(2)
	for _, m := range held {
		nw.send(m)
	}
	nw.settle()
	if st := nw.raft(3).state; st == StateLeader {
		t.Fatalf("node 3 was elected by a member that restarted inside node 1's lease")
	}
	if nw.raft(1).state != StateLeader {
		t.Fatal("node 1 stepped down")
	}
	// Node 1's lease read is therefore still current.
	_ = nw.node(1).ReadIndex([]byte("current"))
	rd := nw.node(1).Ready()
	if len(rd.ReadStates) != 1 || rd.ReadStates[0].Index != nw.raft(1).log.committed {
		t.Fatalf("lease read: %+v, want one at commit %d", rd.ReadStates, nw.raft(1).log.committed)
	}
}

// Thesis §3.10 lets the leader abort a transfer after an election timeout
// and carry on, and this core then trusts its lease again. But the
// TimeoutNow it sent may still be in flight: delivered late, it makes the
// target campaign with the transfer flag, which followers honour even
// inside the lease (§4.2.3), so a new leader can commit while the old one
// serves lease reads.
//
// Scenario: voters {1, 2, 3}, CheckQuorum, lease reads; leader 1 asks 3
// to take over, the TimeoutNow is delayed; after an election timeout 1
// aborts the transfer and its heartbeats are acknowledged again (lease
// valid). The link 1-3 fails, the TimeoutNow arrives at 3, which wins
// term 2 with 2's vote and commits "y". Node 1 answers a lease read
// without "y".
func TestBugLeaseReadAfterAbortedTransfer(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) {
		c.CheckQuorum, c.ReadOnlyOption = true, ReadOnlyLeaseBased
	})
	nw.elect(1)
	_ = nw.node(1).TransferLeadership(3)
	nw.process(1)
	delayed := nw.take(ofType(MsgTimeoutNow))
	if len(delayed) != 1 {
		t.Fatalf("setup: %d TimeoutNow", len(delayed))
	}
	nw.tickAll(10)
	if nw.raft(1).leadTransferee != None {
		t.Fatal("setup: transfer not aborted")
	}
	nw.cutLink(1, 3)
	_ = nw.node(3).Step(delayed[0]) // it was already on its way
	nw.settle()
	if nw.raft(3).state != StateLeader {
		t.Fatalf("setup: node 3 is %v", nw.raft(3).state)
	}
	nw.propose(3, "y")
	if nw.raft(1).state != StateLeader {
		t.Fatal("setup: node 1 already stepped down")
	}
	_ = nw.node(1).ReadIndex([]byte("stale?"))
	rd := nw.node(1).Ready()
	if len(rd.ReadStates) > 0 {
		knownBug(t, "leader 1 answered a lease read at %d after its aborted transfer's TimeoutNow elected node 3 (term %d), which has committed \"y\" (thesis §3.10/§6.4.1)", rd.ReadStates[0].Index, nw.raft(3).term)
	}
}

// Thesis §6.2: a leader that cannot reach a quorum steps down within an
// election timeout or two. Transfer requests used to reset the counter
// that times the CheckQuorum round, so a stream of them kept an isolated
// leader in place.
func TestTransferRequestsDoNotPostponeCheckQuorum(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.CheckQuorum = true })
	nw.elect(1)
	nw.isolate(1)
	et := nw.cfgs[1].ElectionTick
	for i := range 2 * et {
		_ = nw.node(1).TransferLeadership(uint64(2 + i%2))
		nw.node(1).Tick()
		nw.settle()
	}
	if st := nw.raft(1).state; st == StateLeader {
		knownBug(t, "isolated leader still leads after %d ticks of transfer requests", 2*et)
	}
}
