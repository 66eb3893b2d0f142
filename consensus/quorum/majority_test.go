package quorum

import (
	"math"
	"testing"
)

func TestMajority(t *testing.T) {
	want := []int{0: 1, 1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 4, 8: 5, 9: 5}
	for n, w := range want {
		if got := Majority(n); got != w {
			t.Errorf("Majority(%d) = %d, want %d", n, got, w)
		}
	}
}

// acks builds an acked function from a map; IDs absent from it have not
// acknowledged anything.
func acks(m map[uint64]uint64) func(uint64) (uint64, bool) {
	return func(id uint64) (uint64, bool) {
		v, ok := m[id]
		return v, ok
	}
}

func ids(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

func TestCommittedIndex(t *testing.T) {
	tests := []struct {
		name   string
		voters []uint64
		acked  map[uint64]uint64
		want   uint64
	}{
		{"no voters", nil, nil, math.MaxUint64},
		{"1 voter", ids(1), map[uint64]uint64{1: 7}, 7},
		{"1 voter, no ack", ids(1), nil, 0},
		{"2 voters need both", ids(2), map[uint64]uint64{1: 9, 2: 4}, 4},
		{"2 voters, one missing", ids(2), map[uint64]uint64{1: 9}, 0},
		{"3 voters, median", ids(3), map[uint64]uint64{1: 5, 2: 9, 3: 1}, 5},
		{"3 voters, one missing", ids(3), map[uint64]uint64{1: 5, 3: 8}, 5},
		{"3 voters, two missing", ids(3), map[uint64]uint64{2: 8}, 0},
		{"4 voters need 3", ids(4), map[uint64]uint64{1: 10, 2: 9, 3: 8, 4: 1}, 8},
		{"4 voters, two missing", ids(4), map[uint64]uint64{1: 10, 2: 9}, 0},
		{"5 voters need 3", ids(5), map[uint64]uint64{1: 1, 2: 2, 3: 3, 4: 4, 5: 5}, 3},
		{"5 voters, two missing", ids(5), map[uint64]uint64{1: 7, 2: 7, 3: 7}, 7},
		{"5 voters, three missing", ids(5), map[uint64]uint64{1: 7, 2: 7}, 0},
		{"6 voters need 4", ids(6), map[uint64]uint64{1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1}, 3},
		{"7 voters need 4", ids(7), map[uint64]uint64{1: 70, 2: 60, 3: 50, 4: 40, 5: 30, 6: 20, 7: 10}, 40},
		{"7 voters, three missing", ids(7), map[uint64]uint64{1: 70, 2: 60, 3: 50, 4: 40}, 40},
		{"7 voters, four missing", ids(7), map[uint64]uint64{1: 70, 2: 60, 3: 50}, 0},
		{"9 voters (heap path)", ids(9), map[uint64]uint64{1: 9, 2: 8, 3: 7, 4: 6, 5: 5, 6: 4, 7: 3, 8: 2, 9: 1}, 5},
		{"unsorted IDs", []uint64{30, 10, 20}, map[uint64]uint64{10: 3, 20: 2, 30: 1}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CommittedIndex(tt.voters, acks(tt.acked)); got != tt.want {
				t.Fatalf("CommittedIndex = %d, want %d", got, tt.want)
			}
		})
	}
}

// For every voter count, the result is acknowledged by a majority and no
// larger index is.
func TestCommittedIndexIsLargestMajorityIndex(t *testing.T) {
	for n := 1; n <= 9; n++ {
		voters := ids(n)
		m := map[uint64]uint64{}
		for i, id := range voters {
			m[id] = uint64((i*7 + 3) % 11)
		}
		got := CommittedIndex(voters, acks(m))
		count := func(idx uint64) int {
			c := 0
			for _, v := range m {
				if v >= idx {
					c++
				}
			}
			return c
		}
		if count(got) < Majority(n) {
			t.Errorf("n=%d: index %d acknowledged by %d < majority %d", n, got, count(got), Majority(n))
		}
		if count(got+1) >= Majority(n) {
			t.Errorf("n=%d: index %d is not the largest majority index", n, got)
		}
	}
}

func votes(m map[uint64]bool) func(uint64) (bool, bool) {
	return func(id uint64) (bool, bool) {
		v, ok := m[id]
		return v, ok
	}
}

func TestVote(t *testing.T) {
	tests := []struct {
		name   string
		voters []uint64
		votes  map[uint64]bool
		want   VoteResult
	}{
		{"no voters", nil, nil, VoteWon},
		{"1: granted", ids(1), map[uint64]bool{1: true}, VoteWon},
		{"1: rejected", ids(1), map[uint64]bool{1: false}, VoteLost},
		{"1: pending", ids(1), nil, VotePending},
		{"3: two granted", ids(3), map[uint64]bool{1: true, 2: true}, VoteWon},
		{"3: one granted, one rejected", ids(3), map[uint64]bool{1: true, 2: false}, VotePending},
		{"3: two rejected", ids(3), map[uint64]bool{1: true, 2: false, 3: false}, VoteLost},
		{"3: only self", ids(3), map[uint64]bool{1: true}, VotePending},
		{"4: two granted", ids(4), map[uint64]bool{1: true, 2: true}, VotePending},
		{"4: two rejected", ids(4), map[uint64]bool{1: true, 2: true, 3: false, 4: false}, VoteLost},
		{"4: three granted", ids(4), map[uint64]bool{1: true, 2: true, 3: true, 4: false}, VoteWon},
		{"5: three granted", ids(5), map[uint64]bool{1: true, 3: true, 5: true}, VoteWon},
		{"5: three rejected", ids(5), map[uint64]bool{1: true, 2: false, 3: false, 4: false}, VoteLost},
		{"7: non-voter votes ignored", ids(7), map[uint64]bool{1: true, 2: true, 3: true, 8: true, 9: true}, VotePending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Vote(tt.voters, votes(tt.votes)); got != tt.want {
				t.Fatalf("Vote = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVoteResultString(t *testing.T) {
	for r, want := range map[VoteResult]string{VotePending: "VotePending", VoteLost: "VoteLost", VoteWon: "VoteWon", 0: "VoteResult(?)", 9: "VoteResult(?)"} {
		if got := r.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", r, got, want)
		}
	}
}

func BenchmarkCommittedIndex(b *testing.B) {
	for _, n := range []int{3, 5, 7, 9} {
		voters := ids(n)
		m := map[uint64]uint64{}
		for _, id := range voters {
			m[id] = id * 3
		}
		f := acks(m)
		b.Run(string(rune('0'+n)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				CommittedIndex(voters, f)
			}
		})
	}
}
