package tracker

import (
	"slices"

	"github.com/cairnkv/cairn/consensus/quorum"
)

// Tracker holds the membership, each member's Progress and the votes of
// the current election.
//
// Invariant: Voters and Learners are sorted, disjoint, and every ID in
// them has a Progress (and nothing else has).
type Tracker struct {
	Voters   []uint64
	Learners []uint64
	Progress map[uint64]*Progress
	votes    map[uint64]bool
	// MaxInflight bounds each follower's inflight window.
	MaxInflight int
}

// New returns an empty tracker.
func New(maxInflight int) *Tracker {
	return &Tracker{Progress: map[uint64]*Progress{}, votes: map[uint64]bool{}, MaxInflight: maxInflight}
}

// IDs returns every member, ascending.
func (t *Tracker) IDs() []uint64 {
	ids := make([]uint64, 0, len(t.Voters)+len(t.Learners))
	ids = append(ids, t.Voters...)
	ids = append(ids, t.Learners...)
	slices.Sort(ids)
	return ids
}

// Visit calls f for every member in ascending ID order.
func (t *Tracker) Visit(f func(id uint64, pr *Progress)) {
	for _, id := range t.IDs() {
		f(id, t.Progress[id])
	}
}

// IsVoter reports whether id votes.
func (t *Tracker) IsVoter(id uint64) bool {
	_, ok := slices.BinarySearch(t.Voters, id)
	return ok
}

// IsLearner reports whether id is a learner.
func (t *Tracker) IsLearner(id uint64) bool {
	_, ok := slices.BinarySearch(t.Learners, id)
	return ok
}

// AddVoter makes id a voter (promoting a learner), creating its Progress
// with Next = next if it has none.
func (t *Tracker) AddVoter(id, next uint64) {
	t.Learners = remove(t.Learners, id)
	t.Voters = insert(t.Voters, id)
	t.ensure(id, next).IsLearner = false
}

// AddLearner makes id a learner. It must not be a voter.
func (t *Tracker) AddLearner(id, next uint64) {
	t.Learners = insert(t.Learners, id)
	t.ensure(id, next).IsLearner = true
}

// Remove drops id from the membership.
func (t *Tracker) Remove(id uint64) {
	t.Voters = remove(t.Voters, id)
	t.Learners = remove(t.Learners, id)
	delete(t.Progress, id)
	delete(t.votes, id)
}

func (t *Tracker) ensure(id, next uint64) *Progress {
	pr, ok := t.Progress[id]
	if !ok {
		pr = &Progress{Next: max(next, 1), Inflights: NewInflights(t.MaxInflight)}
		t.Progress[id] = pr
	}
	return pr
}

// Committed is the largest index a majority of voters holds.
func (t *Tracker) Committed() uint64 {
	return quorum.CommittedIndex(t.Voters, func(id uint64) (uint64, bool) {
		pr, ok := t.Progress[id]
		if !ok {
			return 0, false
		}
		return pr.Match, true
	})
}

// ResetVotes starts a new election.
func (t *Tracker) ResetVotes() { clear(t.votes) }

// RecordVote notes id's answer; only its first answer counts.
func (t *Tracker) RecordVote(id uint64, granted bool) {
	if _, ok := t.votes[id]; !ok {
		t.votes[id] = granted
	}
}

// TallyVotes returns the granted and rejected counts among voters and the
// election's result.
func (t *Tracker) TallyVotes() (granted, rejected int, result quorum.VoteResult) {
	for _, id := range t.Voters {
		if v, ok := t.votes[id]; ok {
			if v {
				granted++
			} else {
				rejected++
			}
		}
	}
	result = quorum.Vote(t.Voters, func(id uint64) (bool, bool) {
		v, ok := t.votes[id]
		return v, ok
	})
	return granted, rejected, result
}

// QuorumActive reports whether a majority of voters was recently active.
func (t *Tracker) QuorumActive() bool {
	active := 0
	for _, id := range t.Voters {
		if t.Progress[id].RecentActive {
			active++
		}
	}
	return active >= quorum.Majority(len(t.Voters))
}

func insert(s []uint64, id uint64) []uint64 {
	i, ok := slices.BinarySearch(s, id)
	if ok {
		return s
	}
	return slices.Insert(slices.Clone(s), i, id)
}

func remove(s []uint64, id uint64) []uint64 {
	i, ok := slices.BinarySearch(s, id)
	if !ok {
		return s
	}
	return slices.Delete(slices.Clone(s), i, i+1)
}
