package bench

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// names records the lock and queue names a test server was asked for.
type names struct {
	mu   sync.Mutex
	seen map[string]int
}

func (n *names) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range []string{"/v2/locks/", "/v2/queues/"} {
			if name, ok := strings.CutPrefix(r.URL.Path, p); ok {
				n.mu.Lock()
				n.seen[p+name]++
				n.mu.Unlock()
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (n *names) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for k := range n.seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The lock workload: --total acquire+release cycles (each a POST with
// wait and a DELETE with the token), spread over --locks locks, none
// failing, and every lock free at the end.
func TestLockWorkload(t *testing.T) {
	n := &names{seen: map[string]int{}}
	srv, c := testServer(t, n.wrap)
	res := mustRun(t, configFor(t, srv.URL, "--workload", "lock", "--total", "120", "--clients", "6", "--locks", "2"))
	if res.requests != 120 || res.errors != 0 || res.lat.n != 120 {
		t.Fatalf("requests=%d errors=%d latencies=%d (%s), want 120 cycles without error", res.requests, res.errors, res.lat.n, res.firstErr)
	}
	if a, d := c.get("POST wait"), c.get("DELETE"); a != 120 || d != 120 {
		t.Errorf("%d POST ?wait and %d DELETE, want 120 of each", a, d)
	}
	want := []string{"/v2/locks/bench-lock-0", "/v2/locks/bench-lock-1"}
	if got := n.list(); !slices.Equal(got, want) {
		t.Errorf("locks used: %q, want %q", got, want)
	}
	for _, l := range want {
		var st struct {
			Holder  any   `json:"holder"`
			Waiters []any `json:"waiters"`
		}
		getJSON(t, srv.URL+l, &st)
		if st.Holder != nil || len(st.Waiters) != 0 {
			t.Errorf("%s after the run: holder %v, waiters %v", l, st.Holder, st.Waiters)
		}
	}
	var out bytes.Buffer
	res.write(&out)
	if !strings.Contains(out.String(), "workload=lock clients=6 requests=120 errors=0 ") {
		t.Errorf("report:\n%s", out.String())
	}
}

// Clients on one lock contend for it: every cycle is still answered
// (waiting in line), and the tokens the server handed out all differ.
func TestLockWorkloadContended(t *testing.T) {
	var (
		mu     sync.Mutex
		tokens []string
	)
	srv, _ := testServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete {
				mu.Lock()
				tokens = append(tokens, r.URL.Query().Get("token"))
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	})
	res := mustRun(t, configFor(t, srv.URL, "--workload", "lock", "--total", "60", "--clients", "8", "--prefix", "/a/b c"))
	if res.requests != 60 || res.errors != 0 {
		t.Fatalf("requests=%d errors=%d (%s)", res.requests, res.errors, res.firstErr)
	}
	slices.Sort(tokens)
	if len(tokens) != 60 || len(slices.Compact(tokens)) != 60 {
		t.Errorf("%d releases with %d distinct tokens, want 60 and 60", len(tokens), len(slices.Compact(tokens)))
	}
	var st struct {
		Lock   string `json:"lock"`
		Holder any    `json:"holder"`
	}
	getJSON(t, srv.URL+"/v2/locks/a-b-c-lock-0", &st)
	if st.Lock != "a-b-c-lock-0" || st.Holder != nil {
		t.Errorf("the lock named from --prefix: %+v", st)
	}
}

// The queue workload: --total enqueue+dequeue pairs over --queues
// queues, none failing (a client dequeues only after its own enqueue),
// and every queue empty at the end.
func TestQueueWorkload(t *testing.T) {
	n := &names{seen: map[string]int{}}
	srv, c := testServer(t, n.wrap)
	res := mustRun(t, configFor(t, srv.URL, "--workload", "queue", "--total", "150", "--clients", "5", "--queues", "3", "--value-size", "40"))
	if res.requests != 150 || res.errors != 0 || res.lat.n != 150 {
		t.Fatalf("requests=%d errors=%d latencies=%d (%s), want 150 pairs without error", res.requests, res.errors, res.lat.n, res.firstErr)
	}
	if p, d := c.get("POST"), c.get("DELETE"); p != 150 || d != 150 {
		t.Errorf("%d POST and %d DELETE, want 150 of each", p, d)
	}
	var want []string
	for i := range 3 {
		want = append(want, "/v2/queues/bench-queue-"+strconv.Itoa(i))
	}
	if got := n.list(); !slices.Equal(got, want) {
		t.Errorf("queues used: %q, want %q", got, want)
	}
	for _, q := range want {
		var l struct {
			Node struct {
				Nodes []any `json:"nodes"`
			} `json:"node"`
		}
		getJSON(t, srv.URL+q, &l)
		if len(l.Node.Nodes) != 0 {
			t.Errorf("%s after the run: %d items", q, len(l.Node.Nodes))
		}
	}
}

// Against a server without locks and queues (etcd), every request fails
// and says why.
func TestCoordWorkloadsNeedCairn(t *testing.T) {
	for _, w := range []string{"lock", "queue"} {
		t.Run(w, func(t *testing.T) {
			srv, _ := testServer(t, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !strings.HasPrefix(r.URL.Path, "/v2/keys") {
						http.NotFound(w, r)
						return
					}
					next.ServeHTTP(w, r)
				})
			})
			res := mustRun(t, configFor(t, srv.URL, "--workload", w, "--total", "20", "--clients", "2"))
			if res.requests != 20 || res.errors != 20 || !strings.Contains(res.firstErr, "404") {
				t.Fatalf("requests=%d errors=%d first %q, want 20 failed with 404", res.requests, res.errors, res.firstErr)
			}
		})
	}
}

func TestCoordFlags(t *testing.T) {
	var out bytes.Buffer
	if code := Main([]string{"--help"}, &out); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, s := range []string{"  -locks int", "  -queues int", "/v2/locks/", "/v2/queues/"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("--help does not mention %q:\n%s", s, out.String())
		}
	}
	for _, args := range [][]string{{"--locks", "0"}, {"--queues", "0"}, {"--locks", "-2"}} {
		out.Reset()
		if code := Main(args, &out); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, out.String())
		}
	}
	cfg := configFor(t, "http://127.0.0.1:1", "--workload", "lock")
	if cfg.locks != 1 || cfg.queues != 1 {
		t.Errorf("defaults: --locks %d --queues %d, want 1 and 1", cfg.locks, cfg.queues)
	}
	r := newRunner(configFor(t, "http://127.0.0.1:1", "--prefix", "/_x/y.z"))
	if got := r.coordName("queue", 3); got != "x-y.z-queue-3" {
		t.Errorf("name from --prefix /_x/y.z: %q", got)
	}
}
