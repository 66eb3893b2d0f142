package e2e

import (
	"net/url"
	"strings"
	"testing"
)

// --enable-pprof serves Go's profiler on the client URL beside the keys
// API, as etcd's flag does; without it /debug/pprof/ is not served.
func TestEnablePprof(t *testing.T) {
	c := startClusterSpec(t, clusterSpec{memberFlags: func(p *proc) []string {
		if p.name == "a" {
			return []string{"--enable-pprof"}
		}
		return nil
	}}, "a", "b", "c")
	a, b := c.procs[0], c.procs[1]
	if code, body := c.do(a, "PUT", "/v2/keys/k", url.Values{"value": {"v"}}); code != 201 {
		t.Fatalf("put: %d %s", code, body)
	}
	if code, body := c.do(a, "GET", "/debug/pprof/cmdline", nil); code != 200 || !strings.Contains(body, "--enable-pprof") {
		t.Fatalf("with --enable-pprof: /debug/pprof/cmdline answered %d %.200q", code, body)
	}
	if code, body := c.do(a, "GET", "/v2/keys/k", nil); code != 200 || !strings.Contains(body, `"value":"v"`) {
		t.Fatalf("with --enable-pprof, the keys API answered %d %s", code, body)
	}
	if code, body := c.do(b, "GET", "/debug/pprof/cmdline", nil); code != 404 {
		t.Fatalf("without --enable-pprof: /debug/pprof/cmdline answered %d %.200q, want 404", code, body)
	}
}
