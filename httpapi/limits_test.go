package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// The limits of docs/api.md ("Limits"): just under each, the request is
// served and what it stored reads back; just over, the answer is the
// documented error and nothing reaches the backend (no Do, no Get), so
// nothing is proposed and the store index stays where it was.

// ltCounting counts what reaches the backend.
type ltCounting struct {
	*server.Local
	dos, gets atomic.Int64
}

func (c *ltCounting) Do(ctx context.Context, r *store.Request) (*store.Event, error) {
	c.dos.Add(1)
	return c.Local.Do(ctx, r)
}

func (c *ltCounting) Get(ctx context.Context, p string, recursive, serializable bool) (*store.Event, error) {
	c.gets.Add(1)
	return c.Local.Get(ctx, p, recursive, serializable)
}

// ltOpaque hides the backend's store.
type ltOpaque struct{ httpapi.Backend }

// ltEnv is a kEnv with limits, metrics and a counting backend.
type ltEnv struct {
	*kEnv
	be  *ltCounting
	reg *prometheus.Registry
}

func newLTEnv(t *testing.T, lim httpapi.Limits) *ltEnv {
	e := &ltEnv{reg: prometheus.NewRegistry()}
	e.kEnv = newKEnvOpts(t, kEnvOpts{limits: lim, metrics: e.reg, wrap: func(l *server.Local) httpapi.Backend {
		e.be = &ltCounting{Local: l}
		return e.be
	}})
	return e
}

// e124 is the body of a 413.
func e124(cause string) string {
	return `{"errorCode":124,"message":"Request too large","cause":` + strconv.Quote(cause) + `,"index":0}` + "\n"
}

// refused checks that r is the error want and that nothing reached the
// backend or changed the store since dos, gets and index were taken.
func (e *ltEnv) refused(t *testing.T, what string, r kResp, status int, want string, dos, gets int64, index uint64) {
	t.Helper()
	if r.code != status || r.body != want {
		t.Errorf("%s: %d %q\nwant %d %q", what, r.code, r.body, status, want)
	}
	checkErrorHeaders(t, r, "0")
	if d, g := e.be.dos.Load(), e.be.gets.Load(); d != dos || g != gets {
		t.Errorf("%s: the backend was asked: %d proposals, %d reads (want none)", what, d-dos, g-gets)
	}
	if got := e.st.Index(); got != index {
		t.Errorf("%s: the store index moved from %d to %d", what, index, got)
	}
}

// metric reads one sample of the handler's registry ("" if absent).
func (e *ltEnv) metric(t *testing.T, name string) string {
	t.Helper()
	r := e.do(t, "GET", "/metrics", "")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(r.body)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestLimitsJustUnderAndJustOver(t *testing.T) {
	e := newLTEnv(t, httpapi.Limits{MaxKeyBytes: 64, MaxKeyDepth: 4, MaxValueBytes: 100, MaxRequestBytes: 1000})
	key := func(n int) string { return "/" + strings.Repeat("k", n-1) } // a path of n bytes
	val := func(n int) string { return strings.Repeat("v", n) }

	// Just under: served, and read back.
	under := []struct{ method, target, form, key, value string }{
		{"PUT", "/v2/keys" + key(64), "value=a", key(64), "a"},
		{"PUT", "/v2/keys/a/b/c/d", "value=b", "/a/b/c/d", "b"},
		{"PUT", "/v2/keys/v", "value=" + val(100), "/v", val(100)},
		{"PUT", "/v2/keys/q?value=" + val(100), "", "/q", val(100)},
		{"PUT", "/v2/keys/v", "prevValue=" + val(100) + "&value=" + val(99), "/v", val(99)},
		// The whole request at the limit: target and body make 1000 bytes.
		{"PUT", "/v2/keys/r", "value=r&pad=" + val(1000-len("/v2/keys/r")-len("value=r&pad=")), "/r", "r"},
	}
	for _, u := range under {
		e.mustOK(t, u.method, u.target, u.form)
		g, err := e.st.Get(u.key, false)
		if err != nil || g.Node.Value != u.value {
			t.Fatalf("%s %.60s: reads back %v %v", u.method, u.target, g, err)
		}
	}
	// A POST's key counts its in-order name: 43 + 21 = 64 bytes, 3 + 1
	// elements.
	for _, target := range []string{"/v2/keys" + key(43), "/v2/keys/a/b/c"} {
		r := e.mustOK(t, "POST", target, "value=p")
		if !strings.Contains(r.body, `"value":"p"`) {
			t.Fatalf("POST %s: %s", target, r.body)
		}
	}

	// Just over: refused, nothing proposed.
	chunked := func(s string) io.Reader { return struct{ io.Reader }{strings.NewReader(s)} } // no length: chunked
	over := []struct {
		what, method, target, form string
		body                       io.Reader // instead of form
		cause                      string
	}{
		{"key", "PUT", "/v2/keys" + key(65), "value=a", nil, "key of 65 bytes; at most 64 (--max-key-bytes)"},
		{"in-order key", "POST", "/v2/keys" + key(44), "value=a", nil, "key of 65 bytes with its in-order name; at most 64 (--max-key-bytes)"},
		{"deleted key", "DELETE", "/v2/keys" + key(65), "", nil, "key of 65 bytes; at most 64 (--max-key-bytes)"},
		{"depth", "PUT", "/v2/keys/a/b/c/d/e", "value=a", nil, "key of 5 path elements; at most 4 (--max-key-depth)"},
		{"in-order depth", "POST", "/v2/keys/a/b/c/d", "value=a", nil, "key of 5 path elements with its in-order name; at most 4 (--max-key-depth)"},
		{"value", "PUT", "/v2/keys/v", "value=" + val(101), nil, "value of 101 bytes; at most 100 (--max-value-bytes)"},
		{"value in the query", "PUT", "/v2/keys/v?value=" + val(101), "", nil, "value of 101 bytes; at most 100 (--max-value-bytes)"},
		{"in-order value", "POST", "/v2/keys/p", "value=" + val(101), nil, "value of 101 bytes; at most 100 (--max-value-bytes)"},
		{"prevValue", "PUT", "/v2/keys/v", "value=x&prevValue=" + val(101), nil, "prevValue of 101 bytes; at most 100 (--max-value-bytes)"},
		{"prevValue of a delete", "DELETE", "/v2/keys/v?prevValue=" + val(101), "", nil, "prevValue of 101 bytes; at most 100 (--max-value-bytes)"},
		{"declared body", "PUT", "/v2/keys/r", "value=r&pad=" + val(1001-len("/v2/keys/r")-len("value=r&pad=")), nil,
			"request of 1001 bytes; at most 1000 (--max-request-bytes)"},
		{"chunked body", "PUT", "/v2/keys/r", "", chunked("value=r&pad=" + val(2000)), "request of more than 1000 bytes; at most 1000 (--max-request-bytes)"},
		{"query", "GET", "/v2/keys/r?pad=" + val(1001-len("/v2/keys/r?pad=")), "", nil, "request target of 1001 bytes; at most 1000 (--max-request-bytes)"},
	}
	for _, o := range over {
		dos, gets, index := e.be.dos.Load(), e.be.gets.Load(), e.st.Index()
		var r kResp
		if o.body != nil {
			req, _ := http.NewRequest(o.method, e.srv.URL+o.target, o.body)
			req.Header.Set("Content-Type", ktFormCT)
			resp, err := e.cl.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", o.what, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r = kResp{code: resp.StatusCode, hdr: resp.Header, body: string(b)}
		} else {
			r = e.do(t, o.method, o.target, o.form)
		}
		e.refused(t, o.what, r, 413, e124(o.cause), dos, gets, index)
	}
	for limit, want := range map[string]string{"key-bytes": "3", "key-depth": "2", "value-bytes": "5", "request-bytes": "3",
		"answer-bytes": "0", "quota": "0", "body-timeout": "0", "reserved": "0"} {
		if got := e.metric(t, `cairn_requests_refused_total{limit="`+limit+`"}`); got != want {
			t.Errorf("cairn_requests_refused_total{limit=%q} = %q, want %s", limit, got, want)
		}
	}
}

// The documented defaults, at their edges.
func TestLimitsDefaults(t *testing.T) {
	e := newLTEnv(t, httpapi.Limits{})
	deep := func(n int) string { return strings.Repeat("/d", n) }
	e.mustOK(t, "PUT", "/v2/keys/"+strings.Repeat("k", 4095), "value=a")
	e.mustOK(t, "PUT", "/v2/keys"+deep(128), "value=a")
	e.mustOK(t, "PUT", "/v2/keys/v", "value="+strings.Repeat("v", 1<<20))
	for _, c := range []struct{ target, form, cause string }{
		{"/v2/keys/" + strings.Repeat("k", 4096), "value=a", "key of 4097 bytes; at most 4096 (--max-key-bytes)"},
		{"/v2/keys" + deep(129), "value=a", "key of 129 path elements; at most 128 (--max-key-depth)"},
		{"/v2/keys/v", "value=" + strings.Repeat("v", 1<<20+1), "value of 1048577 bytes; at most 1048576 (--max-value-bytes)"},
		{"/v2/keys/v", "value=a&pad=" + strings.Repeat("p", 1572864), fmt.Sprintf("request of %d bytes; at most 1572864 (--max-request-bytes)", len("/v2/keys/v")+len("value=a&pad=")+1572864)},
	} {
		dos, gets, index := e.be.dos.Load(), e.be.gets.Load(), e.st.Index()
		e.refused(t, c.cause, e.do(t, "PUT", c.target, c.form), 413, e124(c.cause), dos, gets, index)
	}
	if got := e.metric(t, "cairn_quota_bytes"); got != "2.147483648e+09" {
		t.Errorf("cairn_quota_bytes = %s, want 2 GiB", got)
	}
}

// /_cairn, where the locks and queues live, is read-only through
// /v2/keys: no write can forge a lock holder or wipe a queue. Reads and
// watches of it work, and so do the lock and queue endpoints.
func TestReservedTreeIsReadOnlyThroughKeys(t *testing.T) {
	e := newLTEnv(t, httpapi.Limits{})
	lock := coDecode(t, "acquire", coResp(e.mustOK(t, "POST", "/v2/locks/job?ttl=60", "value=alice")))
	e.mustOK(t, "POST", "/v2/queues/q", "value=one")
	e106 := func(cause string) string {
		return `{"errorCode":106,"message":"The prefix of given key is a keyword in etcd","cause":"` + cause + `","index":0}` + "\n"
	}
	for _, c := range []struct{ method, target, form, cause string }{
		{"PUT", "/v2/keys/_cairn", "value=x", "/_cairn"},
		{"PUT", "/v2/keys/_cairn?dir=true", "", "/_cairn"},
		{"PUT", fmt.Sprintf("/v2/keys/_cairn/locks/job/%020d", 1), "value=forged", fmt.Sprintf("/_cairn/locks/job/%020d", 1)},
		{"PUT", "/v2/keys/_cairn/locks/other/00000000000000000001", "value=mallory", "/_cairn/locks/other/00000000000000000001"},
		{"POST", "/v2/keys/_cairn/queues/q", "value=injected", "/_cairn/queues/q"},
		{"PUT", "/v2/keys/%5Fcairn/queues/q?prevExist=false", "value=x", "/_cairn/queues/q"},
		{"DELETE", "/v2/keys/_cairn?recursive=true", "", "/_cairn"},
		{"DELETE", "/v2/keys/_cairn/locks?dir=true&recursive=true", "", "/_cairn/locks"},
		{"DELETE", fmt.Sprintf("/v2/keys/_cairn/locks/job/%020d?prevValue=alice", lock.Token), "", fmt.Sprintf("/_cairn/locks/job/%020d", lock.Token)},
		{"DELETE", "/v2/keys/_cairn/queues/q/00000000000000000002", "", "/_cairn/queues/q/00000000000000000002"},
	} {
		dos, gets, index := e.be.dos.Load(), e.be.gets.Load(), e.st.Index()
		e.refused(t, c.method+" "+c.target, e.do(t, c.method, c.target, c.form), 400, e106(c.cause), dos, gets, index)
	}
	// The only ancestor of /_cairn is the root, which no delete takes (as
	// in etcd: 107, or 102 for a compare-and-delete).
	for _, target := range []string{"/v2/keys/?recursive=true", "/v2/keys?dir=true&recursive=true"} {
		r := e.do(t, "DELETE", target, "")
		want := fmt.Sprintf(`{"errorCode":107,"message":"Root is read only","cause":"/","index":%d}`+"\n", e.st.Index())
		if r.code != 400 || r.body != want {
			t.Errorf("DELETE %s: %d %q, want 400 %q", target, r.code, r.body, want)
		}
	}
	// Names that only look alike are ordinary keys.
	e.mustOK(t, "PUT", "/v2/keys/_cairnx", "value=1")
	e.mustOK(t, "PUT", "/v2/keys/app/_cairn/x", "value=1")
	e.mustOK(t, "DELETE", "/v2/keys/app/_cairn/x", "")

	// Reads and watches of /_cairn work.
	r := e.mustOK(t, "GET", "/v2/keys/_cairn?recursive=true&sorted=true", "")
	if !strings.Contains(r.body, `"value":"alice"`) || !strings.Contains(r.body, `"value":"one"`) {
		t.Fatalf("GET /_cairn: %s", r.body)
	}
	watch := make(chan kResp, 1)
	go func() { watch <- e.do(t, "GET", "/v2/keys/_cairn/locks?recursive=true&wait=true", "") }()
	// The watch is registered before it answers its headers; wait for it.
	coEventually(t, "the watch registered", func() (bool, string) { return e.st.WatcherCount() == 1, "" })
	e.mustOK(t, "POST", "/v2/locks/other?ttl=60", "value=bob")
	if w := <-watch; w.code != 200 || !strings.Contains(w.body, `"value":"bob"`) {
		t.Fatalf("watch on /_cairn/locks: %d %s", w.code, w.body)
	}
	// The lock and queue endpoints still change it.
	e.mustOK(t, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", lock.Token), "")
	if r := e.mustOK(t, "DELETE", "/v2/queues/q", ""); !strings.Contains(r.body, `"value":"one"`) {
		t.Fatalf("dequeue: %s", r.body)
	}
	if got := e.metric(t, `cairn_requests_refused_total{limit="reserved"}`); got != "10" {
		t.Errorf(`cairn_requests_refused_total{limit="reserved"} = %q, want 10`, got)
	}
}

// At the quota every change that could grow the data is refused with 507,
// while whatever shrinks it (or keeps it) goes on; once deletes have made
// room, writes are served again.
func TestQuota(t *testing.T) {
	const quota = 400
	e := newLTEnv(t, httpapi.Limits{QuotaBytes: quota})
	data := func() int64 { return e.st.DataBytes() }
	e507 := func(grow int) string {
		return fmt.Sprintf(`{"errorCode":125,"message":"Data quota exceeded","cause":"data of %d bytes and this change's %d would pass the quota of %d bytes (--quota-backend-bytes); delete keys to write again","index":0}`+"\n",
			data(), grow, quota)
	}
	// A lock and a queue item, then keys up to the quota.
	lock := coDecode(t, "acquire", coResp(e.mustOK(t, "POST", "/v2/locks/job?ttl=60", "value=a")))
	e.mustOK(t, "POST", "/v2/queues/q", "value=item")
	e.mustOK(t, "PUT", "/v2/keys/a", "value="+strings.Repeat("a", 100))
	e.mustOK(t, "PUT", "/v2/keys/ttl?ttl=100", "value=t")
	left := quota - int(data()) - len("/b") // /b's value fills the quota exactly
	e.mustOK(t, "PUT", "/v2/keys/b", "value="+strings.Repeat("b", left))
	if data() != quota {
		t.Fatalf("data %d, want %d", data(), quota)
	}
	if got := e.metric(t, "cairn_data_bytes"); got != strconv.Itoa(quota) {
		t.Errorf("cairn_data_bytes = %s, want %d", got, quota)
	}
	if got := e.metric(t, "cairn_quota_bytes"); got != strconv.Itoa(quota) {
		t.Errorf("cairn_quota_bytes = %s, want %d", got, quota)
	}

	// Everything that could grow it is refused.
	for _, c := range []struct {
		method, target, form string
		grow                 int
	}{
		{"PUT", "/v2/keys/c", "value=c", len("/c") + 1},
		{"PUT", "/v2/keys/d?dir=true", "", len("/d")},
		{"PUT", "/v2/keys/a?prevExist=false", "value=x", len("/a") + 1},
		{"PUT", "/v2/keys/a?prevExist=true", "value=x", len("/a") + 1}, // an update, even a shrinking one
		{"PUT", "/v2/keys/a?prevValue=" + strings.Repeat("a", 100), "value=x", len("/a") + 1},
		{"POST", "/v2/keys/in", "value=x", len("/in") + 21 + 1},
		{"POST", "/v2/locks/job?ttl=60&wait=true", "value=b", len(store.LocksDir+"/job") + 21 + 1},
		{"POST", "/v2/queues/q", "value=x", len(store.QueuesDir+"/q") + 21 + 1},
	} {
		dos, gets, index := e.be.dos.Load(), e.be.gets.Load(), e.st.Index()
		r := e.do(t, c.method, c.target, c.form)
		if r.code != 507 || r.body != e507(c.grow) {
			t.Errorf("%s %s at the quota: %d %q\nwant 507 %q", c.method, c.target, r.code, r.body, e507(c.grow))
		}
		if d, g := e.be.dos.Load(), e.be.gets.Load(); d != dos || g != gets || e.st.Index() != index {
			t.Errorf("%s %s: reached the backend", c.method, c.target)
		}
	}
	// What keeps or shrinks the data is served: refreshes, a lock's
	// refresh and release, a reservation, a dequeue, deletes.
	e.mustOK(t, "PUT", "/v2/keys/ttl?refresh=true&ttl=200", "")
	e.mustOK(t, "PUT", fmt.Sprintf("/v2/locks/job?token=%d&ttl=60", lock.Token), "")
	e.mustOK(t, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", lock.Token), "")
	e.mustOK(t, "DELETE", "/v2/queues/q", "")
	e.mustOK(t, "DELETE", "/v2/keys/a?prevValue="+strings.Repeat("a", 100), "")
	e.mustOK(t, "DELETE", "/v2/keys/ttl", "")
	// Room again: writes are served.
	e.mustOK(t, "PUT", "/v2/keys/c", "value=c")
	e.mustOK(t, "POST", "/v2/queues/q", "value=again")
	e.mustOK(t, "POST", "/v2/locks/job?ttl=60", "value=b")
	if got := e.metric(t, `cairn_requests_refused_total{limit="quota"}`); got != "8" {
		t.Errorf(`cairn_requests_refused_total{limit="quota"} = %q, want 8`, got)
	}
}

// A GET whose answer would pass --max-answer-bytes is refused without
// being read: sized from the store, not built. A narrower read works.
func TestAnswerLimit(t *testing.T) {
	const limit = 2000
	e := newLTEnv(t, httpapi.Limits{MaxAnswerBytes: limit})
	plain := newKEnvOpts(t, kEnvOpts{wrap: func(*server.Local) httpapi.Backend { return e.be }}) // no limit: the real answers
	refusal := e124(fmt.Sprintf("answer of more than %d bytes (--max-answer-bytes); read a narrower subtree, or without recursive", limit))
	last := 0
	for i := 0; ; i++ {
		e.mustOK(t, "PUT", fmt.Sprintf("/v2/keys/dir/sub/k%03d", i), "value="+strings.Repeat("v", 50))
		real := plain.mustOK(t, "GET", "/v2/keys/dir?recursive=true", "")
		dos, gets, index := e.be.dos.Load(), e.be.gets.Load(), e.st.Index()
		r := e.do(t, "GET", "/v2/keys/dir?recursive=true", "")
		if r.code == 200 {
			if r.body != real.body || len(r.body) > limit {
				t.Fatalf("%d keys: a %d-byte answer served", i+1, len(r.body))
			}
			last = len(r.body)
			continue
		}
		e.refused(t, "recursive GET", r, 413, refusal, dos, gets, index)
		// The estimate is an upper bound, close to the real size.
		if len(real.body) <= limit-(i+3)*12 || last == 0 {
			t.Fatalf("refused an answer of %d bytes (%d nodes); the last served was %d", len(real.body), i+3, last)
		}
		break
	}
	dos, gets := e.be.dos.Load(), e.be.gets.Load()
	if r := e.do(t, "HEAD", "/v2/keys/?recursive=true", ""); r.code != 413 || e.be.dos.Load() != dos || e.be.gets.Load() != gets {
		t.Errorf("HEAD of the root, recursive: %d, or it reached the backend", r.code)
	}
	e.mustOK(t, "GET", "/v2/keys/dir/sub/k000", "")
	e.mustOK(t, "GET", "/v2/keys/dir", "") // without recursive: one child
	// A backend that cannot be sized: the answer is measured once built.
	opaque := newKEnvOpts(t, kEnvOpts{limits: httpapi.Limits{MaxAnswerBytes: limit},
		wrap: func(*server.Local) httpapi.Backend { return ltOpaque{e.be} }})
	if r := opaque.do(t, "GET", "/v2/keys/dir?recursive=true", ""); r.code != 413 || r.body != refusal {
		t.Errorf("recursive GET through a backend without a store: %d %q", r.code, r.body)
	}
	opaque.mustOK(t, "GET", "/v2/keys/dir/sub/k000", "")
	// A queue listing is an answer like any other.
	for i := 0; ; i++ {
		e.mustOK(t, "POST", "/v2/queues/q", "value="+strings.Repeat("i", 100))
		if r := e.do(t, "GET", "/v2/queues/q", ""); r.code != 200 {
			if r.code != 413 || r.body != refusal || i < 5 {
				t.Fatalf("queue of %d items: %d %q", i+1, r.code, r.body)
			}
			break
		}
	}
}

// A body that arrives slowly is cut at --request-body-timeout (408 on the
// v2 endpoints; the connection closed elsewhere), while a watch and a lock
// waiting in line, started alongside, stay open past that bound for as
// long as their clients like.
func TestSlowBodyIsCut(t *testing.T) {
	const bound = time.Second
	e := newLTEnv(t, httpapi.Limits{BodyTimeout: bound})
	addr := e.srv.Listener.Addr().String()

	watch := make(chan kResp, 1)
	go func() { watch <- e.do(t, "GET", "/v2/keys/slow?wait=true", "") }()
	e.mustOK(t, "POST", "/v2/locks/job?ttl=60", "value=alice")
	inLine := make(chan kResp, 1)
	go func() { inLine <- e.do(t, "POST", "/v2/locks/job?ttl=60&wait=true", "value=bob") }() // its body is read at once
	coEventually(t, "the watch and bob waiting", func() (bool, string) {
		r := e.do(t, "GET", "/v2/locks/job", "")
		return e.st.WatcherCount() >= 2 && strings.Contains(r.body, `"value":"bob"`), r.body
	})

	start := time.Now()
	e408 := `{"errorCode":123,"message":"Timed out waiting","cause":"request body not received within 1s (--request-body-timeout)","index":0}` + "\n"
	for _, c := range []struct{ what, head, part, status, body string }{
		{"declared body", "PUT /v2/keys/slow HTTP/1.1\r\nHost: x\r\nContent-Type: " + ktFormCT + "\r\nContent-Length: 60\r\n\r\n", "v", "HTTP/1.1 408 Request Timeout", e408},
		{"chunked body", "PUT /v2/keys/slow HTTP/1.1\r\nHost: x\r\nContent-Type: " + ktFormCT + "\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\nv\r\n", "HTTP/1.1 408 Request Timeout", e408},
		{"lock body", "POST /v2/locks/job?ttl=5 HTTP/1.1\r\nHost: x\r\nContent-Type: " + ktFormCT + "\r\nContent-Length: 60\r\n\r\n", "v", "HTTP/1.1 408 Request Timeout", e408},
		// A handler that never reads the body: the server's read of the
		// rest meets the deadline and closes the connection.
		{"unread body", "GET /version HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n", "v", "HTTP/1.1 200 OK", ""},
	} {
		status, body, closed := slowRequest(t, addr, c.head, c.part, 30*time.Second)
		if status != c.status || c.body != "" && body != c.body || !closed {
			t.Errorf("%s sent a byte a second: %q %q, connection closed %v; want %q %q and closed", c.what, status, body, closed, c.status, c.body)
		}
	}
	if got := e.metric(t, `cairn_requests_refused_total{limit="body-timeout"}`); got != "3" {
		t.Errorf(`cairn_requests_refused_total{limit="body-timeout"} = %q, want 3`, got)
	}

	// Both waiters outlived the bound several times over and still wait.
	if time.Since(start) < 3*bound {
		t.Fatalf("the slow requests took %v: too quick to show anything", time.Since(start))
	}
	select {
	case r := <-watch:
		t.Fatalf("the watch ended with the slow bodies: %d %s", r.code, r.body)
	case r := <-inLine:
		t.Fatalf("bob's wait ended with the slow bodies: %d %s", r.code, r.body)
	default:
	}
	e.mustOK(t, "PUT", "/v2/keys/slow", "value=done")
	if r := <-watch; r.code != 200 || !strings.Contains(r.body, `"value":"done"`) {
		t.Fatalf("watch: %d %s", r.code, r.body)
	}
	e.mustOK(t, "DELETE", "/v2/locks/job?token=1", "")
	if r := <-inLine; r.code != 201 || !strings.Contains(r.body, `"value":"bob"`) {
		t.Fatalf("bob: %d %s", r.code, r.body)
	}
}

// slowRequest sends head over a raw connection, then part once a second
// until the server answers or guard passes. It returns the status line
// and body of the answer, and whether the server then closed the
// connection.
func slowRequest(t *testing.T, addr, head, part string, guard time.Duration) (status, body string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := io.WriteString(c, part); err != nil {
					return
				}
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(guard))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%.40q: no answer within %v: %v", head, guard, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Closed: EOF, or a reset when a part crossed the close; not the
	// guard's timeout.
	_, err = br.ReadByte()
	var ne net.Error
	return resp.Proto + " " + resp.Status, string(b), err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// Locks and queues take their values within the value limit, and their
// bodies within the request limit.
func TestLimitsOnLocksAndQueues(t *testing.T) {
	e := newLTEnv(t, httpapi.Limits{MaxValueBytes: 10, MaxRequestBytes: 200})
	e.mustOK(t, "POST", "/v2/locks/job?ttl=60", "value="+strings.Repeat("a", 10))
	e.mustOK(t, "POST", "/v2/queues/q", "value="+strings.Repeat("i", 10))
	for _, c := range []struct{ target, form, cause string }{
		{"/v2/locks/other?ttl=60", "value=" + strings.Repeat("a", 11), "value of 11 bytes; at most 10 (--max-value-bytes)"},
		{"/v2/queues/q", "value=" + strings.Repeat("i", 11), "value of 11 bytes; at most 10 (--max-value-bytes)"},
		{"/v2/queues/q", "value=i&pad=" + strings.Repeat("p", 200), fmt.Sprintf("request of %d bytes; at most 200 (--max-request-bytes)", len("/v2/queues/q")+len("value=i&pad=")+200)},
	} {
		dos, gets := e.be.dos.Load(), e.be.gets.Load()
		r := e.do(t, "POST", c.target, c.form)
		if r.code != 413 || r.body != e124(c.cause) {
			t.Errorf("POST %s: %d %q, want 413 %q", c.target, r.code, r.body, e124(c.cause))
		}
		if e.be.dos.Load() != dos || e.be.gets.Load() != gets {
			t.Errorf("POST %s reached the backend", c.target)
		}
	}
	// Elsewhere a refusal takes etcd's {"message"} shape.
	body := `{"peerURLs":["` + strings.Repeat("x", 300) + `"]}`
	r := e.send(t, "POST", "/v2/members", body, "application/json")
	want := fmt.Sprintf(`{"message":"Request too large: request of %d bytes; at most 200 (--max-request-bytes)"}`, len("/v2/members")+len(body))
	if r.code != 413 || r.body != want {
		t.Errorf("POST /v2/members: %d %q, want 413 %q", r.code, r.body, want)
	}
}
