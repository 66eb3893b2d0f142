package wal

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/cairnkv/cairn/consensus"
)

// Save appends entries and a hard state (either may be empty) and returns
// once they are on disk. Concurrent callers share one write and one fsync.
// An entry with more than MaxEntryData bytes of data is refused
// (ErrTooLarge) before anything is written.
// After any write or fsync failure every call fails with ErrFailed: the
// WAL never acknowledges what it did not persist.
func (w *WAL) Save(hs consensus.HardState, ents []consensus.Entry) error {
	if hs.IsEmpty() && len(ents) == 0 {
		return nil
	}
	for _, e := range ents {
		if len(e.Data) > MaxEntryData {
			// Its length would not fit in the record's 24 bits: the
			// record would be written, acknowledged, and unreadable.
			return fmt.Errorf("%w: entry %d carries %d bytes, at most %d", ErrTooLarge, e.Index, len(e.Data), MaxEntryData)
		}
	}
	// The entries are framed straight from ents by the flusher (Save
	// returns only once they are written, so ents stays the caller's
	// until then).
	b := &batch{ents: ents}
	if n := len(ents); n > 0 {
		b.last = ents[n-1].Index
	}
	if !hs.IsEmpty() {
		b.recs = []rec{{typ: recHardState, data: encodeHardState(hs)}}
		b.hs = &hs
	}
	b.sync = true
	return w.submit(b)
}

// SaveCommit writes hs, a hard state whose term and vote are those of the
// last one saved (only its commit index differs), and returns once it is
// written, without an fsync: the next Save's fsync makes it durable, and a
// crash before that may lose it. Raft does not need its commit index on
// disk (a member learns it again from the leader), so a Ready that changes
// nothing else need not wait for the disk (etcd's raft.MustSync). A hard
// state with another term or vote is refused: those must be durable
// before the member acts on them (Save).
func (w *WAL) SaveCommit(hs consensus.HardState) error {
	if hs.IsEmpty() {
		return nil
	}
	return w.submit(&batch{recs: []rec{{typ: recHardState, data: encodeHardState(hs)}}, hs: &hs})
}

// SaveSnapshot records that a snapshot at m exists; replay after a
// restart may start from it.
func (w *WAL) SaveSnapshot(m SnapshotMarker) error {
	return w.submit(&batch{recs: []rec{{typ: recSnapshot, data: encodeSnapshot(m)}}, snap: &m, sync: true})
}

func (w *WAL) submit(b *batch) error {
	b.done = make(chan error, 1)
	w.mu.Lock()
	switch {
	case w.err != nil:
		err := w.err
		w.mu.Unlock()
		return err
	case w.closing:
		w.mu.Unlock()
		return ErrClosed
	case !b.sync && b.hs != nil && (b.hs.Term != w.savedHS.Term || b.hs.Vote != w.savedHS.Vote):
		w.mu.Unlock()
		return fmt.Errorf("wal: SaveCommit of term %d, vote %d after term %d, vote %d: a new term or vote must be saved durably (Save)",
			b.hs.Term, b.hs.Vote, w.savedHS.Term, w.savedHS.Vote)
	}
	if b.hs != nil {
		w.savedHS = *b.hs
	}
	w.queue = append(w.queue, b)
	w.cond.Signal()
	w.mu.Unlock()
	return <-b.done
}

// flusher writes queued batches: everything that piled up while the last
// fsync ran goes out in one write and one fsync (none if no batch needs
// one: SaveCommit).
func (w *WAL) flusher() {
	defer close(w.done)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closing {
			w.cond.Wait()
		}
		if len(w.queue) == 0 {
			w.mu.Unlock()
			return
		}
		batches := w.queue
		w.queue = nil
		failed := w.err
		w.mu.Unlock()

		err := failed
		if err == nil {
			if err = w.write(batches); err != nil {
				err = fmt.Errorf("%w: %w", ErrFailed, err)
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		}
		for _, b := range batches {
			b.done <- err
		}
	}
}

func (w *WAL) write(batches []*batch) error {
	buf := w.buf[:0]
	crc := w.crc
	for _, b := range batches {
		for _, e := range b.ents {
			buf, crc = frameEntry(buf, crc, e)
		}
		for _, r := range b.recs {
			buf, crc = frame(buf, crc, r.typ, r.data)
		}
	}
	if _, err := w.f.WriteAt(buf, w.off); err != nil {
		return err
	}
	if slices.ContainsFunc(batches, func(b *batch) bool { return b.sync }) {
		if err := w.f.Sync(); err != nil {
			return err
		}
	}
	w.off += int64(len(buf))
	w.crc = crc
	for _, b := range batches {
		if b.last != 0 {
			w.lastIndex = b.last
		}
		if b.hs != nil {
			w.hs = *b.hs
		}
		if b.snap != nil {
			w.snap = b.snap
			w.lastIndex = max(w.lastIndex, b.snap.Index)
		}
	}
	if cap(buf) <= 4<<20 {
		w.buf = buf
	}
	if w.off >= w.opts.SegmentSize {
		return w.cut(w.seq+1, w.lastIndex+1)
	}
	return nil
}

// Err reports the failure that stopped the WAL, if any.
func (w *WAL) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Purge removes segments that hold only entries at or below index,
// oldest first, while more than keep segments remain. keep == 0 keeps
// everything (etcd's --max-wals 0). The segment being written is never
// removed. It returns the names removed.
func (w *WAL) Purge(index uint64, keep int) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	segs, err := listSegments(w.opts.FS, w.dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for i := 0; i+1 < len(segs) && len(segs)-i > keep; i++ {
		// Segment i holds entries below segs[i+1].first only.
		if segs[i+1].first > index+1 {
			break
		}
		if err := w.opts.FS.Remove(filepath.Join(w.dir, segs[i].name)); err != nil {
			return removed, err
		}
		removed = append(removed, segs[i].name)
	}
	if len(removed) > 0 {
		if err := w.opts.FS.SyncDir(w.dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// Close waits for queued writes, then closes the segment.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closing = true
	w.cond.Signal()
	w.mu.Unlock()
	<-w.done
	return errors.Join(w.Err(), w.f.Close())
}
