package tracker

import "fmt"

// StateType is how the leader is currently replicating to a follower.
type StateType uint8

const (
	// StateProbe: the leader does not know where the follower's log ends;
	// it sends one append at a time and waits for the answer.
	StateProbe StateType = iota
	// StateReplicate: the logs match up to Match; appends are streamed
	// optimistically, bounded by the inflight window.
	StateReplicate
	// StateSnapshot: the entries the follower needs are compacted away; a
	// snapshot is on its way and nothing else is sent.
	StateSnapshot
)

func (s StateType) String() string {
	switch s {
	case StateProbe:
		return "StateProbe"
	case StateReplicate:
		return "StateReplicate"
	case StateSnapshot:
		return "StateSnapshot"
	}
	return fmt.Sprintf("StateType(%d)", uint8(s))
}

// Progress is the leader's view of one follower.
type Progress struct {
	// Match is the highest index known to be in the follower's log.
	// Invariant: Match < Next.
	Match, Next uint64
	State       StateType
	// PendingSnapshot is the index of the snapshot being sent (StateSnapshot).
	PendingSnapshot uint64
	// RecentActive is set by any message from the follower and cleared by
	// the leader's CheckQuorum round.
	RecentActive bool
	// ProbeSent pauses a probing follower after one append until it answers
	// (or a heartbeat response arrives).
	ProbeSent bool
	Inflights *Inflights
	IsLearner bool
	// LeaseTick is the leader's tick (plus one) at which it sent the latest
	// heartbeat this follower answered; 0 when none was answered. It
	// anchors lease reads.
	LeaseTick uint64
}

func (pr *Progress) reset(s StateType) {
	pr.ProbeSent = false
	pr.PendingSnapshot = 0
	pr.State = s
	pr.Inflights.Reset()
}

// BecomeProbe moves to probing, resuming after Match (or after the
// snapshot that was being sent).
func (pr *Progress) BecomeProbe() {
	if pr.State == StateSnapshot {
		pending := pr.PendingSnapshot
		pr.reset(StateProbe)
		pr.Next = max(pr.Match+1, pending+1)
		return
	}
	pr.reset(StateProbe)
	pr.Next = pr.Match + 1
}

// BecomeReplicate moves to streaming appends from Match+1.
func (pr *Progress) BecomeReplicate() {
	pr.reset(StateReplicate)
	pr.Next = pr.Match + 1
}

// BecomeSnapshot records that a snapshot at index snap is being sent.
func (pr *Progress) BecomeSnapshot(snap uint64) {
	pr.reset(StateSnapshot)
	pr.PendingSnapshot = snap
}

// MaybeUpdate records that the follower holds the log up to n. It reports
// whether Match moved.
func (pr *Progress) MaybeUpdate(n uint64) bool {
	updated := false
	if pr.Match < n {
		pr.Match = n
		updated = true
		pr.ProbeSent = false
	}
	pr.Next = max(pr.Next, n+1)
	return updated
}

// OptimisticUpdate advances Next after streaming an append ending at n.
func (pr *Progress) OptimisticUpdate(n uint64) { pr.Next = n + 1 }

// MaybeDecrTo handles a rejected append at index rejected, with the
// follower's hint of where the logs might match. It reports false for a
// stale rejection (one that answers an append older than our view).
func (pr *Progress) MaybeDecrTo(rejected, hint uint64) bool {
	if pr.State == StateReplicate {
		if rejected <= pr.Match {
			return false
		}
		pr.Next = pr.Match + 1
		return true
	}
	if pr.Next-1 != rejected {
		return false
	}
	pr.Next = max(min(rejected, hint+1), pr.Match+1)
	pr.ProbeSent = false
	return true
}

// IsPaused reports whether the leader must hold off sending appends.
func (pr *Progress) IsPaused() bool {
	switch pr.State {
	case StateProbe:
		return pr.ProbeSent
	case StateReplicate:
		return pr.Inflights.Full()
	}
	return true
}

func (pr *Progress) String() string {
	return fmt.Sprintf("%s match=%d next=%d learner=%v paused=%v pending=%d inflight=%d",
		pr.State, pr.Match, pr.Next, pr.IsLearner, pr.IsPaused(), pr.PendingSnapshot, pr.Inflights.Count())
}
