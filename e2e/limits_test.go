package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The requests a hostile client used to take a cluster down (issue 12),
// against three real members with the default limits (the body timeout
// shortened to keep the test short): a key of 32 KiB, keys of 14,000 and
// 200,000 path elements, values of 1 MiB and more in the query string, and
// a body sent a byte a second. Each is refused with its documented error;
// after each, every member is healthy and its resident memory stays
// bounded (logged before and after, for the record); at the end every
// member restarts and serves the data written before.
func TestHostileRequestsAreRefusedCheaply(t *testing.T) {
	const (
		bodyTimeout = 2 * time.Second
		rssBound    = 200 << 10 // KiB
	)
	c := startClusterWith(t, []string{"--request-body-timeout", bodyTimeout.String()}, "a", "b", "c")
	target := c.procs[0]
	if code, body := c.do(target, "PUT", "/v2/keys/app/config", url.Values{"value": {"kept"}}); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, body)
	}
	rss := func(p *proc) int {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
		t.Fatalf("no VmRSS for %s", p.name)
		return 0
	}
	rssAll := func() []int {
		var out []int
		for _, p := range c.procs {
			out = append(out, rss(p))
		}
		return out
	}
	healthy := func(what string) {
		t.Helper()
		for _, p := range c.procs {
			if code, body := c.do(p, "GET", "/health", nil); code != http.StatusOK || !strings.Contains(body, `"health":"true"`) {
				t.Fatalf("after %s: %s is unhealthy: %d %s", what, p.name, code, body)
			}
		}
	}
	refusal := func(code int, cause string) string {
		msg := map[int]string{124: "Request too large", 123: "Timed out waiting"}[code]
		return fmt.Sprintf(`{"errorCode":%d,"message":%q,"cause":%q,"index":0}`+"\n", code, msg, cause)
	}
	// check sends one hostile request (send returns its status and body)
	// to member a and logs every member's RSS before and after.
	check := func(what string, send func() (int, string), wantStatus int, wantBody string) {
		t.Helper()
		before := rssAll()
		start := time.Now()
		status, body := send()
		took := time.Since(start)
		after := rssAll()
		t.Logf("%-40s -> %d in %v; VmRSS KiB a/b/c before %v after %v", what, status, took.Round(time.Millisecond), before, after)
		if status != wantStatus || wantBody != "" && body != wantBody {
			t.Errorf("%s: %d %.300q\nwant %d %q", what, status, body, wantStatus, wantBody)
		}
		for i, kb := range after {
			if kb > rssBound {
				t.Errorf("%s: member %s holds %d KiB, more than %d", what, c.procs[i].name, kb, rssBound)
			}
		}
		healthy(what)
	}
	put := func(path, form string) func() (int, string) {
		return func() (int, string) {
			var vals url.Values
			if form != "" {
				vals, _ = url.ParseQuery(form)
			}
			return c.do(target, "PUT", path, vals)
		}
	}
	segments := func(n int) string { return strings.Repeat("/a", n) }

	check("PUT a key of 32 KiB", put("/v2/keys/"+strings.Repeat("k", 32<<10), "value=x"),
		413, refusal(124, fmt.Sprintf("key of %d bytes; at most 4096 (--max-key-bytes)", 1+32<<10)))
	check("PUT a key of 14,000 elements", put("/v2/keys"+segments(14000), "value=x"),
		413, refusal(124, "key of 28000 bytes; at most 4096 (--max-key-bytes)"))
	check("PUT a key of 200 elements", put("/v2/keys"+segments(200), "value=x"),
		413, refusal(124, "key of 200 path elements; at most 128 (--max-key-depth)"))
	check("PUT a key of 200,000 elements (400 KB URL)", put("/v2/keys"+segments(200000), "value=x"),
		413, refusal(124, "key of 400000 bytes; at most 4096 (--max-key-bytes)"))
	check("PUT a 1 MiB + 1 value in the query", put("/v2/keys/q?value="+strings.Repeat("q", 1<<20+1), ""),
		413, refusal(124, "value of 1048577 bytes; at most 1048576 (--max-value-bytes)"))
	q := "/v2/keys/q?value=" + strings.Repeat("q", 1600<<10)
	check("PUT a 1.56 MiB query", put(q, ""),
		413, refusal(124, fmt.Sprintf("request target of %d bytes; at most 1572864 (--max-request-bytes)", len(q))))
	// Past the request limit and the headers' allowance Go's server
	// refuses the request line itself, without reading the rest.
	check("PUT a 3 MiB query", put("/v2/keys/q?value="+strings.Repeat("q", 3<<20), ""), 431, "")
	check("GET / recursively", func() (int, string) { return c.do(target, "GET", "/v2/keys/?recursive=true", nil) },
		200, `{"action":"get","node":{"dir":true,"nodes":[{"key":"/app","dir":true,"nodes":[{"key":"/app/config","value":"kept","modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1}]}}`+"\n")

	// A body a byte a second, while a watch started alongside waits.
	watch := make(chan string, 1)
	go func() {
		resp, err := http.Get(target.client + "/v2/keys/app/config?wait=true")
		if err != nil {
			watch <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		watch <- string(b)
	}()
	check("PUT a body a byte a second", func() (int, string) {
		return slowBody(t, target.client, "PUT /v2/keys/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n", 30*time.Second)
	}, 408, refusal(123, fmt.Sprintf("request body not received within %v (--request-body-timeout)", bodyTimeout)))
	select {
	case w := <-watch:
		t.Fatalf("the watch ended with the slow body: %s", w)
	default:
	}
	if code, body := c.do(c.procs[1], "PUT", "/v2/keys/app/config", url.Values{"value": {"changed"}}); code != http.StatusOK {
		t.Fatalf("PUT at b: %d %s", code, body)
	}
	if w := <-watch; !strings.Contains(w, `"value":"changed"`) {
		t.Fatalf("watch: %s", w)
	}

	// Nothing refused was stored; every member restarts and serves what
	// was.
	for _, p := range c.procs {
		if code, body := c.do(p, "GET", "/v2/keys/a", nil); code != http.StatusNotFound {
			t.Errorf("%s: GET /a after the refusals: %d %s", p.name, code, body)
		}
		c.kill(p, syscall.SIGTERM)
		c.start(p)
	}
	for _, p := range c.procs {
		c.waitFor(p, "/app/config", `"value":"changed"`, 20*time.Second)
	}
	healthy("the restarts")
	t.Logf("after the restarts: VmRSS KiB a/b/c %v", rssAll())
}

// slowBody sends head to the member at clientURL, then one byte of body a
// second until it answers (or guard passes, which fails the test), and
// returns the answer's status and body.
func slowBody(t *testing.T, clientURL, head string, guard time.Duration) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(clientURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if _, err := io.WriteString(conn, "v"); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(guard))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a slow body: no answer within %v: %v", guard, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
