package consensus

import (
	"errors"
	"sync"
)

// Errors a Storage returns.
var (
	// ErrCompacted: the requested index is below the first available one.
	ErrCompacted = errors.New("consensus: requested index is compacted")
	// ErrUnavailable: the requested index is past the last one.
	ErrUnavailable = errors.New("consensus: requested entry is unavailable")
	// ErrSnapOutOfDate: a snapshot older than the storage's was offered.
	ErrSnapOutOfDate = errors.New("consensus: snapshot is out of date")
)

// Storage is the caller's stable log, read by the core. The caller writes
// it (persisting each Ready) and the core only reads it. Entries below
// FirstIndex have been compacted into Snapshot.
//
// An error other than ErrCompacted or ErrUnavailable is fatal: the core
// panics with it, as it cannot continue on a log it cannot read.
type Storage interface {
	// InitialState returns the persisted hard state and membership.
	InitialState() (HardState, ConfState, error)
	// Entries returns entries [lo, hi), at least one if any exists, and
	// otherwise as many as fit in maxBytes of Data.
	Entries(lo, hi, maxBytes uint64) ([]Entry, error)
	// Term returns the term of entry i, for i in [FirstIndex-1, LastIndex]
	// (FirstIndex-1 is the snapshot's last entry).
	Term(i uint64) (uint64, error)
	// LastIndex returns the index of the last entry.
	LastIndex() (uint64, error)
	// FirstIndex returns the index of the first entry still available.
	FirstIndex() (uint64, error)
	// Snapshot returns the most recent snapshot.
	Snapshot() (Snapshot, error)
}

// MemoryStorage is a Storage held in memory, safe for concurrent use. The
// simulator and tests use it; a member keeps its log in the WAL.
type MemoryStorage struct {
	mu   sync.Mutex
	hard HardState
	snap Snapshot
	// ents[0] is a sentinel carrying the snapshot's index and term.
	// Invariant: ents[i].Index == ents[0].Index + i.
	ents []Entry
}

// NewMemoryStorage returns an empty storage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{ents: make([]Entry, 1)}
}

// InitialState implements Storage.
func (ms *MemoryStorage) InitialState() (HardState, ConfState, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.hard, cloneConfState(ms.snap.Meta.ConfState), nil
}

// SetHardState persists a hard state.
func (ms *MemoryStorage) SetHardState(h HardState) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.hard = h
}

// HardState returns the persisted hard state.
func (ms *MemoryStorage) HardState() HardState {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.hard
}

// SetConfState records the membership to report from InitialState (used
// when bootstrapping a new cluster without a snapshot).
func (ms *MemoryStorage) SetConfState(cs ConfState) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.snap.Meta.ConfState = cloneConfState(cs)
}

// Entries implements Storage.
func (ms *MemoryStorage) Entries(lo, hi, maxBytes uint64) ([]Entry, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	off := ms.ents[0].Index
	if lo <= off {
		return nil, ErrCompacted
	}
	if hi > ms.lastIndex()+1 {
		return nil, ErrUnavailable
	}
	ents := limitSize(ms.ents[lo-off:hi-off], maxBytes)
	return ents[:len(ents):len(ents)], nil
}

// Term implements Storage.
func (ms *MemoryStorage) Term(i uint64) (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	off := ms.ents[0].Index
	if i < off {
		return 0, ErrCompacted
	}
	if int(i-off) >= len(ms.ents) {
		return 0, ErrUnavailable
	}
	return ms.ents[i-off].Term, nil
}

// LastIndex implements Storage.
func (ms *MemoryStorage) LastIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.lastIndex(), nil
}

func (ms *MemoryStorage) lastIndex() uint64 { return ms.ents[0].Index + uint64(len(ms.ents)) - 1 }

// FirstIndex implements Storage.
func (ms *MemoryStorage) FirstIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.ents[0].Index + 1, nil
}

// Snapshot implements Storage.
func (ms *MemoryStorage) Snapshot() (Snapshot, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.snap, nil
}

// ApplySnapshot replaces the storage's contents with a snapshot.
func (ms *MemoryStorage) ApplySnapshot(s Snapshot) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.snap.Meta.Index >= s.Meta.Index {
		return ErrSnapOutOfDate
	}
	ms.snap = s
	ms.ents = []Entry{{Term: s.Meta.Term, Index: s.Meta.Index}}
	return nil
}

// CreateSnapshot records a snapshot of the application at index i (which
// must be applied and within the log), with membership cs.
func (ms *MemoryStorage) CreateSnapshot(i uint64, cs *ConfState, data []byte) (Snapshot, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if i <= ms.snap.Meta.Index {
		return Snapshot{}, ErrSnapOutOfDate
	}
	off := ms.ents[0].Index
	if i > ms.lastIndex() {
		return Snapshot{}, ErrUnavailable
	}
	ms.snap.Meta.Index = i
	ms.snap.Meta.Term = ms.ents[i-off].Term
	if cs != nil {
		ms.snap.Meta.ConfState = cloneConfState(*cs)
	}
	ms.snap.Data = data
	return ms.snap, nil
}

// Compact discards entries before compactIndex, which must not exceed the
// last index. The caller makes sure a snapshot covers them.
func (ms *MemoryStorage) Compact(compactIndex uint64) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	off := ms.ents[0].Index
	if compactIndex <= off {
		return ErrCompacted
	}
	if compactIndex > ms.lastIndex() {
		return ErrUnavailable
	}
	i := compactIndex - off
	ents := make([]Entry, 1, uint64(len(ms.ents))-i)
	ents[0] = Entry{Index: ms.ents[i].Index, Term: ms.ents[i].Term}
	ms.ents = append(ents, ms.ents[i+1:]...)
	return nil
}

// Append adds entries, overwriting any conflicting suffix. Entries below
// the first index are ignored.
func (ms *MemoryStorage) Append(ents []Entry) error {
	if len(ents) == 0 {
		return nil
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	first := ms.ents[0].Index + 1
	last := ents[len(ents)-1].Index
	if last < first {
		return nil
	}
	if first > ents[0].Index {
		ents = ents[first-ents[0].Index:]
	}
	off := ents[0].Index - ms.ents[0].Index
	switch {
	case uint64(len(ms.ents)) > off:
		ms.ents = append(ms.ents[:off:off], ents...)
	case uint64(len(ms.ents)) == off:
		ms.ents = append(ms.ents, ents...)
	default:
		return ErrUnavailable // a gap
	}
	return nil
}

func cloneConfState(cs ConfState) ConfState {
	return ConfState{Voters: append([]uint64(nil), cs.Voters...), Learners: append([]uint64(nil), cs.Learners...)}
}

// limitSize returns the longest prefix of ents (at least one entry) whose
// Data fits in maxBytes.
func limitSize(ents []Entry, maxBytes uint64) []Entry {
	if len(ents) == 0 {
		return ents
	}
	size := uint64(len(ents[0].Data))
	for i := 1; i < len(ents); i++ {
		size += uint64(len(ents[i].Data))
		if size > maxBytes {
			return ents[:i]
		}
	}
	return ents
}
