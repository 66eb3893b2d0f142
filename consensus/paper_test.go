package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cairnkv/cairn/consensus/tracker"
)

// The tests in this file check the core against the Raft paper (Ongaro &
// Ousterhout, "In Search of an Understandable Consensus Algorithm", 2014;
// cited "Raft §x") and Ongaro's thesis ("Consensus: Bridging Theory and
// Practice", 2014; cited "thesis §x"). Each test names the rule it checks.

// find returns the messages of type ty (to, if non-zero) in ms.
func find(ms []Message, ty MessageType, to uint64) []Message {
	var out []Message
	for _, m := range ms {
		if m.Type == ty && (to == 0 || m.To == to) {
			out = append(out, m)
		}
	}
	return out
}

// one returns the single message of type ty to to, failing otherwise.
func one(t *testing.T, ms []Message, ty MessageType, to uint64) Message {
	t.Helper()
	got := find(ms, ty, to)
	if len(got) != 1 {
		t.Fatalf("want one %v to %d, got %d in:%s", ty, to, len(got), describe(ms))
	}
	return got[0]
}

// makeState puts a bare raft into state st at term (from term-1 for the
// states that raise it).
func makeState(t *testing.T, st StateType, voters []uint64) *raft {
	t.Helper()
	r, _ := newTestRaft(t, 1, voters, nil, HardState{}, nil)
	switch st {
	case StateCandidate:
		r.becomeCandidate()
	case StatePreCandidate:
		r.becomePreCandidate()
	case StateLeader:
		r.becomeCandidate()
		r.becomeLeader()
	}
	readMsgs(r)
	return r
}

// ---------------------------------------------------------------------
// Raft §5.1: terms.

// Raft §5.1: "If a server's current term is smaller than the other's,
// then it updates its current term to the larger value. If a candidate or
// leader discovers that its term is out of date, it immediately reverts
// to follower state."
func TestPaperHigherTermMakesFollower(t *testing.T) {
	for _, st := range []StateType{StateFollower, StatePreCandidate, StateCandidate, StateLeader} {
		for _, ty := range []MessageType{MsgApp, MsgHeartbeat, MsgAppResp, MsgHeartbeatResp, MsgVoteResp} {
			r := makeState(t, st, []uint64{1, 2, 3})
			if err := r.Step(Message{Type: ty, From: 2, To: 1, Term: 5}); err != nil {
				t.Fatalf("%v: Step(%v): %v", st, ty, err)
			}
			wantLead := None
			if ty == MsgApp || ty == MsgHeartbeat {
				wantLead = 2 // a message only a leader sends names the leader
			}
			if r.state != StateFollower || r.term != 5 || r.lead != wantLead || r.vote != None {
				t.Errorf("%v after %v at term 5: state %v term %d lead %d vote %d", st, ty, r.state, r.term, r.lead, r.vote)
			}
		}
	}
}

// Raft §5.1: "If a server receives a request with a stale term number, it
// rejects the request." Without CheckQuorum or PreVote the core simply
// drops stale requests: nothing changes and nothing is sent.
func TestPaperStaleTermRequestsIgnored(t *testing.T) {
	for _, ty := range []MessageType{MsgApp, MsgHeartbeat, MsgVote, MsgSnap, MsgTimeoutNow, MsgAppResp, MsgHeartbeatResp, MsgVoteResp} {
		r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, []uint64{1, 2}, HardState{Term: 3, Commit: 1}, nil)
		r.becomeFollower(3, 3)
		m := Message{Type: ty, From: 2, To: 1, Term: 2, Index: 2, LogTerm: 2, Commit: 2, Entries: entsAt(3, 2)}
		if ty == MsgSnap {
			m.Snapshot = &Snapshot{Meta: SnapshotMeta{Index: 10, Term: 2, ConfState: ConfState{Voters: []uint64{1, 2, 3}}}}
		}
		if err := r.Step(m); err != nil {
			t.Fatalf("%v: %v", ty, err)
		}
		if msgs := allMsgs(r); len(msgs) != 0 {
			t.Errorf("stale %v answered:%s", ty, describe(msgs))
		}
		if r.term != 3 || r.lead != 3 || r.state != StateFollower || r.log.lastIndex() != 2 || r.log.committed != 1 || r.vote != None {
			t.Errorf("stale %v changed the state: term %d lead %d state %v last %d commit %d vote %d", ty, r.term, r.lead, r.state, r.log.lastIndex(), r.log.committed, r.vote)
		}
	}
}

// Raft §5.1 with thesis §6.2/§9.6: when CheckQuorum or PreVote keeps
// terms from rising, a member answers a stale leader's append or
// heartbeat with its own term, so that the stale leader learns it is out
// of date and steps down; a stale pre-vote is rejected with our term.
func TestPaperStaleLeaderIsToldTheTerm(t *testing.T) {
	for _, tweak := range []func(*Config){
		func(c *Config) { c.CheckQuorum = true },
		func(c *Config) { c.PreVote = true },
	} {
		for _, ty := range []MessageType{MsgApp, MsgHeartbeat} {
			r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 3}, tweak)
			_ = r.Step(Message{Type: ty, From: 2, To: 1, Term: 2})
			_, after := readMsgs(r)
			resp := one(t, after, MsgAppResp, 2)
			if resp.Term != 3 {
				t.Fatalf("answer to a stale %v carries term %d, want 3", ty, resp.Term)
			}
			// The stale leader steps down on hearing it.
			old := makeState(t, StateLeader, []uint64{1, 2, 3})
			old.id, old.term = 2, 2
			resp.To = 2
			_ = old.Step(resp)
			if old.state != StateFollower || old.term != 3 {
				t.Fatalf("stale leader after the answer: %v term %d", old.state, old.term)
			}
		}
	}
	r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 3}, nil)
	_ = r.Step(Message{Type: MsgPreVote, From: 2, To: 1, Term: 2})
	resp := one(t, allMsgs(r), MsgPreVoteResp, 2)
	if !resp.Reject || resp.Term != 3 {
		t.Fatalf("stale pre-vote answered %v", resp)
	}
}

// ---------------------------------------------------------------------
// Raft §5.2: leader election.

// Raft §5.2: "If a follower receives no communication over a period of
// time called the election timeout, then it ... begins an election ...
// increments its current term and transitions to candidate state. It then
// votes for itself and issues RequestVote RPCs in parallel to each of the
// other servers." The vote requests follow the candidate's own persisted
// vote, so they travel in MessagesAfterPersist.
func TestPaperFollowerStartsElection(t *testing.T) {
	nw := newNetworkLogs(t, [][]uint64{{1, 1, 2}, {1, 1, 2}, {1, 1, 2}}, 2, nil)
	n := nw.node(1)
	ticks := 0
	for !n.HasReady() {
		n.Tick()
		ticks++
		if ticks > 100 {
			t.Fatal("no election after 100 ticks")
		}
	}
	if ticks < 10 || ticks >= 20 {
		t.Fatalf("election after %d ticks, want within [10, 20)", ticks)
	}
	rd := n.Ready()
	if rd.SoftState == nil || rd.SoftState.State != StateCandidate || rd.SoftState.Lead != None {
		t.Fatalf("soft state %+v, want candidate", rd.SoftState)
	}
	if rd.HardState.Term != 3 || rd.HardState.Vote != 1 || !rd.MustSync {
		t.Fatalf("hard state %+v (MustSync %v), want term 3 with a vote for itself, synced", rd.HardState, rd.MustSync)
	}
	if len(find(rd.Messages, MsgVote, 0)) != 0 {
		t.Fatal("vote requests sent before the vote is persisted")
	}
	for _, to := range []uint64{2, 3} {
		m := one(t, rd.MessagesAfterPersist, MsgVote, to)
		if m.Term != 3 || m.Index != 3 || m.LogTerm != 2 || m.From != 1 {
			t.Fatalf("vote request %v, want term 3 last (3, 2)", m)
		}
	}
}

// Raft §5.2: "Raft uses randomized election timeouts ... chosen randomly
// from a fixed interval"; in this core [ElectionTick, 2*ElectionTick),
// drawn afresh for every election so that split votes do not repeat.
func TestPaperRandomizedElectionTimeout(t *testing.T) {
	seen := map[int]bool{}
	for seed := uint64(1); seed <= 64; seed++ {
		r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, nil, HardState{}, func(c *Config) { c.Seed = seed })
		for round := range 3 {
			start := r.term
			ticks := 0
			for r.term == start {
				r.tick()
				ticks++
				if ticks > 100 {
					t.Fatalf("seed %d: no election", seed)
				}
			}
			if ticks < 10 || ticks >= 20 {
				t.Fatalf("seed %d round %d: election after %d ticks, want [10, 20)", seed, round, ticks)
			}
			if r.state != StateCandidate {
				t.Fatalf("seed %d: state %v", seed, r.state)
			}
			seen[ticks] = true
		}
	}
	if len(seen) < 6 {
		t.Fatalf("only %d distinct timeouts over 192 elections: not randomised", len(seen))
	}
}

// Raft §5.2: "A candidate wins an election if it receives votes from a
// majority of the servers in the full cluster for the same term"; it
// returns to follower when a majority rejects it, and otherwise waits.
func TestPaperCandidateElectionOutcome(t *testing.T) {
	tests := []struct {
		size    int
		granted []uint64
		reject  []uint64
		want    StateType
	}{
		{1, nil, nil, StateLeader},
		{3, []uint64{2}, nil, StateLeader},
		{3, []uint64{2, 3}, nil, StateLeader},
		{3, nil, nil, StateCandidate},
		{3, nil, []uint64{2}, StateCandidate},
		{3, nil, []uint64{2, 3}, StateFollower},
		{5, []uint64{2, 3}, nil, StateLeader},
		{5, []uint64{2}, []uint64{3, 4}, StateCandidate},
		{5, []uint64{2}, []uint64{3, 4, 5}, StateFollower},
		{5, []uint64{2}, nil, StateCandidate},
		{4, []uint64{2}, []uint64{3}, StateCandidate},
		{4, []uint64{2, 3}, nil, StateLeader},
	}
	for i, tt := range tests {
		r, _ := newTestRaft(t, 1, idsUpTo(tt.size), nil, HardState{}, nil)
		_ = r.Step(Message{Type: MsgHup, From: 1})
		for _, id := range tt.granted {
			_ = r.Step(Message{Type: MsgVoteResp, From: id, To: 1, Term: 1})
		}
		for _, id := range tt.reject {
			_ = r.Step(Message{Type: MsgVoteResp, From: id, To: 1, Term: 1, Reject: true})
		}
		if r.state != tt.want || r.term != 1 {
			t.Errorf("case %d (%d members, granted %v, rejected %v): %v term %d, want %v term 1", i, tt.size, tt.granted, tt.reject, r.state, r.term, tt.want)
		}
	}
}

// Raft §5.2: "Each server will vote for at most one candidate in a given
// term, on a first-come-first-served basis"; asking again (a retransmitted
// request) gets the same answer, and the vote is persisted before it is
// sent (Raft Figure 2).
func TestPaperVoteOncePerTerm(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	n := nw.node(1)
	ask := func(from uint64) (granted bool) {
		t.Helper()
		if err := n.Step(Message{Type: MsgVote, From: from, To: 1, Term: 1}); err != nil {
			t.Fatal(err)
		}
		rd := n.Ready()
		if len(find(rd.Messages, MsgVoteResp, 0)) != 0 {
			t.Fatal("vote answer in Messages")
		}
		resp := one(t, rd.MessagesAfterPersist, MsgVoteResp, from)
		if !resp.Reject && (rd.HardState.Vote != from && nw.stores[1].HardState().Vote != from) {
			t.Fatalf("vote for %d granted, but the Ready's hard state is %+v", from, rd.HardState)
		}
		nw.persist(1, rd)
		n.Advance(rd)
		return !resp.Reject
	}
	if !ask(2) {
		t.Fatal("first candidate refused")
	}
	if ask(3) {
		t.Fatal("second candidate in the same term granted: two votes in one term")
	}
	if !ask(2) {
		t.Fatal("retransmitted request from the same candidate refused")
	}
	if hs := nw.stores[1].HardState(); hs.Term != 1 || hs.Vote != 2 {
		t.Fatalf("persisted %+v, want term 1 vote 2", hs)
	}
	// In a new term the vote is free again.
	if err := n.Step(Message{Type: MsgVote, From: 3, To: 1, Term: 2}); err != nil {
		t.Fatal(err)
	}
	rd := n.Ready()
	if resp := one(t, rd.MessagesAfterPersist, MsgVoteResp, 3); resp.Reject || rd.HardState.Vote != 3 || rd.HardState.Term != 2 {
		t.Fatalf("vote in term 2: %v, hard state %+v", resp, rd.HardState)
	}
}

// Raft §5.2 (one leader per term): a follower that already follows a
// leader in this term does not vote for another candidate in it.
func TestPaperNoVoteWhenLeaderKnown(t *testing.T) {
	r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 1}, nil)
	_ = r.Step(Message{Type: MsgHeartbeat, From: 2, To: 1, Term: 1})
	readMsgs(r)
	_ = r.Step(Message{Type: MsgVote, From: 3, To: 1, Term: 1})
	if resp := one(t, allMsgs(r), MsgVoteResp, 3); !resp.Reject {
		t.Fatal("voted for a candidate in a term whose leader it follows")
	}
}

// Raft §5.2: "If the AppendEntries RPC is from a leader whose term is at
// least as large as the candidate's current term, then the candidate
// recognizes the leader as legitimate and returns to follower state. If
// the term in the RPC is smaller ... the candidate rejects the RPC and
// continues in candidate state."
func TestPaperCandidateYieldsToLeader(t *testing.T) {
	for _, st := range []StateType{StateCandidate, StatePreCandidate} {
		for _, ty := range []MessageType{MsgApp, MsgHeartbeat, MsgSnap} {
			r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 2}, nil)
			if st == StateCandidate {
				r.becomeCandidate()
			} else {
				r.becomePreCandidate()
			}
			term := r.term
			_ = r.Step(Message{Type: ty, From: 3, To: 1, Term: term - 1})
			if r.state != st {
				t.Fatalf("%v left its state on a stale %v", st, ty)
			}
			m := Message{Type: ty, From: 2, To: 1, Term: term}
			if ty == MsgSnap {
				m.Snapshot = &Snapshot{Meta: SnapshotMeta{Index: 5, Term: 2, ConfState: ConfState{Voters: []uint64{1, 2, 3}}}}
			}
			_ = r.Step(m)
			if r.state != StateFollower || r.lead != 2 || r.term != term {
				t.Fatalf("%v after %v of its term: %v lead %d term %d", st, ty, r.state, r.lead, r.term)
			}
			if ty == MsgSnap && r.log.lastIndex() != 5 {
				t.Fatalf("snapshot from the leader not installed: last %d", r.log.lastIndex())
			}
		}
	}
}

// Raft §5.2: on a split vote "each candidate will time out and start a
// new election by incrementing its term and initiating another round of
// RequestVote RPCs"; the randomised timeouts make a leader emerge.
func TestPaperSplitVoteRetries(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3, 4}, nil, nil)
	// 1 and 2 campaign at once; 3 hears only 1 and 4 only 2.
	nw.cutLink(1, 4)
	nw.cutLink(2, 3)
	_ = nw.node(1).Campaign()
	_ = nw.node(2).Campaign()
	nw.settle()
	for _, id := range []uint64{1, 2} {
		if r := nw.raft(id); r.state != StateCandidate || r.term != 1 {
			t.Fatalf("node %d: %v term %d, want a candidate with a split vote", id, r.state, r.term)
		}
	}
	nw.heal()
	// The candidate that times out first starts term 2 and wins it.
	for range 40 {
		nw.tickAll(1)
		if leaders(nw) > 0 {
			break
		}
	}
	if leaders(nw) != 1 {
		t.Fatalf("%d leaders after the split vote", leaders(nw))
	}
	for _, id := range nw.ids {
		if r := nw.raft(id); r.term < 2 {
			t.Fatalf("node %d still at term %d", id, r.term)
		}
	}
}

func leaders(nw *network) int {
	n := 0
	for _, id := range nw.ids {
		if nw.raft(id).state == StateLeader {
			n++
		}
	}
	return n
}

func leaderOf(nw *network) uint64 {
	var best uint64
	var term uint64
	for _, id := range nw.ids {
		if r := nw.raft(id); r.state == StateLeader && r.term >= term {
			best, term = id, r.term
		}
	}
	return best
}

// Raft §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that
// carry no log entries) to all followers in order to maintain their
// authority"; "A server remains in follower state as long as it receives
// valid RPCs from a leader or candidate".
func TestPaperHeartbeatsMaintainAuthority(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.HeartbeatTick = 3 })
	nw.elect(1)
	for i := 1; i <= 3; i++ {
		nw.node(1).Tick()
		rd := nw.node(1).Ready()
		hb := find(rd.Messages, MsgHeartbeat, 0)
		if (i < 3) != (len(hb) == 0) {
			t.Fatalf("tick %d: %d heartbeats, want them every 3 ticks", i, len(hb))
		}
		if i == 3 && (len(hb) != 2 || len(hb[0].Entries) != 0) {
			t.Fatalf("heartbeats:%s", describe(hb))
		}
		nw.persist(1, rd)
		nw.node(1).Advance(rd)
	}
	nw.drain()
	for range 100 {
		nw.tickAll(1)
	}
	if r := nw.raft(1); r.state != StateLeader || r.term != 1 {
		t.Fatalf("leader lost authority: %v term %d", r.state, r.term)
	}
	for _, id := range []uint64{2, 3} {
		if r := nw.raft(id); r.state != StateFollower || r.lead != 1 || r.term != 1 {
			t.Fatalf("follower %d: %v lead %d term %d", id, r.state, r.lead, r.term)
		}
	}
}

// ---------------------------------------------------------------------
// Raft §5.3: log replication.

// Raft §5.3: "The leader appends the command to its log as a new entry,
// then issues AppendEntries RPCs in parallel to each of the other servers
// ... When the entry has been safely replicated ... the leader applies the
// entry"; an entry is committed "once the leader that created the entry
// has replicated it on a majority of the servers".
func TestPaperLeaderReplicatesAndCommits(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3, 4, 5}, nil, nil)
	nw.elect(1)
	if err := nw.node(1).Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	rd := nw.node(1).Ready()
	if len(rd.Entries) != 1 || string(rd.Entries[0].Data) != "x" {
		t.Fatalf("leader appended %v", rd.Entries)
	}
	if e := rd.Entries[0]; e.Term != 1 || e.Index != 2 {
		t.Fatalf("new entry at (%d, %d), want (2, 1)", e.Index, e.Term)
	}
	for _, to := range []uint64{2, 3, 4, 5} {
		m := one(t, rd.Messages, MsgApp, to)
		if m.Index != 1 || m.LogTerm != 1 || len(m.Entries) != 1 || m.Entries[0].Index != 2 || m.Commit != 1 {
			t.Fatalf("append to %d: %v", to, m)
		}
	}
	nw.persist(1, rd)
	nw.node(1).Advance(rd)
	// Only two followers answer: with the leader that is a majority of 5.
	nw.filter = func(m Message) bool { return m.To != 4 && m.To != 5 && m.From != 4 && m.From != 5 }
	for _, m := range rd.Messages {
		nw.send(m)
	}
	nw.settle()
	if c := nw.raft(1).log.committed; c != 2 {
		t.Fatalf("leader committed %d, want 2", c)
	}
	if got := nw.appliedData(1); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("leader applied %v", got)
	}
	// With only one follower reachable nothing more commits.
	nw.filter = func(m Message) bool { return m.To <= 2 && m.From <= 2 }
	nw.propose(1, "y")
	if c := nw.raft(1).log.committed; c != 2 {
		t.Fatalf("committed %d with 2 of 5 members holding the entry", c)
	}
	nw.heal()
	nw.tickAll(1)
	for _, id := range nw.ids {
		if got := nw.appliedData(id); !slices.Equal(got, []string{"x", "y"}) {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
}

// Raft §5.3: "When sending an AppendEntries RPC, the leader includes the
// index and term of the entry in its log that immediately precedes the
// new entries. If the follower does not find an entry in its log with the
// same index and term, then it refuses the new entries." The refusal
// carries a hint so the leader can skip back a term at a time (Raft §5.3,
// final paragraphs).
func TestPaperFollowerConsistencyCheck(t *testing.T) {
	tests := []struct {
		index, logTerm uint64
		reject         bool
		hint, hintTerm uint64
	}{
		{0, 0, false, 0, 0},
		{2, 2, false, 0, 0},
		{3, 2, false, 0, 0},
		{3, 3, true, 3, 2}, // term mismatch: hint the last entry of a term <= 3
		{4, 3, true, 3, 2}, // past the end: hint our last entry
		{5, 1, true, 1, 1}, // skip all of term 2
		{2, 1, true, 1, 1}, // mismatch at 2
		{9, 9, true, 3, 2}, // far past the end
		{1, 2, true, 1, 1}, // mismatch at 1: our entry 1 (term 1) may match
		{2, 0, true, 0, 0}, // nothing old enough
	}
	for i, tt := range tests {
		r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, []uint64{1, 2, 2}, HardState{Term: 3}, nil)
		_ = r.Step(Message{Type: MsgApp, From: 2, To: 1, Term: 3, Index: tt.index, LogTerm: tt.logTerm, Entries: entsAt(tt.index+1, 3)})
		now, after := readMsgs(r)
		if len(now) != 0 {
			t.Fatalf("case %d: answer not held for persistence:%s", i, describe(now))
		}
		resp := one(t, after, MsgAppResp, 2)
		if resp.Reject != tt.reject {
			t.Fatalf("case %d: append after (%d, %d): reject=%v, want %v", i, tt.index, tt.logTerm, resp.Reject, tt.reject)
		}
		if tt.reject {
			if resp.RejectHint != tt.hint || resp.LogTerm != tt.hintTerm || resp.Index != tt.index {
				t.Fatalf("case %d: rejection %v, want hint (%d, %d)", i, resp, tt.hint, tt.hintTerm)
			}
			if r.log.lastIndex() != 3 || len(r.log.unstableEntries()) != 0 {
				t.Fatalf("case %d: a refused append changed the log", i)
			}
		} else if resp.Index != tt.index+1 || r.log.lastIndex() != tt.index+1 {
			// The new term-3 entry conflicts with whatever followed.
			t.Fatalf("case %d: accepted up to %d, last index %d", i, resp.Index, r.log.lastIndex())
		}
	}
}

// Raft §5.3: "If an existing entry conflicts with a new one (same index
// but different terms), delete the existing entry and all that follow it
// (Figure 2, AppendEntries receiver step 3)"; entries already present are
// kept, and the follower's commit index follows the leader's, bounded by
// the last new entry (step 5).
func TestPaperFollowerTruncatesConflicts(t *testing.T) {
	tests := []struct {
		name       string
		index      uint64
		logTerm    uint64
		ents       []Entry
		commit     uint64
		wantTerms  []uint64
		wantCommit uint64
	}{
		{"conflict at 2", 1, 1, entsAt(2, 3), 2, []uint64{1, 3}, 2},
		{"conflict at 3", 2, 2, entsAt(3, 3, 3), 3, []uint64{1, 2, 3, 3}, 3},
		{"no conflict, keep longer log", 1, 1, entsAt(2, 2), 3, []uint64{1, 2, 2, 2}, 2},
		{"append after", 4, 2, entsAt(5, 3), 5, []uint64{1, 2, 2, 2, 3}, 5},
		{"commit bounded by last new", 2, 2, nil, 4, []uint64{1, 2, 2, 2}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, []uint64{1, 2, 2, 2}, HardState{Term: 3, Commit: 1}, nil)
			_ = r.Step(Message{Type: MsgApp, From: 2, To: 1, Term: 3, Index: tt.index, LogTerm: tt.logTerm, Entries: tt.ents, Commit: tt.commit})
			got, _ := r.log.slice(1, r.log.lastIndex()+1, noLimit)
			if !slices.Equal(terms(got), tt.wantTerms) || r.log.committed != tt.wantCommit {
				t.Fatalf("log %v commit %d; want %v commit %d", terms(got), r.log.committed, tt.wantTerms, tt.wantCommit)
			}
		})
	}
}

// Raft §5.3 and Figure 7: "the leader handles inconsistencies by forcing
// the followers' logs to duplicate its own": missing entries are filled
// in and extraneous or conflicting uncommitted ones are overwritten; the
// leader's commit of an entry of its term then commits everything before
// it, including previous leaders' entries.
func TestPaperLeaderRepairsFollowerLogs(t *testing.T) {
	nw := newNetworkLogs(t, [][]uint64{
		{1, 1, 1, 4, 4, 5, 5, 6, 6, 6},    // the leader-to-be
		{1, 1, 1, 4, 4, 5, 5, 6, 6},       // (a) missing an entry
		{1, 1, 1, 4},                      // (b) missing many
		{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, // (c) an extra uncommitted entry
		{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, // (f) conflicting terms 2 and 3
	}, 3, nil)
	nw.elect(1)
	if nw.raft(1).term != 7 {
		t.Fatalf("leader term %d", nw.raft(1).term)
	}
	nw.propose(1, "z")
	want := nw.logOf(1)
	if len(want) != 12 || want[10].Term != 7 || string(want[11].Data) != "z" {
		t.Fatalf("leader log %v", terms(want))
	}
	for _, id := range nw.ids {
		got := nw.logOf(id)
		if !slices.EqualFunc(got, want, func(a, b Entry) bool { return a.Index == b.Index && a.Term == b.Term && bytes.Equal(a.Data, b.Data) }) {
			t.Errorf("node %d log %v, want %v", id, terms(got), terms(want))
		}
		if c := nw.raft(id).log.committed; c != 12 {
			t.Errorf("node %d committed %d, want 12", id, c)
		}
		if st, _ := nw.stores[id].LastIndex(); st != 12 {
			t.Errorf("node %d stored up to %d", id, st)
		}
	}
}

// Raft §5.3: the leader "includes [the commit] index in future
// AppendEntries RPCs (including heartbeats) so that the other servers
// eventually find out"; a heartbeat never claims a commit beyond what the
// follower is known to hold.
func TestPaperCommitPropagatesByHeartbeat(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	// Drop the empty appends that carry only the new commit index.
	nw.filter = func(m Message) bool { return !(m.Type == MsgApp && len(m.Entries) == 0) }
	nw.propose(1, "x")
	if nw.raft(1).log.committed != 2 {
		t.Fatalf("leader committed %d", nw.raft(1).log.committed)
	}
	for _, id := range []uint64{2, 3} {
		if c := nw.raft(id).log.committed; c != 1 {
			t.Fatalf("node %d already committed %d", id, c)
		}
	}
	nw.heal()
	nw.node(1).Tick() // heartbeat
	nw.process(1)
	for _, m := range find(nw.queue, MsgHeartbeat, 0) {
		if m.Commit != 2 {
			t.Fatalf("heartbeat %v does not carry the commit index", m)
		}
	}
	nw.settle()
	for _, id := range []uint64{2, 3} {
		if c := nw.raft(id).log.committed; c != 2 || !slices.Equal(nw.appliedData(id), []string{"x"}) {
			t.Fatalf("node %d committed %d applied %v after a heartbeat", id, c, nw.appliedData(id))
		}
	}
	// A follower that lacks the entries is sent a commit no higher than
	// its match.
	nw.isolate(3)
	nw.propose(1, "y")
	nw.heal()
	nw.node(1).Tick()
	nw.process(1)
	hb := one(t, nw.queue, MsgHeartbeat, 3)
	if hb.Commit != 2 || nw.raft(1).log.committed != 3 {
		t.Fatalf("heartbeat to a lagging follower carries commit %d (leader %d, follower match 2)", hb.Commit, nw.raft(1).log.committed)
	}
	nw.settle()
	if c := nw.raft(3).log.committed; c != 3 {
		t.Fatalf("lagging follower committed %d after catching up", c)
	}
}

// Raft §5.3: after a rejection "the leader decrements nextIndex and
// retries", and with the optimisation at the end of §5.3 skips a whole
// conflicting term per round trip.
func TestPaperLeaderBacksUpByTerm(t *testing.T) {
	nw := newNetworkLogs(t, [][]uint64{
		{1, 1, 4, 4, 4, 4, 4, 4},
		{1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2},
		{1, 1, 4, 4, 4, 4, 4, 4},
	}, 2, nil)
	nw.isolate(2)
	nw.elect(1)
	nw.heal()
	nw.trace = true
	nw.tickAll(1)
	rejections := 0
	for _, m := range nw.sent {
		if m.Type == MsgAppResp && m.From == 2 && m.Reject {
			rejections++
		}
	}
	if rejections == 0 || rejections > 2 {
		t.Fatalf("%d rejections to repair 8 conflicting entries of one term, want 1 or 2", rejections)
	}
	if got, want := terms(nw.logOf(2)), terms(nw.logOf(1)); !slices.Equal(got, want) {
		t.Fatalf("follower log %v, want %v", got, want)
	}
}

// ---------------------------------------------------------------------
// Raft §5.4: safety.

// Raft §5.4.1: "the voter denies its vote if its own log is more
// up-to-date than that of the candidate ... If the logs have last entries
// with different terms, then the log with the later term is more
// up-to-date. If the logs end with the same term, then whichever log is
// longer is more up-to-date."
func TestPaperVoterChecksCandidateLog(t *testing.T) {
	tests := []struct {
		index, logTerm uint64
		grant          bool
	}{
		{0, 0, false},
		{2, 2, false}, // same last term, shorter
		{3, 2, true},  // same last term, same length
		{4, 2, true},  // same last term, longer
		{9, 1, false}, // earlier last term, however long
		{1, 3, true},  // later last term, however short
	}
	for _, ty := range []MessageType{MsgVote, MsgPreVote} {
		for _, tt := range tests {
			r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, []uint64{1, 1, 2}, HardState{Term: 2}, nil)
			_ = r.Step(Message{Type: ty, From: 2, To: 1, Term: 3, Index: tt.index, LogTerm: tt.logTerm})
			resp := one(t, allMsgs(r), voteRespType(ty), 2)
			if resp.Reject == tt.grant {
				t.Errorf("%v from a log ending at (%d, %d) against ours ending at (3, 2): granted=%v, want %v", ty, tt.index, tt.logTerm, !resp.Reject, tt.grant)
			}
		}
	}
}

// Raft §5.4.1 (Leader Completeness): a member missing committed entries
// cannot be elected.
func TestPaperStaleMemberCannotWin(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	nw.isolate(3)
	nw.propose(1, "a")
	nw.propose(1, "b")
	nw.heal()
	nw.campaign(3)
	if nw.raft(3).state == StateLeader {
		t.Fatal("a member missing committed entries won an election")
	}
	if nw.raft(3).term != 2 || nw.raft(1).state == StateLeader {
		// Without CheckQuorum the higher term deposes the leader...
		t.Fatalf("term %d, leader 1 state %v", nw.raft(3).term, nw.raft(1).state)
	}
	// ...but only an up-to-date member can take over.
	for range 50 {
		nw.tickAll(1)
		if leaders(nw) > 0 {
			break
		}
	}
	if l := leaderOf(nw); l == 3 || l == 0 {
		t.Fatalf("leader %d", l)
	}
	nw.propose(leaderOf(nw), "c")
	for _, id := range nw.ids {
		if got := nw.appliedData(id); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
}

// Raft §5.4.2: "Raft never commits log entries from previous terms by
// counting replicas. Only log entries from the leader's current term are
// committed by counting replicas; once an entry from the current term has
// been committed ... all prior entries are committed indirectly."
func TestPaperNoCommitOfPriorTermEntryByCounting(t *testing.T) {
	// Node 1 holds entry 2 from term 2 that nobody else has; it leads term 3.
	nw := newNetworkLogs(t, [][]uint64{{1, 2}, {1}, {1}}, 1, nil)
	nw.filter = func(m Message) bool { return m.Type != MsgApp && m.Type != MsgAppResp }
	nw.elect(1)
	r := nw.raft(1)
	if r.term != 3 || r.log.lastIndex() != 3 {
		t.Fatalf("leader term %d last %d", r.term, r.log.lastIndex())
	}
	// Follower 2 acknowledges entry 2 (term 2) only: with the leader that
	// is a majority, but the entry is from a previous term.
	_ = nw.node(1).Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 3, Index: 2})
	if r.prs.Progress[2].Match != 2 {
		t.Fatalf("match of 2 is %d", r.prs.Progress[2].Match)
	}
	if r.log.committed != 1 {
		t.Fatalf("leader committed %d by counting replicas of a term-2 entry", r.log.committed)
	}
	// Once its own term's entry 3 is on a majority, 2 and 3 commit.
	_ = nw.node(1).Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 3, Index: 3})
	if r.log.committed != 3 {
		t.Fatalf("leader committed %d after its term's entry was replicated, want 3", r.log.committed)
	}
}

// Raft §5.4.2 and Figure 8, end to end: an entry of an old term that
// reaches a majority after its leader came back is not committed, because
// a later leader may still overwrite it.
func TestPaperFigure8(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3, 4, 5}, nil, nil)
	nw.elect(2) // term 1, entry 1 everywhere
	// (a) S1 leads term 2 and its entries reach S2 only.
	nw.filter = func(m Message) bool { return !(m.Type == MsgApp && m.From == 1 && m.To > 2) }
	nw.elect(1)
	nw.propose(1, "old")
	old := nw.raft(1).log.lastIndex() // entries 2 and 3, term 2
	if nw.raft(1).term != 2 || old != 3 || nw.raft(1).log.committed != 1 {
		t.Fatalf("(a): term %d last %d commit %d", nw.raft(1).term, old, nw.raft(1).log.committed)
	}
	// (b) S1 crashes; S5 leads term 3 with S3, S4 and keeps its entry.
	nw.heal()
	nw.isolate(1)
	nw.filter = func(m Message) bool { return !(m.Type == MsgApp && m.From == 5) }
	nw.campaignUntilLeader(5, 3)
	if nw.raft(5).term != 3 {
		t.Fatalf("(b): S5 leads term %d", nw.raft(5).term)
	}
	// (c) S5 crashes; S1 returns, leads term 4, and replicates its term-2
	// entries, but not its term-4 entry, to everyone else.
	nw.heal()
	nw.isolate(5)
	nw.restart(1)
	nw.rewrite = func(m *Message) bool {
		if m.Type == MsgApp && m.From == 1 {
			kept := m.Entries[:0:0]
			for _, e := range m.Entries {
				if e.Term < 4 {
					kept = append(kept, e)
				}
			}
			m.Entries = kept
		}
		return true
	}
	nw.campaignUntilLeader(1, 3)
	nw.tickAll(2)
	if nw.raft(1).term != 4 {
		t.Fatalf("(c): S1 leads term %d", nw.raft(1).term)
	}
	holders := 0
	for _, id := range nw.ids {
		if nw.raft(id).log.matchTerm(old, 2) {
			holders++
		}
	}
	if holders < 3 {
		t.Fatalf("(c): only %d members hold the term-2 entry", holders)
	}
	if c := nw.raft(1).log.committed; c >= 2 {
		t.Fatalf("(c): S1 committed up to %d by counting replicas of term-2 entries held by %d of 5", c, holders)
	}
	// (d) S1 crashes again; S5 can still win and overwrite the entries.
	nw.heal()
	nw.isolate(1)
	nw.restart(5)
	nw.campaignUntilLeader(5, 3)
	nw.propose(5, "new")
	for _, id := range []uint64{2, 3, 4, 5} {
		if nw.raft(id).log.matchTerm(old, 2) {
			t.Fatalf("(d): node %d kept the term-2 entry", id)
		}
		if got := nw.appliedData(id); !slices.Equal(got, []string{"new"}) {
			t.Fatalf("(d): node %d applied %v", id, got)
		}
	}
	if got := nw.appliedData(1); len(got) != 0 {
		t.Fatalf("S1 applied %v", got)
	}
}

// ---------------------------------------------------------------------
// Raft §5.5: follower and candidate crashes.

// Raft §5.5: "Raft RPCs are idempotent ... if a follower receives an
// AppendEntries request that includes log entries already present in its
// log, it ignores those entries in the new request." A duplicated or
// reordered older append neither truncates nor changes the log.
func TestPaperAppendIsIdempotent(t *testing.T) {
	r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, []uint64{1}, HardState{Term: 1, Commit: 1}, nil)
	first := Message{Type: MsgApp, From: 2, To: 1, Term: 1, Index: 1, LogTerm: 1, Entries: entsAt(2, 1), Commit: 1}
	second := Message{Type: MsgApp, From: 2, To: 1, Term: 1, Index: 2, LogTerm: 1, Entries: entsAt(3, 1, 1), Commit: 2}
	for _, m := range []Message{first, second, second, first, first} {
		_ = r.Step(m)
	}
	msgs := allMsgs(r)
	var acks []uint64
	for _, m := range find(msgs, MsgAppResp, 2) {
		if m.Reject {
			t.Fatalf("duplicate append rejected: %v", m)
		}
		acks = append(acks, m.Index)
	}
	if !slices.Equal(acks, []uint64{2, 4, 4, 2, 2}) {
		t.Fatalf("acknowledged %v", acks)
	}
	if r.log.lastIndex() != 4 || r.log.committed != 2 {
		t.Fatalf("log ends at %d, commit %d after duplicates", r.log.lastIndex(), r.log.committed)
	}
}

// Raft §5.5 with Figure 2 ("updated on stable storage before responding to
// RPCs"): a follower that crashes before persisting an append has not
// acknowledged it, and after restarting accepts it again.
func TestPaperFollowerCrashBeforePersist(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	if err := nw.node(1).Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	nw.process(1)
	apps := nw.take(func(m Message) bool { return m.Type == MsgApp })
	for _, m := range apps {
		_ = nw.node(m.To).Step(m)
	}
	// Node 2 "crashes" with its Ready unpersisted; node 3 persists.
	rd := nw.node(2).Ready()
	if len(find(rd.MessagesAfterPersist, MsgAppResp, 1)) != 1 || len(find(rd.Messages, MsgAppResp, 0)) != 0 {
		t.Fatalf("ack placement: now %v, after persist %v", msgTypes(rd.Messages), msgTypes(rd.MessagesAfterPersist))
	}
	nw.restart(2)
	if last, _ := nw.stores[2].LastIndex(); last != 1 || nw.raft(2).log.lastIndex() != 1 {
		t.Fatalf("restarted node holds %d", nw.raft(2).log.lastIndex())
	}
	nw.settle()
	nw.tickAll(1)
	for _, id := range nw.ids {
		if got := nw.appliedData(id); !slices.Equal(got, []string{"x"}) {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
}

// ---------------------------------------------------------------------
// Thesis §9.6: PreVote.

// Thesis §9.6: with PreVote "a candidate would first ask other servers
// whether its log was up-to-date enough to get their vote. Only if the
// candidate believed it could get votes from a majority of the cluster
// would it increment its term and start a normal election." A member cut
// off by a partition therefore does not raise its term, and rejoining does
// not depose the leader. Without PreVote (the control case) it does.
func TestPaperPreVotePartitionedMemberRejoins(t *testing.T) {
	tests := []struct {
		name           string
		preVote, cq    bool
		staleLog       bool
		wantLeaderTerm uint64
	}{
		// The rejoining member's log is behind: the pre-vote fails.
		{"PreVote, stale log", true, false, true, 1},
		// Its log is current: the leader stickiness of §4.2.3 refuses it.
		{"PreVote and CheckQuorum, current log", true, true, false, 1},
		// Control: without PreVote the partitioned member's term wins.
		{"no PreVote", false, false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.PreVote, c.CheckQuorum = tt.preVote, tt.cq })
			nw.elect(1)
			nw.isolate(3)
			if tt.staleLog {
				nw.propose(1, "a")
			}
			hs := nw.stores[3].HardState()
			nw.tick(3, 100)
			r3 := nw.raft(3)
			if tt.preVote {
				if r3.term != 1 || r3.state != StatePreCandidate || nw.stores[3].HardState() != hs {
					t.Fatalf("partitioned member: term %d %v, hard state %+v (was %+v)", r3.term, r3.state, nw.stores[3].HardState(), hs)
				}
			} else if r3.term <= 1 {
				t.Fatalf("control: partitioned member stayed at term %d", r3.term)
			}
			nw.heal()
			nw.tickAll(30)
			l := leaderOf(nw)
			if l == 0 {
				t.Fatal("no leader after rejoining")
			}
			if tt.wantLeaderTerm != 0 {
				if l != 1 || nw.raft(1).term != tt.wantLeaderTerm {
					t.Fatalf("leader %d at term %d, want 1 at term %d", l, nw.raft(l).term, tt.wantLeaderTerm)
				}
				if nw.raft(3).state != StateFollower || nw.raft(3).lead != 1 {
					t.Fatalf("rejoined member: %v lead %d", nw.raft(3).state, nw.raft(3).lead)
				}
			} else if nw.raft(l).term <= 1 {
				t.Fatalf("control: the rejoining member did not raise the term (leader %d term %d)", l, nw.raft(l).term)
			}
		})
	}
}

// Thesis §9.6: a pre-candidate asks for votes in the term it would run
// for without adopting it; the real election follows a won pre-vote.
func TestPaperPreVoteThenVote(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.PreVote = true })
	nw.trace = true
	nw.elect(1)
	var kinds []MessageType
	for _, m := range nw.sent {
		if m.From == 1 && (m.Type == MsgPreVote || m.Type == MsgVote) {
			kinds = append(kinds, m.Type)
			if m.Term != 1 {
				t.Fatalf("%v for term %d, want 1", m.Type, m.Term)
			}
		}
		if m.Type == MsgPreVoteResp && (m.Reject || m.Term != 1) {
			t.Fatalf("pre-vote answer %v", m)
		}
	}
	if !slices.Equal(kinds, []MessageType{MsgPreVote, MsgPreVote, MsgVote, MsgVote}) {
		t.Fatalf("campaign messages %v", kinds)
	}
	for _, id := range []uint64{2, 3} {
		if nw.raft(id).term != 1 || nw.raft(id).lead != 1 {
			t.Fatalf("node %d term %d lead %d", id, nw.raft(id).term, nw.raft(id).lead)
		}
	}
	// A pre-candidate rejected by a majority goes back to follower at its
	// term, with its vote unchanged.
	r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 4, Vote: 2}, func(c *Config) { c.PreVote = true })
	_ = r.Step(Message{Type: MsgHup, From: 1})
	if r.state != StatePreCandidate || r.term != 4 || r.vote != 2 {
		t.Fatalf("pre-candidate: %v term %d vote %d", r.state, r.term, r.vote)
	}
	for _, m := range allMsgs(r) {
		if m.Type != MsgPreVote || m.Term != 5 {
			t.Fatalf("pre-candidate sent %v", m)
		}
	}
	_ = r.Step(Message{Type: MsgPreVoteResp, From: 2, To: 1, Term: 4, Reject: true})
	_ = r.Step(Message{Type: MsgPreVoteResp, From: 3, To: 1, Term: 4, Reject: true})
	if r.state != StateFollower || r.term != 4 || r.vote != 2 {
		t.Fatalf("lost pre-vote: %v term %d vote %d", r.state, r.term, r.vote)
	}
	// Answers to the other kind of election are not counted.
	_ = r.Step(Message{Type: MsgHup, From: 1})
	_ = r.Step(Message{Type: MsgVoteResp, From: 2, To: 1, Term: 4})
	_ = r.Step(Message{Type: MsgVoteResp, From: 3, To: 1, Term: 4})
	if r.state != StatePreCandidate {
		t.Fatalf("pre-candidate counted vote answers: %v", r.state)
	}
	// A rejection from a later term ends the pre-campaign at that term.
	_ = r.Step(Message{Type: MsgPreVoteResp, From: 2, To: 1, Term: 7, Reject: true})
	if r.state != StateFollower || r.term != 7 {
		t.Fatalf("after a later-term rejection: %v term %d", r.state, r.term)
	}
}

// ---------------------------------------------------------------------
// Thesis §6.2 and §4.2.3: CheckQuorum and leader stickiness.

// Thesis §6.2: "a leader steps down if an election timeout elapses
// without a successful round of heartbeats to a majority of its cluster".
func TestPaperCheckQuorumLeaderStepsDown(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.CheckQuorum = true })
	nw.elect(1)
	nw.tickAll(35) // with a quorum the leader stays
	if nw.raft(1).state != StateLeader {
		t.Fatal("leader with a quorum stepped down")
	}
	nw.isolate(1)
	steppedAt := 0
	for i := 1; i <= 40 && steppedAt == 0; i++ {
		nw.tick(1, 1)
		if nw.raft(1).state != StateLeader {
			steppedAt = i
		}
	}
	// It heard from its followers within the current election timeout,
	// so it steps down at the end of the next one: within two.
	if steppedAt == 0 || steppedAt > 20 {
		t.Fatalf("isolated leader stepped down after %d ticks, want within 2 election timeouts", steppedAt)
	}
	if r := nw.raft(1); r.state != StateFollower || r.lead != None || r.term != 1 {
		t.Fatalf("after stepping down: %v lead %d term %d", r.state, r.lead, r.term)
	}
	// Control: without CheckQuorum an isolated leader stays leader.
	nw2 := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw2.elect(1)
	nw2.isolate(1)
	nw2.tick(1, 100)
	if nw2.raft(1).state != StateLeader {
		t.Fatal("control: leader without CheckQuorum stepped down")
	}
}

// Thesis §4.2.3: "if a server receives a RequestVote request within the
// minimum election timeout of hearing from a current leader, it does not
// update its term or grant its vote"; once that timeout has passed it
// votes normally.
func TestPaperLeaderStickiness(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.CheckQuorum = true })
	nw.elect(1)
	n2, r2 := nw.node(2), nw.raft(2)
	last, lastTerm := r2.log.lastIndex(), r2.log.lastTerm()
	for _, ty := range []MessageType{MsgVote, MsgPreVote} {
		_ = n2.Step(Message{Type: ty, From: 3, To: 2, Term: 2, Index: last, LogTerm: lastTerm})
		if n2.HasReady() || r2.term != 1 || r2.lead != 1 {
			t.Fatalf("%v in lease: answered or adopted (term %d lead %d)", ty, r2.term, r2.lead)
		}
	}
	nw.isolate(2)
	nw.tick(2, 9)
	_ = n2.Step(Message{Type: MsgVote, From: 3, To: 2, Term: 2, Index: last, LogTerm: lastTerm})
	if r2.term != 1 {
		t.Fatal("vote granted 9 ticks after hearing the leader")
	}
	r2.electionElapsed = r2.electionTimeout // a full election timeout without the leader
	_ = n2.Step(Message{Type: MsgVote, From: 3, To: 2, Term: 2, Index: last, LogTerm: lastTerm})
	rd := n2.Ready()
	if resp := one(t, rd.MessagesAfterPersist, MsgVoteResp, 3); resp.Reject || r2.term != 2 || r2.vote != 3 {
		t.Fatalf("vote after the lease: %v term %d vote %d", resp, r2.term, r2.vote)
	}
}

// Thesis §4.2.3 and §3.10: the leader-stickiness check must not block
// leadership transfer, so a vote request sent because of a transfer is
// honoured even from a follower that has just heard the leader.
func TestPaperTransferVoteOverridesStickiness(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.CheckQuorum = true })
	nw.elect(1)
	r2 := nw.raft(2)
	_ = nw.node(2).Step(Message{Type: MsgVote, From: 3, To: 2, Term: 2, Index: r2.log.lastIndex(), LogTerm: r2.log.lastTerm(), Context: []byte(campaignTransfer)})
	rd := nw.node(2).Ready()
	if resp := one(t, rd.MessagesAfterPersist, MsgVoteResp, 3); resp.Reject || r2.term != 2 {
		t.Fatalf("transfer vote in lease: %v term %d", resp, r2.term)
	}
	// End to end with CheckQuorum on.
	nw2 := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.CheckQuorum = true; c.PreVote = true })
	nw2.elect(1)
	_ = nw2.node(1).TransferLeadership(3)
	nw2.settle()
	if nw2.raft(3).state != StateLeader || nw2.raft(3).term != 2 {
		t.Fatalf("transfer with CheckQuorum: 3 is %v at term %d", nw2.raft(3).state, nw2.raft(3).term)
	}
}

// ---------------------------------------------------------------------
// Thesis §6.4: ReadIndex.

func readCtxs(rs []ReadState) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.RequestCtx)
	}
	return out
}

// Thesis §6.4 step 1: "If the leader has not yet marked an entry from its
// current term committed, it waits until it has done so."
func TestPaperReadIndexWaitsForCurrentTermCommit(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.filter = func(m Message) bool { return m.Type != MsgAppResp }
	nw.elect(1)
	nw.trace = true
	if err := nw.node(1).ReadIndex([]byte("a")); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if len(nw.reads[1]) != 0 {
		t.Fatalf("read answered before the leader's term committed an entry: %v", nw.reads[1])
	}
	for _, m := range nw.sent {
		if m.Type == MsgHeartbeat && len(m.Context) > 0 {
			t.Fatalf("read round started before an entry of the term committed: %v", m)
		}
	}
	nw.heal()
	nw.tickAll(1)
	if len(nw.reads[1]) != 1 || nw.reads[1][0].Index != 1 || string(nw.reads[1][0].RequestCtx) != "a" {
		t.Fatalf("reads %v, want a at index 1", nw.reads[1])
	}
}

// Thesis §6.4 steps 2-3: the leader records its commit index as the read
// index and answers only after a heartbeat round acknowledged by a
// majority; a later round confirms every earlier pending read.
func TestPaperReadIndexNeedsHeartbeatQuorum(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3, 4, 5}, nil, nil)
	nw.elect(1)
	nw.propose(1, "x")
	nw.isolate(1)
	delete(nw.cut, [2]uint64{1, 2})
	delete(nw.cut, [2]uint64{2, 1})
	for _, ctx := range []string{"a", "b", "c"} {
		if err := nw.node(1).ReadIndex([]byte(ctx)); err != nil {
			t.Fatal(err)
		}
		nw.settle()
	}
	if len(nw.reads[1]) != 0 {
		t.Fatalf("reads answered by 2 of 5: %v", nw.reads[1])
	}
	// One more member hears the next heartbeat round.
	delete(nw.cut, [2]uint64{1, 3})
	delete(nw.cut, [2]uint64{3, 1})
	nw.node(1).Tick()
	nw.process(1)
	for _, m := range find(nw.queue, MsgHeartbeat, 0) {
		if string(m.Context) != "c" {
			t.Fatalf("heartbeat round carries %q, want the latest read", m.Context)
		}
	}
	nw.settle()
	if got := readCtxs(nw.reads[1]); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("answered %v, want a, b, c in order", got)
	}
	for _, rs := range nw.reads[1] {
		if rs.Index != 2 {
			t.Fatalf("read index %d, want the commit index 2", rs.Index)
		}
	}
	// Duplicate or stale acknowledgements change nothing.
	_ = nw.node(1).Step(Message{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 1, Context: []byte("a")})
	_ = nw.node(1).Step(Message{Type: MsgHeartbeatResp, From: 3, To: 1, Term: 1, Context: []byte("zzz")})
	nw.process(1)
	if len(nw.reads[1]) != 3 {
		t.Fatalf("stale acknowledgements answered more reads: %v", nw.reads[1])
	}
}

// Thesis §6.4: "followers ... issue a request to the leader to learn the
// current commit index"; the answer goes back to the follower that asked.
func TestPaperReadIndexForwardedFromFollower(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	nw.propose(1, "x")
	if err := nw.node(2).ReadIndex([]byte("f")); err != nil {
		t.Fatal(err)
	}
	rd := nw.node(2).Ready()
	fwd := one(t, rd.Messages, MsgReadIndex, 1)
	if string(fwd.Context) != "f" || fwd.From != 2 {
		t.Fatalf("forwarded read %v", fwd)
	}
	nw.persist(2, rd)
	nw.apply(2, rd)
	nw.node(2).Advance(rd)
	nw.send(fwd)
	nw.settle()
	if len(nw.reads[1]) != 0 {
		t.Fatalf("the leader kept the follower's read: %v", nw.reads[1])
	}
	if len(nw.reads[2]) != 1 || nw.reads[2][0].Index != 2 || string(nw.reads[2][0].RequestCtx) != "f" {
		t.Fatalf("follower reads %v, want f at 2", nw.reads[2])
	}
}

// Thesis §6.4: a leader that is the only voter needs no heartbeat round:
// it answers at once.
func TestPaperReadIndexLoneMember(t *testing.T) {
	nw := newNetwork(t, []uint64{1}, []uint64{2}, nil)
	nw.elect(1)
	nw.propose(1, "x")
	n := nw.node(1)
	if err := n.ReadIndex([]byte("l")); err != nil {
		t.Fatal(err)
	}
	rd := n.Ready()
	if len(rd.ReadStates) != 1 || rd.ReadStates[0].Index != 2 || len(find(rd.Messages, MsgHeartbeat, 0)) != 0 {
		t.Fatalf("lone member: reads %v messages %v", rd.ReadStates, msgTypes(rd.Messages))
	}
}

// ---------------------------------------------------------------------
// Thesis §6.4.1: lease reads.

// Thesis §6.4.1: with a lease the leader answers a read without a round
// of heartbeats while "start + election timeout / clock drift bound" has
// not passed since the latest heartbeat round a majority acknowledged;
// this core keeps half an election timeout, counted from the tick that
// round was sent. After that it falls back to a heartbeat round.
func TestPaperLeaseRead(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.CheckQuorum, c.ReadOnlyOption = true, ReadOnlyLeaseBased })
	nw.elect(1)
	nw.propose(1, "x")
	// Just elected: no heartbeat round acknowledged yet, so no lease.
	_ = nw.node(1).ReadIndex([]byte("first"))
	rd := nw.node(1).Ready()
	if len(rd.ReadStates) != 0 || len(find(rd.Messages, MsgHeartbeat, 0)) != 2 {
		t.Fatalf("read without a lease: reads %v messages %v", rd.ReadStates, msgTypes(rd.Messages))
	}
	nw.persist(1, rd)
	nw.node(1).Advance(rd)
	for _, m := range rd.Messages {
		nw.send(m)
	}
	nw.settle()
	if len(nw.reads[1]) != 1 {
		t.Fatalf("fallback round did not answer: %v", nw.reads[1])
	}
	nw.tickAll(1) // a heartbeat round, acknowledged
	nw.isolate(1)
	for m := 0; m <= 5; m++ {
		if m > 0 {
			nw.tick(1, 1)
		}
		before := len(nw.reads[1])
		nw.drain()
		_ = nw.node(1).ReadIndex([]byte{byte('0' + m)})
		nw.process(1)
		answered := len(nw.reads[1]) > before
		hb := find(nw.drain(), MsgHeartbeat, 0)
		if m < 5 {
			if !answered || len(hb) != 0 {
				t.Fatalf("%d ticks after the acknowledged round: answered=%v, %d heartbeats; want a lease read", m, answered, len(hb))
			}
			if got := nw.reads[1][len(nw.reads[1])-1]; got.Index != 2 {
				t.Fatalf("lease read at %d, want commit 2", got.Index)
			}
		} else if answered {
			t.Fatalf("lease read answered %d ticks after the last acknowledged round (lease is 5 ticks)", m)
		}
	}
	if nw.raft(1).state != StateLeader {
		t.Fatal("leader stepped down during the test")
	}
}

// Thesis §6.4.1: the lease is only sound with the CheckQuorum lease on
// followers; the configuration refuses lease reads without CheckQuorum.
func TestPaperLeaseRequiresCheckQuorum(t *testing.T) {
	c := netConfig(1, NewMemoryStorage())
	c.ReadOnlyOption = ReadOnlyLeaseBased
	if _, err := NewNode(&c); err == nil {
		t.Fatal("lease reads accepted without CheckQuorum")
	}
	c.CheckQuorum = true
	if _, err := NewNode(&c); err != nil {
		t.Fatal(err)
	}
}

// Thesis §6.4.1 with §3.10: during a leadership transfer the transferee
// may be elected at any moment, so the lease no longer holds.
func TestPaperLeaseEndsWithTransfer(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.CheckQuorum, c.ReadOnlyOption = true, ReadOnlyLeaseBased })
	nw.elect(1)
	nw.tickAll(1)
	nw.isolate(3)
	_ = nw.node(1).TransferLeadership(3)
	nw.settle()
	_ = nw.node(1).ReadIndex([]byte("t"))
	rd := nw.node(1).Ready()
	if len(rd.ReadStates) != 0 {
		t.Fatal("lease read answered during a transfer")
	}
	if hb := find(rd.Messages, MsgHeartbeat, 0); len(hb) != 2 || string(hb[0].Context) != "t" {
		t.Fatalf("no heartbeat round for the read: %v", msgTypes(rd.Messages))
	}
}

// ---------------------------------------------------------------------
// Thesis §3.10: leadership transfer.

// Thesis §3.10: "The prior leader sends a TimeoutNow request to the
// target server. This request has the same effect as the target server's
// election timer firing: the target server starts a new election".
func TestPaperTransferToCaughtUpFollower(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	nw.propose(1, "x")
	if err := nw.node(1).TransferLeadership(2); err != nil {
		t.Fatal(err)
	}
	nw.process(1)
	if tn := one(t, nw.queue, MsgTimeoutNow, 2); tn.Term != 1 {
		t.Fatalf("TimeoutNow %v", tn)
	}
	if len(find(nw.queue, MsgApp, 2)) != 0 {
		t.Fatal("caught-up target was sent entries")
	}
	nw.settle()
	if nw.raft(2).state != StateLeader || nw.raft(2).term != 2 || nw.raft(1).state != StateFollower || nw.raft(1).lead != 2 {
		t.Fatalf("after transfer: 2 is %v term %d, 1 is %v lead %d", nw.raft(2).state, nw.raft(2).term, nw.raft(1).state, nw.raft(1).lead)
	}
	nw.propose(2, "y")
	for _, id := range nw.ids {
		if got := nw.appliedData(id); !slices.Equal(got, []string{"x", "y"}) {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
}

// Thesis §3.10: "the prior leader ... bring[s] the target server's log up
// to date" before sending TimeoutNow.
func TestPaperTransferCatchesUpFirst(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	nw.isolate(3)
	nw.propose(1, "a")
	nw.propose(1, "b")
	nw.heal()
	if err := nw.node(1).TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	nw.process(1)
	if len(find(nw.queue, MsgTimeoutNow, 0)) != 0 || len(find(nw.queue, MsgApp, 3)) != 1 {
		t.Fatalf("lagging target: queue %v", msgTypes(nw.queue))
	}
	nw.settle()
	if nw.raft(3).state != StateLeader {
		t.Fatalf("target is %v after catching up", nw.raft(3).state)
	}
	if got := nw.appliedData(3); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("new leader applied %v", got)
	}
}

// Thesis §3.10: "the prior leader stops accepting new client requests"
// during the transfer, and "if the transfer does not complete within an
// election timeout, the prior leader aborts the transfer and resumes
// accepting client requests".
func TestPaperTransferRefusesProposalsThenAborts(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	nw.isolate(3)
	if err := nw.node(1).TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if err := nw.node(1).Propose([]byte("x")); !errors.Is(err, ErrTransferring) {
		t.Fatalf("proposal during a transfer: %v", err)
	}
	if err := nw.node(1).ProposeConfChange(ConfChange{Type: AddLearner, NodeID: 4}); !errors.Is(err, ErrTransferring) {
		t.Fatalf("conf change during a transfer: %v", err)
	}
	last := nw.raft(1).log.lastIndex()
	_ = nw.node(2).Propose([]byte("fwd")) // forwarded, then refused by the leader
	nw.settle()
	if nw.raft(1).log.lastIndex() != last {
		t.Fatal("a forwarded proposal was appended during the transfer")
	}
	for i := 1; i < 10; i++ {
		nw.tick(1, 1)
		if nw.raft(1).leadTransferee != 3 {
			t.Fatalf("transfer abandoned after %d ticks, before an election timeout", i)
		}
	}
	nw.tick(1, 1)
	if nw.raft(1).leadTransferee != None || nw.raft(1).state != StateLeader {
		t.Fatalf("transfer not abandoned after an election timeout: transferee %d", nw.raft(1).leadTransferee)
	}
	nw.drain()
	if err := nw.node(1).Propose([]byte("x")); err != nil {
		t.Fatalf("proposal after the abort: %v", err)
	}
}

// Thesis §3.10 corner cases: transferring to oneself or to a learner does
// nothing; asking again for the same target does not restart its timer;
// a new target replaces the old one.
func TestPaperTransferCornerCases(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, []uint64{4}, nil)
	nw.elect(1)
	r := nw.raft(1)
	for _, to := range []uint64{1, 4} {
		if err := nw.node(1).TransferLeadership(to); err != nil {
			t.Fatal(err)
		}
		if r.leadTransferee != None || len(r.msgs) != 0 {
			t.Fatalf("transfer to %d started", to)
		}
	}
	nw.isolate(3)
	_ = nw.node(1).TransferLeadership(3)
	nw.tick(1, 5)
	_ = nw.node(1).TransferLeadership(3)
	nw.tick(1, 5)
	if r.leadTransferee != None {
		t.Fatal("repeating the request restarted the transfer's timeout")
	}
	_ = nw.node(1).TransferLeadership(3)
	nw.process(1) // the TimeoutNow to 3 is lost
	_ = nw.node(1).TransferLeadership(2)
	if r.leadTransferee != 2 {
		t.Fatalf("transferee %d, want 2", r.leadTransferee)
	}
	nw.heal()
	nw.settle()
	if nw.raft(2).state != StateLeader {
		t.Fatalf("2 is %v", nw.raft(2).state)
	}
}

// Thesis §3.10 (the request may be made at any server): a follower passes
// a transfer request to its leader, which hands leadership to the target
// named in the request.
func TestPaperTransferRequestedAtFollower(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	if err := nw.node(2).TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	nw.trace = true
	nw.settle()
	if l := leaderOf(nw); l != 3 {
		fwd := find(nw.sent, MsgTransferLeader, 1)
		if l == 2 && len(fwd) == 1 && fwd[0].From == 2 {
			knownBug(t, "TransferLeadership(3) called at follower 2 made 2 the leader: raft.send sets Message.From = r.id, so the forwarded MsgTransferLeader names the forwarding follower instead of the transferee (thesis §3.10)")
		}
		t.Fatalf("asked node 2 to transfer leadership to 3; leader is now %d", l)
	}
}

// ---------------------------------------------------------------------
// Thesis §4.1-4.2: membership changes.

// Thesis §4.1: "the leader will not begin a new configuration change
// until the previous one has been committed" (here: applied); a second
// change while one is pending is refused.
func TestPaperOneConfChangeAtATime(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	if err := nw.node(1).ProposeConfChange(ConfChange{Type: AddLearner, NodeID: 4}); err != nil {
		t.Fatal(err)
	}
	if err := nw.node(1).ProposeConfChange(ConfChange{Type: AddLearner, NodeID: 5}); !errors.Is(err, ErrConfChangeRefused) {
		t.Fatalf("second pending conf change: %v", err)
	}
	nw.settle()
	if !slices.Equal(nw.raft(1).prs.Learners, []uint64{4}) {
		t.Fatalf("learners %v", nw.raft(1).prs.Learners)
	}
	if err := nw.node(1).ProposeConfChange(ConfChange{Type: AddLearner, NodeID: 5}); err != nil {
		t.Fatalf("conf change after the previous one was applied: %v", err)
	}
	nw.settle()
	for _, id := range nw.ids {
		if !slices.Equal(nw.raft(id).prs.Learners, []uint64{4, 5}) {
			t.Fatalf("node %d learners %v", id, nw.raft(id).prs.Learners)
		}
	}
}

// Thesis §4.1 with the single-server change fix (a leader may not append
// a configuration entry until it has committed an entry of its own term,
// doc.go): a new leader refuses a change until the log before its term
// is applied.
func TestPaperNewLeaderWaitsBeforeConfChange(t *testing.T) {
	nw := newNetworkLogs(t, [][]uint64{{1, 1, 1}, {1, 1, 1}, {1, 1, 1}}, 1, nil)
	nw.filter = func(m Message) bool { return m.Type != MsgApp }
	nw.elect(1)
	if err := nw.node(1).ProposeConfChange(ConfChange{Type: AddLearner, NodeID: 4}); !errors.Is(err, ErrConfChangeRefused) {
		t.Fatalf("conf change before the new term committed: %v", err)
	}
	nw.heal()
	nw.tickAll(1)
	if nw.raft(1).log.applied != 4 {
		t.Fatalf("applied %d", nw.raft(1).log.applied)
	}
	if err := nw.node(1).ProposeConfChange(ConfChange{Type: AddLearner, NodeID: 4}); err != nil {
		t.Fatalf("conf change once the term committed: %v", err)
	}
}

// Thesis §4.2.1: new servers join as non-voting members until they have
// caught up; a learner trailing by more than LearnerMaxLag cannot be
// promoted, and one within it can.
func TestPaperLearnerPromotionNeedsCatchUp(t *testing.T) {
	for _, tt := range []struct {
		behind int
		ok     bool
	}{{5, false}, {3, true}} {
		nw := newNetwork(t, []uint64{1, 2, 3}, []uint64{4}, func(c *Config) { c.LearnerMaxLag = 3 })
		nw.elect(1)
		nw.isolate(4)
		for i := range tt.behind {
			nw.propose(1, string(rune('a'+i)))
		}
		err := nw.node(1).ProposeConfChange(ConfChange{Type: AddVoter, NodeID: 4})
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrConfChangeRefused)) {
			t.Fatalf("promoting a learner %d entries behind (max 3): %v", tt.behind, err)
		}
		if tt.ok {
			continue
		}
		nw.heal()
		nw.tickAll(1)
		if err := nw.node(1).ProposeConfChange(ConfChange{Type: AddVoter, NodeID: 4}); err != nil {
			t.Fatalf("promoting a caught-up learner: %v", err)
		}
		nw.settle()
		for _, id := range nw.ids {
			if r := nw.raft(id); !r.prs.IsVoter(4) || len(r.prs.Learners) != 0 {
				t.Fatalf("node %d: voters %v learners %v", id, r.prs.Voters, r.prs.Learners)
			}
		}
		if nw.raft(4).isLearner {
			t.Fatal("promoted member still thinks it is a learner")
		}
	}
}

// Thesis §4.2.1: learners ("non-voting members") receive the log but are
// not counted for elections or commitment, and never campaign.
func TestPaperLearnersDoNotVoteOrCountForCommit(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, []uint64{4}, nil)
	// A learner never campaigns, even when asked to.
	nw.tick(4, 100)
	_ = nw.node(4).Campaign()
	_ = nw.node(4).Step(Message{Type: MsgTimeoutNow, From: 1, To: 4})
	if r := nw.raft(4); r.state != StateFollower || r.term != 0 || len(nw.queue) != 0 {
		t.Fatalf("learner: %v term %d, sent %v", r.state, r.term, msgTypes(nw.queue))
	}
	// A candidate does not ask a learner, and a learner's vote does not count.
	_ = nw.node(1).Campaign()
	rd := nw.node(1).Ready()
	if len(find(rd.MessagesAfterPersist, MsgVote, 4)) != 0 {
		t.Fatal("vote requested from a learner")
	}
	nw.persist(1, rd)
	nw.node(1).Advance(rd)
	_ = nw.node(1).Step(Message{Type: MsgVoteResp, From: 4, To: 1, Term: 1})
	if nw.raft(1).state != StateCandidate {
		t.Fatalf("learner's vote counted: %v", nw.raft(1).state)
	}
	_ = nw.node(1).Step(Message{Type: MsgVoteResp, From: 2, To: 1, Term: 1})
	if nw.raft(1).state != StateLeader {
		t.Fatalf("a voter's vote did not count: %v", nw.raft(1).state)
	}
	nw.settle()
	// Only the learner acknowledges: nothing commits.
	nw.cutLink(1, 2)
	nw.cutLink(1, 3)
	commit := nw.raft(1).log.committed
	nw.propose(1, "x")
	if nw.raft(4).log.lastIndex() != nw.raft(1).log.lastIndex() {
		t.Fatal("learner did not receive the entry")
	}
	if nw.raft(1).log.committed != commit {
		t.Fatalf("committed %d with only a learner's acknowledgement", nw.raft(1).log.committed)
	}
	nw.heal()
	nw.tickAll(1)
	for _, id := range nw.ids {
		if got := nw.appliedData(id); !slices.Equal(got, []string{"x"}) {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
}

// Thesis §4.2.2: a leader removed from the configuration steps down, and
// the remaining servers elect a leader among themselves; it tells the most
// caught-up of them to campaign at once (as a leadership transfer does),
// so they need not wait out an election timeout.
func TestPaperRemovedLeaderStepsDown(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	if err := nw.node(1).ProposeConfChange(ConfChange{Type: RemoveNode, NodeID: 1}); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	r1 := nw.raft(1)
	if r1.state != StateFollower || r1.prs.IsVoter(1) || r1.promotable() {
		t.Fatalf("removed leader: %v voters %v", r1.state, r1.prs.Voters)
	}
	if err := nw.node(1).Propose([]byte("x")); err == nil {
		t.Fatal("removed leader accepted a proposal")
	}
	// It handed over as it stepped down: the most caught-up voter (the
	// lower ID among equals) campaigned at once, without an election
	// timeout.
	if l := leaderOf(nw); l != 2 || nw.raft(2).term != 2 {
		t.Fatalf("leader right after the removal: %d (term %d); want 2, elected on the hand-over", l, nw.raft(2).term)
	}
	l := leaderOf(nw)
	if r1.state != StateFollower || r1.term > 2 || r1.lead == 1 {
		t.Fatalf("removed member campaigned: %v term %d", r1.state, r1.term)
	}
	nw.propose(l, "y")
	for _, id := range []uint64{2, 3} {
		if got := nw.appliedData(id); !slices.Equal(got, []string{"y"}) {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
}

// The voter left that campaigns when the leader is removed (the lowest
// ID) may not learn that the removal committed: the removed leader stops
// telling anyone once it applies it, and the one append that told it may
// be lost or overtaken. The removed leader, as it steps down, and every
// other member that applies the removal of its leader tell it to
// campaign (MsgTimeoutNow); either word is enough, and it leads without
// an election timeout. (Before, it waited out its election timer while
// the write held by a member that had forgotten the leader waited too.)
func TestRemovedLeaderHandsOverToAVoterThatMissedTheCommit(t *testing.T) {
	for _, lost := range []uint64{1, 3} {
		t.Run(fmt.Sprintf("word from %d lost", lost), func(t *testing.T) {
			nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
			nw.elect(1)
			idx := nw.raft(1).log.lastIndex() + 1
			nw.filter = func(m Message) bool {
				if m.From == 1 && m.To == 2 && (m.Type == MsgApp || m.Type == MsgHeartbeat) && m.Commit >= idx {
					return false // 2 gets the removal but never learns it committed
				}
				return m.Type != MsgTimeoutNow || m.From != lost
			}
			if err := nw.node(1).ProposeConfChange(ConfChange{Type: RemoveNode, NodeID: 1}); err != nil {
				t.Fatal(err)
			}
			nw.settle()
			if nw.raft(3).prs.IsVoter(1) || nw.raft(1).state == StateLeader {
				t.Fatalf("setup: the removal is not applied by 3 and 1")
			}
			if l := leaderOf(nw); l != 2 || nw.raft(2).term != 2 {
				t.Fatalf("leader right after the removal, without a tick: %d (term %d); want 2 in term 2", l, nw.raft(2).term)
			}
			nw.propose(2, "y")
			for _, id := range []uint64{2, 3} {
				if got := nw.appliedData(id); !slices.Equal(got, []string{"y"}) || nw.raft(id).prs.IsVoter(1) {
					t.Fatalf("node %d applied %v, voters %v", id, got, nw.raft(id).prs.Voters)
				}
			}
		})
	}
}

// A leader whose log holds its own removal appends nothing more (it
// refuses proposals, its own and forwarded ones): an entry after the
// removal that the voters left did not get would leave its log longer
// than theirs when it steps down, so it would refuse them its vote while
// they still count it, and it cannot campaign itself. With one voter
// left, there would be no leader ever again.
func TestLeaderWithItsRemovalInItsLogAppendsNothing(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2}, nil, nil)
	nw.elect(1)
	nw.cutLink(1, 2) // the removal stays pending
	if err := nw.node(1).ProposeConfChange(ConfChange{Type: RemoveNode, NodeID: 1}); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	last := nw.raft(1).log.lastIndex()
	if err := nw.node(1).Propose([]byte("x")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("proposal with the leader's removal in its log: %v, want ErrProposalDropped", err)
	}
	_ = nw.raft(1).Step(Message{Type: MsgProp, From: 2, To: 1, Term: nw.raft(1).term, Entries: []Entry{{Data: []byte("y")}}})
	if got := nw.raft(1).log.lastIndex(); got != last {
		t.Fatalf("the leader appended up to %d after its removal at %d", got, last)
	}
	// The removal commits; 2 leads alone and takes proposals.
	nw.heal()
	nw.tickAll(1)
	nw.settle()
	if l := leaderOf(nw); l != 2 {
		t.Fatalf("leader after the removal: %d, want 2", l)
	}
	nw.propose(2, "z")
	if got := nw.appliedData(2); !slices.Equal(got, []string{"z"}) {
		t.Fatalf("node 2 applied %v", got)
	}
	// Nor in the batch that carries the removal.
	nw2 := newNetwork(t, []uint64{1, 2}, nil, nil)
	nw2.elect(1)
	last = nw2.raft(1).log.lastIndex()
	cc := ConfChange{Type: RemoveNode, NodeID: 1}
	err := nw2.raft(1).Step(Message{Type: MsgProp, From: 1, Entries: []Entry{{Type: EntryConfChange, Data: cc.Marshal()}, {Data: []byte("x")}}})
	if !errors.Is(err, ErrProposalDropped) || nw2.raft(1).log.lastIndex() != last {
		t.Fatalf("a batch with entries after the leader's removal: %v, last index %d (was %d)", err, nw2.raft(1).log.lastIndex(), last)
	}
}

// A leader whose log holds its own removal serves no lease read: once the
// others apply the removal they forget it and elect a successor at once
// (they do not wait out its lease), while it may not have applied the
// change yet. Reads go through a heartbeat round instead, which a
// deposed leader cannot complete. A leader elected with its own removal
// in its unapplied tail has no lease either.
func TestRemovalEndsTheLease(t *testing.T) {
	lease := func(c *Config) { c.CheckQuorum, c.ReadOnlyOption = true, ReadOnlyLeaseBased }
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, lease)
	nw.elect(1)
	nw.propose(1, "x")
	nw.tickAll(1) // a heartbeat round, acknowledged
	r1 := nw.raft(1)
	if !r1.leaseValid() {
		t.Fatal("setup: no lease after an acknowledged heartbeat round")
	}
	nw.isolate(1) // the removal is appended but goes nowhere
	if err := nw.node(1).ProposeConfChange(ConfChange{Type: RemoveNode, NodeID: 1}); err != nil {
		t.Fatal(err)
	}
	if r1.leaseValid() {
		t.Fatal("lease still valid with the leader's own removal in its log")
	}
	nw.drain()
	_ = nw.node(1).ReadIndex([]byte("r"))
	nw.process(1)
	if len(nw.reads[1]) != 0 {
		t.Fatalf("read answered from the lease: %v", nw.reads[1])
	}

	// Inherited: node 2 becomes leader with its own removal in its
	// unapplied log (appended by node 1, not yet committed).
	nw2 := newNetwork(t, []uint64{1, 2, 3}, nil, lease)
	nw2.elect(1)
	if nw2.raft(1).leaseEnded {
		t.Fatal("a fresh leader starts without a lease")
	}
	nw2.isolate(3)
	if err := nw2.node(1).ProposeConfChange(ConfChange{Type: RemoveNode, NodeID: 2}); err != nil {
		t.Fatal(err)
	}
	nw2.process(1)
	for _, m := range nw2.take(ofType(MsgApp)) {
		if m.To == 2 {
			_ = nw2.node(2).Step(m)
		}
	}
	nw2.drain()
	r2 := nw2.raft(2)
	if r2.log.applied >= r2.log.lastIndex() {
		t.Fatalf("setup: node 2 applied %d of %d", r2.log.applied, r2.log.lastIndex())
	}
	r2.becomeCandidate()
	r2.becomeLeader()
	if !r2.leaseEnded || r2.leaseValid() {
		t.Fatalf("node 2 leads with its own removal in its log: leaseEnded %v, lease valid %v", r2.leaseEnded, r2.leaseValid())
	}
}

// Thesis §4.1-4.2 (the changes this core supports): demoting a voter to a
// learner is refused, as is removing the last voter or naming node 0;
// undecodable changes are refused before anything is appended.
func TestPaperRefusedConfChanges(t *testing.T) {
	nw := newNetwork(t, []uint64{1}, []uint64{2}, nil)
	nw.elect(1)
	n := nw.node(1)
	for _, cc := range []ConfChange{
		{Type: AddLearner, NodeID: 1},
		{Type: RemoveNode, NodeID: 1},
		{Type: AddVoter, NodeID: None},
	} {
		if err := n.ProposeConfChange(cc); !errors.Is(err, ErrConfChangeRefused) {
			t.Errorf("%v %d: %v, want ErrConfChangeRefused", cc.Type, cc.NodeID, err)
		}
	}
	last := nw.raft(1).log.lastIndex()
	err := nw.raft(1).Step(Message{Type: MsgProp, From: 1, Entries: []Entry{{Type: EntryConfChange, Data: []byte{9, 9}}}})
	if !errors.Is(err, ErrBadConfChange) {
		t.Errorf("garbled conf change: %v", err)
	}
	if err := nw.raft(1).checkConfChange(ConfChange{Type: 9, NodeID: 3}); !errors.Is(err, ErrConfChangeRefused) {
		t.Errorf("unknown change type: %v", err)
	}
	if nw.raft(1).log.lastIndex() != last {
		t.Fatal("a refused change was appended")
	}
	// Removing a learner, or promoting one, is fine.
	if err := n.ProposeConfChange(ConfChange{Type: AddVoter, NodeID: 2}); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if err := n.ProposeConfChange(ConfChange{Type: RemoveNode, NodeID: 2}); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if r := nw.raft(1); !slices.Equal(r.prs.Voters, []uint64{1}) || r.state != StateLeader {
		t.Fatalf("voters %v state %v", r.prs.Voters, r.state)
	}
}

// Thesis §4.2.1 end to end: a brand-new server added as a learner is sent
// the whole log (learning the membership from it), then promoted, and the
// cluster keeps working without the old leader.
func TestPaperNewMemberJoins(t *testing.T) {
	nw := newBootstrapNetwork(t, []uint64{1, 2, 3}, nil)
	nw.elect(1)
	nw.propose(1, "a")
	if err := nw.node(1).ProposeConfChange(ConfChange{Type: AddLearner, NodeID: 4, Context: []byte("peer-4")}); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	nw.add(4, NewMemoryStorage(), nil)
	nw.tickAll(1)
	r4 := nw.raft(4)
	if !slices.Equal(r4.prs.Voters, []uint64{1, 2, 3}) || !r4.isLearner || !slices.Equal(nw.appliedData(4), []string{"a"}) {
		t.Fatalf("new member: voters %v learner %v applied %v", r4.prs.Voters, r4.isLearner, nw.appliedData(4))
	}
	if err := nw.node(1).ProposeConfChange(ConfChange{Type: AddVoter, NodeID: 4}); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	nw.isolate(1)
	for range 60 {
		nw.tickAll(1)
		if l := leaderOf(nw); l != 0 && l != 1 {
			break
		}
	}
	l := leaderOf(nw) // the isolated 1 may still think it leads, at an older term
	if l == 1 || l == 0 {
		t.Fatal("no new leader among 2, 3, 4")
	}
	nw.propose(l, "b")
	for _, id := range []uint64{2, 3, 4} {
		if got := nw.appliedData(id); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
}

// ---------------------------------------------------------------------
// Raft §7 / thesis chapter 5: snapshots.

// snapshotSetup elects 1, lets 3 fall behind while entries 2-4 commit,
// and compacts the leader's log through 4.
func snapshotSetup(t *testing.T) *network {
	t.Helper()
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	nw.isolate(3)
	for _, d := range []string{"a", "b", "c"} {
		nw.propose(1, d)
	}
	ms := nw.stores[1]
	if _, err := ms.CreateSnapshot(4, &ConfState{Voters: []uint64{1, 2, 3}}, []byte("state@4")); err != nil {
		t.Fatal(err)
	}
	if err := ms.Compact(4); err != nil {
		t.Fatal(err)
	}
	nw.heal()
	// Hold snapshots back so the test can look at the leader's state.
	nw.filter = func(m Message) bool { return m.Type != MsgSnap }
	nw.trace = true
	nw.tickAll(1)
	return nw
}

// Raft §7: "the leader must occasionally send snapshots to followers that
// lag behind ... when the leader has already discarded the next log entry
// that it needs to send to a follower"; thesis §5.1: the follower
// discards its log and installs the snapshot.
func TestPaperSnapshotForCompactedFollower(t *testing.T) {
	nw := snapshotSetup(t)
	pr := nw.raft(1).prs.Progress[3]
	if pr.State != tracker.StateSnapshot || pr.PendingSnapshot != 4 {
		t.Fatalf("progress of 3: %v", pr)
	}
	var snap *Message
	for i := range nw.sent {
		if m := nw.sent[i]; m.Type == MsgSnap && m.To == 3 {
			snap = &nw.sent[i]
		}
	}
	if snap == nil || snap.Snapshot.Meta.Index != 4 || snap.Snapshot.Meta.Term != 1 || string(snap.Snapshot.Data) != "state@4" {
		t.Fatalf("snapshot message %v", snap)
	}
	// Nothing else is sent to it while the snapshot is under way.
	nw.sent = nil
	nw.tickAll(1)
	if len(find(nw.sent, MsgApp, 3)) != 0 {
		t.Fatal("appends sent during a snapshot")
	}
	nw.filter = nil
	nw.send(*snap)
	nw.settle() // delivers the snapshot and reports success
	if nw.snaps[3] != 1 {
		t.Fatalf("follower installed %d snapshots", nw.snaps[3])
	}
	if s, _ := nw.stores[3].Snapshot(); s.Meta.Index != 4 {
		t.Fatalf("follower storage snapshot at %d", s.Meta.Index)
	}
	if pr.State != tracker.StateReplicate || pr.Match != 4 {
		t.Fatalf("progress after the snapshot: %v", pr)
	}
	nw.propose(1, "d")
	if got := nw.appliedData(3); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("follower applied %v after the snapshot", got)
	}
	if r3 := nw.raft(3); r3.log.committed != 5 || r3.log.firstIndex() != 5 {
		t.Fatalf("follower log: %v", r3.log)
	}
}

// Thesis §5 (snapshot transfer is reported by the transport): a failed
// send puts the follower back to probing from its match; a successful one
// resumes after the snapshot. Reports for followers not receiving a
// snapshot are ignored.
func TestPaperReportSnapshot(t *testing.T) {
	for _, failed := range []bool{true, false} {
		nw := snapshotSetup(t)
		pr := nw.raft(1).prs.Progress[3]
		nw.node(1).ReportSnapshot(3, failed)
		wantNext := uint64(5)
		if failed {
			wantNext = pr.Match + 1
		}
		if pr.State != tracker.StateProbe || pr.Next != wantNext || pr.PendingSnapshot != 0 || !pr.ProbeSent {
			t.Fatalf("failed=%v: progress %v, want paused probe at %d", failed, pr, wantNext)
		}
		nw.node(1).ReportSnapshot(3, failed)
		if pr.State != tracker.StateProbe {
			t.Fatal("a report for a follower not receiving a snapshot changed it")
		}
		nw.node(1).ReportSnapshot(2, true)
		if pr2 := nw.raft(1).prs.Progress[2]; pr2.State != tracker.StateReplicate {
			t.Fatalf("report for 2 changed it to %v", pr2.State)
		}
		if failed {
			// The next heartbeat answer resumes probing, which needs the
			// snapshot again.
			nw.sent = nil
			nw.tickAll(1)
			if len(find(nw.sent, MsgSnap, 3)) != 1 {
				t.Fatalf("snapshot not resent after a failure: %v", msgTypes(nw.sent))
			}
		}
	}
}

// Thesis §5.1 (InstallSnapshot receiver): a snapshot that does not cover
// more than the follower has committed is not installed, nor is one whose
// membership does not include the receiver; one that matches the log
// only moves the commit index.
func TestPaperRestoreRules(t *testing.T) {
	cs := ConfState{Voters: []uint64{1, 2, 3}}
	tests := []struct {
		name        string
		snap        SnapshotMeta
		wantRestore bool
		wantCommit  uint64
		wantAck     uint64
	}{
		{"not a member", SnapshotMeta{Index: 10, Term: 2, ConfState: ConfState{Voters: []uint64{2, 3, 4}}}, false, 1, 1},
		{"old", SnapshotMeta{Index: 1, Term: 1, ConfState: cs}, false, 1, 1},
		{"matches our log", SnapshotMeta{Index: 3, Term: 1, ConfState: cs}, false, 3, 3},
		{"newer", SnapshotMeta{Index: 10, Term: 2, ConfState: cs}, true, 10, 10},
		{"as a learner", SnapshotMeta{Index: 10, Term: 2, ConfState: ConfState{Voters: []uint64{2, 3}, Learners: []uint64{1}}}, true, 10, 10},
		{"conflicting term at its index", SnapshotMeta{Index: 3, Term: 2, ConfState: cs}, true, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, []uint64{1, 1, 1}, HardState{Term: 2, Commit: 1}, nil)
			s := Snapshot{Meta: tt.snap}
			_ = r.Step(Message{Type: MsgSnap, From: 2, To: 1, Term: 2, Snapshot: &s})
			restored := r.log.unstable.snapshot != nil
			if restored != tt.wantRestore || r.log.committed != tt.wantCommit {
				t.Fatalf("restored=%v commit %d; want %v %d", restored, r.log.committed, tt.wantRestore, tt.wantCommit)
			}
			now, after := readMsgs(r)
			if len(now) != 0 {
				t.Fatalf("snapshot answer not held for persistence: %v", now)
			}
			if ack := one(t, after, MsgAppResp, 2); ack.Index != tt.wantAck || ack.Reject {
				t.Fatalf("answer %v, want ack of %d", ack, tt.wantAck)
			}
			if restored {
				if r.isLearner != slices.Contains(tt.snap.ConfState.Learners, 1) || !slices.Equal(r.prs.Voters, tt.snap.ConfState.Voters) {
					t.Fatalf("membership after restore: voters %v learner %v", r.prs.Voters, r.isLearner)
				}
				if r.promotable() {
					t.Fatal("a member with an unpersisted snapshot may campaign")
				}
			}
		})
	}
	// A snapshot message without a snapshot is ignored.
	r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, []uint64{1}, HardState{Term: 2}, nil)
	_ = r.Step(Message{Type: MsgSnap, From: 2, To: 1, Term: 2})
	if len(allMsgs(r)) != 0 {
		t.Fatal("empty MsgSnap answered")
	}
}

// ---------------------------------------------------------------------
// Durability (Raft Figure 2: "updated on stable storage before responding
// to RPCs"; doc.go's contract).

// A follower's append acknowledgements and vote answers, and a
// candidate's vote requests, travel in MessagesAfterPersist together with
// the state they promise; a leader's appends may go at once.
func TestPaperResponsesWaitForPersistence(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.PreVote = true })
	_ = nw.node(1).Campaign()
	rd := nw.node(1).Ready()
	if len(find(rd.Messages, MsgPreVote, 0)) != 0 || len(find(rd.MessagesAfterPersist, MsgPreVote, 0)) != 2 {
		t.Fatalf("pre-vote requests: now %v, after persist %v", msgTypes(rd.Messages), msgTypes(rd.MessagesAfterPersist))
	}
	nw.persist(1, rd)
	nw.node(1).Advance(rd)
	for _, m := range rd.MessagesAfterPersist {
		_ = nw.node(m.To).Step(m)
		rd2 := nw.node(m.To).Ready()
		if len(rd2.Messages) != 0 || len(find(rd2.MessagesAfterPersist, MsgPreVoteResp, 1)) != 1 {
			t.Fatalf("pre-vote answer: now %v, after persist %v", msgTypes(rd2.Messages), msgTypes(rd2.MessagesAfterPersist))
		}
		nw.persist(m.To, rd2)
		nw.node(m.To).Advance(rd2)
		_ = nw.node(1).Step(rd2.MessagesAfterPersist[0])
	}
	rd = nw.node(1).Ready()
	if rd.HardState.Term != 1 || rd.HardState.Vote != 1 || len(find(rd.Messages, MsgVote, 0)) != 0 || len(find(rd.MessagesAfterPersist, MsgVote, 0)) != 2 {
		t.Fatalf("vote requests: hs %+v now %v after %v", rd.HardState, msgTypes(rd.Messages), msgTypes(rd.MessagesAfterPersist))
	}
	nw.persist(1, rd)
	nw.node(1).Advance(rd)
	vote := rd.MessagesAfterPersist[0]
	_ = nw.node(vote.To).Step(vote)
	rd = nw.node(vote.To).Ready()
	if len(find(rd.Messages, MsgVoteResp, 0)) != 0 || len(find(rd.MessagesAfterPersist, MsgVoteResp, 1)) != 1 || rd.HardState.Vote != 1 || !rd.MustSync {
		t.Fatalf("vote answer: hs %+v now %v after %v", rd.HardState, msgTypes(rd.Messages), msgTypes(rd.MessagesAfterPersist))
	}
	nw.persist(vote.To, rd)
	nw.node(vote.To).Advance(rd)
	_ = nw.node(1).Step(rd.MessagesAfterPersist[0])
	if nw.raft(1).state != StateLeader {
		t.Fatal("not elected")
	}
	rd = nw.node(1).Ready()
	apps := find(rd.Messages, MsgApp, 0)
	if len(apps) != 2 || len(rd.Entries) != 1 {
		t.Fatalf("leader's appends go at once: now %v, %d entries", msgTypes(rd.Messages), len(rd.Entries))
	}
	nw.persist(1, rd)
	nw.node(1).Advance(rd)
	_ = nw.node(2).Step(apps[0])
	rd = nw.node(2).Ready()
	if len(find(rd.Messages, MsgAppResp, 0)) != 0 || len(find(rd.MessagesAfterPersist, MsgAppResp, 1)) != 1 || len(rd.Entries) != 1 || !rd.MustSync {
		t.Fatalf("append ack: now %v after %v entries %d", msgTypes(rd.Messages), msgTypes(rd.MessagesAfterPersist), len(rd.Entries))
	}
}

// doc.go: "A leader's own log counts towards the commit quorum only after
// Advance reports it persisted": a single-member cluster commits only on
// Advance.
func TestPaperSingleMemberCommitsOnlyAfterAdvance(t *testing.T) {
	nw := newNetwork(t, []uint64{1}, nil, nil)
	n, r := nw.node(1), nw.raft(1)
	_ = n.Campaign()
	rd := n.Ready()
	if len(rd.Entries) != 1 || r.log.committed != 0 || rd.HardState.Commit != 0 || len(rd.CommittedEntries) != 0 {
		t.Fatalf("committed %d before the entry was persisted", r.log.committed)
	}
	nw.persist(1, rd)
	n.Advance(rd)
	if r.log.committed != 1 {
		t.Fatalf("committed %d after Advance, want 1", r.log.committed)
	}
	_ = n.Propose([]byte("x"))
	rd = n.Ready()
	if len(rd.CommittedEntries) != 1 || rd.CommittedEntries[0].Index != 1 || rd.HardState.Commit != 1 || r.log.committed != 1 {
		t.Fatalf("Ready committed %v (commit %d)", indexes(rd.CommittedEntries), r.log.committed)
	}
	nw.persist(1, rd)
	nw.apply(1, rd)
	n.Advance(rd)
	if r.log.committed != 2 {
		t.Fatalf("proposal not committed after Advance: %d", r.log.committed)
	}
}

// doc.go: with followers too, the leader's own unpersisted entry does not
// count: one follower's acknowledgement is not a majority of three until
// the leader has persisted.
func TestPaperLeaderCountsItselfOnlyAfterAdvance(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	r := nw.raft(1)
	_ = nw.node(1).Propose([]byte("x"))
	rd := nw.node(1).Ready()
	app := one(t, rd.Messages, MsgApp, 2)
	_ = nw.node(2).Step(app)
	rd2 := nw.node(2).Ready()
	nw.persist(2, rd2)
	nw.node(2).Advance(rd2)
	_ = nw.node(1).Step(one(t, rd2.MessagesAfterPersist, MsgAppResp, 1))
	if r.prs.Progress[2].Match != 2 || r.log.committed != 1 {
		t.Fatalf("follower match %d, commit %d before the leader persisted", r.prs.Progress[2].Match, r.log.committed)
	}
	nw.persist(1, rd)
	nw.node(1).Advance(rd)
	if r.log.committed != 2 {
		t.Fatalf("commit %d after the leader persisted, want 2", r.log.committed)
	}
}

// Raft Figure 2 (Rules for Servers, Followers): "If election timeout
// elapses without receiving AppendEntries RPC from current leader or
// granting vote to candidate: convert to candidate." A refused vote
// request of a later term moves the term on but does not restart the
// timer; a granted one does.
func TestPaperElectionTimerResetOnlyByLeaderOrGrantedVote(t *testing.T) {
	// Our log ends at (3, 2); candidate 3's log is behind.
	r, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, []uint64{1, 1, 2}, HardState{Term: 2}, nil)
	timeout := r.randomizedElectionTimeout
	for range timeout - 1 {
		r.tick()
	}
	_ = r.Step(Message{Type: MsgVote, From: 3, To: 1, Term: 5, Index: 1, LogTerm: 1})
	if resp := one(t, allMsgs(r), MsgVoteResp, 3); !resp.Reject || r.term != 5 {
		t.Fatalf("stale candidate: %v, term %d", resp, r.term)
	}
	r.tick()
	if r.state != StateCandidate || r.term != 6 {
		t.Fatalf("a refused vote request restarted the election timer: %v term %d", r.state, r.term)
	}
	// Granting a vote restarts it.
	r2, _ := newTestRaft(t, 1, []uint64{1, 2, 3}, []uint64{1, 1, 2}, HardState{Term: 2}, nil)
	for range r2.randomizedElectionTimeout - 1 {
		r2.tick()
	}
	_ = r2.Step(Message{Type: MsgVote, From: 3, To: 1, Term: 5, Index: 3, LogTerm: 2})
	if resp := one(t, allMsgs(r2), MsgVoteResp, 3); resp.Reject {
		t.Fatal("up-to-date candidate refused")
	}
	r2.tick()
	if r2.state != StateFollower || r2.electionElapsed != 1 {
		t.Fatalf("after granting a vote: %v elapsed %d", r2.state, r2.electionElapsed)
	}
	// So does hearing the leader.
	for range 5 {
		r2.tick()
	}
	_ = r2.Step(Message{Type: MsgHeartbeat, From: 3, To: 1, Term: 5})
	if r2.electionElapsed != 0 || r2.lead != 3 {
		t.Fatalf("heartbeat: elapsed %d lead %d", r2.electionElapsed, r2.lead)
	}
}

// Thesis §4.1 (a server uses the latest configuration it knows): a member
// with a committed but unapplied membership change does not campaign
// until the change is applied, since it does not know whose votes count.
func TestPaperNoCampaignWithUnappliedConfChange(t *testing.T) {
	ms := NewMemoryStorage()
	ms.SetConfState(ConfState{Voters: []uint64{1, 2, 3}})
	must(ms.Append([]Entry{
		{Index: 1, Term: 1},
		{Index: 2, Term: 1, Type: EntryConfChange, Data: ConfChange{Type: RemoveNode, NodeID: 3}.Marshal()},
	}))
	ms.SetHardState(HardState{Term: 1, Commit: 2})
	c := netConfig(1, ms)
	c.Applied = 1
	n, err := NewNode(&c)
	if err != nil {
		t.Fatal(err)
	}
	_ = n.Campaign()
	for range 50 {
		n.Tick()
	}
	if n.r.state != StateFollower || n.r.term != 1 {
		t.Fatalf("campaigned with an unapplied conf change: %v term %d", n.r.state, n.r.term)
	}
	rd := n.Ready()
	for _, e := range rd.CommittedEntries {
		if e.Type == EntryConfChange {
			var cc ConfChange
			must(cc.Unmarshal(e.Data))
			n.ApplyConfChange(cc)
		}
	}
	n.Advance(rd)
	_ = n.Campaign()
	if n.r.state != StateCandidate || !slices.Equal(n.r.prs.Voters, []uint64{1, 2}) {
		t.Fatalf("after applying: %v voters %v", n.r.state, n.r.prs.Voters)
	}
}

// Thesis §9.6: a pre-vote asks whether a majority would vote; a member
// that is the only voter is its own majority and is elected at once.
func TestPaperLoneVoterWithPreVote(t *testing.T) {
	nw := newNetwork(t, []uint64{1}, []uint64{2}, func(c *Config) { c.PreVote = true })
	_ = nw.node(1).Campaign()
	if r := nw.raft(1); r.state != StateLeader || r.term != 1 {
		t.Fatalf("lone voter: %v term %d", r.state, r.term)
	}
	nw.settle()
	nw.propose(1, "x")
	if got := nw.appliedData(2); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("learner applied %v", got)
	}
}

// Raft §7: a snapshot is only sent to a follower the leader has heard
// from since it took office; until then it waits (a heartbeat answer
// marks the follower alive).
func TestPaperSnapshotOnlyToLiveFollower(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	nw.isolate(3)
	nw.propose(1, "a")
	ms := nw.stores[1]
	if _, err := ms.CreateSnapshot(2, &ConfState{Voters: []uint64{1, 2, 3}}, nil); err != nil {
		t.Fatal(err)
	}
	must(ms.Compact(2))
	// Node 1 loses and regains leadership: its view of 3 starts afresh.
	nw.campaign(2)
	nw.elect(1)
	pr := nw.raft(1).prs.Progress[3]
	pr.ProbeSent, pr.Next = false, 2 // as if 3 had rejected down to entry 1, now compacted
	if pr.RecentActive {
		t.Fatal("setup: 3 counts as active")
	}
	nw.raft(1).sendAppend(3)
	if pr.State == tracker.StateSnapshot || len(find(nw.raft(1).msgs, MsgSnap, 3)) != 0 {
		t.Fatal("snapshot sent to a follower not heard from")
	}
	nw.heal()
	nw.tickAll(2)
	if nw.snaps[3] != 1 || nw.raft(3).log.lastIndex() != nw.raft(1).log.lastIndex() {
		t.Fatalf("follower: %d snapshots, last %d", nw.snaps[3], nw.raft(3).log.lastIndex())
	}
}
