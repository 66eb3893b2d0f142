package consensus

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

// storageWith returns a MemoryStorage holding entries 3..5 (terms 3, 4, 5)
// after a dummy at 2 (term 2), as after compaction.
func storageWith(t *testing.T) *MemoryStorage {
	t.Helper()
	ms := NewMemoryStorage()
	must(ms.Append(entsAt(1, 1, 2, 3, 4, 5)))
	must(ms.Compact(2))
	return ms
}

func TestMemoryStorageEmpty(t *testing.T) {
	ms := NewMemoryStorage()
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	if first != 1 || last != 0 {
		t.Fatalf("first %d last %d, want 1 0", first, last)
	}
	if term, err := ms.Term(0); term != 0 || err != nil {
		t.Fatalf("Term(0) = %d, %v", term, err)
	}
	if _, err := ms.Term(1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Term(1) err %v", err)
	}
	hs, cs, err := ms.InitialState()
	if err != nil || !hs.IsEmpty() || len(cs.Voters)+len(cs.Learners) != 0 {
		t.Fatalf("InitialState = %v %v %v", hs, cs, err)
	}
	if s, _ := ms.Snapshot(); !s.IsEmpty() {
		t.Fatalf("empty storage has snapshot %+v", s.Meta)
	}
}

func TestMemoryStorageTerm(t *testing.T) {
	ms := storageWith(t)
	tests := []struct {
		i    uint64
		want uint64
		err  error
	}{
		{1, 0, ErrCompacted},
		{2, 2, nil},
		{3, 3, nil},
		{5, 5, nil},
		{6, 0, ErrUnavailable},
	}
	for _, tt := range tests {
		if got, err := ms.Term(tt.i); got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Term(%d) = %d, %v; want %d, %v", tt.i, got, err, tt.want, tt.err)
		}
	}
}

func TestMemoryStorageEntries(t *testing.T) {
	ms := NewMemoryStorage()
	for i := uint64(1); i <= 6; i++ {
		must(ms.Append([]Entry{{Index: i, Term: i, Data: make([]byte, 10)}}))
	}
	must(ms.Compact(2))
	tests := []struct {
		lo, hi, max uint64
		want        []uint64
		err         error
	}{
		{2, 4, noLimit, nil, ErrCompacted},
		{1, 4, noLimit, nil, ErrCompacted},
		{3, 8, noLimit, nil, ErrUnavailable},
		{3, 3, noLimit, []uint64{}, nil},
		{3, 7, noLimit, []uint64{3, 4, 5, 6}, nil},
		{3, 7, 0, []uint64{3}, nil},  // at least one
		{3, 7, 19, []uint64{3}, nil}, // second does not fit
		{3, 7, 20, []uint64{3, 4}, nil},
		{3, 7, 39, []uint64{3, 4, 5}, nil},
		{4, 5, 1, []uint64{4}, nil},
	}
	for _, tt := range tests {
		got, err := ms.Entries(tt.lo, tt.hi, tt.max)
		if !errors.Is(err, tt.err) {
			t.Errorf("Entries(%d,%d,%d) err %v, want %v", tt.lo, tt.hi, tt.max, err, tt.err)
			continue
		}
		if tt.err == nil && !slices.Equal(indexes(got), tt.want) {
			t.Errorf("Entries(%d,%d,%d) = %v, want %v", tt.lo, tt.hi, tt.max, indexes(got), tt.want)
		}
	}
	// Appending to a returned slice must not write into the storage.
	got, _ := ms.Entries(3, 5, noLimit)
	_ = append(got, Entry{Index: 99, Term: 99})
	if term, _ := ms.Term(5); term != 5 {
		t.Fatalf("appending to a returned slice overwrote entry 5 (term %d)", term)
	}
}

func TestMemoryStorageCompact(t *testing.T) {
	tests := []struct {
		at        uint64
		err       error
		wantFirst uint64
	}{
		{1, ErrCompacted, 3},
		{2, ErrCompacted, 3},
		{6, ErrUnavailable, 3},
		{3, nil, 4},
		{5, nil, 6},
	}
	for _, tt := range tests {
		ms := storageWith(t)
		err := ms.Compact(tt.at)
		first, _ := ms.FirstIndex()
		last, _ := ms.LastIndex()
		if !errors.Is(err, tt.err) || first != tt.wantFirst || last != 5 {
			t.Errorf("Compact(%d) = %v, first %d last %d; want %v, first %d last 5", tt.at, err, first, last, tt.err, tt.wantFirst)
		}
		if tt.err == nil {
			if term, err := ms.Term(tt.at); err != nil || term != tt.at {
				t.Errorf("after Compact(%d), Term(%d) = %d, %v: the compaction point keeps its term", tt.at, tt.at, term, err)
			}
		}
	}
}

func TestMemoryStorageCreateSnapshot(t *testing.T) {
	cs := &ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	tests := []struct {
		i    uint64
		cs   *ConfState
		err  error
		term uint64
	}{
		{2, cs, ErrSnapOutOfDate, 0},
		{6, cs, ErrUnavailable, 0},
		{4, cs, nil, 4},
		{5, nil, nil, 5},
	}
	for _, tt := range tests {
		ms := storageWith(t)
		// The storage's first snapshot is at index 2 once recorded.
		if _, err := ms.CreateSnapshot(2, &ConfState{Voters: []uint64{1}}, []byte("base")); err != nil {
			t.Fatal(err)
		}
		s, err := ms.CreateSnapshot(tt.i, tt.cs, []byte("data"))
		if !errors.Is(err, tt.err) {
			t.Errorf("CreateSnapshot(%d) err %v, want %v", tt.i, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		wantVoters := []uint64{1}
		if tt.cs != nil {
			wantVoters = tt.cs.Voters
		}
		if s.Meta.Index != tt.i || s.Meta.Term != tt.term || string(s.Data) != "data" || !slices.Equal(s.Meta.ConfState.Voters, wantVoters) {
			t.Errorf("CreateSnapshot(%d) = %+v", tt.i, s)
		}
		got, _ := ms.Snapshot()
		if got.Meta.Index != tt.i {
			t.Errorf("Snapshot() after CreateSnapshot(%d) is at %d", tt.i, got.Meta.Index)
		}
		// Creating a snapshot does not compact.
		if first, _ := ms.FirstIndex(); first != 3 {
			t.Errorf("CreateSnapshot compacted: first %d", first)
		}
	}
	// The membership is copied, not aliased.
	ms := storageWith(t)
	own := &ConfState{Voters: []uint64{1, 2}}
	if _, err := ms.CreateSnapshot(3, own, nil); err != nil {
		t.Fatal(err)
	}
	own.Voters[0] = 99
	if _, cs, _ := ms.InitialState(); cs.Voters[0] != 1 {
		t.Fatal("CreateSnapshot aliases the caller's ConfState")
	}
}

func TestMemoryStorageApplySnapshot(t *testing.T) {
	ms := storageWith(t)
	s := Snapshot{Meta: SnapshotMeta{Index: 10, Term: 7, ConfState: ConfState{Voters: []uint64{1, 2}}}, Data: []byte("x")}
	if err := ms.ApplySnapshot(s); err != nil {
		t.Fatal(err)
	}
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	term, _ := ms.Term(10)
	if first != 11 || last != 10 || term != 7 {
		t.Fatalf("after ApplySnapshot: first %d last %d term(10) %d", first, last, term)
	}
	if _, err := ms.Entries(10, 11, noLimit); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Entries(10) err %v", err)
	}
	_, cs, _ := ms.InitialState()
	if !slices.Equal(cs.Voters, []uint64{1, 2}) {
		t.Fatalf("InitialState membership %v", cs)
	}
	if err := ms.ApplySnapshot(s); !errors.Is(err, ErrSnapOutOfDate) {
		t.Fatalf("re-applying the same snapshot: %v", err)
	}
	older := s
	older.Meta.Index = 9
	if err := ms.ApplySnapshot(older); !errors.Is(err, ErrSnapOutOfDate) {
		t.Fatalf("applying an older snapshot: %v", err)
	}
	// Entries continue after the snapshot.
	if err := ms.Append(entsAt(11, 7, 8)); err != nil {
		t.Fatal(err)
	}
	if last, _ := ms.LastIndex(); last != 12 {
		t.Fatalf("last %d after appending past the snapshot", last)
	}
}

func TestMemoryStorageAppend(t *testing.T) {
	tests := []struct {
		name      string
		app       []Entry
		err       error
		wantTerms []uint64 // terms of entries 3..
	}{
		{"nothing", nil, nil, []uint64{3, 4, 5}},
		{"all compacted", entsAt(1, 9, 9), nil, []uint64{3, 4, 5}},
		{"same entries", entsAt(3, 3, 4, 5), nil, []uint64{3, 4, 5}},
		{"partly compacted, overwriting", entsAt(1, 9, 9, 9, 9), nil, []uint64{9, 9}},
		{"truncate suffix", entsAt(4, 6), nil, []uint64{3, 6}},
		{"truncate and extend", entsAt(4, 6, 6, 6), nil, []uint64{3, 6, 6, 6}},
		{"extend", entsAt(6, 6), nil, []uint64{3, 4, 5, 6}},
		{"overwrite from first", entsAt(3, 7), nil, []uint64{7}},
		{"gap", entsAt(7, 6), ErrUnavailable, []uint64{3, 4, 5}},
	}
	for _, tt := range tests {
		ms := storageWith(t)
		err := ms.Append(tt.app)
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: Append err %v, want %v", tt.name, err, tt.err)
			continue
		}
		last, _ := ms.LastIndex()
		got, _ := ms.Entries(3, last+1, noLimit)
		if !slices.Equal(terms(got), tt.wantTerms) {
			t.Errorf("%s: terms %v, want %v", tt.name, terms(got), tt.wantTerms)
		}
		if term, _ := ms.Term(2); term != 2 {
			t.Errorf("%s: the dummy entry changed: term %d", tt.name, term)
		}
	}
	// The storage does not alias the caller's slice.
	ms := NewMemoryStorage()
	mine := entsAt(1, 1, 1)
	must(ms.Append(mine))
	mine[0].Term = 42
	if term, _ := ms.Term(1); term != 1 {
		t.Fatal("Append aliases the caller's slice")
	}
}

func TestMemoryStorageHardAndConfState(t *testing.T) {
	ms := NewMemoryStorage()
	hs := HardState{Term: 3, Vote: 2, Commit: 1}
	ms.SetHardState(hs)
	if ms.HardState() != hs {
		t.Fatalf("HardState() = %v", ms.HardState())
	}
	cs := ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}
	ms.SetConfState(cs)
	cs.Voters[0] = 9
	gotHS, gotCS, err := ms.InitialState()
	if err != nil || gotHS != hs || !slices.Equal(gotCS.Voters, []uint64{1, 2}) || !slices.Equal(gotCS.Learners, []uint64{3}) {
		t.Fatalf("InitialState = %v %v %v", gotHS, gotCS, err)
	}
	gotCS.Learners[0] = 7
	if _, again, _ := ms.InitialState(); again.Learners[0] != 3 {
		t.Fatal("InitialState returns an alias of the stored membership")
	}
}

// MemoryStorage is documented as safe for concurrent use: the race
// detector checks it.
func TestMemoryStorageConcurrent(t *testing.T) {
	ms := NewMemoryStorage()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := uint64(1); i <= 200; i++ {
			_ = ms.Append([]Entry{{Index: i, Term: 1}})
			ms.SetHardState(HardState{Term: 1, Commit: i})
		}
	}()
	go func() {
		defer wg.Done()
		for range 200 {
			last, _ := ms.LastIndex()
			first, _ := ms.FirstIndex()
			if last >= first {
				_, _ = ms.Entries(first, last+1, noLimit)
				_, _ = ms.Term(last)
			}
			_, _, _ = ms.InitialState()
			_ = ms.HardState()
		}
	}()
	wg.Wait()
	if last, _ := ms.LastIndex(); last != 200 {
		t.Fatalf("last %d", last)
	}
}

func TestLimitSize(t *testing.T) {
	e := func(n int) Entry { return Entry{Data: make([]byte, n)} }
	tests := []struct {
		ents []Entry
		max  uint64
		want int
	}{
		{nil, 0, 0},
		{[]Entry{e(100)}, 0, 1},
		{[]Entry{e(5), e(5), e(5)}, 10, 2},
		{[]Entry{e(5), e(5), e(5)}, 14, 2},
		{[]Entry{e(5), e(5), e(5)}, 15, 3},
		{[]Entry{e(0), e(0), e(0)}, 0, 3},
		{[]Entry{e(20), e(1)}, 10, 1},
	}
	for i, tt := range tests {
		if got := len(limitSize(tt.ents, tt.max)); got != tt.want {
			t.Errorf("case %d: %d entries, want %d", i, got, tt.want)
		}
	}
}
