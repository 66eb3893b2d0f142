package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// counter counts the requests a test server received, by kind, and the
// client connections (remote addresses) they came over.
type counter struct {
	mu    sync.Mutex
	kinds map[string]int
	conns map[string]bool
}

func (c *counter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := r.Method
		q := r.URL.Query()
		for _, p := range []string{"quorum", "serializable", "prevValue", "wait"} {
			if q.Has(p) {
				kind += " " + p
			}
		}
		c.mu.Lock()
		c.kinds[kind]++
		c.conns[r.RemoteAddr] = true
		c.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (c *counter) get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kinds[kind]
}

// testServer is an in-process Cairn (a Local backend behind the client
// API); wrap, if not nil, sits in front of the handler.
func testServer(t *testing.T, wrap func(http.Handler) http.Handler) (*httptest.Server, *counter) {
	t.Helper()
	be := server.NewLocal(store.New(store.DefaultEventHistory), 1, nil)
	c := &counter{kinds: map[string]int{}, conns: map[string]bool{}}
	h := httpapi.NewHandler(httpapi.Config{Backend: be})
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(c.wrap(h))
	t.Cleanup(func() {
		srv.Close()
		be.Close()
	})
	return srv, c
}

// configFor parses flags as `cairn bench` would, with --endpoints first.
func configFor(t *testing.T, endpoints string, args ...string) config {
	t.Helper()
	cfg, err := parseFlags(append([]string{"--endpoints", endpoints}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mustRun(t *testing.T, cfg config) *result {
	t.Helper()
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// getJSON reads a v2 answer from the test server.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestPercentilesOfKnownSamples(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var samples []time.Duration
	for i := 1; i <= 100; i++ {
		samples = append(samples, ms(i))
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(samples), func(i, j int) { samples[i], samples[j] = samples[j], samples[i] })
	s := summarize(samples)
	want := summary{n: 100, mean: 50*time.Millisecond + 500*time.Microsecond,
		p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(100), maxLat: ms(100)}
	if s != want {
		t.Errorf("1..100 ms: got %+v, want %+v", s, want)
	}

	var thousand []time.Duration
	for i := 1000; i >= 1; i-- {
		thousand = append(thousand, ms(i))
	}
	if s := summarize(thousand); s.p50 != ms(500) || s.p99 != ms(990) || s.p999 != ms(999) || s.maxLat != ms(1000) {
		t.Errorf("1..1000 ms: got %+v", s)
	}

	if s := summarize([]time.Duration{ms(7)}); s.p50 != ms(7) || s.p999 != ms(7) || s.maxLat != ms(7) || s.mean != ms(7) {
		t.Errorf("one sample: got %+v", s)
	}
	if s := summarize(nil); s != (summary{}) {
		t.Errorf("no samples: got %+v", s)
	}
	// Nearest rank: 4 samples, p50 is the 2nd, p90 and p99 the 4th.
	four := []time.Duration{ms(40), ms(10), ms(30), ms(20)}
	if s := summarize(four); s.p50 != ms(20) || s.p90 != ms(40) || s.p99 != ms(40) {
		t.Errorf("4 samples: got %+v", s)
	}
}

// Each workload other than watch sends exactly --total measured
// requests of its kind, after its preload, with no errors.
func TestWorkloadsCountRequests(t *testing.T) {
	const total, clients, keySpace = 200, 4, 50
	tests := []struct {
		workload string
		extra    []string
		check    func(t *testing.T, srv *httptest.Server, c *counter)
	}{
		{workload: workloadPut, check: func(t *testing.T, _ *httptest.Server, c *counter) {
			if n := c.get("PUT"); n != total {
				t.Errorf("%d PUTs, want %d", n, total)
			}
		}},
		{workload: workloadGet, check: func(t *testing.T, _ *httptest.Server, c *counter) {
			if n, m := c.get("PUT"), c.get("GET quorum"); n != keySpace || m != total {
				t.Errorf("%d PUTs and %d GET ?quorum=true, want %d and %d", n, m, keySpace, total)
			}
		}},
		{workload: workloadGetSerializable, check: func(t *testing.T, _ *httptest.Server, c *counter) {
			if n, m := c.get("PUT"), c.get("GET serializable"); n != keySpace || m != total {
				t.Errorf("%d PUTs and %d GET ?serializable=true, want %d and %d", n, m, keySpace, total)
			}
		}},
		{workload: workloadMixed, extra: []string{"--read-ratio", "0.5", "--consistency", "l"}, check: func(t *testing.T, _ *httptest.Server, c *counter) {
			puts, gets := c.get("PUT")-keySpace, c.get("GET quorum")
			if puts+gets != total || puts == 0 || gets == 0 {
				t.Errorf("%d PUTs and %d GETs after the preload, want %d of both kinds", puts, gets, total)
			}
		}},
		{workload: workloadCAS, check: func(t *testing.T, srv *httptest.Server, c *counter) {
			if n, m := c.get("PUT"), c.get("PUT prevValue"); n != clients || m != total {
				t.Errorf("%d PUTs and %d PUT ?prevValue, want %d and %d", n, m, clients, total)
			}
			// Each client's key holds the number of its swaps.
			swaps := 0
			for i := range clients {
				var a v2Answer
				getJSON(t, srv.URL+"/v2/keys/bench/cas/"+fmt.Sprintf("%06d", i), &a)
				if a.Node == nil {
					t.Fatalf("client %d's key: %+v", i, a)
				}
				n, err := strconv.Atoi(a.Node.Value)
				if err != nil {
					t.Fatal(err)
				}
				swaps += n
			}
			if swaps != total {
				t.Errorf("%d swaps recorded in the keys, want %d", swaps, total)
			}
		}},
		{workload: workloadPost, check: func(t *testing.T, srv *httptest.Server, c *counter) {
			if n := c.get("POST"); n != total {
				t.Errorf("%d POSTs, want %d", n, total)
			}
			var dir struct {
				Node struct {
					Nodes []struct {
						Key string `json:"key"`
					} `json:"nodes"`
				} `json:"node"`
			}
			getJSON(t, srv.URL+"/v2/keys/bench/queue?sorted=true", &dir)
			if len(dir.Node.Nodes) != total {
				t.Errorf("%d keys in the directory, want %d", len(dir.Node.Nodes), total)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			srv, c := testServer(t, nil)
			args := append([]string{"--workload", tt.workload, "--total", strconv.Itoa(total),
				"--clients", strconv.Itoa(clients), "--key-space", strconv.Itoa(keySpace), "--value-size", "32"}, tt.extra...)
			res := mustRun(t, configFor(t, srv.URL, args...))
			if res.requests != total || res.errors != 0 || res.lat.n != total {
				t.Fatalf("requests=%d errors=%d samples=%d (first error %q), want %d, 0, %d",
					res.requests, res.errors, res.lat.n, res.firstErr, total, total)
			}
			if res.workload != tt.workload || res.clients != clients || res.elapsed <= 0 {
				t.Errorf("result %+v", res)
			}
			tt.check(t, srv, c)
		})
	}
}

// failEveryOther answers every second request it sees with a 500.
func failEveryOther(next http.Handler) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func TestErrorsCounted(t *testing.T) {
	srv, _ := testServer(t, failEveryOther)
	res := mustRun(t, configFor(t, srv.URL, "--workload", "put", "--total", "100", "--clients", "4"))
	if res.requests != 100 || res.errors != 50 {
		t.Fatalf("requests=%d errors=%d, want 100 and 50", res.requests, res.errors)
	}
	if !strings.Contains(res.firstErr, "500") || !strings.Contains(res.firstErr, "injected failure") {
		t.Errorf("first error %q: want the status and the answer's text", res.firstErr)
	}
	var out bytes.Buffer
	res.write(&out)
	if !strings.Contains(out.String(), "first error: ") || !strings.Contains(out.String(), " errors=50 ") {
		t.Errorf("report:\n%s", out.String())
	}
}

// A 4xx answer (here: key not found) is an error too.
func TestClientErrorsCounted(t *testing.T) {
	srv, _ := testServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Query().Has("quorum") {
				r.URL.Path += "-missing" // a key never written: 404
			}
			next.ServeHTTP(w, r)
		})
	})
	res := mustRun(t, configFor(t, srv.URL, "--workload", "get", "--total", "30", "--clients", "3", "--key-space", "5"))
	if res.requests != 30 || res.errors != 30 || !strings.Contains(res.firstErr, "404") {
		t.Fatalf("requests=%d errors=%d first %q, want 30 failed with 404", res.requests, res.errors, res.firstErr)
	}
}

func TestTransportErrorsCounted(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	res := mustRun(t, configFor(t, url, "--workload", "put", "--total", "10", "--clients", "2", "--timeout", "2s"))
	if res.requests != 10 || res.errors != 10 || res.firstErr == "" {
		t.Fatalf("requests=%d errors=%d first %q, want 10 failed", res.requests, res.errors, res.firstErr)
	}
}

// Clients are spread round-robin over the endpoints, each keeping its
// connection alive.
func TestEndpointsRoundRobin(t *testing.T) {
	a, ca := testServer(t, nil)
	b, cb := testServer(t, nil)
	res := mustRun(t, configFor(t, a.URL+","+b.URL+"/", "--workload", "put", "--total", "400", "--clients", "4"))
	if res.requests != 400 || res.errors != 0 {
		t.Fatalf("requests=%d errors=%d (%s)", res.requests, res.errors, res.firstErr)
	}
	na, nb := ca.get("PUT"), cb.get("PUT")
	if na == 0 || nb == 0 || na+nb != 400 {
		t.Errorf("PUTs: %d at the first endpoint, %d at the second", na, nb)
	}
	for i, c := range []*counter{ca, cb} {
		c.mu.Lock()
		if n := len(c.conns); n > 2 {
			t.Errorf("endpoint %d: %d connections for 2 clients", i, n)
		}
		c.mu.Unlock()
	}
}

func TestDurationRun(t *testing.T) {
	srv, c := testServer(t, nil)
	res := mustRun(t, configFor(t, srv.URL, "--workload", "put", "--duration", "200ms", "--clients", "2", "--total", "1"))
	if res.requests < 2 || res.errors != 0 || res.elapsed < 200*time.Millisecond {
		t.Fatalf("requests=%d errors=%d in %v: want more than --total, none failed, at least --duration", res.requests, res.errors, res.elapsed)
	}
	if n := c.get("PUT"); int64(n) != res.requests {
		t.Errorf("server saw %d PUTs, the report says %d", n, res.requests)
	}
}

func TestRatePaces(t *testing.T) {
	srv, _ := testServer(t, nil)
	res := mustRun(t, configFor(t, srv.URL, "--workload", "put", "--total", "21", "--clients", "3", "--rate", "200"))
	// The 21st request may not start before 20/200 s.
	if res.requests != 21 || res.elapsed < 100*time.Millisecond {
		t.Fatalf("requests=%d in %v, want 21 in at least 100ms", res.requests, res.elapsed)
	}
}

func TestWatchFanOut(t *testing.T) {
	srv, c := testServer(t, nil)
	res := mustRun(t, configFor(t, srv.URL, "--workload", "watch", "--watchers", "20", "--total", "30"))
	if res.requests != 30 || res.errors != 0 {
		t.Fatalf("writes=%d errors=%d (%s), want 30 and 0", res.requests, res.errors, res.firstErr)
	}
	if res.expected != 600 || res.events != 600 || res.lat.n != 600 || res.watchers != 20 {
		t.Fatalf("events %d of %d, %d latencies, %d watchers; want 600 of 600 from 20", res.events, res.expected, res.lat.n, res.watchers)
	}
	// One preload write and 30 measured ones; each watcher polled at
	// least once per event.
	if n, m := c.get("PUT"), c.get("GET wait"); n != 31 || m < 600 {
		t.Errorf("%d PUTs, %d watch polls", n, m)
	}
	var out bytes.Buffer
	res.write(&out)
	if !strings.Contains(out.String(), "workload=watch clients=1 watchers=20 requests=30 errors=0 ") ||
		!strings.Contains(out.String(), " events=600 expected=600 ") {
		t.Errorf("report:\n%s", out.String())
	}
}

// Failed writes count as errors and raise no expectation of events.
func TestWatchCountsFailedWrites(t *testing.T) {
	var puts atomic.Int64
	srv, _ := testServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The first PUT (the preload) passes; then every other fails.
			if r.Method == http.MethodPut && puts.Add(1)%2 == 0 {
				http.Error(w, "injected failure", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	res := mustRun(t, configFor(t, srv.URL, "--workload", "watch", "--watchers", "5", "--total", "10"))
	if res.requests != 10 || res.errors != 5 || !strings.Contains(res.firstErr, "503") {
		t.Fatalf("writes=%d errors=%d first %q, want 10, 5 and a 503", res.requests, res.errors, res.firstErr)
	}
	if res.expected != 25 || res.events != 25 {
		t.Fatalf("events %d of %d, want 25 of 25", res.events, res.expected)
	}
}

// parseLine reads a key=value line.
func parseLine(line string) map[string]string {
	kv := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		}
	}
	return kv
}

func TestMainReport(t *testing.T) {
	srv, _ := testServer(t, nil)
	var out bytes.Buffer
	code := Main([]string{"--endpoints", srv.URL, "--workload", "put", "--total", "50", "--clients", "5"}, &out)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "put: 50 requests, 0 errors, 5 clients") {
		t.Fatalf("report:\n%s", out.String())
	}
	kv := parseLine(lines[1])
	for k, want := range map[string]string{"workload": "put", "clients": "5", "requests": "50", "errors": "0"} {
		if kv[k] != want {
			t.Errorf("%s=%q, want %q", k, kv[k], want)
		}
	}
	for _, k := range []string{"duration", "throughput", "mean", "p50", "p90", "p99", "p999", "max"} {
		if kv[k] == "" {
			t.Errorf("no %s= in %q", k, lines[1])
		}
	}
	if !strings.HasSuffix(kv["throughput"], "/s") || !strings.HasSuffix(kv["p99"], "ms") || !strings.HasSuffix(kv["duration"], "s") {
		t.Errorf("units: %q", lines[1])
	}
}

func TestMachineLineFormat(t *testing.T) {
	res := &result{workload: "put", clients: 64, requests: 20000, elapsed: 3210 * time.Millisecond,
		lat: summary{n: 20000, mean: 10 * time.Millisecond, p50: 9800 * time.Microsecond, p90: 18 * time.Millisecond,
			p99: 31200 * time.Microsecond, p999: 60 * time.Millisecond, maxLat: 80100 * time.Microsecond}}
	want := "workload=put clients=64 requests=20000 errors=0 duration=3.21s throughput=6230.5/s mean=10.00ms p50=9.80ms p90=18.00ms p99=31.20ms p999=60.00ms max=80.10ms"
	if got := res.machineLine(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if code := Main([]string{"--help"}, &out); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, f := range []string{"endpoints", "clients", "total", "duration", "key-space", "key-size", "value-size",
		"workload", "watchers", "read-ratio", "consistency", "rate", "prefix", "timeout", "cacert", "cert", "key"} {
		if !strings.Contains(out.String(), "  -"+f+" ") {
			t.Errorf("--help does not document --%s:\n%s", f, out.String())
		}
	}
	for _, w := range workloads {
		if !strings.Contains(out.String(), w) {
			t.Errorf("--help does not name the workload %s", w)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--workload", "delete"},
		{"--clients", "0"},
		{"--endpoints", ""},
		{"--endpoints", "127.0.0.1:2379"},
		{"--read-ratio", "1.5"},
		{"--consistency", "x"},
		{"--total", "0"},
		{"--rate", "-1"},
		{"--prefix", "/"},
		{"extra"},
	} {
		var out bytes.Buffer
		if code := Main(args, &out); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, out.String())
		}
	}
}
