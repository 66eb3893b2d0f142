package consensus

import (
	"errors"
	"fmt"
)

// unstable holds what the core has accepted but the caller has not yet
// persisted: a snapshot and/or entries following it.
//
// Invariant: if snapshot != nil, offset == snapshot.Meta.Index+1.
// Invariant: entries[i].Index == offset+i.
type unstable struct {
	snapshot *Snapshot
	entries  []Entry
	offset   uint64
}

func (u *unstable) maybeFirstIndex() (uint64, bool) {
	if u.snapshot != nil {
		return u.snapshot.Meta.Index + 1, true
	}
	return 0, false
}

func (u *unstable) maybeLastIndex() (uint64, bool) {
	if l := len(u.entries); l != 0 {
		return u.offset + uint64(l) - 1, true
	}
	if u.snapshot != nil {
		return u.snapshot.Meta.Index, true
	}
	return 0, false
}

func (u *unstable) maybeTerm(i uint64) (uint64, bool) {
	if i < u.offset {
		if u.snapshot != nil && u.snapshot.Meta.Index == i {
			return u.snapshot.Meta.Term, true
		}
		return 0, false
	}
	last, ok := u.maybeLastIndex()
	if !ok || i > last {
		return 0, false
	}
	return u.entries[i-u.offset].Term, true
}

// stableTo records that entries up to i (with term t) are persisted.
func (u *unstable) stableTo(i, t uint64) {
	gt, ok := u.maybeTerm(i)
	if !ok || gt != t || i < u.offset {
		// The entry was replaced (or is already stable) since the Ready.
		return
	}
	u.entries = u.entries[i+1-u.offset:]
	u.offset = i + 1
	if len(u.entries) == 0 {
		u.entries = nil
	}
}

func (u *unstable) stableSnapTo(i uint64) {
	if u.snapshot != nil && u.snapshot.Meta.Index == i {
		u.snapshot = nil
	}
}

func (u *unstable) restore(s Snapshot) {
	u.offset = s.Meta.Index + 1
	u.entries = nil
	u.snapshot = &s
}

func (u *unstable) truncateAndAppend(ents []Entry) {
	after := ents[0].Index
	switch {
	case after == u.offset+uint64(len(u.entries)):
		u.entries = append(u.entries, ents...)
	case after <= u.offset:
		// Replace everything unstable; the log before offset is truncated
		// logically (the caller overwrites it when persisting).
		u.offset = after
		u.entries = append([]Entry(nil), ents...)
	default:
		kept := append([]Entry(nil), u.entries[:after-u.offset]...)
		u.entries = append(kept, ents...)
	}
}

func (u *unstable) slice(lo, hi uint64) []Entry {
	return u.entries[lo-u.offset : hi-u.offset]
}

// raftLog is the log as the core sees it: stable storage followed by the
// unstable tail.
//
// Invariant: applied <= committed <= lastIndex().
type raftLog struct {
	storage   Storage
	unstable  unstable
	committed uint64
	// applied is the highest index handed to the caller to apply.
	applied uint64
	// maxApplyBytes bounds the committed entries of one Ready.
	maxApplyBytes uint64
}

func newLog(storage Storage, maxApplyBytes uint64) *raftLog {
	first, err := storage.FirstIndex()
	must(err)
	last, err := storage.LastIndex()
	must(err)
	l := &raftLog{storage: storage, maxApplyBytes: maxApplyBytes}
	l.unstable.offset = last + 1
	l.committed = first - 1
	l.applied = first - 1
	return l
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func (l *raftLog) String() string {
	return fmt.Sprintf("committed=%d applied=%d unstable.offset=%d len(unstable)=%d",
		l.committed, l.applied, l.unstable.offset, len(l.unstable.entries))
}

func (l *raftLog) firstIndex() uint64 {
	if i, ok := l.unstable.maybeFirstIndex(); ok {
		return i
	}
	i, err := l.storage.FirstIndex()
	must(err)
	return i
}

func (l *raftLog) lastIndex() uint64 {
	if i, ok := l.unstable.maybeLastIndex(); ok {
		return i
	}
	i, err := l.storage.LastIndex()
	must(err)
	return i
}

// stableLast is the last index the caller has persisted.
func (l *raftLog) stableLast() uint64 {
	if l.unstable.snapshot != nil {
		i, err := l.storage.LastIndex()
		must(err)
		return i
	}
	return l.unstable.offset - 1
}

func (l *raftLog) lastTerm() uint64 {
	t, err := l.term(l.lastIndex())
	must(err)
	return t
}

// term returns the term of entry i; 0 with an error when it is compacted
// or unavailable.
func (l *raftLog) term(i uint64) (uint64, error) {
	dummy := l.firstIndex() - 1
	if i < dummy {
		return 0, ErrCompacted
	}
	if i > l.lastIndex() {
		return 0, ErrUnavailable
	}
	if t, ok := l.unstable.maybeTerm(i); ok {
		return t, nil
	}
	t, err := l.storage.Term(i)
	if err == nil || errors.Is(err, ErrCompacted) || errors.Is(err, ErrUnavailable) {
		return t, err
	}
	panic(err)
}

func (l *raftLog) zeroTermOnOutOfBounds(t uint64, err error) uint64 {
	if err == nil {
		return t
	}
	return 0
}

func (l *raftLog) matchTerm(i, t uint64) bool {
	got, err := l.term(i)
	return err == nil && got == t
}

// isUpToDate reports whether a log ending at (lasti, term) is at least as
// up to date as ours (Raft §5.4.1).
func (l *raftLog) isUpToDate(lasti, term uint64) bool {
	lt := l.lastTerm()
	return term > lt || (term == lt && lasti >= l.lastIndex())
}

// findConflict returns the index of the first entry of ents that is not in
// our log (a different term, or past our end), or 0 if all are present.
func (l *raftLog) findConflict(ents []Entry) uint64 {
	for _, e := range ents {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// findConflictByTerm returns the largest index <= index whose term is <=
// term: where a log with an entry (index, term) can at best match ours.
// It powers fast backtracking after a rejected append.
func (l *raftLog) findConflictByTerm(index, term uint64) (uint64, uint64) {
	for ; index > 0; index-- {
		t, err := l.term(index)
		if err != nil {
			return index, 0
		}
		if t <= term {
			return index, t
		}
	}
	return 0, 0
}

// maybeAppend appends ents after (index, logTerm) if our log matches
// there, truncating any conflicting suffix, and advances commit to
// min(committed, last new index). It returns the last new index.
func (l *raftLog) maybeAppend(index, logTerm, committed uint64, ents []Entry) (uint64, bool) {
	if !l.matchTerm(index, logTerm) {
		return 0, false
	}
	lastNew := index + uint64(len(ents))
	if ci := l.findConflict(ents); ci != 0 {
		if ci <= l.committed {
			panic(fmt.Sprintf("consensus: entry %d conflicts with committed entry (committed %d)", ci, l.committed))
		}
		l.append(ents[ci-ents[0].Index:]...)
	}
	l.commitTo(min(committed, lastNew))
	return lastNew, true
}

func (l *raftLog) append(ents ...Entry) uint64 {
	if len(ents) == 0 {
		return l.lastIndex()
	}
	if after := ents[0].Index - 1; after < l.committed {
		panic(fmt.Sprintf("consensus: append after %d is below committed %d", after, l.committed))
	}
	l.unstable.truncateAndAppend(ents)
	return l.lastIndex()
}

func (l *raftLog) commitTo(i uint64) {
	if l.committed < i {
		if l.lastIndex() < i {
			panic(fmt.Sprintf("consensus: commit %d is past the last index %d", i, l.lastIndex()))
		}
		l.committed = i
	}
}

// maybeCommit commits up to maxIndex if that entry is of term (a leader
// commits only entries of its own term by counting, Raft §5.4.2).
func (l *raftLog) maybeCommit(maxIndex, term uint64) bool {
	if maxIndex > l.committed && l.zeroTermOnOutOfBounds(l.term(maxIndex)) == term {
		l.commitTo(maxIndex)
		return true
	}
	return false
}

func (l *raftLog) appliedTo(i uint64) {
	if i == 0 {
		return
	}
	if l.committed < i || i < l.applied {
		panic(fmt.Sprintf("consensus: applied %d out of range [%d, %d]", i, l.applied, l.committed))
	}
	l.applied = i
}

func (l *raftLog) hasNextCommittedEnts() bool {
	return l.committed > l.applied && l.unstable.snapshot == nil
}

func (l *raftLog) nextCommittedEnts() []Entry {
	if !l.hasNextCommittedEnts() {
		return nil
	}
	lo := max(l.applied+1, l.firstIndex())
	ents, err := l.slice(lo, l.committed+1, l.maxApplyBytes)
	must(err)
	return ents
}

func (l *raftLog) unstableEntries() []Entry {
	if len(l.unstable.entries) == 0 {
		return nil
	}
	return l.unstable.entries
}

func (l *raftLog) snapshot() (Snapshot, error) {
	if l.unstable.snapshot != nil {
		return *l.unstable.snapshot, nil
	}
	return l.storage.Snapshot()
}

// entries returns entries from i on, at most maxBytes of data (at least one).
func (l *raftLog) entries(i, maxBytes uint64) ([]Entry, error) {
	if i > l.lastIndex() {
		return nil, nil
	}
	return l.slice(i, l.lastIndex()+1, maxBytes)
}

// slice returns entries [lo, hi) from storage and the unstable tail.
func (l *raftLog) slice(lo, hi, maxBytes uint64) ([]Entry, error) {
	if lo > hi {
		panic(fmt.Sprintf("consensus: invalid slice %d > %d", lo, hi))
	}
	if lo < l.firstIndex() {
		return nil, ErrCompacted
	}
	if hi > l.lastIndex()+1 {
		panic(fmt.Sprintf("consensus: slice [%d,%d) out of bound [%d,%d]", lo, hi, l.firstIndex(), l.lastIndex()))
	}
	if lo == hi {
		return nil, nil
	}
	var ents []Entry
	if lo < l.unstable.offset {
		stored, err := l.storage.Entries(lo, min(hi, l.unstable.offset), maxBytes)
		if errors.Is(err, ErrCompacted) {
			return nil, err
		}
		must(err)
		if uint64(len(stored)) < min(hi, l.unstable.offset)-lo {
			return stored, nil // limited by size
		}
		ents = stored
	}
	if hi > l.unstable.offset {
		tail := l.unstable.slice(max(lo, l.unstable.offset), hi)
		if len(ents) > 0 {
			combined := make([]Entry, 0, len(ents)+len(tail))
			ents = append(append(combined, ents...), tail...)
		} else {
			ents = tail
		}
	}
	return limitSize(ents, maxBytes), nil
}

func (l *raftLog) restore(s Snapshot) {
	l.committed = s.Meta.Index
	l.unstable.restore(s)
}
