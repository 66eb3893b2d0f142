package consensus

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// mustPanic runs f and fails unless it panics with a message containing
// want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		p := recover()
		if p == nil {
			t.Fatalf("no panic, want one mentioning %q", want)
		}
		if s, ok := p.(string); ok && !strings.Contains(s, want) {
			t.Fatalf("panic %q does not mention %q", s, want)
		}
	}()
	f()
}

func snapAt(index, term uint64) *Snapshot {
	return &Snapshot{Meta: SnapshotMeta{Index: index, Term: term}}
}

func terms(ents []Entry) []uint64 {
	out := make([]uint64, len(ents))
	for i, e := range ents {
		out[i] = e.Term
	}
	return out
}

func indexes(ents []Entry) []uint64 {
	out := make([]uint64, len(ents))
	for i, e := range ents {
		out[i] = e.Index
	}
	return out
}

func TestUnstableFirstLastIndex(t *testing.T) {
	tests := []struct {
		name      string
		u         unstable
		wantFirst uint64
		wantFOK   bool
		wantLast  uint64
		wantLOK   bool
	}{
		{"empty", unstable{offset: 1}, 0, false, 0, false},
		{"entries only", unstable{offset: 5, entries: entsAt(5, 1, 1)}, 0, false, 6, true},
		{"snapshot only", unstable{offset: 5, snapshot: snapAt(4, 2)}, 5, true, 4, true},
		{"snapshot and entries", unstable{offset: 5, snapshot: snapAt(4, 2), entries: entsAt(5, 2, 3, 3)}, 5, true, 7, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, fok := tt.u.maybeFirstIndex()
			l, lok := tt.u.maybeLastIndex()
			if f != tt.wantFirst || fok != tt.wantFOK || l != tt.wantLast || lok != tt.wantLOK {
				t.Fatalf("first (%d,%v) last (%d,%v); want (%d,%v) (%d,%v)", f, fok, l, lok, tt.wantFirst, tt.wantFOK, tt.wantLast, tt.wantLOK)
			}
		})
	}
}

func TestUnstableMaybeTerm(t *testing.T) {
	u := unstable{offset: 5, snapshot: snapAt(4, 2), entries: entsAt(5, 3, 3, 4)}
	tests := []struct {
		i    uint64
		want uint64
		ok   bool
	}{
		{3, 0, false}, // before the snapshot
		{4, 2, true},  // the snapshot itself
		{5, 3, true},
		{7, 4, true},
		{8, 0, false}, // past the end
	}
	for _, tt := range tests {
		if got, ok := u.maybeTerm(tt.i); got != tt.want || ok != tt.ok {
			t.Errorf("maybeTerm(%d) = %d,%v; want %d,%v", tt.i, got, ok, tt.want, tt.ok)
		}
	}
	empty := unstable{offset: 5}
	if _, ok := empty.maybeTerm(5); ok {
		t.Error("empty unstable knows a term")
	}
	if _, ok := empty.maybeTerm(4); ok {
		t.Error("empty unstable knows a term below offset")
	}
}

func TestUnstableStableTo(t *testing.T) {
	tests := []struct {
		name       string
		u          unstable
		i, t       uint64
		wantOffset uint64
		wantLen    int
	}{
		{"prefix", unstable{offset: 5, entries: entsAt(5, 1, 1, 2)}, 6, 1, 7, 1},
		{"all", unstable{offset: 5, entries: entsAt(5, 1, 1, 2)}, 7, 2, 8, 0},
		{"term changed since the Ready", unstable{offset: 5, entries: entsAt(5, 1, 1, 2)}, 6, 2, 5, 3},
		{"past the end", unstable{offset: 5, entries: entsAt(5, 1)}, 9, 1, 5, 1},
		{"already stable", unstable{offset: 5, entries: entsAt(5, 1)}, 4, 1, 5, 1},
		{"the snapshot's index", unstable{offset: 5, snapshot: snapAt(4, 1), entries: entsAt(5, 1)}, 4, 1, 5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.u.stableTo(tt.i, tt.t)
			if tt.u.offset != tt.wantOffset || len(tt.u.entries) != tt.wantLen {
				t.Fatalf("offset %d len %d; want %d %d", tt.u.offset, len(tt.u.entries), tt.wantOffset, tt.wantLen)
			}
			if tt.wantLen == 0 && tt.u.entries != nil {
				t.Fatal("entries not released when all became stable")
			}
		})
	}
}

func TestUnstableStableSnapToAndRestore(t *testing.T) {
	u := unstable{offset: 5, snapshot: snapAt(4, 1)}
	u.stableSnapTo(3)
	if u.snapshot == nil {
		t.Fatal("stableSnapTo a different index dropped the snapshot")
	}
	u.stableSnapTo(4)
	if u.snapshot != nil {
		t.Fatal("stableSnapTo did not drop the snapshot")
	}
	u.stableSnapTo(4) // no snapshot: no-op
	u.entries = entsAt(5, 1, 1)
	u.restore(*snapAt(20, 3))
	if u.offset != 21 || u.entries != nil || u.snapshot == nil || u.snapshot.Meta.Index != 20 {
		t.Fatalf("after restore: %+v", u)
	}
}

func TestUnstableTruncateAndAppend(t *testing.T) {
	tests := []struct {
		name       string
		offset     uint64
		have       []uint64
		app        []Entry
		wantOffset uint64
		wantTerms  []uint64
	}{
		{"append at the end", 5, []uint64{1}, entsAt(6, 1, 2), 5, []uint64{1, 1, 2}},
		{"replace everything at offset", 5, []uint64{1, 1}, entsAt(5, 2, 2), 5, []uint64{2, 2}},
		{"replace from before offset", 5, []uint64{1, 1}, entsAt(4, 2, 2, 2), 4, []uint64{2, 2, 2}},
		{"truncate in the middle", 5, []uint64{1, 1, 1}, entsAt(6, 2, 2, 2), 5, []uint64{1, 2, 2, 2}},
		{"append to empty", 5, nil, entsAt(5, 3), 5, []uint64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := unstable{offset: tt.offset}
			if tt.have != nil {
				u.entries = entsAt(tt.offset, tt.have...)
			}
			before := slices.Clone(u.entries)
			alias := u.entries
			u.truncateAndAppend(tt.app)
			if u.offset != tt.wantOffset || !slices.Equal(terms(u.entries), tt.wantTerms) {
				t.Fatalf("offset %d terms %v; want %d %v", u.offset, terms(u.entries), tt.wantOffset, tt.wantTerms)
			}
			for i, e := range u.entries {
				if e.Index != u.offset+uint64(i) {
					t.Fatalf("entry %d has index %d, offset %d", i, e.Index, u.offset)
				}
			}
			// A slice handed out earlier (in a Ready) is never rewritten.
			if !slices.EqualFunc(alias, before, func(a, b Entry) bool { return a.Index == b.Index && a.Term == b.Term }) {
				t.Fatalf("earlier slice rewritten: %v, was %v", alias, before)
			}
		})
	}
}

// newStoredLog returns a raftLog over a storage holding entries with the
// given terms at 1.., then compacted up to compact (0: no compaction).
func newStoredLog(t *testing.T, compact uint64, ts ...uint64) (*raftLog, *MemoryStorage) {
	t.Helper()
	ms := NewMemoryStorage()
	if err := ms.Append(entsAt(1, ts...)); err != nil {
		t.Fatal(err)
	}
	if compact > 0 {
		if _, err := ms.CreateSnapshot(compact, &ConfState{Voters: []uint64{1}}, nil); err != nil {
			t.Fatal(err)
		}
		if err := ms.Compact(compact); err != nil {
			t.Fatal(err)
		}
	}
	return newLog(ms, noLimit), ms
}

func TestLogNewAndIndexes(t *testing.T) {
	l, _ := newStoredLog(t, 3, 1, 1, 2, 2, 3)
	if l.firstIndex() != 4 || l.lastIndex() != 5 || l.committed != 3 || l.applied != 3 || l.unstable.offset != 6 {
		t.Fatalf("new log: first %d last %d %v", l.firstIndex(), l.lastIndex(), l)
	}
	if l.lastTerm() != 3 || l.stableLast() != 5 {
		t.Fatalf("lastTerm %d stableLast %d", l.lastTerm(), l.stableLast())
	}
	l.append(entsAt(6, 4, 4)...)
	if l.lastIndex() != 7 || l.stableLast() != 5 {
		t.Fatalf("after append: last %d stableLast %d", l.lastIndex(), l.stableLast())
	}
	if s := l.String(); !strings.Contains(s, "committed=3") || !strings.Contains(s, "len(unstable)=2") {
		t.Fatalf("String() = %q", s)
	}
	// With a snapshot pending, only what storage holds is stable.
	l.restore(*snapAt(10, 5))
	if l.firstIndex() != 11 || l.lastIndex() != 10 || l.committed != 10 || l.stableLast() != 5 {
		t.Fatalf("after restore: first %d last %d committed %d stableLast %d", l.firstIndex(), l.lastIndex(), l.committed, l.stableLast())
	}
	if s, err := l.snapshot(); err != nil || s.Meta.Index != 10 {
		t.Fatalf("snapshot() = %v, %v; want the unstable one", s.Meta, err)
	}
	if l.hasNextCommittedEnts() || l.nextCommittedEnts() != nil {
		t.Fatal("no committed entries are handed out while a snapshot is pending")
	}
}

func TestLogSnapshotFromStorage(t *testing.T) {
	l, _ := newStoredLog(t, 2, 1, 1, 2)
	s, err := l.snapshot()
	if err != nil || s.Meta.Index != 2 || s.Meta.Term != 1 {
		t.Fatalf("snapshot() = %+v, %v", s.Meta, err)
	}
}

func TestLogTerm(t *testing.T) {
	l, _ := newStoredLog(t, 3, 1, 1, 2, 2, 3)
	l.append(entsAt(6, 4)...)
	tests := []struct {
		i    uint64
		want uint64
		err  error
	}{
		{1, 0, ErrCompacted},
		{2, 0, ErrCompacted},
		{3, 2, nil}, // the snapshot's term survives compaction
		{4, 2, nil},
		{5, 3, nil},
		{6, 4, nil}, // unstable
		{7, 0, ErrUnavailable},
	}
	for _, tt := range tests {
		got, err := l.term(tt.i)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("term(%d) = %d, %v; want %d, %v", tt.i, got, err, tt.want, tt.err)
		}
		if l.matchTerm(tt.i, tt.want) != (tt.err == nil) {
			t.Errorf("matchTerm(%d, %d) wrong", tt.i, tt.want)
		}
		if z := l.zeroTermOnOutOfBounds(l.term(tt.i)); z != tt.want {
			t.Errorf("zeroTermOnOutOfBounds(term(%d)) = %d", tt.i, z)
		}
	}
}

// faultyStorage fails in ways the core cannot recover from.
type faultyStorage struct {
	*MemoryStorage
	failTerm, failFirst, failEntries bool
}

var errDisk = errors.New("disk on fire")

func (f *faultyStorage) Term(i uint64) (uint64, error) {
	if f.failTerm {
		return 0, errDisk
	}
	return f.MemoryStorage.Term(i)
}

func (f *faultyStorage) FirstIndex() (uint64, error) {
	if f.failFirst {
		return 0, errDisk
	}
	return f.MemoryStorage.FirstIndex()
}

func (f *faultyStorage) Entries(lo, hi, maxBytes uint64) ([]Entry, error) {
	if f.failEntries {
		return nil, errDisk
	}
	return f.MemoryStorage.Entries(lo, hi, maxBytes)
}

func mustPanicWith(t *testing.T, want error, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		p := recover()
		err, ok := p.(error)
		if !ok || !errors.Is(err, want) {
			t.Fatalf("panic %v, want %v", p, want)
		}
	}()
	f()
}

func TestLogStorageFailuresPanic(t *testing.T) {
	ms := NewMemoryStorage()
	must(ms.Append(entsAt(1, 1, 1)))
	fs := &faultyStorage{MemoryStorage: ms}
	l := newLog(fs, noLimit)

	fs.failTerm = true
	mustPanicWith(t, errDisk, func() { _, _ = l.term(1) })
	fs.failTerm = false

	fs.failEntries = true
	mustPanicWith(t, errDisk, func() { _, _ = l.slice(1, 3, noLimit) })
	fs.failEntries = false

	fs.failFirst = true
	mustPanicWith(t, errDisk, func() { newLog(fs, noLimit) })
	mustPanicWith(t, errDisk, func() { l.firstIndex() })
}

func TestLogIsUpToDate(t *testing.T) {
	l, _ := newStoredLog(t, 0, 1, 2, 3) // last (3, 3)
	tests := []struct {
		lasti, term uint64
		want        bool
	}{
		{2, 4, true}, // later last term wins whatever the length
		{3, 4, true},
		{4, 4, true},
		{2, 3, false}, // same term, shorter
		{3, 3, true},  // same term, same length
		{4, 3, true},  // same term, longer
		{5, 2, false}, // earlier last term loses whatever the length
		{3, 2, false},
	}
	for _, tt := range tests {
		if got := l.isUpToDate(tt.lasti, tt.term); got != tt.want {
			t.Errorf("isUpToDate(%d, %d) = %v, want %v", tt.lasti, tt.term, got, tt.want)
		}
	}
}

func TestLogFindConflict(t *testing.T) {
	l, _ := newStoredLog(t, 0, 1, 2, 3)
	tests := []struct {
		name string
		ents []Entry
		want uint64
	}{
		{"none", nil, 0},
		{"all present", entsAt(1, 1, 2, 3), 0},
		{"suffix present", entsAt(2, 2, 3), 0},
		{"last present", entsAt(3, 3), 0},
		{"new after present", entsAt(2, 2, 3, 4, 4), 4},
		{"new only", entsAt(4, 4), 4},
		{"conflict at first", entsAt(1, 4, 4), 1},
		{"conflict in middle", entsAt(2, 1, 4), 2},
		{"conflict at last", entsAt(3, 1, 4), 3},
	}
	for _, tt := range tests {
		if got := l.findConflict(tt.ents); got != tt.want {
			t.Errorf("%s: findConflict = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestLogFindConflictByTerm(t *testing.T) {
	// Log: 1:t2 2:t2 3:t5 4:t5 5:t5.
	l, _ := newStoredLog(t, 0, 2, 2, 5, 5, 5)
	// Compacted log: snapshot 3:t3 then 4:t4 5:t4 6:t6.
	lc, _ := newStoredLog(t, 3, 1, 2, 3, 4, 4, 6)
	tests := []struct {
		name        string
		l           *raftLog
		index, term uint64
		wantIndex   uint64
		wantTerm    uint64
	}{
		{"match at index", l, 5, 5, 5, 5},
		{"higher term", l, 5, 6, 5, 5},
		{"skip whole term", l, 5, 4, 2, 2},
		{"skip from middle", l, 4, 3, 2, 2},
		{"nothing old enough", l, 5, 1, 0, 0},
		{"index 0", l, 0, 5, 0, 0},
		{"compacted: stops at snapshot term", lc, 6, 3, 3, 3},
		{"compacted: lands in stored entries", lc, 6, 5, 5, 4},
		{"compacted: runs into compaction", lc, 6, 2, 2, 0},
		{"beyond the end", l, 9, 5, 9, 0},
	}
	for _, tt := range tests {
		gi, gt := tt.l.findConflictByTerm(tt.index, tt.term)
		if gi != tt.wantIndex || gt != tt.wantTerm {
			t.Errorf("%s: findConflictByTerm(%d, %d) = %d, %d; want %d, %d", tt.name, tt.index, tt.term, gi, gt, tt.wantIndex, tt.wantTerm)
		}
	}
}

func TestLogMaybeAppend(t *testing.T) {
	tests := []struct {
		name          string
		index, logT   uint64
		commit        uint64
		ents          []Entry
		wantLast      uint64
		wantOK        bool
		wantCommitted uint64
		wantTerms     []uint64
	}{
		{"mismatched term", 3, 2, 3, entsAt(4, 4), 0, false, 1, []uint64{1, 2, 3}},
		{"past our end", 4, 3, 3, entsAt(5, 4), 0, false, 1, []uint64{1, 2, 3}},
		{"heartbeat-like, no entries", 3, 3, 3, nil, 3, true, 3, []uint64{1, 2, 3}},
		{"commit bounded by last new", 2, 2, 10, nil, 2, true, 2, []uint64{1, 2, 3}},
		{"commit not lowered", 1, 1, 0, nil, 1, true, 1, []uint64{1, 2, 3}},
		{"append", 3, 3, 4, entsAt(4, 3, 4), 5, true, 4, []uint64{1, 2, 3, 3, 4}},
		{"present entries keep the longer log", 1, 1, 3, entsAt(2, 2), 2, true, 2, []uint64{1, 2, 3}},
		{"truncate conflicting suffix", 1, 1, 2, entsAt(2, 4), 2, true, 2, []uint64{1, 4}},
		{"truncate at the last entry", 2, 2, 2, entsAt(3, 4, 4), 4, true, 2, []uint64{1, 2, 4, 4}},
		{"at index 0", 0, 0, 1, entsAt(1, 1, 5), 2, true, 1, []uint64{1, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newStoredLog(t, 0, 1, 2, 3)
			l.committed = 1
			last, ok := l.maybeAppend(tt.index, tt.logT, tt.commit, tt.ents)
			if last != tt.wantLast || ok != tt.wantOK {
				t.Fatalf("maybeAppend = %d, %v; want %d, %v", last, ok, tt.wantLast, tt.wantOK)
			}
			got, err := l.slice(1, l.lastIndex()+1, noLimit)
			if err != nil {
				t.Fatal(err)
			}
			if l.committed != tt.wantCommitted || !slices.Equal(terms(got), tt.wantTerms) {
				t.Fatalf("committed %d log %v; want %d %v", l.committed, terms(got), tt.wantCommitted, tt.wantTerms)
			}
		})
	}
}

func TestLogMaybeAppendConflictWithCommittedPanics(t *testing.T) {
	l, _ := newStoredLog(t, 0, 1, 2, 3)
	l.committed = 2
	mustPanic(t, "conflicts with committed", func() { l.maybeAppend(1, 1, 3, entsAt(2, 9)) })
}

func TestLogAppendBelowCommittedPanics(t *testing.T) {
	l, _ := newStoredLog(t, 0, 1, 2, 3)
	l.committed = 2
	if got := l.append(); got != 3 {
		t.Fatalf("empty append = %d, want last index 3", got)
	}
	mustPanic(t, "below committed", func() { l.append(entsAt(2, 9)...) })
	if got := l.append(entsAt(3, 9)...); got != 3 {
		t.Fatalf("append replacing uncommitted 3 = %d", got)
	}
}

func TestLogCommitTo(t *testing.T) {
	l, _ := newStoredLog(t, 0, 1, 2, 3)
	l.commitTo(2)
	if l.committed != 2 {
		t.Fatalf("committed %d", l.committed)
	}
	l.commitTo(1) // never decreases
	if l.committed != 2 {
		t.Fatalf("commitTo lowered commit to %d", l.committed)
	}
	mustPanic(t, "past the last index", func() { l.commitTo(4) })
}

func TestLogAppliedTo(t *testing.T) {
	l, _ := newStoredLog(t, 0, 1, 2, 3)
	l.commitTo(2)
	l.appliedTo(0) // no-op
	l.appliedTo(1)
	l.appliedTo(2)
	if l.applied != 2 {
		t.Fatalf("applied %d", l.applied)
	}
	mustPanic(t, "out of range", func() { l.appliedTo(3) }) // past commit
	mustPanic(t, "out of range", func() { l.appliedTo(1) }) // backwards
}

func TestLogMaybeCommit(t *testing.T) {
	l, _ := newStoredLog(t, 0, 1, 2, 2)
	if l.maybeCommit(3, 1) {
		t.Fatal("committed an entry whose term differs from the given one")
	}
	if l.maybeCommit(9, 2) {
		t.Fatal("committed past the end")
	}
	if !l.maybeCommit(3, 2) || l.committed != 3 {
		t.Fatalf("maybeCommit(3, 2): committed %d", l.committed)
	}
	if l.maybeCommit(2, 2) {
		t.Fatal("maybeCommit below committed reported progress")
	}
}

func TestLogSlice(t *testing.T) {
	data := []byte("0123456789")
	ms := NewMemoryStorage()
	var stored []Entry
	for i := uint64(1); i <= 5; i++ {
		stored = append(stored, Entry{Index: i, Term: 1, Data: data})
	}
	must(ms.Append(stored))
	must(ms.Compact(1)) // first index 2
	l := newLog(ms, noLimit)
	for i := uint64(6); i <= 8; i++ {
		l.append(Entry{Index: i, Term: 2, Data: data})
	}
	tests := []struct {
		name    string
		lo, hi  uint64
		max     uint64
		want    []uint64
		wantErr error
	}{
		{"compacted", 1, 4, noLimit, nil, ErrCompacted},
		{"empty", 3, 3, noLimit, nil, nil},
		{"storage only", 2, 4, noLimit, []uint64{2, 3}, nil},
		{"unstable only", 6, 9, noLimit, []uint64{6, 7, 8}, nil},
		{"across", 4, 8, noLimit, []uint64{4, 5, 6, 7}, nil},
		{"storage limited by size", 2, 9, 25, []uint64{2, 3}, nil},
		{"combined limited by size", 4, 9, 35, []uint64{4, 5, 6}, nil},
		{"exactly fits", 4, 9, 50, []uint64{4, 5, 6, 7, 8}, nil},
		{"at least one from storage", 2, 9, 0, []uint64{2}, nil},
		{"at least one from unstable", 7, 9, 1, []uint64{7}, nil},
	}
	for _, tt := range tests {
		got, err := l.slice(tt.lo, tt.hi, tt.max)
		if !errors.Is(err, tt.wantErr) || !slices.Equal(indexes(got), tt.want) {
			t.Errorf("%s: slice(%d,%d,%d) = %v, %v; want %v, %v", tt.name, tt.lo, tt.hi, tt.max, indexes(got), err, tt.want, tt.wantErr)
		}
	}
	mustPanic(t, "invalid slice", func() { _, _ = l.slice(5, 4, noLimit) })
	mustPanic(t, "out of bound", func() { _, _ = l.slice(4, 10, noLimit) })

	if ents, err := l.entries(9, noLimit); ents != nil || err != nil {
		t.Fatalf("entries past the end = %v, %v", ents, err)
	}
	if ents, err := l.entries(7, noLimit); err != nil || !slices.Equal(indexes(ents), []uint64{7, 8}) {
		t.Fatalf("entries(7) = %v, %v", indexes(ents), err)
	}
	if _, err := l.entries(1, noLimit); !errors.Is(err, ErrCompacted) {
		t.Fatalf("entries(1) error %v, want ErrCompacted", err)
	}
}

func TestLogNextCommittedEnts(t *testing.T) {
	data := []byte("0123456789")
	ms := NewMemoryStorage()
	var ents []Entry
	for i := uint64(1); i <= 4; i++ {
		ents = append(ents, Entry{Index: i, Term: 1, Data: data})
	}
	must(ms.Append(ents))
	l := newLog(ms, 25)
	l.append(Entry{Index: 5, Term: 1, Data: data})
	if l.hasNextCommittedEnts() || l.nextCommittedEnts() != nil {
		t.Fatal("nothing is committed yet")
	}
	l.commitTo(5)
	var got []uint64
	for l.hasNextCommittedEnts() {
		batch := l.nextCommittedEnts()
		if len(batch) == 0 || len(batch) > 2 {
			t.Fatalf("batch of %d entries with a 25-byte limit", len(batch))
		}
		got = append(got, indexes(batch)...)
		l.appliedTo(batch[len(batch)-1].Index)
	}
	if !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("applied %v", got)
	}
}

// An applied index given at start-up hides the entries up to it.
func TestLogAppliedBelowFirstIndex(t *testing.T) {
	l, _ := newStoredLog(t, 3, 1, 1, 1, 1, 1)
	l.commitTo(5)
	got := l.nextCommittedEnts()
	if !slices.Equal(indexes(got), []uint64{4, 5}) {
		t.Fatalf("nextCommittedEnts = %v", indexes(got))
	}
}
