package wal

import (
	"os"
	"testing"
	"time"

	"github.com/cairnkv/cairn/consensus"
)

// With the slow-sync failpoint every save waits at least the delay (its
// fsync sleeps first) and what was saved is read back intact.
func TestSlowSyncDelaysEverySave(t *testing.T) {
	dir := t.TempDir()
	const delay = 30 * time.Millisecond
	opts := Options{FS: SlowSync(OS, delay)}
	w := mustCreate(t, dir, []byte("m"), opts)
	for i := uint64(1); i <= 3; i++ {
		start := time.Now()
		mustSave(t, w, consensus.HardState{Term: 1, Commit: i}, []consensus.Entry{{Term: 1, Index: i, Data: []byte("x")}})
		if took := time.Since(start); took < delay {
			t.Fatalf("save %d took %v, less than the failpoint's %v", i, took, delay)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, c := mustOpen(t, dir, 0, Options{})
	if len(c.Entries) != 3 || c.HardState.Commit != 3 {
		t.Fatalf("read back %d entries, commit %d", len(c.Entries), c.HardState.Commit)
	}
}

// The file-driven failpoint delays while the file names a delay and not
// after it is removed.
func TestSlowSyncFromFile(t *testing.T) {
	dir := t.TempDir()
	ctl := dir + "/delay"
	const delay = 30 * time.Millisecond
	w := mustCreate(t, dir+"/wal", []byte("m"), Options{FS: SlowSyncFromFile(OS, ctl)})
	defer w.Close()
	if err := os.WriteFile(ctl, []byte(delay.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustSave(t, w, consensus.HardState{Term: 1, Commit: 1}, []consensus.Entry{{Term: 1, Index: 1}})
	if took := time.Since(start); took < delay {
		t.Fatalf("save took %v with the failpoint at %v", took, delay)
	}
	if err := os.Remove(ctl); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, consensus.HardState{Term: 1, Commit: 2}, []consensus.Entry{{Term: 1, Index: 2}})
}
