package consensus

import (
	"errors"
	"testing"
)

// Impossible transitions are programming errors and panic.
func TestRaftImpossibleTransitionsPanic(t *testing.T) {
	leader := makeState(t, StateLeader, []uint64{1, 2, 3})
	mustPanic(t, "leader cannot become candidate", leader.becomeCandidate)
	mustPanic(t, "leader cannot become pre-candidate", leader.becomePreCandidate)
	follower := makeState(t, StateFollower, []uint64{1, 2, 3})
	mustPanic(t, "follower cannot become leader", follower.becomeLeader)
	for _, ty := range []MessageType{MsgVote, MsgVoteResp, MsgPreVote, MsgPreVoteResp} {
		mustPanic(t, "without a term", func() { follower.send(Message{Type: ty, To: 2}) })
	}
}

// snapStorage lets a test break the leader's snapshot.
type snapStorage struct {
	*MemoryStorage
	err error
}

func (s *snapStorage) Snapshot() (Snapshot, error) {
	if s.err != nil {
		return Snapshot{}, s.err
	}
	return s.MemoryStorage.Snapshot()
}

// A leader that needs a snapshot its storage cannot give cannot continue.
func TestRaftMissingSnapshotPanics(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"compacted without a snapshot", nil, "storage has none"},
		{"snapshot error", errDisk, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ms := NewMemoryStorage()
			ms.SetConfState(ConfState{Voters: []uint64{1, 2}})
			must(ms.Append(entsAt(1, 1, 1, 1)))
			ms.SetHardState(HardState{Term: 1, Commit: 3})
			must(ms.Compact(2))
			cfg := netConfig(1, &snapStorage{MemoryStorage: ms, err: tt.err})
			r, err := newRaft(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			r.becomeCandidate()
			r.becomeLeader()
			pr := r.prs.Progress[2]
			pr.RecentActive = true
			pr.Next = 2 // entry 1 is compacted
			if tt.err != nil {
				mustPanicWith(t, tt.err, func() { r.sendAppend(2) })
				return
			}
			mustPanic(t, tt.want, func() { r.sendAppend(2) })
		})
	}
}

// compactingStorage reports entries compacted although FirstIndex says
// they are not, as a storage compacted concurrently would.
type compactingStorage struct{ *MemoryStorage }

func (compactingStorage) Entries(lo, hi, maxBytes uint64) ([]Entry, error) {
	return nil, ErrCompacted
}

func TestLogSliceCompactedConcurrently(t *testing.T) {
	ms := NewMemoryStorage()
	must(ms.Append(entsAt(1, 1, 1)))
	l := newLog(compactingStorage{ms}, noLimit)
	if _, err := l.slice(1, 3, noLimit); !errors.Is(err, ErrCompacted) {
		t.Fatalf("slice = %v, want ErrCompacted", err)
	}
}

// The read-only queue ignores acknowledgements and advances for unknown
// requests and registers each context once.
func TestReadOnlyQueue(t *testing.T) {
	ro := newReadOnly(ReadOnlySafe)
	voters := []uint64{1, 2, 3}
	if ro.lastPendingRequestCtx() != nil || ro.advance([]byte("x")) != nil || ro.recvAck(2, []byte("x"), voters) {
		t.Fatal("empty queue answered")
	}
	ro.addRequest(5, Message{Context: []byte("a")})
	ro.addRequest(6, Message{Context: []byte("a")}) // duplicate: ignored
	ro.addRequest(7, Message{Context: []byte("b")})
	if string(ro.lastPendingRequestCtx()) != "b" || len(ro.queue) != 2 {
		t.Fatalf("queue %v", ro.queue)
	}
	if ro.recvAck(1, []byte("b"), voters) {
		t.Fatal("one of three is not a quorum")
	}
	if !ro.recvAck(2, []byte("b"), voters) {
		t.Fatal("two of three is a quorum")
	}
	got := ro.advance([]byte("b"))
	if len(got) != 2 || got[0].index != 5 || got[1].index != 7 || len(ro.pending) != 0 || len(ro.queue) != 0 {
		t.Fatalf("advance returned %d requests", len(got))
	}
}
