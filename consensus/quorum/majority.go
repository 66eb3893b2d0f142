package quorum

import (
	"math"
	"slices"
)

// VoteResult is the state of an election.
type VoteResult uint8

const (
	// VotePending means neither outcome is decided yet.
	VotePending VoteResult = iota + 1
	// VoteLost means a majority can no longer be reached.
	VoteLost
	// VoteWon means a majority granted the vote.
	VoteWon
)

func (r VoteResult) String() string {
	switch r {
	case VotePending:
		return "VotePending"
	case VoteLost:
		return "VoteLost"
	case VoteWon:
		return "VoteWon"
	}
	return "VoteResult(?)"
}

// Majority is the size of a majority of n voters.
func Majority(n int) int { return n/2 + 1 }

// CommittedIndex returns the largest index that a majority of voters has
// acknowledged; acked reports a voter's acknowledged index (a voter it
// does not know counts as 0). With no voters it returns math.MaxUint64, so
// that an empty configuration never holds back a joint computation.
func CommittedIndex(voters []uint64, acked func(id uint64) (uint64, bool)) uint64 {
	n := len(voters)
	if n == 0 {
		return math.MaxUint64
	}
	var stack [7]uint64
	idx := stack[:0]
	if n > len(stack) {
		idx = make([]uint64, 0, n)
	}
	for _, id := range voters {
		v, _ := acked(id)
		idx = append(idx, v)
	}
	slices.Sort(idx)
	// Ascending order: the element at n-Majority(n) is acknowledged by at
	// least Majority(n) voters (itself and everything above it).
	return idx[n-Majority(n)]
}

// Vote tallies an election among voters: votes maps a voter to its answer
// (absent: not yet answered).
func Vote(voters []uint64, votes func(id uint64) (granted, answered bool)) VoteResult {
	if len(voters) == 0 {
		return VoteWon
	}
	var granted, missing int
	for _, id := range voters {
		g, ok := votes(id)
		switch {
		case !ok:
			missing++
		case g:
			granted++
		}
	}
	q := Majority(len(voters))
	if granted >= q {
		return VoteWon
	}
	if granted+missing >= q {
		return VotePending
	}
	return VoteLost
}
