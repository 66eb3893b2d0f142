package wal_test

import (
	"errors"
	"testing"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/internal/simfs"
	"github.com/cairnkv/cairn/wal"
)

var commitMeta = []byte("member")

func commitEntries(lo, hi uint64) []consensus.Entry {
	var out []consensus.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, consensus.Entry{Term: 1, Index: i, Data: []byte{byte(i)}})
	}
	return out
}

// SaveCommit writes a commit-only hard state without an fsync: a crash
// right after it keeps the entries (they were fsynced) and either the new
// commit index or the one before it, never anything else; a power loss
// loses it on some seeds, so it was not fsynced. The next Save's fsync
// makes it durable.
func TestSaveCommitIsWrittenNotSynced(t *testing.T) {
	opts := func(fs *simfs.FS) wal.Options { return wal.Options{FS: fs, SegmentSize: 64 << 10} }
	kept := map[uint64]int{}
	for seed := uint64(1); seed <= 40; seed++ {
		fs := simfs.New(seed, simfs.Faults{})
		w, err := wal.Create("/wal", commitMeta, opts(fs))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Save(consensus.HardState{Term: 1, Vote: 1, Commit: 1}, commitEntries(1, 3)); err != nil {
			t.Fatal(err)
		}
		if err := w.SaveCommit(consensus.HardState{Term: 1, Vote: 1, Commit: 3}); err != nil {
			t.Fatal(err)
		}
		fs.Crash()
		_ = w.Close()
		w, c, err := wal.Open("/wal", 0, opts(fs))
		if err != nil {
			t.Fatalf("seed %d: Open after a crash: %v", seed, err)
		}
		if len(c.Entries) != 3 || c.Entries[2].Index != 3 {
			t.Fatalf("seed %d: %d entries after the crash, want 1..3", seed, len(c.Entries))
		}
		if hs := c.HardState; hs.Term != 1 || hs.Vote != 1 || hs.Commit != 1 && hs.Commit != 3 {
			t.Fatalf("seed %d: hard state %+v after the crash", seed, hs)
		}
		kept[c.HardState.Commit]++
		// A commit-only hard state, then entries: the second fsync
		// takes the first write along.
		if err := w.SaveCommit(consensus.HardState{Term: 1, Vote: 1, Commit: 3}); err != nil {
			t.Fatal(err)
		}
		if err := w.Save(consensus.HardState{}, commitEntries(4, 4)); err != nil {
			t.Fatal(err)
		}
		fs.Crash()
		_ = w.Close()
		w, c, err = wal.Open("/wal", 0, opts(fs))
		if err != nil {
			t.Fatalf("seed %d: Open after the second crash: %v", seed, err)
		}
		if len(c.Entries) != 4 || c.HardState.Commit != 3 {
			t.Fatalf("seed %d: %d entries, hard state %+v after a Save that followed SaveCommit; want 4 entries, commit 3",
				seed, len(c.Entries), c.HardState)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if kept[1] == 0 || kept[3] == 0 {
		t.Fatalf("commit after a crash right after SaveCommit: %v; want both the old (lost) and the new (kept) on some seeds", kept)
	}
}

// SaveCommit refuses a hard state with a new term or vote (they must be
// fsynced: Save), and the refusal does not fail the WAL.
func TestSaveCommitRefusesNewTermOrVote(t *testing.T) {
	fs := simfs.New(1, simfs.Faults{})
	w, err := wal.Create("/wal", commitMeta, wal.Options{FS: fs, SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Save(consensus.HardState{Term: 2, Vote: 1, Commit: 1}, commitEntries(1, 2)); err != nil {
		t.Fatal(err)
	}
	for _, hs := range []consensus.HardState{{Term: 3, Vote: 1, Commit: 2}, {Term: 2, Vote: 3, Commit: 2}, {Term: 2, Commit: 2}} {
		if err := w.SaveCommit(hs); err == nil {
			t.Errorf("SaveCommit(%+v) after term 2, vote 1: accepted", hs)
		}
	}
	if err := w.SaveCommit(consensus.HardState{Term: 2, Vote: 1, Commit: 2}); err != nil {
		t.Fatalf("SaveCommit of the commit index alone: %v", err)
	}
	if err := w.Save(consensus.HardState{Term: 3, Vote: 1, Commit: 2}, nil); err != nil {
		t.Fatalf("Save after the refusals: %v", err)
	}
}

// An entry whose record would pass MaxRecordSize is refused before
// anything is written (its length would not fit in the record's 24 bits:
// written, it would make the log unreadable); the largest one that fits
// is saved and read back; the WAL goes on after the refusal.
func TestSaveRefusesEntryTooLargeForARecord(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Create(dir, commitMeta, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, wal.MaxEntryData+1)
	err = w.Save(consensus.HardState{Term: 1, Commit: 1}, []consensus.Entry{{Term: 1, Index: 1, Data: big}})
	if !errors.Is(err, wal.ErrTooLarge) {
		t.Fatalf("Save of %d bytes of data: %v, want ErrTooLarge", len(big), err)
	}
	// The longest head (term and index of 10 bytes each) with the most data.
	e := consensus.Entry{Term: 1 << 63, Index: 1 << 63, Data: big[:wal.MaxEntryData]}
	if err := w.Save(consensus.HardState{Term: 1 << 63, Commit: 1}, []consensus.Entry{e}); err != nil {
		t.Fatalf("Save of %d bytes of data: %v", len(e.Data), err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, c, err := wal.Open(dir, 0, wal.Options{})
	if err != nil {
		t.Fatalf("Open after the largest entry: %v", err)
	}
	defer w.Close()
	if len(c.Entries) != 1 || len(c.Entries[0].Data) != wal.MaxEntryData {
		t.Fatalf("read back %d entries", len(c.Entries))
	}
}
