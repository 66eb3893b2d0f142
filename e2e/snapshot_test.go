package e2e

import (
	"fmt"
	"io"
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
	// Not on a terminal: the result on standard output, and nothing on
	// standard error (progress is for terminals).
	save := exec.Command(binary, "snapshot", "save", "--endpoints", p.client, backup)
	var stderr strings.Builder
	save.Stderr = &stderr
	if out, err := save.Output(); err != nil || !strings.HasPrefix(string(out), "saved "+backup+": 21 keys") || stderr.Len() != 0 {
		t.Fatalf("snapshot save: %v\n%s\nstandard error: %q", err, out, stderr.String())
	}
	// The member says how long the copy is.
	resp, err := http.Get(p.client + "/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.ContentLength <= 0 || resp.ContentLength != int64(len(body)) {
		t.Fatalf("GET /snapshot: Content-Length %d, %d bytes, %v", resp.ContentLength, len(body), err)
	}
	out, err := exec.Command(binary, "snapshot", "status", backup).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"storeIndex":20`) || !strings.Contains(string(out), `"keys":21`) {
		t.Fatalf("snapshot status: %v\n%s", err, out)
	}
	c.kill(p, syscall.SIGTERM)

	r := &proc{name: "restored", dir: filepath.Join(t.TempDir(), "restored"),
		client: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), peer: fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
	c.initial = "restored=" + r.peer
	restore := exec.Command(binary, "snapshot", "restore", backup, "--name", r.name, "--data-dir", r.dir,
		"--initial-cluster", c.initial, "--initial-advertise-peer-urls", r.peer)
	stderr.Reset()
	restore.Stderr = &stderr
	if out, err := restore.Output(); err != nil || !strings.HasPrefix(string(out), "restored 21 keys") || stderr.Len() != 0 {
		t.Fatalf("snapshot restore: %v\n%s\nstandard error: %q", err, out, stderr.String())
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
