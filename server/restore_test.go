package server

import (
	"os"
	"path/filepath"
	"testing"
)

// A backup of one member's applied state restores into a new data
// directory with a new identity: the keys and the history come back, and
// the restored member takes writes.
func TestRestoreFromBackup(t *testing.T) {
	m := startMember(t, testConfig(t.TempDir()))
	set(t, m, "/a", "1")
	set(t, m, "/dir/b", "2")
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	// Take the backup from the stopped member's applied state.
	src := StatePath(m.cfg.DataDir)
	backup := filepath.Join(t.TempDir(), "backup.db")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backup, data, 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t.TempDir())
	cfg.ID, cfg.ClusterID = 77, 78
	st, err := Restore(backup, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.StoreIndex != 2 || st.RaftIndex == 0 {
		t.Fatalf("restored status %+v", st)
	}
	if _, err := Restore(backup, cfg, nil); err == nil {
		t.Fatal("a second restore into the same directory succeeded")
	}
	r := startMember(t, cfg)
	defer r.Stop()
	if got := get(t, r, "/dir/b"); got != "2" {
		t.Fatalf("/dir/b = %q after restore", got)
	}
	w, err := r.Watch("/a", false, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := <-w.C; e.Index != 1 || e.Node.Value != "1" {
		t.Fatalf("history after restore: %+v", e.Node)
	}
	if e := set(t, r, "/c", "3"); e.Index != 3 {
		t.Fatalf("first write after restore got index %d, want 3", e.Index)
	}
	if s := r.Status(); s.ClusterID != 78 {
		t.Fatalf("cluster ID %x after restore", s.ClusterID)
	}
}
