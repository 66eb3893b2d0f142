package consensus

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/consensus/tracker"
)

func TestConfigValidate(t *testing.T) {
	ok := func() Config { return netConfig(1, NewMemoryStorage()) }
	tests := []struct {
		name  string
		tweak func(*Config)
		want  string // "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"valid lease with CheckQuorum", func(c *Config) { c.ReadOnlyOption, c.CheckQuorum = ReadOnlyLeaseBased, true }, ""},
		{"ID 0", func(c *Config) { c.ID = None }, "ID must not be 0"},
		{"heartbeat 0", func(c *Config) { c.HeartbeatTick = 0 }, "HeartbeatTick must be positive"},
		{"heartbeat negative", func(c *Config) { c.HeartbeatTick = -1 }, "HeartbeatTick must be positive"},
		{"election equals heartbeat", func(c *Config) { c.ElectionTick = c.HeartbeatTick }, "ElectionTick must exceed HeartbeatTick"},
		{"election below heartbeat", func(c *Config) { c.ElectionTick, c.HeartbeatTick = 2, 5 }, "ElectionTick must exceed HeartbeatTick"},
		{"no storage", func(c *Config) { c.Storage = nil }, "Storage is required"},
		{"negative inflight", func(c *Config) { c.MaxInflightMsgs = -1 }, "MaxInflightMsgs must not be negative"},
		{"lease without CheckQuorum", func(c *Config) { c.ReadOnlyOption = ReadOnlyLeaseBased }, "lease-based reads require CheckQuorum"},
		{"unknown read option", func(c *Config) { c.ReadOnlyOption = 7 }, "unknown ReadOnlyOption 7"},
		{"unknown read option with CheckQuorum", func(c *Config) { c.ReadOnlyOption, c.CheckQuorum = 2, true }, "unknown ReadOnlyOption 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.tweak(&c)
			before := c
			err := c.Validate()
			if !reflect.DeepEqual(c, before) {
				t.Fatal("Validate changed the config")
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
			// NewNode refuses the same configurations.
			if _, nerr := NewNode(&c); nerr == nil || nerr.Error() != err.Error() {
				t.Fatalf("NewNode = %v, want %v", nerr, err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := netConfig(1, NewMemoryStorage())
	c.MaxInflightMsgs = 0
	d := c.withDefaults()
	if d.MaxSizePerMsg != 1<<20 || d.MaxCommittedSizePerReady != 8<<20 || d.MaxInflightMsgs != 256 || d.LearnerMaxLag != 1000 {
		t.Fatalf("defaults: %+v", d)
	}
	c.MaxSizePerMsg, c.MaxCommittedSizePerReady, c.MaxInflightMsgs, c.LearnerMaxLag = 1, 2, 3, 4
	d = c.withDefaults()
	if d.MaxSizePerMsg != 1 || d.MaxCommittedSizePerReady != 2 || d.MaxInflightMsgs != 3 || d.LearnerMaxLag != 4 {
		t.Fatalf("explicit values overridden: %+v", d)
	}
}

func TestNewNodeRejectsBadPersistentState(t *testing.T) {
	tests := []struct {
		name    string
		hs      HardState
		applied uint64
		want    string
	}{
		{"commit past last", HardState{Term: 1, Commit: 4}, 0, "out of range"},
		{"applied past commit", HardState{Term: 1, Commit: 2}, 3, "past commit"},
	}
	for _, tt := range tests {
		ms := NewMemoryStorage()
		must(ms.Append(entsAt(1, 1, 1, 1)))
		ms.SetHardState(tt.hs)
		c := netConfig(1, ms)
		c.Applied = tt.applied
		if _, err := NewNode(&c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewNode = %v, want %q", tt.name, err, tt.want)
		}
	}
	// Commit below the compaction point is out of range too.
	ms := NewMemoryStorage()
	must(ms.Append(entsAt(1, 1, 1, 1)))
	must(ms.Compact(2))
	ms.SetHardState(HardState{Term: 1, Commit: 1})
	c := netConfig(1, ms)
	if _, err := NewNode(&c); err == nil {
		t.Error("NewNode accepted a commit index below the snapshot")
	}
}

// failingStorage reports an error from InitialState.
type failingStorage struct{ *MemoryStorage }

func (failingStorage) InitialState() (HardState, ConfState, error) {
	return HardState{}, ConfState{}, errDisk
}

func TestNewNodeStorageError(t *testing.T) {
	c := netConfig(1, failingStorage{NewMemoryStorage()})
	if _, err := NewNode(&c); !errors.Is(err, errDisk) {
		t.Fatalf("NewNode = %v, want the storage's error", err)
	}
}

func TestNodeRestartKeepsState(t *testing.T) {
	ms := NewMemoryStorage()
	ms.SetConfState(ConfState{Voters: []uint64{1, 2, 3}})
	must(ms.Append(entsAt(1, 1, 2, 2)))
	ms.SetHardState(HardState{Term: 2, Vote: 3, Commit: 2})
	c := netConfig(1, ms)
	c.Applied = 1
	n, err := NewNode(&c)
	if err != nil {
		t.Fatal(err)
	}
	st := n.Status()
	if st.Term != 2 || st.Vote != 3 || st.Commit != 2 || st.Applied != 1 || st.State != StateFollower || st.Lead != None {
		t.Fatalf("status after restart: %+v", st)
	}
	rd := n.Ready()
	if len(rd.CommittedEntries) != 1 || rd.CommittedEntries[0].Index != 2 {
		t.Fatalf("restart hands back %v, want entry 2 only", indexes(rd.CommittedEntries))
	}
	if !rd.HardState.IsEmpty() || rd.SoftState != nil || len(rd.Entries) != 0 || rd.MustSync {
		t.Fatalf("nothing changed, yet Ready = %+v", rd)
	}
}

func TestNodeStepRejectsLocalMessages(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2}, nil, nil)
	n := nw.node(1)
	for _, ty := range []MessageType{MsgHup, MsgBeat, MsgCheckQuorum, MsgUnreachable, MsgSnapStatus} {
		if err := n.Step(Message{Type: ty, From: 2, To: 1, Term: 1}); !errors.Is(err, ErrStepLocalMsg) {
			t.Errorf("Step(%v) = %v, want ErrStepLocalMsg", ty, err)
		}
	}
	if n.r.state != StateFollower || n.r.term != 0 || n.HasReady() {
		t.Fatal("a refused local message changed the node")
	}
}

func TestNodeStepRejectsResponsesFromUnknownPeers(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
	nw.elect(1)
	n := nw.node(1)
	term := n.r.term
	for _, ty := range []MessageType{MsgAppResp, MsgVoteResp, MsgPreVoteResp, MsgHeartbeatResp} {
		if err := n.Step(Message{Type: ty, From: 9, To: 1, Term: term}); !errors.Is(err, ErrStepPeerNotFound) {
			t.Errorf("Step(%v from 9) = %v, want ErrStepPeerNotFound", ty, err)
		}
	}
	// A read answer may come from a leader we do not track yet.
	if err := nw.node(2).Step(Message{Type: MsgReadIndexResp, From: 9, To: 2, Term: term, Index: 1, Context: []byte("r")}); err != nil {
		t.Errorf("MsgReadIndexResp from an untracked member refused: %v", err)
	}
	// Requests from unknown members are not refused by Node.Step: a
	// member that does not know its membership yet must still vote.
	if err := nw.node(2).Step(Message{Type: MsgVote, From: 9, To: 2, Term: term + 1, Index: 99, LogTerm: term}); err != nil {
		t.Errorf("vote request from 9: %v", err)
	}
	// The leader refuses a transfer to a member it does not track.
	if err := n.TransferLeadership(9); !errors.Is(err, ErrStepPeerNotFound) {
		t.Errorf("TransferLeadership(9) = %v", err)
	}
}

func TestNodeHasReadyBetweenReadyAndAdvance(t *testing.T) {
	ms := NewMemoryStorage()
	ms.SetConfState(ConfState{Voters: []uint64{1}})
	c := netConfig(1, ms)
	n, err := NewNode(&c)
	if err != nil {
		t.Fatal(err)
	}
	if n.HasReady() {
		t.Fatal("a fresh node has nothing to do")
	}
	if err := n.Campaign(); err != nil {
		t.Fatal(err)
	}
	if !n.HasReady() {
		t.Fatal("campaigning produces a Ready")
	}
	rd := n.Ready()
	if n.HasReady() {
		t.Fatal("HasReady is true between Ready and Advance")
	}
	// New work while the Ready is outstanding is still not reported...
	if err := n.Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if n.HasReady() {
		t.Fatal("HasReady is true between Ready and Advance after a proposal")
	}
	must(ms.Append(rd.Entries))
	ms.SetHardState(rd.HardState)
	n.Advance(rd)
	// ...until Advance.
	if !n.HasReady() {
		t.Fatal("work queued during the Ready is lost")
	}
	rd = n.Ready()
	if len(rd.Entries) != 1 || string(rd.Entries[0].Data) != "x" {
		t.Fatalf("second Ready entries %v", rd.Entries)
	}
}

func TestNodeReadyFields(t *testing.T) {
	ms := NewMemoryStorage()
	ms.SetConfState(ConfState{Voters: []uint64{1}})
	c := netConfig(1, ms)
	n, _ := NewNode(&c)
	_ = n.Campaign()
	rd := n.Ready()
	if rd.SoftState == nil || rd.SoftState.State != StateLeader || rd.SoftState.Lead != 1 {
		t.Fatalf("SoftState %+v", rd.SoftState)
	}
	if rd.HardState.Term != 1 || rd.HardState.Vote != 1 || !rd.MustSync {
		t.Fatalf("HardState %+v MustSync %v", rd.HardState, rd.MustSync)
	}
	if len(rd.Entries) != 1 || rd.Entries[0].Index != 1 || rd.Entries[0].Term != 1 || len(rd.Entries[0].Data) != 0 {
		t.Fatalf("a new leader appends one empty entry of its term, got %v", rd.Entries)
	}
	must(ms.Append(rd.Entries))
	ms.SetHardState(rd.HardState)
	n.Advance(rd)
	rd = n.Ready()
	if rd.SoftState != nil || rd.HardState.Commit != 1 || rd.MustSync || len(rd.CommittedEntries) != 1 {
		t.Fatalf("commit-only Ready: %+v", rd)
	}
	ms.SetHardState(rd.HardState)
	n.Advance(rd)
	if n.HasReady() {
		t.Fatal("nothing left to do")
	}
	if st := n.Status(); st.Applied != 1 || st.Commit != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestNodeStatus(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, []uint64{4}, nil)
	nw.elect(1)
	nw.propose(1, "a")
	st := nw.node(1).Status()
	if st.ID != 1 || st.State != StateLeader || st.Lead != 1 || st.Term != 1 || st.Commit != 2 || st.Applied != 2 {
		t.Fatalf("leader status %+v", st)
	}
	if len(st.Progress) != 4 {
		t.Fatalf("leader status has progress of %d members, want 4", len(st.Progress))
	}
	for id, pr := range st.Progress {
		if pr.Match != 2 || pr.State != tracker.StateReplicate || pr.Inflights != nil {
			t.Errorf("progress of %d: %+v", id, pr)
		}
		if pr.IsLearner != (id == 4) {
			t.Errorf("progress of %d: learner=%v", id, pr.IsLearner)
		}
	}
	if len(st.Config.Voters) != 3 || len(st.Config.Learners) != 1 {
		t.Fatalf("config %+v", st.Config)
	}
	// The status is a copy: changing it does not touch the node.
	st.Config.Voters[0] = 99
	if nw.raft(1).prs.Voters[0] != 1 {
		t.Fatal("Status aliases the membership")
	}
	fst := nw.node(2).Status()
	if fst.Progress != nil || fst.State != StateFollower || fst.Lead != 1 {
		t.Fatalf("follower status %+v", fst)
	}
	_ = nw.node(1).TransferLeadership(3)
	if st := nw.node(1).Status(); st.LeadTransferee != 3 {
		t.Fatalf("LeadTransferee %d", st.LeadTransferee)
	}
}

func TestNodeReportUnreachable(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2}, nil, nil)
	nw.elect(1)
	pr := nw.raft(1).prs.Progress[2]
	if pr.State != tracker.StateReplicate {
		t.Fatalf("state %v", pr.State)
	}
	nw.node(1).ReportUnreachable(2)
	if pr.State != tracker.StateProbe {
		t.Fatalf("after ReportUnreachable: %v, want probe", pr.State)
	}
	nw.node(1).ReportUnreachable(2) // already probing: stays
	if pr.State != tracker.StateProbe {
		t.Fatalf("state %v", pr.State)
	}
	// Followers ignore it.
	nw.node(2).ReportUnreachable(1)
}

func TestNodeProposalErrors(t *testing.T) {
	nw := newNetwork(t, []uint64{1, 2, 3}, nil, func(c *Config) { c.DisableProposalForwarding = c.ID == 3 })
	if err := nw.node(1).Propose([]byte("x")); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("proposal without a leader: %v", err)
	}
	if err := nw.node(1).ReadIndex([]byte("r")); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("read without a leader: %v", err)
	}
	if err := nw.node(1).TransferLeadership(2); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("transfer without a leader: %v", err)
	}
	nw.elect(1)
	if err := nw.node(3).Propose([]byte("x")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("proposal at a non-forwarding follower: %v", err)
	}
	if err := nw.node(1).r.Step(Message{Type: MsgProp, From: 1}); err == nil {
		t.Fatal("empty proposal accepted")
	}
	// A follower forwards a proposal; the leader appends it.
	if err := nw.node(2).Propose([]byte("fwd")); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if got := nw.appliedData(1); len(got) != 1 || got[0] != "fwd" {
		t.Fatalf("leader applied %v", got)
	}
	// A follower does not forward someone else's read request.
	if err := nw.node(2).Step(Message{Type: MsgReadIndex, From: 3, To: 2, Context: []byte("x")}); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("forwarded foreign read: %v", err)
	}
	// A candidate has no leader to send proposals to.
	nw.isolate(2)
	_ = nw.node(2).Campaign()
	if err := nw.node(2).Propose([]byte("x")); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("proposal at a candidate: %v", err)
	}
}

func TestTypeStrings(t *testing.T) {
	for ty := MessageType(1); ty <= msgTypeMax; ty++ {
		if s := ty.String(); !strings.HasPrefix(s, "Msg") {
			t.Errorf("MessageType(%d).String() = %q", ty, s)
		}
	}
	for _, ty := range []MessageType{0, msgTypeMax + 1} {
		if s := ty.String(); !strings.HasPrefix(s, "MessageType(") {
			t.Errorf("String() of invalid type = %q", s)
		}
	}
	for s, want := range map[StateType]string{StateFollower: "StateFollower", StateCandidate: "StateCandidate", StateLeader: "StateLeader", StatePreCandidate: "StatePreCandidate", 9: "StateType(9)"} {
		if got := s.String(); got != want {
			t.Errorf("StateType String = %q, want %q", got, want)
		}
	}
	m := Message{Type: MsgApp, From: 1, To: 2, Term: 3, LogTerm: 2, Index: 5, Commit: 4, Entries: make([]Entry, 2), Reject: true, RejectHint: 3}
	if got, want := m.String(), "MsgApp 1->2 t3 lt2 i5 c4 n2 rej=true hint=3"; got != want {
		t.Errorf("Message.String() = %q, want %q", got, want)
	}
	local := map[MessageType]bool{MsgHup: true, MsgBeat: true, MsgCheckQuorum: true, MsgUnreachable: true, MsgSnapStatus: true}
	resp := map[MessageType]bool{MsgAppResp: true, MsgVoteResp: true, MsgPreVoteResp: true, MsgHeartbeatResp: true, MsgReadIndexResp: true}
	for ty := MessageType(1); ty <= msgTypeMax; ty++ {
		if ty.IsLocal() != local[ty] || ty.isResponse() != resp[ty] {
			t.Errorf("%v: IsLocal %v isResponse %v", ty, ty.IsLocal(), ty.isResponse())
		}
	}
	if !(HardState{}).IsEmpty() || (HardState{Commit: 1}).IsEmpty() {
		t.Error("HardState.IsEmpty")
	}
	if !(Snapshot{}).IsEmpty() || (Snapshot{Meta: SnapshotMeta{Index: 1}}).IsEmpty() {
		t.Error("Snapshot.IsEmpty")
	}
}

// The core draws randomness only from Config.Seed: two nodes built from
// the same seed and driven the same way behave identically.
func TestNodeDeterministic(t *testing.T) {
	run := func() []int {
		nw := newNetwork(t, []uint64{1, 2, 3}, nil, nil)
		var out []int
		for range 3 {
			nw.isolate(1)
			start := nw.raft(1).term
			ticks := 0
			for nw.raft(1).term == start {
				nw.tick(1, 1)
				ticks++
			}
			out = append(out, ticks)
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different timeouts: %v vs %v", a, b)
		}
	}
}
