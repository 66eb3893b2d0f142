package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// fakePeer serves a peer endpoint /members listing the given client URLs
// (one member each), in Cairn's shape or etcd's bare array.
type fakePeer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	clients []string
	etcd    bool
}

func newFakePeer(t *testing.T, etcdShape bool, clients ...string) *fakePeer {
	f := &fakePeer{clients: clients, etcd: etcdShape}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != membersPath {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		var ms []map[string]any
		for i, c := range f.clients {
			ms = append(ms, map[string]any{"id": fmt.Sprint(i + 1), "name": fmt.Sprint("m", i),
				"peerURLs": []string{f.srv.URL}, "clientURLs": []string{c}})
		}
		if f.etcd {
			_ = json.NewEncoder(w).Encode(ms)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"clusterID": "1", "members": ms})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePeer) set(clients ...string) {
	f.mu.Lock()
	f.clients = clients
	f.mu.Unlock()
}

func newTestProxy(t *testing.T, cfg Config) (*Proxy, *httptest.Server) {
	t.Helper()
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t))
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(func() { srv.Close(); p.Close() })
	return p, srv
}

// deadURL is a loopback URL nothing listens on (port 1: no test server
// can be given it, unlike a port freed a moment ago).
func deadURL(*testing.T) string { return "http://127.0.0.1:1" }

func do(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// A request reaches a member with its method, path, query, body and
// headers, X-Forwarded-For appended; the member's status, headers and
// body come back unchanged.
func TestForwardsAsSent(t *testing.T) {
	member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Etcd-Index", "7")
		w.Header().Set("X-Seen", fmt.Sprintf("%s %s %s %s|%s|%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, b, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Custom")))
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"action":"set"}`)
	}))
	defer member.Close()
	peer := newFakePeer(t, false, member.URL)
	_, srv := newTestProxy(t, Config{PeerURLs: []string{peer.srv.URL}})
	resp, body := do(t, "PUT", srv.URL+"/v2/keys/a%2Fb?prevExist=false", "value=x", map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "X-Custom": "c", "X-Forwarded-For": "10.0.0.1"})
	if resp.StatusCode != http.StatusCreated || body != `{"action":"set"}` || resp.Header.Get("X-Etcd-Index") != "7" {
		t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
	if got, want := resp.Header.Get("X-Seen"), "PUT /v2/keys/a%2Fb prevExist=false value=x|10.0.0.1, 127.0.0.1|c"; got != want {
		t.Fatalf("member saw %q, want %q", got, want)
	}
}

// A member that cannot be reached is left out for FailureWait and the
// request goes to the next; with every member down the answer is 502,
// and with all left out 503, both with etcd's bodies.
func TestFailoverAndEtcdErrors(t *testing.T) {
	var hits atomic.Int64
	member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	dead := deadURL(t)
	peer := newFakePeer(t, true, dead, member.URL) // etcd's shape of /members
	reg := prometheus.NewRegistry()
	p, srv := newTestProxy(t, Config{PeerURLs: []string{peer.srv.URL}, FailureWait: time.Hour, Metrics: reg})
	order(p, dead, member.URL)
	for i := range 4 {
		resp, body := do(t, "PUT", srv.URL+"/v2/keys/k", "value=v", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		if resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if eps := p.Endpoints(); len(eps) != 1 || eps[0] != member.URL {
		t.Fatalf("endpoints after a failure: %v", eps)
	}
	member.Close()
	resp, body := do(t, "GET", srv.URL+"/v2/keys/k", "", nil)
	if resp.StatusCode != http.StatusBadGateway || body != `{"message":"httpproxy: unable to get response from 1 endpoint(s)"}` {
		t.Fatalf("all failed: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", srv.URL+"/v2/keys/k", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || body != `{"message":"httpproxy: zero endpoints currently available"}` ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("none left: %d %s", resp.StatusCode, body)
	}
	_, metrics := do(t, "GET", srv.URL+"/metrics", "", nil)
	for _, want := range []string{
		`cairn_proxy_requests_total{method="PUT"} 4`,
		`cairn_proxy_endpoint_failures_total{endpoint="` + dead + `"} 1`,
		`cairn_proxy_dropped_total{method="GET",reason="zero_endpoints"} 1`,
		`cairn_proxy_handled_total{code="502",method="GET"} 1`,
		`cairn_proxy_endpoints_available 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, metrics)
		}
	}
}

// A write that reached a member which then dropped the connection is not
// sent to another member (it may have been applied); a read is.
func TestWriteThatReachedAMemberIsNotResent(t *testing.T) {
	var dropped, good atomic.Int64
	dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		dropped.Add(1)
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	defer dropper.Close()
	member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		good.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	defer member.Close()
	peer := newFakePeer(t, false, dropper.URL, member.URL)
	p, srv := newTestProxy(t, Config{PeerURLs: []string{peer.srv.URL}, FailureWait: time.Hour})
	// Make the dropper first in line.
	order(p, dropper.URL, member.URL)
	resp, body := do(t, "POST", srv.URL+"/v2/keys/q", "value=v", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusBadGateway || dropped.Load() != 1 || good.Load() != 0 {
		t.Fatalf("POST: %d %s; dropper %d, member %d", resp.StatusCode, body, dropped.Load(), good.Load())
	}
	p.eps.mu.Lock()
	p.eps.failed = map[string]time.Time{}
	p.eps.mu.Unlock()
	resp, body = do(t, "GET", srv.URL+"/v2/keys/q", "", nil)
	if resp.StatusCode != http.StatusOK || body != "ok" || dropped.Load() != 2 || good.Load() != 1 {
		t.Fatalf("GET: %d %s; dropper %d, member %d", resp.StatusCode, body, dropped.Load(), good.Load())
	}
}

// A body longer than MaxReplayBody is streamed; it still goes to the
// next member when the first could not be connected to.
func TestLargeBodyRetriedOnlyBeforeAConnection(t *testing.T) {
	var got atomic.Int64
	member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(int64(len(b)))
		_, _ = io.WriteString(w, "ok")
	}))
	defer member.Close()
	dead := deadURL(t)
	peer := newFakePeer(t, false, dead, member.URL)
	p, srv := newTestProxy(t, Config{PeerURLs: []string{peer.srv.URL}, MaxReplayBody: 16})
	order(p, dead, member.URL)
	big := "value=" + strings.Repeat("x", 1000)
	resp, body := do(t, "PUT", srv.URL+"/v2/keys/big", big, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusOK || body != "ok" || got.Load() != int64(len(big)) {
		t.Fatalf("%d %s, member read %d bytes", resp.StatusCode, body, got.Load())
	}
}

// readonly answers 501 with no body to anything but GET and HEAD.
func TestReadOnly(t *testing.T) {
	member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer member.Close()
	peer := newFakePeer(t, false, member.URL)
	_, srv := newTestProxy(t, Config{PeerURLs: []string{peer.srv.URL}, ReadOnly: true})
	for _, m := range []string{"PUT", "POST", "DELETE", "PATCH", "OPTIONS"} {
		resp, body := do(t, m, srv.URL+"/v2/keys/k", "value=v", nil)
		if resp.StatusCode != http.StatusNotImplemented || body != "" {
			t.Errorf("%s: %d %q", m, resp.StatusCode, body)
		}
	}
	if resp, body := do(t, "GET", srv.URL+"/v2/keys/k", "", nil); resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, "HEAD", srv.URL+"/v2/keys/k", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
}

// A streamed response reaches the client as the member writes it.
func TestStreamsWithoutBuffering(t *testing.T) {
	release := make(chan struct{})
	member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "second\n")
	}))
	defer member.Close()
	defer close(release)
	peer := newFakePeer(t, false, member.URL)
	_, srv := newTestProxy(t, Config{PeerURLs: []string{peer.srv.URL}})
	resp, err := http.Get(srv.URL + "/v2/keys/k?wait=true&stream=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(resp.Body).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if l != "first\n" {
			t.Fatalf("read %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first line of the stream did not arrive before the stream ended")
	}
}

// The member list is refreshed: members added and removed change the
// endpoints; the peer URLs are kept in DATA/proxy/cluster and used on a
// restart instead of the initial ones.
func TestRefreshAndClusterFile(t *testing.T) {
	peer := newFakePeer(t, false, "http://127.0.0.1:1")
	dir := t.TempDir()
	p, srv := newTestProxy(t, Config{PeerURLs: []string{peer.srv.URL}, DataDir: dir, RefreshInterval: 20 * time.Millisecond})
	peer.set("http://127.0.0.1:1", "http://127.0.0.1:2")
	waitFor(t, func() bool { return len(p.Endpoints()) == 2 })
	peer.set("http://127.0.0.1:2")
	waitFor(t, func() bool { eps := p.Endpoints(); return len(eps) == 1 && eps[0] == "http://127.0.0.1:2" })
	_, body := do(t, "GET", srv.URL+"/v2/config/local/proxy", "", nil)
	if body != `{"endpoints":["http://127.0.0.1:2"]}`+"\n" {
		t.Fatalf("/v2/config/local/proxy: %s", body)
	}
	waitFor(t, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "proxy", "cluster"))
		return err == nil && string(b) == `{"PeerURLs":["`+peer.srv.URL+`"]}`
	})
	p2, err := New(Config{PeerURLs: []string{"http://127.0.0.1:9"}, DataDir: dir, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if eps := p2.Endpoints(); len(eps) != 1 || eps[0] != "http://127.0.0.1:2" {
		t.Fatalf("a restarted proxy did not use its cluster file: %v", eps)
	}
}

// /health is healthy when some member says it is.
func TestHealth(t *testing.T) {
	healthy := atomic.Bool{}
	member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			_, _ = io.WriteString(w, `{"health":"true"}`)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"health":"false"}`)
	}))
	defer member.Close()
	peer := newFakePeer(t, false, deadURL(t), member.URL)
	_, srv := newTestProxy(t, Config{PeerURLs: []string{peer.srv.URL}})
	if resp, body := do(t, "GET", srv.URL+"/health", "", nil); resp.StatusCode != http.StatusServiceUnavailable || body != "{\"health\":\"false\"}\n" {
		t.Fatalf("unhealthy: %d %s", resp.StatusCode, body)
	}
	healthy.Store(true)
	if resp, body := do(t, "GET", srv.URL+"/health", "", nil); resp.StatusCode != http.StatusOK || body != `{"health":"true"}` {
		t.Fatalf("healthy: %d %s", resp.StatusCode, body)
	}
}

// order sets the order the proxy tries its endpoints in (a refresh
// shuffles it).
func order(p *Proxy, urls ...string) {
	p.eps.mu.Lock()
	p.eps.clients = urls
	p.eps.mu.Unlock()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Whoever sees the proxy's new endpoints finds the same members in its
// cluster file: the file is written before the endpoints change, so a
// restart at any moment after uses what the proxy was last seen to use.
func TestClusterFileWrittenBeforeEndpointsChange(t *testing.T) {
	var mu sync.Mutex
	extra := 0
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := extra
		mu.Unlock()
		ms := []map[string]any{{"id": "1", "name": "m0", "peerURLs": []string{srv.URL}, "clientURLs": []string{"http://127.0.0.1:1"}}}
		for i := range n {
			ms = append(ms, map[string]any{"id": fmt.Sprint(i + 2), "name": fmt.Sprint("m", i+1),
				"peerURLs": []string{fmt.Sprintf("http://127.0.0.2:%d", i+1)}, "clientURLs": []string{fmt.Sprintf("http://127.0.0.1:%d", i+2)}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"clusterID": "1", "members": ms})
	}))
	defer srv.Close()
	dir := t.TempDir()
	p, _ := newTestProxy(t, Config{PeerURLs: []string{srv.URL}, DataDir: dir, RefreshInterval: time.Millisecond})
	file := filepath.Join(dir, "proxy", "cluster")
	for round := 1; round <= 20; round++ {
		n := round % 4
		mu.Lock()
		extra = n
		mu.Unlock()
		deadline := time.Now().Add(5 * time.Second)
		for len(p.eps.all()) != n+1 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: endpoints %v, want %d", round, p.eps.all(), n+1)
			}
			runtime.Gosched()
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cf clusterFile
		if err := json.Unmarshal(b, &cf); err != nil || len(cf.PeerURLs) != n+1 {
			t.Fatalf("round %d: the proxy uses %d endpoints but its cluster file says %s (%v)", round, n+1, b, err)
		}
	}
}
