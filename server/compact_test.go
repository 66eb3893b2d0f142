package server

import (
	"fmt"
	"testing"
	"time"
)

// The in-memory Raft log is compacted as bbolt covers it, long before a
// WAL snapshot is due: it holds between CatchUpEntries and twice that
// many entries, and the member restarts with everything (the applied
// state from bbolt, the rest from the WAL, which was not purged).
func TestLogCompactedApartFromWALSnapshots(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.CatchUpEntries = 20
	cfg.SnapshotCount = 1_000_000 // no WAL snapshot marker in this test
	m := startMember(t, cfg)
	const keys = 300
	for i := range keys {
		set(t, m, fmt.Sprintf("/c/k%03d", i), fmt.Sprint(i))
	}
	// The last batch is written within FlushInterval; its flushed event
	// compacts the log.
	deadline := time.Now().Add(10 * time.Second)
	for {
		first, _ := m.rs.FirstIndex()
		last, _ := m.rs.LastIndex()
		if first > keys-2*cfg.CatchUpEntries && last-first+1 <= 2*cfg.CatchUpEntries {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in-memory log holds %d..%d after %d puts; want at most %d entries, from past %d",
				first, last, keys, 2*cfg.CatchUpEntries, keys-2*cfg.CatchUpEntries)
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.Stop()
	if m.snapIndex != 0 {
		t.Fatalf("a WAL snapshot was taken at %d; SnapshotCount is %d", m.snapIndex, cfg.SnapshotCount)
	}

	m = startMember(t, cfg)
	defer m.Stop()
	for i := range keys {
		if v := get(t, m, fmt.Sprintf("/c/k%03d", i)); v != fmt.Sprint(i) {
			t.Fatalf("after restart /c/k%03d = %q, want %q", i, v, fmt.Sprint(i))
		}
	}
}
