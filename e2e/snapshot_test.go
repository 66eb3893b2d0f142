package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// cairn snapshot save takes a backup from a running member; status
// describes it; restore builds a new data directory (new name, new
// cluster) from it; a member started there serves the backed-up keys and
// takes writes.
func TestSnapshotSaveStatusRestore(t *testing.T) {
	c := startCluster(t, "solo")
	p := c.procs[0]
	for i := range 20 {
		if code, body := c.do(p, "PUT", fmt.Sprintf("/v2/keys/dir/k%d", i), url.Values{"value": {fmt.Sprint(i)}}); code != http.StatusCreated {
			t.Fatalf("PUT: %d %s", code, body)
		}
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if out, err := exec.Command(binary, "snapshot", "save", "--endpoints", p.client, backup).CombinedOutput(); err != nil {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}
	out, err := exec.Command(binary, "snapshot", "status", backup).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"storeIndex":20`) || !strings.Contains(string(out), `"keys":21`) {
		t.Fatalf("snapshot status: %v\n%s", err, out)
	}
	c.kill(p, syscall.SIGTERM)

	r := &proc{name: "restored", dir: filepath.Join(t.TempDir(), "restored"),
		client: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), peer: fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
	c.initial = "restored=" + r.peer
	if out, err := exec.Command(binary, "snapshot", "restore", backup, "--name", r.name, "--data-dir", r.dir,
		"--initial-cluster", c.initial, "--initial-advertise-peer-urls", r.peer).CombinedOutput(); err != nil {
		t.Fatalf("snapshot restore: %v\n%s", err, out)
	}
	c.procs = append(c.procs, r)
	c.start(r)
	if _, body := c.do(r, "GET", "/v2/keys/dir/k7", nil); !strings.Contains(body, `"value":"7"`) {
		t.Fatalf("restored member: %s", body)
	}
	if code, body := c.do(r, "PUT", "/v2/keys/after", url.Values{"value": {"x"}}); code != http.StatusCreated || !strings.Contains(body, `"modifiedIndex":21`) {
		t.Fatalf("write after restore: %d %s", code, body)
	}
}
