package simfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/wal"
)

// Only what was synced, and what SyncDir made durable, is sure to survive
// a crash; what was written after the last sync may or may not.
func TestCrashKeepsWhatWasSynced(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		f := New(seed, Faults{})
		if err := f.MkdirAll("/d", 0o700); err != nil {
			t.Fatal(err)
		}
		a, _ := f.OpenFile("/d/a", os.O_CREATE|os.O_RDWR, 0o600)
		_, _ = a.WriteAt([]byte("synced"), 0)
		if err := a.Sync(); err != nil {
			t.Fatal(err)
		}
		_, _ = a.WriteAt([]byte("-later"), 6)
		if err := f.SyncDir("/d"); err != nil {
			t.Fatal(err)
		}
		b, _ := f.OpenFile("/d/b", os.O_CREATE|os.O_RDWR, 0o600) // never made durable
		_, _ = b.WriteAt([]byte("lost"), 0)
		_ = b.Sync()
		f.Crash()
		got, ok := f.Bytes("/d/a")
		if !ok || len(got) < 6 || string(got[:6]) != "synced" || len(got) > 12 || string(got) != "synced-later"[:len(got)] {
			t.Fatalf("seed %d: /d/a after a crash is %q", seed, got)
		}
		if _, ok := f.Bytes("/d/b"); ok {
			t.Fatalf("seed %d: a file whose directory was never synced survived", seed)
		}
	}
}

// A removal or rename not made durable is undone by a crash.
func TestCrashUndoesDirectoryChangesNotSynced(t *testing.T) {
	f := New(1, Faults{})
	_ = f.MkdirAll("/d", 0o700)
	a, _ := f.OpenFile("/d/a", os.O_CREATE|os.O_RDWR, 0o600)
	_, _ = a.WriteAt([]byte("x"), 0)
	_ = a.Sync()
	_ = f.SyncDir("/d")
	_ = f.Rename("/d/a", "/d/b")
	f.Crash()
	if _, ok := f.Bytes("/d/a"); !ok {
		t.Fatal("an unsynced rename survived the crash")
	}
	_ = f.Remove("/d/a")
	_ = f.SyncDir("/d")
	f.Crash()
	if _, ok := f.Bytes("/d/a"); ok {
		t.Fatal("a synced removal was undone")
	}
}

// Faults are drawn from the seed: the same seed fails the same calls.
func TestFaultsReplay(t *testing.T) {
	run := func() string {
		f := New(7, Faults{SyncError: 0.3, WriteError: 0.3, TornWrite: 0.5})
		_ = f.MkdirAll("/d", 0o700)
		fl, _ := f.OpenFile("/d/a", os.O_CREATE|os.O_RDWR, 0o600)
		out := ""
		for i := range 40 {
			n, err := fl.WriteAt([]byte("abcdefgh"), int64(8*i))
			out += fmt.Sprintf("%d:%v ", n, errors.Is(err, ErrInjected))
			out += fmt.Sprintf("%v ", errors.Is(fl.Sync(), ErrInjected))
		}
		return out
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("two runs of one seed differ:\n%s\n%s", a, b)
	}
}

// Preallocated space reads as zeros, and reads past the size end in EOF.
func TestPreallocateReadsZeros(t *testing.T) {
	f := New(1, Faults{})
	_ = f.MkdirAll("/d", 0o700)
	fl, _ := f.OpenFile("/d/a", os.O_CREATE|os.O_RDWR, 0o600)
	_, _ = fl.WriteAt([]byte("ab"), 0)
	_ = fl.Preallocate(6)
	b := make([]byte, 8)
	n, err := fl.ReadAt(b, 0)
	if n != 6 || err != io.EOF || string(b[:6]) != "ab\x00\x00\x00\x00" {
		t.Fatalf("read %d %v %q", n, err, b[:n])
	}
}

// The real WAL on this file system recovers, after any crash, every
// entry whose Save returned, whatever the crash kept of the rest.
func TestWALRecoversAcknowledgedEntriesAfterCrashes(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		f := New(seed, Faults{})
		opts := wal.Options{FS: f, SegmentSize: 4 << 10}
		w, err := wal.Create("/wal", []byte("meta"), opts)
		if err != nil {
			t.Fatal(err)
		}
		var acked uint64
		for round := 0; round < 4; round++ {
			for i := 0; i < 20; i++ {
				idx := acked + 1
				e := consensus.Entry{Index: idx, Term: 1, Data: []byte(fmt.Sprintf("entry %d of seed %d", idx, seed))}
				if err := w.Save(consensus.HardState{Term: 1, Commit: idx}, []consensus.Entry{e}); err != nil {
					t.Fatalf("seed %d: save %d: %v", seed, idx, err)
				}
				acked = idx
			}
			f.Crash()
			_ = w.Close()
			var c *wal.Contents
			w, c, err = wal.Open("/wal", 0, opts)
			if err != nil {
				t.Fatalf("seed %d round %d: open after a crash: %v", seed, round, err)
			}
			if n := uint64(len(c.Entries)); n < acked {
				t.Fatalf("seed %d round %d: %d entries recovered, %d were acknowledged", seed, round, n, acked)
			}
			for i, e := range c.Entries[:acked] {
				if want := fmt.Sprintf("entry %d of seed %d", i+1, seed); string(e.Data) != want {
					t.Fatalf("seed %d: entry %d is %q", seed, i+1, e.Data)
				}
			}
		}
		_ = w.Close()
	}
}

// noSync is a file system whose files never really sync: the bug of a
// write acknowledged before its fsync.
type noSync struct{ *FS }

func (n noSync) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	f, err := n.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

type noSyncFile struct{ wal.File }

func (noSyncFile) Sync() error { return nil }

// The crash model is only evidence if it loses what was not synced: with
// syncs that do nothing, the WAL loses acknowledged entries.
func TestCrashCatchesAnAcknowledgementBeforeFsync(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		f := New(seed, Faults{})
		opts := wal.Options{FS: noSync{f}, SegmentSize: 4 << 10}
		w, err := wal.Create("/wal", []byte("meta"), opts)
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(1); i <= 20; i++ {
			if err := w.Save(consensus.HardState{Term: 1, Commit: i}, []consensus.Entry{{Index: i, Term: 1, Data: []byte("x")}}); err != nil {
				t.Fatal(err)
			}
		}
		f.Crash()
		_ = w.Close()
		_, c, err := wal.Open("/wal", 0, wal.Options{FS: f, SegmentSize: 4 << 10})
		if err != nil || len(c.Entries) < 20 {
			return // caught: acknowledged entries lost (or the WAL refused to open)
		}
	}
	t.Fatal("30 seeds of crashes lost nothing that was never synced")
}

// Calls take the virtual time Latency gives them, summed in Elapsed; a
// stall replaces a sync's time; no latency costs nothing.
func TestLatencyAddsUp(t *testing.T) {
	f := New(1, Faults{})
	_ = f.MkdirAll("/d", 0o700)
	a, _ := f.OpenFile("/d/a", os.O_CREATE|os.O_RDWR, 0o600)
	_, _ = a.WriteAt([]byte("x"), 0)
	_ = a.Sync()
	_ = f.SyncDir("/d")
	if got := f.Elapsed(); got != 0 {
		t.Fatalf("without latency, calls took %v", got)
	}
	f.SetLatency(Latency{Write: [2]time.Duration{time.Millisecond, time.Millisecond},
		Sync: [2]time.Duration{5 * time.Millisecond, 5 * time.Millisecond}})
	_, _ = a.WriteAt([]byte("y"), 1)
	_ = a.Sync()
	_ = f.SyncDir("/d")
	if got, want := f.Elapsed(), 11*time.Millisecond; got != want {
		t.Fatalf("a write and two syncs took %v, want %v", got, want)
	}
	f.SetLatency(Latency{Sync: [2]time.Duration{5 * time.Millisecond, 5 * time.Millisecond},
		Stall: 1, StallTime: [2]time.Duration{time.Second, time.Second}})
	_ = a.Sync()
	if got, want := f.Elapsed(), 11*time.Millisecond+time.Second; got != want {
		t.Fatalf("after a stalled sync: %v, want %v", got, want)
	}
}

// The durations drawn are the seed's: two file systems with one seed
// spend the same time on the same calls, within the range asked.
func TestLatencyIsTheSeeds(t *testing.T) {
	run := func(seed uint64) []time.Duration {
		f := New(seed, Faults{})
		f.SetLatency(Latency{Write: [2]time.Duration{0, time.Millisecond},
			Sync: [2]time.Duration{time.Millisecond, 50 * time.Millisecond}})
		_ = f.MkdirAll("/d", 0o700)
		a, _ := f.OpenFile("/d/a", os.O_CREATE|os.O_RDWR, 0o600)
		var out []time.Duration
		for i := range 20 {
			before := f.Elapsed()
			_, _ = a.WriteAt([]byte("x"), int64(i))
			_ = a.Sync()
			d := f.Elapsed() - before
			if d < time.Millisecond || d > 51*time.Millisecond {
				t.Fatalf("seed %d: a write and a sync took %v, outside [1ms, 51ms]", seed, d)
			}
			out = append(out, d)
		}
		return out
	}
	a, b, c := run(7), run(7), run(8)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("one seed, two runs: %v, %v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatalf("two seeds drew the same durations: %v", a)
	}
}

// An overwrite below what was synced makes the rest unsynced: a crash
// keeps what was synced before it, then a prefix of the new bytes, never
// the bytes overwritten; truncating on open is undone by a crash.
func TestCrashAfterOverwrite(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		f := New(seed, Faults{})
		_ = f.MkdirAll("/d", 0o700)
		a, _ := f.OpenFile("/d/a", os.O_CREATE|os.O_RDWR, 0o600)
		_, _ = a.WriteAt([]byte("abcdef"), 0)
		_ = a.Sync()
		_ = f.SyncDir("/d")
		_, _ = a.WriteAt([]byte("XY"), 2)
		f.Crash()
		got, _ := f.Bytes("/d/a")
		if len(got) < 2 || string(got) != "abXYef"[:len(got)] {
			t.Fatalf("seed %d: after an overwrite and a crash: %q", seed, got)
		}
		_, _ = f.OpenFile("/d/a", os.O_RDWR|os.O_TRUNC, 0o600)
		f.Crash()
		if again, _ := f.Bytes("/d/a"); string(again) != string(got) {
			t.Fatalf("seed %d: a truncation never synced survived a crash: %q, want %q", seed, again, got)
		}
	}
}
