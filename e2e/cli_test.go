package e2e

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// etcd's --version works on cairn: it prints what `cairn version` prints
// and exits 0, starting nothing, whatever other flags are given.
func TestVersionFlag(t *testing.T) {
	want, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(want), "cairn ") {
		t.Fatalf("cairn version: %v %q", err, want)
	}
	for _, args := range [][]string{{"--version"}, {"-version"}, {"--version=true"}, {"--name", "x", "--data-dir", t.TempDir(), "--version"}} {
		cmd := exec.Command(binary, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		if err != nil || string(got) != string(want) || stderr.Len() != 0 {
			t.Errorf("cairn %s: %v, stdout %q, stderr %q; want %q", strings.Join(args, " "), err, got, stderr.String(), want)
		}
	}
}

// A member started the way etcd's unit files and test helpers start
// etcd, with --enable-v2, serves; --enable-v2=false is refused at once
// with the reason, and exit status 1.
func TestEnableV2Flag(t *testing.T) {
	for _, args := range [][]string{{"--enable-v2=false"}, {"--enable-v2=false", "--data-dir", t.TempDir()}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 ||
			!strings.Contains(string(out), "flag --enable-v2: cairn serves only the v2 API, which cannot be turned off") {
			t.Errorf("cairn %s: %v %q", strings.Join(args, " "), err, out)
		}
	}
	c := startClusterWith(t, []string{"--enable-v2"}, "a")
	if code, body := c.do(c.procs[0], "GET", "/v2/keys/", nil); code != http.StatusOK {
		t.Fatalf("a member started with --enable-v2: %d %s", code, body)
	}
}
