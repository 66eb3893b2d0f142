package tracker

import (
	"slices"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/consensus/quorum"
)

func newProgress(state StateType, match, next uint64, inflight int) *Progress {
	pr := &Progress{Match: match, Next: next, Inflights: NewInflights(inflight)}
	pr.State = state
	return pr
}

func TestStateTypeString(t *testing.T) {
	for s, want := range map[StateType]string{StateProbe: "StateProbe", StateReplicate: "StateReplicate", StateSnapshot: "StateSnapshot", 7: "StateType(7)"} {
		if got := s.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestProgressBecomeProbe(t *testing.T) {
	tests := []struct {
		name     string
		pr       *Progress
		wantNext uint64
	}{
		{"from replicate", newProgress(StateReplicate, 5, 12, 4), 6},
		{"from probe", newProgress(StateProbe, 3, 9, 4), 4},
		{"from snapshot, snapshot past match", func() *Progress {
			pr := newProgress(StateProbe, 3, 4, 4)
			pr.BecomeSnapshot(20)
			return pr
		}(), 21},
		{"from snapshot, match past snapshot", func() *Progress {
			pr := newProgress(StateProbe, 3, 4, 4)
			pr.BecomeSnapshot(20)
			pr.Match = 25
			return pr
		}(), 26},
		{"from failed snapshot", func() *Progress {
			pr := newProgress(StateProbe, 3, 4, 4)
			pr.BecomeSnapshot(20)
			pr.PendingSnapshot = 0
			return pr
		}(), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.pr.ProbeSent = true
			tt.pr.Inflights.Add(100)
			tt.pr.BecomeProbe()
			if tt.pr.State != StateProbe || tt.pr.Next != tt.wantNext || tt.pr.ProbeSent || tt.pr.PendingSnapshot != 0 || tt.pr.Inflights.Count() != 0 {
				t.Fatalf("after BecomeProbe: %+v, want probe with next %d, clean", tt.pr, tt.wantNext)
			}
		})
	}
}

func TestProgressBecomeReplicateAndSnapshot(t *testing.T) {
	pr := newProgress(StateProbe, 7, 3, 4)
	pr.ProbeSent = true
	pr.BecomeReplicate()
	if pr.State != StateReplicate || pr.Next != 8 || pr.ProbeSent {
		t.Fatalf("BecomeReplicate: %+v", pr)
	}
	pr.Inflights.Add(9)
	pr.BecomeSnapshot(30)
	if pr.State != StateSnapshot || pr.PendingSnapshot != 30 || pr.Inflights.Count() != 0 {
		t.Fatalf("BecomeSnapshot: %+v", pr)
	}
	if !pr.IsPaused() {
		t.Fatal("a follower receiving a snapshot must be paused")
	}
}

func TestProgressMaybeUpdate(t *testing.T) {
	pr := newProgress(StateProbe, 5, 6, 4)
	pr.ProbeSent = true
	if pr.MaybeUpdate(4) {
		t.Fatal("an older index must not update")
	}
	if pr.Match != 5 || pr.Next != 6 || !pr.ProbeSent {
		t.Fatalf("stale update changed progress: %+v", pr)
	}
	if !pr.MaybeUpdate(9) {
		t.Fatal("a newer index must update")
	}
	if pr.Match != 9 || pr.Next != 10 || pr.ProbeSent {
		t.Fatalf("after update: %+v", pr)
	}
	// Next never moves back.
	pr.OptimisticUpdate(20)
	if pr.MaybeUpdate(12) != true || pr.Next != 21 || pr.Match != 12 {
		t.Fatalf("update below Next: %+v", pr)
	}
}

func TestProgressMaybeDecrTo(t *testing.T) {
	tests := []struct {
		name             string
		state            StateType
		match, next      uint64
		rejected, hint   uint64
		want             bool
		wantNext         uint64
		wantProbeCleared bool
	}{
		// Replicate: a rejection at or below Match is stale.
		{"replicate stale", StateReplicate, 5, 10, 5, 5, false, 10, false},
		{"replicate stale below", StateReplicate, 5, 10, 3, 1, false, 10, false},
		{"replicate rejection", StateReplicate, 5, 10, 9, 2, true, 6, false},
		// Probe: only a rejection of the append just sent (Next-1) counts.
		{"probe stale", StateProbe, 0, 10, 5, 5, false, 10, false},
		{"probe uses hint", StateProbe, 0, 10, 9, 4, true, 5, true},
		{"probe hint past rejected", StateProbe, 0, 10, 9, 100, true, 9, true},
		{"probe not below match+1", StateProbe, 3, 10, 9, 0, true, 4, true},
		{"probe hint 0", StateProbe, 0, 10, 9, 0, true, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newProgress(tt.state, tt.match, tt.next, 4)
			pr.ProbeSent = true
			if got := pr.MaybeDecrTo(tt.rejected, tt.hint); got != tt.want {
				t.Fatalf("MaybeDecrTo(%d, %d) = %v, want %v", tt.rejected, tt.hint, got, tt.want)
			}
			if pr.Next != tt.wantNext {
				t.Fatalf("Next = %d, want %d", pr.Next, tt.wantNext)
			}
			if pr.ProbeSent == tt.wantProbeCleared {
				t.Fatalf("ProbeSent = %v, want cleared=%v", pr.ProbeSent, tt.wantProbeCleared)
			}
			if pr.Match != tt.match {
				t.Fatalf("Match changed to %d", pr.Match)
			}
		})
	}
}

func TestProgressIsPaused(t *testing.T) {
	pr := newProgress(StateProbe, 0, 1, 2)
	if pr.IsPaused() {
		t.Fatal("a fresh probe is not paused")
	}
	pr.ProbeSent = true
	if !pr.IsPaused() {
		t.Fatal("a probe with an append outstanding is paused")
	}
	pr.BecomeReplicate()
	pr.Inflights.Add(1)
	if pr.IsPaused() {
		t.Fatal("replicate with room is not paused")
	}
	pr.Inflights.Add(2)
	if !pr.IsPaused() {
		t.Fatal("replicate with a full window is paused")
	}
	if s := pr.String(); !strings.Contains(s, "StateReplicate") || !strings.Contains(s, "paused=true") || !strings.Contains(s, "inflight=2") {
		t.Fatalf("String() = %q", s)
	}
}

// A full round of state transitions, as the leader drives them.
func TestProgressLifecycle(t *testing.T) {
	pr := newProgress(StateProbe, 0, 11, 3)
	// Probe rejected down to the follower's end, then accepted.
	if !pr.MaybeDecrTo(10, 4) || pr.Next != 5 {
		t.Fatalf("probe backoff: %+v", pr)
	}
	pr.MaybeUpdate(6)
	pr.BecomeReplicate()
	for _, last := range []uint64{8, 9, 10} {
		pr.OptimisticUpdate(last)
		pr.Inflights.Add(last)
	}
	if !pr.IsPaused() || pr.Next != 11 {
		t.Fatalf("replicate window: %+v", pr)
	}
	pr.MaybeUpdate(9)
	pr.Inflights.FreeLE(9)
	if pr.IsPaused() || pr.Inflights.Count() != 1 {
		t.Fatalf("after ack: %+v", pr)
	}
	// A rejection moves it back to probing after Match.
	if !pr.MaybeDecrTo(10, 9) {
		t.Fatal("rejection above match refused")
	}
	pr.BecomeProbe()
	if pr.State != StateProbe || pr.Next != 10 {
		t.Fatalf("back to probe: %+v", pr)
	}
	pr.BecomeSnapshot(50)
	pr.MaybeUpdate(50)
	pr.BecomeProbe()
	if pr.Next != 51 {
		t.Fatalf("after snapshot: %+v", pr)
	}
}

func TestInflights(t *testing.T) {
	in := NewInflights(4)
	if in.Full() || in.Count() != 0 {
		t.Fatal("fresh window not empty")
	}
	for _, i := range []uint64{1, 2, 3, 4} {
		in.Add(i)
	}
	if !in.Full() || in.Count() != 4 {
		t.Fatalf("Full=%v Count=%d after 4 adds", in.Full(), in.Count())
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Add on a full window must panic")
			}
		}()
		in.Add(5)
	}()
	in.FreeLE(2)
	if in.Count() != 2 || in.Full() {
		t.Fatalf("FreeLE(2): count %d", in.Count())
	}
	// Wrap around the ring.
	in.Add(5)
	in.Add(6)
	if !in.Full() {
		t.Fatal("not full after wrapping")
	}
	in.FreeFirstOne()
	if in.Count() != 3 || in.buf[in.start] != 4 {
		t.Fatalf("FreeFirstOne: count %d, first %d", in.Count(), in.buf[in.start])
	}
	in.FreeLE(0) // nothing
	if in.Count() != 3 {
		t.Fatalf("FreeLE(0) freed something: %d", in.Count())
	}
	in.FreeLE(6)
	if in.Count() != 0 || in.start != 0 {
		t.Fatalf("FreeLE(6): count %d start %d", in.Count(), in.start)
	}
	in.FreeFirstOne() // on empty: no-op
	in.Add(7)
	in.Add(8)
	in.Reset()
	if in.Count() != 0 || in.Full() {
		t.Fatal("Reset did not empty the window")
	}
	in.Add(9)
	if in.Count() != 1 {
		t.Fatal("Add after Reset")
	}
}

func TestInflightsMinimumSize(t *testing.T) {
	for _, n := range []int{-3, 0, 1} {
		in := NewInflights(n)
		in.Add(1)
		if !in.Full() {
			t.Fatalf("NewInflights(%d) holds more than one", n)
		}
	}
}

// FreeLE frees exactly the prefix with last index <= to, however often
// the ring wraps.
func TestInflightsRingModel(t *testing.T) {
	in := NewInflights(5)
	var model []uint64
	next := uint64(1)
	for step := range 500 {
		switch {
		case step%3 != 2 && !in.Full():
			in.Add(next)
			model = append(model, next)
			next++
		case step%7 == 0:
			in.FreeFirstOne()
			if len(model) > 0 {
				model = model[1:]
			}
		default:
			to := next - uint64(step%4)
			in.FreeLE(to)
			for len(model) > 0 && model[0] <= to {
				model = model[1:]
			}
		}
		if in.Count() != len(model) || in.Full() != (len(model) == 5) {
			t.Fatalf("step %d: count %d, model %v", step, in.Count(), model)
		}
	}
}

func TestTrackerMembership(t *testing.T) {
	tr := New(8)
	tr.AddVoter(3, 10)
	tr.AddVoter(1, 10)
	tr.AddLearner(5, 10)
	tr.AddVoter(2, 0)
	if !slices.Equal(tr.Voters, []uint64{1, 2, 3}) || !slices.Equal(tr.Learners, []uint64{5}) {
		t.Fatalf("voters %v learners %v", tr.Voters, tr.Learners)
	}
	if !slices.Equal(tr.IDs(), []uint64{1, 2, 3, 5}) {
		t.Fatalf("IDs = %v", tr.IDs())
	}
	if tr.Progress[2].Next != 1 {
		t.Fatalf("Next for next=0 is %d, want 1", tr.Progress[2].Next)
	}
	if !tr.IsVoter(1) || tr.IsVoter(5) || !tr.IsLearner(5) || tr.IsLearner(1) || tr.IsVoter(9) {
		t.Fatal("IsVoter/IsLearner wrong")
	}
	if !tr.Progress[5].IsLearner || tr.Progress[1].IsLearner || tr.Progress[5].Inflights == nil {
		t.Fatal("progress flags wrong")
	}

	// Slices handed out earlier are not mutated by later changes.
	voters := tr.Voters
	tr.AddVoter(4, 10)
	tr.Remove(2)
	if !slices.Equal(voters, []uint64{1, 2, 3}) {
		t.Fatalf("earlier Voters slice mutated: %v", voters)
	}

	// Promoting a learner keeps its progress.
	tr.Progress[5].Match = 42
	tr.AddVoter(5, 99)
	if !tr.IsVoter(5) || tr.IsLearner(5) || tr.Progress[5].Match != 42 || tr.Progress[5].IsLearner {
		t.Fatalf("promotion: %+v", tr.Progress[5])
	}
	// Idempotent adds.
	tr.AddVoter(5, 1)
	tr.AddLearner(6, 1)
	tr.AddLearner(6, 1)
	if !slices.Equal(tr.Voters, []uint64{1, 3, 4, 5}) || !slices.Equal(tr.Learners, []uint64{6}) {
		t.Fatalf("voters %v learners %v", tr.Voters, tr.Learners)
	}
	// Removing absent members is a no-op; removing drops progress.
	tr.Remove(77)
	tr.Remove(6)
	tr.Remove(3)
	if _, ok := tr.Progress[3]; ok || tr.IsLearner(6) || len(tr.Progress) != 3 {
		t.Fatalf("after removals: voters %v learners %v progress %d", tr.Voters, tr.Learners, len(tr.Progress))
	}
	var visited []uint64
	tr.Visit(func(id uint64, pr *Progress) {
		if pr != tr.Progress[id] {
			t.Fatalf("Visit passed the wrong progress for %d", id)
		}
		visited = append(visited, id)
	})
	if !slices.Equal(visited, []uint64{1, 4, 5}) {
		t.Fatalf("Visit order %v", visited)
	}
}

func TestTrackerCommitted(t *testing.T) {
	tr := New(8)
	for _, id := range []uint64{1, 2, 3} {
		tr.AddVoter(id, 1)
	}
	tr.AddLearner(4, 1)
	set := func(m map[uint64]uint64) {
		for id, v := range m {
			tr.Progress[id].Match = v
		}
	}
	set(map[uint64]uint64{1: 10, 2: 4, 3: 7, 4: 100})
	if got := tr.Committed(); got != 7 {
		t.Fatalf("Committed = %d, want 7 (learners do not count)", got)
	}
	set(map[uint64]uint64{2: 0, 3: 0})
	if got := tr.Committed(); got != 0 {
		t.Fatalf("Committed = %d, want 0", got)
	}
	// A voter without progress (never happens in the core) counts as 0.
	delete(tr.Progress, 2)
	tr.Progress[3].Match = 5
	if got := tr.Committed(); got != 5 {
		t.Fatalf("Committed = %d, want 5", got)
	}
}

func TestTrackerVotes(t *testing.T) {
	tr := New(8)
	for _, id := range []uint64{1, 2, 3, 4, 5} {
		tr.AddVoter(id, 1)
	}
	tr.AddLearner(6, 1)
	check := func(g, r int, res quorum.VoteResult) {
		t.Helper()
		gg, rr, got := tr.TallyVotes()
		if gg != g || rr != r || got != res {
			t.Fatalf("TallyVotes = %d, %d, %v; want %d, %d, %v", gg, rr, got, g, r, res)
		}
	}
	check(0, 0, quorum.VotePending)
	tr.RecordVote(1, true)
	tr.RecordVote(6, true) // a learner's vote does not count
	tr.RecordVote(2, false)
	tr.RecordVote(2, true) // only the first answer counts
	check(1, 1, quorum.VotePending)
	tr.RecordVote(3, true)
	check(2, 1, quorum.VotePending)
	tr.RecordVote(4, true)
	check(3, 1, quorum.VoteWon)

	tr.ResetVotes()
	check(0, 0, quorum.VotePending)
	tr.RecordVote(1, true)
	tr.RecordVote(2, false)
	tr.RecordVote(3, false)
	tr.RecordVote(4, false)
	check(1, 3, quorum.VoteLost)

	// Removing a member drops its vote.
	tr.Remove(4)
	check(1, 2, quorum.VoteLost) // 1 granted + 1 missing of 4 voters cannot reach 3
}

func TestTrackerQuorumActive(t *testing.T) {
	tr := New(8)
	for _, id := range []uint64{1, 2, 3, 4} {
		tr.AddVoter(id, 1)
	}
	tr.AddLearner(5, 1)
	tr.Progress[5].RecentActive = true
	tr.Progress[1].RecentActive = true
	tr.Progress[2].RecentActive = true
	if tr.QuorumActive() {
		t.Fatal("2 of 4 voters (plus a learner) is not a quorum")
	}
	tr.Progress[4].RecentActive = true
	if !tr.QuorumActive() {
		t.Fatal("3 of 4 voters is a quorum")
	}
}
