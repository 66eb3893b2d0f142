package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
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

// These tests drive /v2/locks, /v2/queues and the prevLock/prevToken fence
// of /v2/keys through real HTTP, as docs/api.md §14-19 describe them:
// statuses, exact bodies where they are deterministic (an "expiration" is
// any RFC 3339 UTC instant, a ttl may have run down a little), headers.
//
// The server is the client handler over a real store: a Local backend
// with the real clock (it expires keys on its own 500 ms loop), and, where
// waiting or expiry matters, also a real single-member cluster. Nothing
// asserts speed: waits are bounded polls of the server's state, and a
// request that should be answered is given generous time to be.

// coEnv is one server under test.
type coEnv struct {
	url   string
	store func() *store.Store
	cl    *http.Client
}

// coLocal serves the API over server.NewLocal(store.New(100), 1, nil).
func coLocal(t *testing.T) *coEnv { return coLocalWith(t, nil) }

// coLocalWith is coLocal with the backend wrapped by wrap (when not nil).
func coLocalWith(t *testing.T, wrap func(*server.Local) httpapi.Backend) *coEnv {
	t.Helper()
	be := server.NewLocal(store.New(100), 1, nil)
	var b httpapi.Backend = be
	if wrap != nil {
		b = wrap(be)
	}
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Config{Backend: b}))
	t.Cleanup(func() {
		srv.CloseClientConnections() // ends requests still waiting
		srv.Close()
		be.Close()
	})
	return &coEnv{url: srv.URL, store: be.Store, cl: &http.Client{}}
}

// coMember serves the API over a real single-member cluster.
func coMember(t *testing.T) *coEnv {
	t.Helper()
	m, srv, _ := oneMember(t)
	// Runs before oneMember's cleanup: srv.Close waits for every request.
	t.Cleanup(srv.CloseClientConnections)
	return &coEnv{url: srv.URL, store: m.Store, cl: &http.Client{}}
}

// coBoth runs f against a Local backend and against a real member.
func coBoth(t *testing.T, f func(t *testing.T, e *coEnv)) {
	t.Run("local", func(t *testing.T) { f(t, coLocal(t)) })
	t.Run("member", func(t *testing.T) { f(t, coMember(t)) })
}

// coGuard bounds every request (a hang guard, not a speed requirement).
const coGuard = 30 * time.Second

type coResp struct {
	code int
	hdr  http.Header
	body string
}

// send sends a request; a non-empty form goes in a form body.
func (e *coEnv) send(ctx context.Context, method, target, form string) (coResp, error) {
	var rd io.Reader
	if form != "" {
		rd = strings.NewReader(form)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url+target, rd)
	if err != nil {
		return coResp{}, err
	}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := e.cl.Do(req)
	if err != nil {
		return coResp{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return coResp{}, err
	}
	return coResp{code: resp.StatusCode, hdr: resp.Header, body: string(b)}, nil
}

func (e *coEnv) do(t *testing.T, method, target, form string) coResp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), coGuard)
	defer cancel()
	r, err := e.send(ctx, method, target, form)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}

// coPending is a request sent in the background (one that waits).
type coPending struct {
	what   string
	done   chan struct{}
	resp   coResp
	err    error
	cancel context.CancelFunc
}

// start sends a request in the background; the test's end cancels it.
func (e *coEnv) start(t *testing.T, method, target, form string) *coPending {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), coGuard)
	p := &coPending{what: method + " " + target, done: make(chan struct{}), cancel: cancel}
	t.Cleanup(cancel)
	go func() {
		defer close(p.done)
		p.resp, p.err = e.send(ctx, method, target, form)
	}()
	return p
}

// answer waits (at most coGuard) for the answer.
func (p *coPending) answer(t *testing.T) coResp {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(coGuard):
		t.Fatalf("%s: no answer after %v", p.what, coGuard)
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.what, p.err)
	}
	return p.resp
}

// answered reports whether the answer has come.
func (p *coPending) answered() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// cancelAndWait makes the client go away and waits for the request to end.
func (p *coPending) cancelAndWait(t *testing.T) {
	t.Helper()
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(coGuard):
		t.Fatalf("%s: still running after its cancellation", p.what)
	}
}

// coEventually polls cond until it holds; it fails the test after 20 s.
func coEventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after 20s; last seen: %s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	coExpRE = regexp.MustCompile(`"expiration":"([^"]*)"`)
	coTTLRE = regexp.MustCompile(`"ttl":(-?\d+)`)
)

// coMatch compares a body with want. In want, "expiration":"*" stands for
// any RFC 3339 UTC instant; a ttl may be up to 3 seconds lower than want's
// (the answer came later) but not below 1. Everything else, the trailing
// newline included, must be equal.
func coMatch(got, want string) error {
	var bad error
	g := coExpRE.ReplaceAllStringFunc(got, func(m string) string {
		v := coExpRE.FindStringSubmatch(m)[1]
		if ts, err := time.Parse(time.RFC3339Nano, v); err != nil || ts.Location() != time.UTC || !strings.HasSuffix(v, "Z") {
			bad = fmt.Errorf("expiration %q is not an RFC 3339 UTC instant", v)
		}
		return `"expiration":"*"`
	})
	gt, wt := coTTLRE.FindAllStringSubmatch(g, -1), coTTLRE.FindAllStringSubmatch(want, -1)
	g = coTTLRE.ReplaceAllString(g, `"ttl":#`)
	w := coTTLRE.ReplaceAllString(want, `"ttl":#`)
	if g != w {
		return fmt.Errorf("body differs")
	}
	if bad != nil {
		return bad
	}
	for i := range gt {
		gv, _ := strconv.Atoi(gt[i][1])
		wv, _ := strconv.Atoi(wt[i][1])
		if gv > wv || gv < wv-3 || gv < 1 {
			return fmt.Errorf("ttl %d, want %d (or up to 3 less, at least 1)", gv, wv)
		}
	}
	return nil
}

// expect checks the status, the body (see coMatch) and, for JSON answers,
// the Content-Type.
func (r coResp) expect(t *testing.T, what string, code int, want string) {
	t.Helper()
	if err := coMatch(r.body, want); r.code != code || err != nil {
		t.Errorf("%s:\n got  %d %q\n want %d %q\n (%v)", what, r.code, r.body, code, want, err)
		return
	}
	if strings.HasPrefix(want, "{") && r.hdr.Get("Content-Type") != "application/json" {
		t.Errorf("%s: Content-Type %q", what, r.hdr.Get("Content-Type"))
	}
}

// index checks the X-Etcd-Index header.
func (r coResp) index(t *testing.T, what string, want uint64) {
	t.Helper()
	if got := r.hdr.Get("X-Etcd-Index"); got != strconv.FormatUint(want, 10) {
		t.Errorf("%s: X-Etcd-Index %q, want %d", what, got, want)
	}
}

// coNode and coAnswer are the answers' JSON, for the checks that cannot
// compare whole bodies.
type coNode struct {
	Key           string   `json:"key"`
	Value         *string  `json:"value"`
	Dir           bool     `json:"dir"`
	Expiration    string   `json:"expiration"`
	TTL           int64    `json:"ttl"`
	ModifiedIndex uint64   `json:"modifiedIndex"`
	CreatedIndex  uint64   `json:"createdIndex"`
	Nodes         []coNode `json:"nodes"`
}

func (n coNode) value() string {
	if n.Value == nil {
		return "<none>"
	}
	return *n.Value
}

type coAnswer struct {
	Action    string   `json:"action"`
	Node      *coNode  `json:"node"`
	PrevNode  *coNode  `json:"prevNode"`
	Token     uint64   `json:"token"`
	Receipt   string   `json:"receipt"`
	Lock      string   `json:"lock"`
	Holder    *coNode  `json:"holder"`
	Waiters   []coNode `json:"waiters"`
	ErrorCode int      `json:"errorCode"`
	Message   string   `json:"message"`
	Cause     string   `json:"cause"`
	Index     uint64   `json:"index"`
}

func coDecode(t *testing.T, what string, r coResp) coAnswer {
	t.Helper()
	var a coAnswer
	if err := json.Unmarshal([]byte(r.body), &a); err != nil {
		t.Fatalf("%s: %d %q: %v", what, r.code, r.body, err)
	}
	return a
}

// mustCode sends a request that must be answered with code, and decodes
// the answer.
func (e *coEnv) mustCode(t *testing.T, code int, method, target, form string) coAnswer {
	t.Helper()
	r := e.do(t, method, target, form)
	if r.code != code {
		t.Fatalf("%s %s %s: %d %q, want %d", method, target, form, r.code, r.body, code)
	}
	return coDecode(t, method+" "+target, r)
}

// lock reads GET /v2/locks/name.
func (e *coEnv) lock(t *testing.T, name string) coAnswer {
	t.Helper()
	a := e.mustCode(t, 200, "GET", "/v2/locks/"+name, "")
	if a.Action != "get" || a.Lock != name || a.Waiters == nil {
		t.Fatalf("GET /v2/locks/%s: %+v", name, a)
	}
	return a
}

// lockOwners lists the values of the holder and the waiters, in order.
func (e *coEnv) lockOwners(t *testing.T, name string) []string {
	t.Helper()
	a := e.lock(t, name)
	var out []string
	if a.Holder != nil {
		out = append(out, a.Holder.value())
	}
	for _, w := range a.Waiters {
		out = append(out, w.value())
	}
	return out
}

// awaitOwners polls until the lock's holder and waiters are want.
func (e *coEnv) awaitOwners(t *testing.T, name string, want ...string) {
	t.Helper()
	coEventually(t, fmt.Sprintf("lock %s held and awaited by %q", name, want), func() (bool, string) {
		got := e.lockOwners(t, name)
		return slices.Equal(got, want), fmt.Sprintf("%q", got)
	})
}

// queueWaiters lists the keys of the queue's blocked dequeuers.
func (e *coEnv) queueWaiters(t *testing.T, name string) []string {
	t.Helper()
	r := e.do(t, "GET", "/v2/keys/_cairn/queues/"+name+"/_waiters?sorted=true", "")
	if r.code == 404 {
		return nil
	}
	a := coDecode(t, "waiters of "+name, r)
	if r.code != 200 || a.Node == nil {
		t.Fatalf("waiters of %s: %d %q", name, r.code, r.body)
	}
	var out []string
	for _, n := range a.Node.Nodes {
		out = append(out, n.Key)
	}
	return out
}

// awaitQueueWaiters polls until the queue has n blocked dequeuers.
func (e *coEnv) awaitQueueWaiters(t *testing.T, name string, n int) []string {
	t.Helper()
	var ws []string
	coEventually(t, fmt.Sprintf("%d blocked dequeuers on %s", n, name), func() (bool, string) {
		ws = e.queueWaiters(t, name)
		return len(ws) == n, fmt.Sprintf("%q", ws)
	})
	return ws
}

const (
	coLockKey  = "/_cairn/locks/job/%020d"
	coQueueKey = "/_cairn/queues/jobs/%020d"
)

// ---------------------------------------------------------------- locks

// A lock's life without waiting: GET while free, acquire, a second try
// refused with the holder as cause, GET, refresh, release, and the token
// errors after it; the next grant has a larger token; the lock is a
// hidden directory of the keys API.
func TestLockEndpoints(t *testing.T) {
	e := coLocal(t)
	free := `{"action":"get","lock":"job","holder":null,"waiters":[]}` + "\n"
	r := e.do(t, "GET", "/v2/locks/job", "")
	r.expect(t, "GET of a lock never taken", 200, free)
	r.index(t, "GET of a lock never taken", 0)

	k1 := fmt.Sprintf(coLockKey, 1)
	alice := `{"key":"` + k1 + `","value":"alice","expiration":"*","ttl":30,"modifiedIndex":1,"createdIndex":1}`
	r = e.do(t, "POST", "/v2/locks/job?ttl=30", "value=alice")
	r.expect(t, "acquire", 201, `{"action":"acquire","node":`+alice+`,"token":1}`+"\n")
	r.index(t, "acquire", 1)

	held := `{"errorCode":120,"message":"Lock is held","cause":"` + k1 + `","index":1}` + "\n"
	r = e.do(t, "POST", "/v2/locks/job?ttl=30", "value=bob")
	r.expect(t, "acquire of a held lock", 412, held)
	r.index(t, "acquire of a held lock", 1)
	// The parameters may come in the body, as in the keys API.
	e.do(t, "POST", "/v2/locks/job", "ttl=30&value=bob").expect(t, "acquire of a held lock, form", 412, held)

	r = e.do(t, "GET", "/v2/locks/job", "")
	r.expect(t, "GET of a held lock", 200, `{"action":"get","lock":"job","holder":`+alice+`,"token":1,"waiters":[]}`+"\n")
	r.index(t, "GET of a held lock", 1)

	refreshed := `{"key":"` + k1 + `","value":"alice","expiration":"*","ttl":60,"modifiedIndex":2,"createdIndex":1}`
	r = e.do(t, "PUT", "/v2/locks/job?token=1&ttl=60", "")
	r.expect(t, "refresh", 200, `{"action":"update","node":`+refreshed+`,"prevNode":`+alice+`,"token":1}`+"\n")
	r.index(t, "refresh", 2)

	r = e.do(t, "DELETE", "/v2/locks/job?token=1", "")
	r.expect(t, "release", 200, `{"action":"delete","node":{"key":"`+k1+`","modifiedIndex":3,"createdIndex":1},"prevNode":`+refreshed+`,"token":1}`+"\n")
	r.index(t, "release", 3)

	r = e.do(t, "GET", "/v2/locks/job", "")
	r.expect(t, "GET after the release", 200, free)
	r.index(t, "GET after the release", 3)

	gone := `{"errorCode":100,"message":"Key not found","cause":"` + k1 + `","index":3}` + "\n"
	e.do(t, "PUT", "/v2/locks/job?token=1&ttl=30", "").expect(t, "refresh of a released token", 404, gone)
	e.do(t, "DELETE", "/v2/locks/job?token=1", "").expect(t, "release of a released token", 404, gone)
	e.do(t, "PUT", "/v2/locks/job?token=77&ttl=30", "").expect(t, "refresh of a token never issued", 404,
		`{"errorCode":100,"message":"Key not found","cause":"`+fmt.Sprintf(coLockKey, 77)+`","index":3}`+"\n")

	// The next grant: a larger token.
	bob := `{"key":"` + fmt.Sprintf(coLockKey, 4) + `","value":"bob","expiration":"*","ttl":30,"modifiedIndex":4,"createdIndex":4}`
	e.do(t, "POST", "/v2/locks/job?ttl=30&wait=true", "value=bob").expect(t, "acquire with wait of a free lock", 201,
		`{"action":"acquire","node":`+bob+`,"token":4}`+"\n")

	// Everything is a hidden directory of the keys API.
	e.do(t, "GET", "/v2/keys/_cairn/locks/job", "").expect(t, "the lock through /v2/keys", 200,
		`{"action":"get","node":{"key":"/_cairn/locks/job","dir":true,"nodes":[`+bob+`],"modifiedIndex":1,"createdIndex":1}}`+"\n")
	e.do(t, "GET", "/v2/keys/", "").expect(t, "the root hides /_cairn", 200, `{"action":"get","node":{"dir":true}}`+"\n")
}

// Every parameter error of /v2/locks, with its code and cause; a name of
// 200 characters is accepted.
func TestLockParameterErrors(t *testing.T) {
	e := coLocal(t)
	e.mustCode(t, 201, "POST", "/v2/locks/held?ttl=30", "value=x")
	errBody := func(code int, msg, cause string) string {
		b, _ := json.Marshal(cause)
		return fmt.Sprintf(`{"errorCode":%d,"message":%q,"cause":%s,"index":0}`+"\n", code, msg, b)
	}
	badName := func(n string) string {
		return errBody(209, "Invalid field", fmt.Sprintf("invalid name %q: want 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit", n))
	}
	field := func(f string) string { return errBody(209, "Invalid field", fmt.Sprintf("invalid value for %q", f)) }
	ttlNaN := func(cause string) string { return errBody(202, "The given TTL in POST form is not a number", cause) }
	long := strings.Repeat("a", 201)
	for _, c := range []struct {
		method, target, form string
		code                 int
		body                 string
	}{
		{"POST", "/v2/locks/job", "value=x", 400, ttlNaN(`a lock needs a "ttl"`)},
		{"POST", "/v2/locks/job?wait=true", "value=x", 400, ttlNaN(`a lock needs a "ttl"`)},
		{"POST", "/v2/locks/job?ttl=soon", "", 400, ttlNaN(`invalid value for "ttl"`)},
		{"POST", "/v2/locks/job?ttl=0", "", 400, ttlNaN(`invalid value for "ttl"`)},
		{"POST", "/v2/locks/job?ttl=-1", "", 400, ttlNaN(`invalid value for "ttl"`)},
		{"POST", "/v2/locks/b%40d?ttl=30", "", 400, badName("b@d")},
		{"POST", "/v2/locks/_x?ttl=30", "", 400, badName("_x")},
		{"POST", "/v2/locks/.x?ttl=30", "", 400, badName(".x")},
		{"POST", "/v2/locks/-x?ttl=30", "", 400, badName("-x")},
		{"POST", "/v2/locks/a%20b?ttl=30", "", 400, badName("a b")},
		{"POST", "/v2/locks/" + long + "?ttl=30", "", 400, badName(long)},
		{"GET", "/v2/locks/b%40d", "", 400, badName("b@d")},
		{"PUT", "/v2/locks/b%40d?token=1&ttl=30", "", 400, badName("b@d")},
		{"DELETE", "/v2/locks/b%40d?token=1", "", 400, badName("b@d")},
		{"POST", "/v2/locks/job?ttl=30&wait=maybe", "", 400, field("wait")},
		{"POST", "/v2/locks/job?ttl=30&wait=true&timeout=soon", "", 400, field("timeout")},
		{"POST", "/v2/locks/job?ttl=30&wait=true&timeout=0", "", 400, field("timeout")},
		{"POST", "/v2/locks/job?ttl=30&wait=true&timeout=-1s", "", 400, field("timeout")},
		{"PUT", "/v2/locks/held?ttl=30", "", 400, errBody(209, "Invalid field", `"token" is required`)},
		{"DELETE", "/v2/locks/held", "", 400, errBody(209, "Invalid field", `"token" is required`)},
		{"PUT", "/v2/locks/held?token=abc&ttl=30", "", 400, field("token")},
		{"PUT", "/v2/locks/held?token=0&ttl=30", "", 400, field("token")},
		{"DELETE", "/v2/locks/held?token=-1", "", 400, field("token")},
		{"PUT", "/v2/locks/held?token=1", "", 400, errBody(212, "A TTL must be provided on refresh", "No TTL value set")},
		{"PUT", "/v2/locks/held?token=1&ttl=x", "", 400, ttlNaN(`invalid value for "ttl"`)},
	} {
		r := e.do(t, c.method, c.target, c.form)
		r.expect(t, c.method+" "+c.target+" "+c.form, c.code, c.body)
		r.index(t, c.method+" "+c.target, 0)
	}
	name := strings.Repeat("L", 200)
	a := e.mustCode(t, 201, "POST", "/v2/locks/"+name+"?ttl=30", "")
	if a.Action != "acquire" || a.Node.Key != "/_cairn/locks/"+name+"/"+fmt.Sprintf("%020d", a.Token) {
		t.Errorf("a 200-character name: %+v", a)
	}
	// Nothing was ever granted or queued by the refused requests.
	if got := e.lockOwners(t, "held"); !slices.Equal(got, []string{"x"}) {
		t.Errorf("lock held: %q", got)
	}
	if got := e.lockOwners(t, "job"); len(got) != 0 {
		t.Errorf("lock job: %q", got)
	}
}

// Every method the endpoints do not serve: 405 with the Allow header.
func TestCoordMethodNotAllowed(t *testing.T) {
	e := coLocal(t)
	for _, c := range []struct{ method, target, allow string }{
		{"PATCH", "/v2/locks/job", "GET, POST, PUT, DELETE"},
		{"HEAD", "/v2/locks/job", "GET, POST, PUT, DELETE"},
		{"PUT", "/v2/queues/jobs", "GET, POST, DELETE"},
		{"PATCH", "/v2/queues/jobs", "GET, POST, DELETE"},
		{"GET", "/v2/queues/jobs/reservations", "POST"},
		{"DELETE", "/v2/queues/jobs/reservations", "POST"},
		{"GET", "/v2/queues/jobs/reservations/1-2", "DELETE"},
		{"POST", "/v2/queues/jobs/reservations/1-2", "DELETE"},
	} {
		r := e.do(t, c.method, c.target, "")
		want := "Method Not Allowed\n"
		if c.method == "HEAD" {
			want = ""
		}
		if r.code != 405 || r.body != want || r.hdr.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q %q, want 405 Allow %q", c.method, c.target, r.code, r.hdr.Get("Allow"), r.body, c.allow)
		}
	}
}

// Waiters queue in arrival order (GET shows them after the holder, each
// with its own key); each is granted, with its own token, when the one
// ahead releases; tokens strictly increase.
func TestLockWaitersGrantedInOrder(t *testing.T) {
	coBoth(t, func(t *testing.T, e *coEnv) {
		alice := e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=30", "value=alice")
		bob := e.start(t, "POST", "/v2/locks/job?ttl=30&wait=true", "value=bob")
		e.awaitOwners(t, "job", "alice", "bob")
		carol := e.start(t, "POST", "/v2/locks/job?ttl=30&wait=true", "value=carol")
		e.awaitOwners(t, "job", "alice", "bob", "carol")

		st := e.lock(t, "job")
		if st.Holder.Key != alice.Node.Key || st.Token != alice.Token || len(st.Waiters) != 2 {
			t.Fatalf("status %+v", st)
		}
		wb, wc := st.Waiters[0], st.Waiters[1]
		for _, w := range st.Waiters {
			if w.Expiration == "" || w.TTL < 1 || w.TTL > 30 || w.CreatedIndex <= alice.Token {
				t.Errorf("waiter %+v: want a TTL and a later index", w)
			}
		}
		if want := fmt.Sprintf(coLockKey, wb.CreatedIndex); wb.Key != want || wc.CreatedIndex <= wb.CreatedIndex {
			t.Errorf("waiters %+v, %+v: want in-order keys", wb, wc)
		}
		if bob.answered() || carol.answered() {
			t.Fatal("a waiter was answered while the lock was held")
		}

		e.mustCode(t, 200, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", alice.Token), "")
		b := coDecode(t, "bob's grant", bob.answer(t))
		if bob.resp.code != 201 || b.Action != "acquire" || b.Token != wb.CreatedIndex || b.Node.Key != wb.Key || b.Node.value() != "bob" {
			t.Fatalf("bob's grant: %d %q, want 201 acquire with token %d", bob.resp.code, bob.resp.body, wb.CreatedIndex)
		}
		st = e.lock(t, "job")
		if st.Holder == nil || st.Holder.Key != wb.Key || st.Token != b.Token || len(st.Waiters) != 1 || st.Waiters[0].Key != wc.Key {
			t.Fatalf("after bob's grant: %+v", st)
		}
		if carol.answered() {
			t.Fatal("carol was answered while bob held the lock")
		}

		e.mustCode(t, 200, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", b.Token), "")
		c := coDecode(t, "carol's grant", carol.answer(t))
		if carol.resp.code != 201 || c.Action != "acquire" || c.Token != wc.CreatedIndex || c.Node.value() != "carol" {
			t.Fatalf("carol's grant: %d %q", carol.resp.code, carol.resp.body)
		}
		if !(alice.Token < b.Token && b.Token < c.Token) {
			t.Errorf("tokens %d, %d, %d do not increase", alice.Token, b.Token, c.Token)
		}
		e.mustCode(t, 200, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", c.Token), "")
		e.awaitOwners(t, "job")
	})
}

// The exact GET of a lock with waiters, on the Local backend (indexes are
// deterministic there).
func TestLockStatusWithWaiters(t *testing.T) {
	e := coLocal(t)
	e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=30", "value=alice")
	bob := e.start(t, "POST", "/v2/locks/job?ttl=30&wait=true", "value=bob")
	e.awaitOwners(t, "job", "alice", "bob")
	e.start(t, "POST", "/v2/locks/job?ttl=20&wait=true", "value=carol")
	e.awaitOwners(t, "job", "alice", "bob", "carol")
	node := func(i int, v string, ttl int) string {
		return fmt.Sprintf(`{"key":"`+coLockKey+`","value":%q,"expiration":"*","ttl":%d,"modifiedIndex":%d,"createdIndex":%d}`, i, v, ttl, i, i)
	}
	r := e.do(t, "GET", "/v2/locks/job", "")
	r.expect(t, "GET with two waiters", 200, `{"action":"get","lock":"job","holder":`+node(1, "alice", 30)+`,"token":1,"waiters":[`+node(2, "bob", 30)+`,`+node(3, "carol", 20)+`]}`+"\n")
	r.index(t, "GET with two waiters", 3)
	e.mustCode(t, 200, "DELETE", "/v2/locks/job?token=1", "")
	bob.answer(t).expect(t, "bob's grant", 201, `{"action":"acquire","node":`+node(2, "bob", 30)+`,"token":2}`+"\n")
	e.do(t, "GET", "/v2/locks/job", "").expect(t, "GET after bob's grant", 200,
		`{"action":"get","lock":"job","holder":`+node(2, "bob", 30)+`,"token":2,"waiters":[`+node(3, "carol", 20)+`]}`+"\n")
}

// A waiter whose timeout passes is answered 408 (errorCode 123) and has
// left the queue by then; a free lock is granted at once; timeout also
// takes whole seconds.
func TestLockWaitTimeout(t *testing.T) {
	coBoth(t, func(t *testing.T, e *coEnv) {
		alice := e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=30", "value=alice")
		// The index is the store's when the wait ended.
		timedOutRE := regexp.MustCompile(`^\{"errorCode":123,"message":"Timed out waiting","cause":"timeout","index":\d+\}\n$`)
		r := e.do(t, "POST", "/v2/locks/job?ttl=30&wait=true&timeout=300ms", "value=bob")
		if r.code != 408 || !timedOutRE.MatchString(r.body) {
			t.Errorf("wait with a timeout: %d %q, want 408 errorCode 123", r.code, r.body)
		}
		if got := e.lockOwners(t, "job"); !slices.Equal(got, []string{"alice"}) {
			t.Errorf("after the timeout: owners %q, want alice alone", got)
		}
		if r := e.do(t, "POST", "/v2/locks/job?ttl=30&wait=true&timeout=1", "value=carol"); r.code != 408 || !timedOutRE.MatchString(r.body) {
			t.Errorf("timeout=1 (seconds): %d %q, want 408 errorCode 123", r.code, r.body)
		}
		if got := e.lockOwners(t, "job"); !slices.Equal(got, []string{"alice"}) {
			t.Errorf("after the second timeout: owners %q", got)
		}
		// The ones that timed out are never granted: the release frees
		// the lock.
		e.mustCode(t, 200, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", alice.Token), "")
		if got := e.lockOwners(t, "job"); len(got) != 0 {
			t.Errorf("after the release: owners %q, want none", got)
		}
		d := e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=30&wait=true&timeout=10s", "value=dave")
		if d.Action != "acquire" || d.Node.value() != "dave" {
			t.Errorf("a free lock with a short timeout: %+v", d)
		}
	})
}

// A waiter whose client goes away leaves the queue: it is never granted.
func TestLockWaiterLeavesWhenClientGoesAway(t *testing.T) {
	coBoth(t, func(t *testing.T, e *coEnv) {
		alice := e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=30", "value=alice")
		bob := e.start(t, "POST", "/v2/locks/job?ttl=30&wait=true", "value=bob")
		e.awaitOwners(t, "job", "alice", "bob")
		carol := e.start(t, "POST", "/v2/locks/job?ttl=30&wait=true", "value=carol")
		e.awaitOwners(t, "job", "alice", "bob", "carol")
		bob.cancelAndWait(t)
		e.awaitOwners(t, "job", "alice", "carol")
		e.mustCode(t, 200, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", alice.Token), "")
		c := coDecode(t, "carol's grant", carol.answer(t))
		if carol.resp.code != 201 || c.Node.value() != "carol" {
			t.Fatalf("carol: %d %q", carol.resp.code, carol.resp.body)
		}
		// The last waiter goes away too: nobody is left.
		dave := e.start(t, "POST", "/v2/locks/job?ttl=30&wait=true", "value=dave")
		e.awaitOwners(t, "job", "carol", "dave")
		dave.cancelAndWait(t)
		e.awaitOwners(t, "job", "carol")
		e.mustCode(t, 200, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", c.Token), "")
		e.awaitOwners(t, "job")
	})
}

// A holder that stops refreshing expires; the next waiter is granted; the
// old holder's token then fails to refresh (100) and to fence (121); the
// key's history shows the expiry.
func TestLockHolderExpiryGrantsNextWaiter(t *testing.T) {
	coBoth(t, func(t *testing.T, e *coEnv) {
		alice := e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=1", "value=alice")
		bob := e.start(t, "POST", "/v2/locks/job?ttl=30&wait=true", "value=bob")
		b := coDecode(t, "bob's grant", bob.answer(t))
		if bob.resp.code != 201 || b.Action != "acquire" || b.Node.value() != "bob" || b.Token <= alice.Token {
			t.Fatalf("bob: %d %q", bob.resp.code, bob.resp.body)
		}
		st := e.lock(t, "job")
		if st.Holder == nil || st.Holder.value() != "bob" || st.Token != b.Token || len(st.Waiters) != 0 {
			t.Fatalf("after alice's expiry: %+v", st)
		}
		a := e.mustCode(t, 404, "PUT", fmt.Sprintf("/v2/locks/job?token=%d&ttl=30", alice.Token), "")
		if a.ErrorCode != 100 || a.Cause != alice.Node.Key {
			t.Errorf("alice's refresh after her expiry: %+v", a)
		}
		f := e.mustCode(t, 412, "PUT", fmt.Sprintf("/v2/keys/report?prevLock=job&prevToken=%d", alice.Token), "value=late")
		if f.ErrorCode != 121 || f.Cause != fmt.Sprintf("[%d != %d]", alice.Token, b.Token) {
			t.Errorf("alice's fenced write after her expiry: %+v", f)
		}
		h := e.mustCode(t, 200, "GET", fmt.Sprintf("/v2/keys%s?wait=true&waitIndex=%d", alice.Node.Key, alice.Token+1), "")
		if h.Action != "expire" || h.Node.Key != alice.Node.Key || h.PrevNode == nil || h.PrevNode.value() != "alice" {
			t.Errorf("alice's key history: %+v", h)
		}
	})
}

// A waiter granted after waiting longer than its own refresh period is
// answered with its key as it stands when granted: the member refreshed
// it meanwhile, so its expiration lies ahead and its ttl is positive.
func TestLockGrantShowsTheCurrentKey(t *testing.T) {
	coBoth(t, func(t *testing.T, e *coEnv) {
		alice := e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=30", "value=alice")
		bob := e.start(t, "POST", "/v2/locks/job?ttl=1&wait=true", "value=bob")
		e.awaitOwners(t, "job", "alice", "bob")
		first := e.lock(t, "job").Waiters[0]
		exp0, err := time.Parse(time.RFC3339Nano, first.Expiration)
		if err != nil {
			t.Fatalf("bob's waiter: %+v", first)
		}
		// Wait until bob's first deadline has passed and the member has
		// refreshed his key (it refreshes it every third of its TTL).
		var last coNode
		coEventually(t, "bob's waiter key refreshed past its first deadline", func() (bool, string) {
			st := e.lock(t, "job")
			if len(st.Waiters) != 1 {
				t.Fatalf("bob is no longer waiting: %+v", st)
			}
			last = st.Waiters[0]
			return time.Now().After(exp0.Add(300*time.Millisecond)) && last.ModifiedIndex > last.CreatedIndex, fmt.Sprintf("%+v", last)
		})
		released := time.Now()
		e.mustCode(t, 200, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", alice.Token), "")
		b := coDecode(t, "bob's grant", bob.answer(t))
		if bob.resp.code != 201 || b.Node == nil {
			t.Fatalf("bob's grant: %d %q", bob.resp.code, bob.resp.body)
		}
		exp, err := time.Parse(time.RFC3339Nano, b.Node.Expiration)
		if err != nil || b.Node.TTL < 1 || !exp.After(released) || b.Node.ModifiedIndex < last.ModifiedIndex {
			t.Errorf("bob's grant shows his key as it was when he started waiting, not as it is:\n %s\n"+
				"want ttl >= 1, an expiration after the release (%s) and modifiedIndex >= %d (his key's last refresh seen)",
				strings.TrimSpace(bob.resp.body), released.UTC().Format(time.RFC3339Nano), last.ModifiedIndex)
		}
	})
}

// coCounting records which keys the lock waiters watch and how often
// they re-read a lock (the serializable reads of the waiters; status
// reads are linearizable).
type coCounting struct {
	*server.Local
	mu      sync.Mutex
	watches []string
	reads   int
}

func (c *coCounting) Watch(p string, recursive, stream bool, since uint64) (*store.Watcher, error) {
	c.mu.Lock()
	c.watches = append(c.watches, fmt.Sprintf("%s recursive=%v stream=%v", p, recursive, stream))
	c.mu.Unlock()
	return c.Local.Watch(p, recursive, stream, since)
}

func (c *coCounting) Get(ctx context.Context, p string, recursive, serializable bool) (*store.Event, error) {
	if serializable && p == "/_cairn/locks/job" {
		c.mu.Lock()
		c.reads++
		c.mu.Unlock()
	}
	return c.Local.Get(ctx, p, recursive, serializable)
}

func (c *coCounting) counts() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.watches), c.reads
}

// No herd: each waiter watches only the key just ahead of it, and a
// release wakes only the next waiter.
func TestLockWaitersWakeOneAtATime(t *testing.T) {
	var cb *coCounting
	e := coLocalWith(t, func(l *server.Local) httpapi.Backend {
		cb = &coCounting{Local: l}
		return cb
	})
	alice := e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=30", "value=alice")
	var pend []*coPending
	for i, who := range []string{"bob", "carol", "dave"} {
		pend = append(pend, e.start(t, "POST", "/v2/locks/job?ttl=30&wait=true", "value="+who))
		coEventually(t, who+" watching", func() (bool, string) {
			w, _ := cb.counts()
			return len(w) == i+1, fmt.Sprintf("%q", w)
		})
	}
	st := e.lock(t, "job")
	keys := []string{alice.Node.Key, st.Waiters[0].Key, st.Waiters[1].Key}
	var want []string
	for _, k := range keys {
		want = append(want, k+" recursive=false stream=false")
	}
	settle := func() { time.Sleep(300 * time.Millisecond) } // room for a wrong wake-up to show
	settle()
	w, reads := cb.counts()
	if !slices.Equal(w, want) || reads != 3 {
		t.Fatalf("watches %q and %d reads, want %q and 3 (one per waiter)", w, reads, want)
	}
	token := alice.Token
	for i, p := range pend {
		e.mustCode(t, 200, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", token), "")
		g := coDecode(t, "grant", p.answer(t))
		token = g.Token
		settle()
		w, reads = cb.counts()
		if !slices.Equal(w, want) || reads != 4+i {
			t.Errorf("after release %d: watches %q and %d reads, want no new watch and %d reads (only the next waiter woken)", i+1, w, reads, 4+i)
		}
		for _, later := range pend[i+1:] {
			if later.answered() {
				t.Fatalf("%s answered out of turn", later.what)
			}
		}
	}
}

// Clients contending for a lock never hold it together, and each grant's
// token is larger than the one before.
func TestLockMutualExclusionAndTokens(t *testing.T) {
	e := coLocal(t)
	const clients, rounds = 4, 5
	var (
		mu      sync.Mutex
		tokens  []uint64
		holders atomic.Int32
		wg      sync.WaitGroup
		fails   = make(chan string, clients*rounds)
	)
	for c := range clients {
		wg.Go(func() {
			for range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), coGuard)
				r, err := e.send(ctx, "POST", "/v2/locks/job?ttl=30&wait=true", fmt.Sprintf("value=c%d", c))
				cancel()
				if err != nil || r.code != 201 {
					fails <- fmt.Sprintf("acquire: %v %d %q", err, r.code, r.body)
					return
				}
				var a coAnswer
				if err := json.Unmarshal([]byte(r.body), &a); err != nil {
					fails <- err.Error()
					return
				}
				if n := holders.Add(1); n != 1 {
					fails <- fmt.Sprintf("%d holders at once", n)
				}
				mu.Lock()
				tokens = append(tokens, a.Token)
				mu.Unlock()
				holders.Add(-1)
				ctx, cancel = context.WithTimeout(context.Background(), coGuard)
				r, err = e.send(ctx, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", a.Token), "")
				cancel()
				if err != nil || r.code != 200 {
					fails <- fmt.Sprintf("release: %v %d %q", err, r.code, r.body)
					return
				}
			}
		})
	}
	wg.Wait()
	close(fails)
	for f := range fails {
		t.Error(f)
	}
	if len(tokens) != clients*rounds {
		t.Fatalf("%d grants, want %d", len(tokens), clients*rounds)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("grant %d has token %d after %d: tokens %v", i, tokens[i], tokens[i-1], tokens)
		}
	}
}

// ---------------------------------------------------------------- fence

// prevLock/prevToken on the keys API: a write applies only with the
// current holder's token; refused (121, cause "[given != holder's]", 0
// when free) with an old token or when the lock is free, taking no index;
// 209 when either parameter is missing or bad.
func TestFence(t *testing.T) {
	e := coLocal(t)
	e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=30", "value=alice") // token 1
	e.do(t, "PUT", "/v2/keys/reg?prevLock=job&prevToken=1", "value=a").expect(t, "fenced set by the holder", 201,
		`{"action":"set","node":{"key":"/reg","value":"a","modifiedIndex":2,"createdIndex":2}}`+"\n")
	e.do(t, "POST", "/v2/keys/log?prevLock=job&prevToken=1", "value=l1").expect(t, "fenced in-order create by the holder", 201,
		`{"action":"create","node":{"key":"/log/00000000000000000003","value":"l1","modifiedIndex":3,"createdIndex":3}}`+"\n")
	// In the form body, like any parameter of a write.
	e.do(t, "PUT", "/v2/keys/reg2", "value=f&prevLock=job&prevToken=1").expect(t, "fence in the form body", 201,
		`{"action":"set","node":{"key":"/reg2","value":"f","modifiedIndex":4,"createdIndex":4}}`+"\n")
	fence := func(given, holder, index int) string {
		return fmt.Sprintf(`{"errorCode":121,"message":"Lock token is not the holder's","cause":"[%d != %d]","index":%d}`+"\n", given, holder, index)
	}
	r := e.do(t, "PUT", "/v2/keys/reg?prevLock=job&prevToken=2", "value=x")
	r.expect(t, "a token that is not the holder's", 412, fence(2, 1, 4))
	r.index(t, "a token that is not the holder's", 4)
	e.do(t, "PUT", "/v2/keys/reg2", "value=f&prevLock=job&prevToken=9").expect(t, "a wrong token in the form body", 412, fence(9, 1, 4))
	e.do(t, "PUT", "/v2/keys/reg?prevLock=other&prevToken=1", "value=x").expect(t, "a lock never taken", 412, fence(1, 0, 4))

	e.mustCode(t, 200, "DELETE", "/v2/locks/job?token=1", "") // 5
	e.do(t, "PUT", "/v2/keys/reg?prevLock=job&prevToken=1", "value=x").expect(t, "the last holder's token on a free lock", 412, fence(1, 0, 5))
	e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=30", "value=bob") // token 6
	for _, c := range []struct{ method, target, form string }{
		{"PUT", "/v2/keys/reg?prevLock=job&prevToken=1", "value=late"},
		{"POST", "/v2/keys/log?prevLock=job&prevToken=1", "value=late"},
		{"DELETE", "/v2/keys/reg?prevLock=job&prevToken=1", ""},
		{"PUT", "/v2/keys/reg?prevLock=job&prevToken=1&prevValue=a", "value=late"},
		{"PUT", "/v2/keys/reg?prevLock=job&prevToken=1&refresh=true&ttl=100", ""},
	} {
		e.do(t, c.method, c.target, c.form).expect(t, "the old holder's "+c.method+" "+c.target, 412, fence(1, 6, 6))
	}
	e.do(t, "GET", "/v2/keys/reg", "").expect(t, "the register after the refused writes", 200,
		`{"action":"get","node":{"key":"/reg","value":"a","modifiedIndex":2,"createdIndex":2}}`+"\n")
	e.do(t, "PUT", "/v2/keys/reg?prevLock=job&prevToken=6", "value=b").expect(t, "fenced set by the new holder", 200,
		`{"action":"set","node":{"key":"/reg","value":"b","modifiedIndex":7,"createdIndex":7},"prevNode":{"key":"/reg","value":"a","modifiedIndex":2,"createdIndex":2}}`+"\n")
	// The fence comes with the write's own conditions.
	e.do(t, "PUT", "/v2/keys/reg?prevLock=job&prevToken=6&prevExist=false", "value=c").expect(t, "fence passed, prevExist failed", 412,
		`{"errorCode":105,"message":"Key already exists","cause":"/reg","index":7}`+"\n")
	e.do(t, "PUT", "/v2/keys/reg?prevLock=job&prevToken=6&prevValue=b", "value=c").expect(t, "fenced compare-and-swap", 200,
		`{"action":"compareAndSwap","node":{"key":"/reg","value":"c","modifiedIndex":8,"createdIndex":7},"prevNode":{"key":"/reg","value":"b","modifiedIndex":7,"createdIndex":7}}`+"\n")
	e.do(t, "DELETE", "/v2/keys/reg?prevLock=job&prevToken=6", "").expect(t, "fenced delete", 200,
		`{"action":"delete","node":{"key":"/reg","modifiedIndex":9,"createdIndex":7},"prevNode":{"key":"/reg","value":"c","modifiedIndex":8,"createdIndex":7}}`+"\n")

	field := func(f string) string {
		return fmt.Sprintf(`{"errorCode":209,"message":"Invalid field","cause":"invalid value for \"%s\"","index":0}`+"\n", f)
	}
	for _, c := range []struct{ method, target, form, field string }{
		{"PUT", "/v2/keys/reg?prevLock=job", "value=x", "prevToken"},
		{"PUT", "/v2/keys/reg?prevToken=6", "value=x", "prevLock"},
		{"PUT", "/v2/keys/reg?prevLock=&prevToken=6", "value=x", "prevLock"},
		{"PUT", "/v2/keys/reg?prevLock=b%40d&prevToken=6", "value=x", "prevLock"},
		{"PUT", "/v2/keys/reg?prevLock=_job&prevToken=6", "value=x", "prevLock"},
		{"PUT", "/v2/keys/reg?prevLock=job&prevToken=x", "value=x", "prevToken"},
		{"PUT", "/v2/keys/reg?prevLock=job&prevToken=0", "value=x", "prevToken"},
		{"PUT", "/v2/keys/reg?prevLock=job&prevToken=-6", "value=x", "prevToken"},
		{"PUT", "/v2/keys/reg?prevLock=job&prevToken=", "value=x", "prevToken"},
		{"POST", "/v2/keys/log?prevToken=6", "value=x", "prevLock"},
		{"DELETE", "/v2/keys/log?prevLock=job", "", "prevToken"},
	} {
		r := e.do(t, c.method, c.target, c.form)
		r.expect(t, c.method+" "+c.target, 400, field(c.field))
		r.index(t, c.method+" "+c.target, 0)
	}
	// Nothing refused took an index.
	if got := e.store().Index(); got != 9 {
		t.Errorf("store index %d, want 9", got)
	}
}

// ---------------------------------------------------------------- queues

// Enqueue, list in order, dequeue in order, empty (122); names; the queue
// is a hidden directory of the keys API.
func TestQueueEndpoints(t *testing.T) {
	e := coLocal(t)
	emptyList := `{"action":"get","node":{"key":"/_cairn/queues/jobs","dir":true}}` + "\n"
	r := e.do(t, "GET", "/v2/queues/jobs", "")
	r.expect(t, "GET of a queue never used", 200, emptyList)
	r.index(t, "GET of a queue never used", 0)
	e.do(t, "DELETE", "/v2/queues/jobs", "").expect(t, "dequeue from a queue never used", 404,
		`{"errorCode":122,"message":"Queue is empty","cause":"/_cairn/queues/jobs","index":0}`+"\n")

	item := func(i int, v string) string {
		return fmt.Sprintf(`{"key":"`+coQueueKey+`","value":%q,"modifiedIndex":%d,"createdIndex":%d}`, i, v, i, i)
	}
	r = e.do(t, "POST", "/v2/queues/jobs", "value=one")
	r.expect(t, "enqueue one", 201, `{"action":"create","node":`+item(1, "one")+`}`+"\n")
	r.index(t, "enqueue one", 1)
	e.do(t, "POST", "/v2/queues/jobs?value=two", "").expect(t, "enqueue two (query)", 201, `{"action":"create","node":`+item(2, "two")+`}`+"\n")
	e.do(t, "POST", "/v2/queues/jobs", "").expect(t, "enqueue an empty value", 201, `{"action":"create","node":`+item(3, "")+`}`+"\n")
	// A ttl means nothing to an item: items never expire.
	e.do(t, "POST", "/v2/queues/jobs?ttl=1", "value=four").expect(t, "enqueue with a ttl", 201, `{"action":"create","node":`+item(4, "four")+`}`+"\n")
	r = e.do(t, "GET", "/v2/queues/jobs", "")
	r.expect(t, "list", 200, `{"action":"get","node":{"key":"/_cairn/queues/jobs","dir":true,"nodes":[`+
		item(1, "one")+","+item(2, "two")+","+item(3, "")+","+item(4, "four")+`]}}`+"\n")
	r.index(t, "list", 4)
	e.do(t, "GET", "/v2/keys/_cairn/queues/jobs/00000000000000000001", "").expect(t, "an item through /v2/keys", 200,
		`{"action":"get","node":`+item(1, "one")+`}`+"\n")

	for i, v := range []string{"one", "two", "", "four"} {
		r = e.do(t, "DELETE", "/v2/queues/jobs", "")
		r.expect(t, "dequeue "+v, 200, fmt.Sprintf(`{"action":"dequeue","node":{"key":"`+coQueueKey+`","value":%q,"modifiedIndex":%d}}`+"\n", i+1, v, 5+i))
		r.index(t, "dequeue "+v, uint64(5+i))
	}
	r = e.do(t, "DELETE", "/v2/queues/jobs", "")
	r.expect(t, "dequeue from the emptied queue", 404, `{"errorCode":122,"message":"Queue is empty","cause":"/_cairn/queues/jobs","index":8}`+"\n")
	r.index(t, "dequeue from the emptied queue", 8)
	e.do(t, "GET", "/v2/queues/jobs", "").expect(t, "list of the emptied queue", 200, emptyList)
	// The history of the keys API has the dequeue.
	e.do(t, "GET", "/v2/keys/_cairn/queues/jobs?recursive=true&wait=true&waitIndex=5", "").expect(t, "the dequeue in the history", 200,
		`{"action":"dequeue","node":{"key":"/_cairn/queues/jobs/00000000000000000001","modifiedIndex":5,"createdIndex":1},"prevNode":`+item(1, "one")+`}`+"\n")

	badName := `{"errorCode":209,"message":"Invalid field","cause":"invalid name \"b@d\": want 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit","index":0}` + "\n"
	for _, m := range []string{"GET", "POST", "DELETE"} {
		e.do(t, m, "/v2/queues/b%40d", "").expect(t, m+" on a bad queue name", 400, badName)
	}
	e.do(t, "POST", "/v2/queues/b%40d/reservations?ttl=30", "").expect(t, "reserve on a bad queue name", 400, badName)
	e.do(t, "DELETE", "/v2/queues/b%40d/reservations/1-2", "").expect(t, "ack on a bad queue name", 400, badName)
	for _, q := range []string{"wait=maybe", "wait=true&timeout=soon", "wait=true&timeout=0"} {
		f := strings.SplitN(strings.Split(q, "&")[len(strings.Split(q, "&"))-1], "=", 2)[0]
		e.do(t, "DELETE", "/v2/queues/jobs?"+q, "").expect(t, "dequeue ?"+q, 400,
			fmt.Sprintf(`{"errorCode":209,"message":"Invalid field","cause":"invalid value for \"%s\"","index":0}`+"\n", f))
	}
}

// A dequeuer blocked on an empty queue is answered by the next enqueue:
// the enqueuer's answer says "deliver" (the waiter's key, the value; the
// registration itself, an internal nonce, is not shown), the
// item is never stored, and the dequeuer gets it under the key it would
// have had. Blocked dequeuers are served in order.
func TestQueueBlockingDequeue(t *testing.T) {
	coBoth(t, func(t *testing.T, e *coEnv) {
		d1 := e.start(t, "DELETE", "/v2/queues/jobs?wait=true", "")
		w1 := e.awaitQueueWaiters(t, "jobs", 1)[0]
		d2 := e.start(t, "DELETE", "/v2/queues/jobs?wait=true", "")
		w2 := e.awaitQueueWaiters(t, "jobs", 2)[1]
		if !strings.HasPrefix(w1, "/_cairn/queues/jobs/_waiters/") || w2 <= w1 {
			t.Fatalf("waiter keys %q, %q", w1, w2)
		}
		if d1.answered() || d2.answered() {
			t.Fatal("a dequeuer was answered on an empty queue")
		}
		r := e.do(t, "POST", "/v2/queues/jobs", "value=three")
		a := coDecode(t, "enqueue to a waiter", r)
		if r.code != 201 || a.Action != "deliver" || a.Node.Key != w1 || a.Node.value() != "three" ||
			a.PrevNode != nil || a.Node.Expiration != "" {
			t.Fatalf("enqueue with a blocked dequeuer: %d %q, want 201 deliver to %s", r.code, r.body, w1)
		}
		want := fmt.Sprintf(`{"action":"dequeue","node":{"key":"`+coQueueKey+`","value":"three","modifiedIndex":%d}}`+"\n", a.Node.ModifiedIndex, a.Node.ModifiedIndex)
		d1.answer(t).expect(t, "the first blocked dequeuer", 200, want)
		if d2.answered() {
			t.Fatal("the second dequeuer was answered too")
		}
		if got := e.mustCode(t, 200, "GET", "/v2/queues/jobs", ""); len(got.Node.Nodes) != 0 {
			t.Errorf("the delivered item was stored: %+v", got.Node.Nodes)
		}
		r = e.do(t, "POST", "/v2/queues/jobs", "value=four")
		if a := coDecode(t, "second enqueue", r); a.Action != "deliver" || a.Node.Key != w2 {
			t.Fatalf("second enqueue: %q, want deliver to %s", r.body, w2)
		}
		if a := coDecode(t, "second dequeuer", d2.answer(t)); d2.resp.code != 200 || a.Action != "dequeue" || a.Node.value() != "four" {
			t.Fatalf("second dequeuer: %d %q", d2.resp.code, d2.resp.body)
		}
		// Nobody waits now: the next item is stored, and a dequeue with
		// wait takes it at once.
		if a := e.mustCode(t, 201, "POST", "/v2/queues/jobs", "value=five"); a.Action != "create" {
			t.Fatalf("enqueue with nobody waiting: %+v", a)
		}
		if a := e.mustCode(t, 200, "DELETE", "/v2/queues/jobs?wait=true", ""); a.Action != "dequeue" || a.Node.value() != "five" {
			t.Fatalf("dequeue with wait of a stored item: %+v", a)
		}
	})
}

// A blocked dequeue whose timeout passes is answered 408 (123) and is no
// longer waiting; neither is one whose client went away: the next item is
// stored, not handed to them.
func TestQueueDequeueTimeoutAndClientGone(t *testing.T) {
	coBoth(t, func(t *testing.T, e *coEnv) {
		r := e.do(t, "DELETE", "/v2/queues/jobs?wait=true&timeout=300ms", "")
		// The error's index is the registration's, where the wait began.
		r.expect(t, "dequeue with a timeout", 408, `{"errorCode":123,"message":"Timed out waiting","cause":"timeout","index":1}`+"\n")
		r.index(t, "dequeue with a timeout", 1)
		if ws := e.queueWaiters(t, "jobs"); len(ws) != 0 {
			t.Errorf("after the timeout: waiters %q", ws)
		}
		d := e.start(t, "DELETE", "/v2/queues/jobs?wait=true", "")
		e.awaitQueueWaiters(t, "jobs", 1)
		d.cancelAndWait(t)
		e.awaitQueueWaiters(t, "jobs", 0)
		a := e.mustCode(t, 201, "POST", "/v2/queues/jobs", "value=kept")
		if a.Action != "create" {
			t.Fatalf("enqueue after the dequeuers left: %+v, want a stored item", a)
		}
		if l := e.mustCode(t, 200, "GET", "/v2/queues/jobs", ""); len(l.Node.Nodes) != 1 || l.Node.Nodes[0].value() != "kept" {
			t.Errorf("list: %+v", l.Node.Nodes)
		}
	})
}

// Reservations: the head is reserved with a receipt, shown with its
// expiration, skipped by dequeue and by the next reservation, and removed
// by the acknowledgement; the receipt's errors.
func TestQueueReservations(t *testing.T) {
	e := coLocal(t)
	e.do(t, "POST", "/v2/queues/jobs/reservations?ttl=30", "").expect(t, "reserve on an empty queue", 404,
		`{"errorCode":122,"message":"Queue is empty","cause":"/_cairn/queues/jobs","index":0}`+"\n")
	e.mustCode(t, 201, "POST", "/v2/queues/jobs", "value=a") // 1
	e.mustCode(t, 201, "POST", "/v2/queues/jobs", "value=b") // 2
	k1 := fmt.Sprintf(coQueueKey, 1)
	a1 := `{"key":"` + k1 + `","value":"a","modifiedIndex":1,"createdIndex":1}`
	reserved := `{"key":"` + k1 + `","value":"a","expiration":"*","ttl":30,"modifiedIndex":3,"createdIndex":1}`
	r := e.do(t, "POST", "/v2/queues/jobs/reservations?ttl=30", "")
	r.expect(t, "reserve", 201, `{"action":"reserve","node":`+reserved+`,"prevNode":`+a1+`,"receipt":"1-3"}`+"\n")
	r.index(t, "reserve", 3)
	b := fmt.Sprintf(`{"key":"`+coQueueKey+`","value":"b","modifiedIndex":2,"createdIndex":2}`, 2)
	e.do(t, "GET", "/v2/queues/jobs", "").expect(t, "list with a reserved item", 200,
		`{"action":"get","node":{"key":"/_cairn/queues/jobs","dir":true,"nodes":[`+reserved+`,`+b+`]}}`+"\n")
	e.do(t, "DELETE", "/v2/queues/jobs", "").expect(t, "dequeue skips the reserved item", 200,
		`{"action":"dequeue","node":{"key":"`+fmt.Sprintf(coQueueKey, 2)+`","value":"b","modifiedIndex":4}}`+"\n")
	empty := `{"errorCode":122,"message":"Queue is empty","cause":"/_cairn/queues/jobs","index":4}` + "\n"
	e.do(t, "DELETE", "/v2/queues/jobs", "").expect(t, "dequeue with only a reserved item", 404, empty)
	e.do(t, "POST", "/v2/queues/jobs/reservations?ttl=30", "").expect(t, "reserve with only a reserved item", 404, empty)

	ttlNaN := func(cause string) string {
		return `{"errorCode":202,"message":"The given TTL in POST form is not a number","cause":"` + cause + `","index":0}` + "\n"
	}
	e.do(t, "POST", "/v2/queues/jobs/reservations", "").expect(t, "reserve without ttl", 400, ttlNaN(`a reservation needs a \"ttl\"`))
	e.do(t, "POST", "/v2/queues/jobs/reservations?ttl=0", "").expect(t, "reserve with ttl=0", 400, ttlNaN(`invalid value for \"ttl\"`))
	for _, bad := range []string{"garbage", "0-3", "1-0", "1-", "-3", "1-2-3", "1_3", "x-3"} {
		e.do(t, "DELETE", "/v2/queues/jobs/reservations/"+bad, "").expect(t, "ack "+bad, 400,
			`{"errorCode":209,"message":"Invalid field","cause":"invalid receipt \"`+bad+`\"","index":0}`+"\n")
	}
	e.do(t, "DELETE", "/v2/queues/jobs/reservations/1-2", "").expect(t, "ack with a receipt that was not issued", 412,
		`{"errorCode":101,"message":"Compare failed","cause":"[2 != 3]","index":4}`+"\n")
	e.do(t, "DELETE", "/v2/queues/other/reservations/1-3", "").expect(t, "ack on another queue", 404,
		`{"errorCode":100,"message":"Key not found","cause":"/_cairn/queues/other","index":4}`+"\n")

	r = e.do(t, "DELETE", "/v2/queues/jobs/reservations/1-3", "")
	r.expect(t, "ack", 200, `{"action":"compareAndDelete","node":{"key":"`+k1+`","modifiedIndex":5,"createdIndex":1},"prevNode":`+reserved+`}`+"\n")
	r.index(t, "ack", 5)
	e.do(t, "DELETE", "/v2/queues/jobs/reservations/1-3", "").expect(t, "ack again", 404,
		`{"errorCode":100,"message":"Key not found","cause":"`+k1+`","index":5}`+"\n")
	e.do(t, "GET", "/v2/queues/jobs", "").expect(t, "list after the ack", 200, `{"action":"get","node":{"key":"/_cairn/queues/jobs","dir":true}}`+"\n")
}

// A reservation that is not acknowledged runs out: the item is back at
// the head, permanent ("requeue" in the key history), the old receipt is
// refused (101; 100 once the item was taken since), and it can be
// reserved again.
func TestQueueReservationRunsOut(t *testing.T) {
	coBoth(t, func(t *testing.T, e *coEnv) {
		e.mustCode(t, 201, "POST", "/v2/queues/jobs", "value=a")
		e.mustCode(t, 201, "POST", "/v2/queues/jobs", "value=b")
		res := e.mustCode(t, 201, "POST", "/v2/queues/jobs/reservations?ttl=1", "")
		if res.Action != "reserve" || res.Node.value() != "a" || res.Receipt != fmt.Sprintf("%d-%d", res.Node.CreatedIndex, res.Node.ModifiedIndex) {
			t.Fatalf("reserve: %+v", res)
		}
		var head coNode
		coEventually(t, "the reservation runs out", func() (bool, string) {
			l := e.mustCode(t, 200, "GET", "/v2/queues/jobs", "")
			if len(l.Node.Nodes) != 2 {
				t.Fatalf("list: %+v", l.Node.Nodes)
			}
			head = l.Node.Nodes[0]
			return head.Expiration == "", fmt.Sprintf("%+v", head)
		})
		if head.Key != res.Node.Key || head.value() != "a" || head.ModifiedIndex <= res.Node.ModifiedIndex {
			t.Fatalf("head after the reservation ran out: %+v", head)
		}
		h := e.mustCode(t, 200, "GET", fmt.Sprintf("/v2/keys/_cairn/queues/jobs?recursive=true&wait=true&waitIndex=%d", res.Node.ModifiedIndex+1), "")
		if h.Action != "requeue" || h.Node.Key != head.Key || h.Node.Expiration != "" || h.Node.ModifiedIndex != head.ModifiedIndex ||
			h.PrevNode == nil || h.PrevNode.Expiration == "" || h.PrevNode.ModifiedIndex != res.Node.ModifiedIndex {
			t.Errorf("history after the reservation: %+v", h)
		}
		stale := e.do(t, "DELETE", "/v2/queues/jobs/reservations/"+res.Receipt, "")
		stale.expect(t, "ack after the reservation ran out", 412,
			fmt.Sprintf(`{"errorCode":101,"message":"Compare failed","cause":"[%d != %d]","index":%d}`+"\n", res.Node.ModifiedIndex, head.ModifiedIndex, e.store().Index()))
		again := e.mustCode(t, 201, "POST", "/v2/queues/jobs/reservations?ttl=30", "")
		if again.Node.Key != head.Key || again.Receipt == res.Receipt {
			t.Fatalf("second reservation: %+v", again)
		}
		if a := e.mustCode(t, 412, "DELETE", "/v2/queues/jobs/reservations/"+res.Receipt, ""); a.ErrorCode != 101 {
			t.Errorf("the first receipt after a second reservation: %+v", a)
		}
		e.mustCode(t, 200, "DELETE", "/v2/queues/jobs/reservations/"+again.Receipt, "")

		// b: reserved, run out, then dequeued: its receipt finds nothing.
		rb := e.mustCode(t, 201, "POST", "/v2/queues/jobs/reservations?ttl=1", "")
		coEventually(t, "b's reservation runs out", func() (bool, string) {
			l := e.mustCode(t, 200, "GET", "/v2/queues/jobs", "")
			return len(l.Node.Nodes) == 1 && l.Node.Nodes[0].Expiration == "", fmt.Sprintf("%+v", l.Node.Nodes)
		})
		if d := e.mustCode(t, 200, "DELETE", "/v2/queues/jobs", ""); d.Node.value() != "b" {
			t.Fatalf("dequeue: %+v", d)
		}
		if a := e.mustCode(t, 404, "DELETE", "/v2/queues/jobs/reservations/"+rb.Receipt, ""); a.ErrorCode != 100 || a.Cause != rb.Node.Key {
			t.Errorf("the receipt of an item taken since: %+v", a)
		}
	})
}

// A dequeuer blocked on a queue whose only item is reserved gets that item
// when the reservation runs out: the item is back in the queue, and the
// dequeuer waits until an item can be handed to it.
func TestQueueBlockedDequeuerGetsRequeuedItem(t *testing.T) {
	coBoth(t, func(t *testing.T, e *coEnv) {
		e.mustCode(t, 201, "POST", "/v2/queues/jobs", "value=a")
		res := e.mustCode(t, 201, "POST", "/v2/queues/jobs/reservations?ttl=1", "")
		d := e.start(t, "DELETE", "/v2/queues/jobs?wait=true&timeout=8s", "")
		r := d.answer(t)
		if a := coDecode(t, "blocked dequeue", r); r.code != 200 || a.Action != "dequeue" || a.Node.value() != "a" {
			l := e.do(t, "GET", "/v2/queues/jobs", "")
			t.Errorf("a dequeuer blocked while the only item (%s) was reserved for 1s: %d %q, want 200 dequeue of \"a\"; the queue then: %s",
				res.Node.Key, r.code, strings.TrimSpace(r.body), strings.TrimSpace(l.body))
		}
	})
}

// A timeout that runs out while the caller's place is still being
// registered is a timeout like any other: 408 (123), and nothing is left
// behind. Otherwise a lock stays held, or queued for, by a caller that
// was told it failed, and a queue keeps a dequeuer that nobody is
// waiting on, which swallows the next item. (A free lock may also be
// granted: then the grant is answered.)
func TestCoordShortTimeoutLeavesNothingBehind(t *testing.T) {
	timeouts := []string{"1ns", "1us", "100us", "1ms", "1ns", "1us", "100us", "1ms"}
	// The index is the store's when the wait ended.
	timedOutRE := regexp.MustCompile(`^\{"errorCode":123,"message":"Timed out waiting","cause":"timeout","index":\d+\}\n$`)
	coBoth(t, func(t *testing.T, e *coEnv) {
		t.Run("free lock", func(t *testing.T) {
			for i, to := range timeouts {
				free := fmt.Sprintf("free%d", i)
				r := e.do(t, "POST", "/v2/locks/"+free+"?ttl=30&wait=true&timeout="+to, "value=dave")
				switch {
				case r.code == 201:
					a := coDecode(t, "grant", r)
					e.mustCode(t, 200, "DELETE", fmt.Sprintf("/v2/locks/%s?token=%d", free, a.Token), "")
				case r.code != 408 || !timedOutRE.MatchString(r.body):
					t.Errorf("wait for a free lock, timeout=%s: %d %q, want 201, or 408 errorCode 123", to, r.code, r.body)
				}
				if got := e.lockOwners(t, free); len(got) != 0 {
					t.Fatalf("timeout=%s: lock %s (answered %d) is held by %q, want free", to, free, r.code, got)
				}
			}
		})
		t.Run("held lock", func(t *testing.T) {
			e.mustCode(t, 201, "POST", "/v2/locks/held?ttl=30", "value=alice")
			for _, to := range timeouts {
				r := e.do(t, "POST", "/v2/locks/held?ttl=30&wait=true&timeout="+to, "value=bob")
				if r.code != 408 || !timedOutRE.MatchString(r.body) {
					t.Errorf("wait for a held lock, timeout=%s: %d %q, want 408 errorCode 123", to, r.code, r.body)
				}
				if got := e.lockOwners(t, "held"); !slices.Equal(got, []string{"alice"}) {
					t.Fatalf("timeout=%s: lock held and awaited by %q, want alice alone", to, got)
				}
			}
		})
		t.Run("queue", func(t *testing.T) {
			for _, to := range timeouts {
				r := e.do(t, "DELETE", "/v2/queues/jobs?wait=true&timeout="+to, "")
				if r.code != 408 || !timedOutRE.MatchString(r.body) {
					t.Errorf("blocking dequeue, timeout=%s: %d %q, want 408 errorCode 123", to, r.code, r.body)
				}
				if ws := e.queueWaiters(t, "jobs"); len(ws) != 0 {
					a := e.mustCode(t, 201, "POST", "/v2/queues/jobs", "value=lost")
					t.Fatalf("timeout=%s: blocked dequeuers %q left behind; the next enqueue was answered %q (%s): the item reached nobody",
						to, ws, a.Action, a.Node.Key)
				}
			}
		})
	})
}

// A waiting acquire or dequeue whose request context ends while the
// client is still connected (the member is shutting down: its server
// ends every request's context) answers an error, never the empty 200
// net/http sends for a handler that wrote nothing, which a client would
// take for a grant or an item.
func TestCoordAnswersWhenTheRequestContextEnds(t *testing.T) {
	h := httpapi.NewHandler(httpapi.Config{Backend: server.NewLocal(store.New(100), 1, nil)})
	serve := func(ctx context.Context, method, target, form string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, strings.NewReader(form)).WithContext(ctx)
		if form != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve(context.Background(), http.MethodPost, "/v2/locks/l?ttl=30", "value=holder"); rec.Code != http.StatusCreated {
		t.Fatalf("first acquire: %d %s", rec.Code, rec.Body)
	}
	for _, c := range []struct{ method, target, form string }{
		{http.MethodPost, "/v2/locks/l?ttl=30&wait=true", "value=waiter"},
		{http.MethodDelete, "/v2/queues/q?wait=true", ""},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- serve(ctx, c.method, c.target, c.form) }()
		time.Sleep(200 * time.Millisecond) // let it start waiting
		cancel()
		var rec *httptest.ResponseRecorder
		select {
		case rec = <-done:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s %s: no answer after its context ended", c.method, c.target)
		}
		var e struct {
			ErrorCode int    `json:"errorCode"`
			Cause     string `json:"cause"`
		}
		if rec.Code < 500 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.ErrorCode != 300 || !strings.Contains(e.Cause, "outcome unknown") {
			t.Fatalf("%s %s after its context ended: %d %q; want 500, errorCode 300, outcome unknown", c.method, c.target, rec.Code, rec.Body)
		}
	}
}

// coNoRefresh fails every TTL refresh while drop is set, as a member cut
// off from its leader would.
type coNoRefresh struct {
	*server.Local
	drop atomic.Bool
}

func (c *coNoRefresh) Do(ctx context.Context, r *store.Request) (*store.Event, error) {
	if r.Refresh && c.drop.Load() {
		return nil, errors.New("no leader (test)")
	}
	return c.Local.Do(ctx, r)
}

// A waiter whose key expires while it waits (its member could not refresh
// it) is not answered 100: it joins the line again, at its end, and is
// granted in its turn with its new key. A waiter whose key is deleted
// (it was told to leave the line) is answered 100.
func TestLockWaiterWhoseKeyExpiresJoinsAgain(t *testing.T) {
	var nr *coNoRefresh
	e := coLocalWith(t, func(l *server.Local) httpapi.Backend {
		nr = &coNoRefresh{Local: l}
		return nr
	})
	alice := e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=30", "value=alice")
	nr.drop.Store(true)
	bob := e.start(t, "POST", "/v2/locks/job?ttl=1&wait=true", "value=bob")
	var first string
	var created uint64
	coEventually(t, "bob in line", func() (bool, string) {
		st := e.lock(t, "job")
		if len(st.Waiters) == 1 {
			first, created = st.Waiters[0].Key, st.Waiters[0].CreatedIndex
		}
		return first != "", fmt.Sprintf("%+v", st.Waiters)
	})
	coEventually(t, "bob's key to expire", func() (bool, string) {
		st := e.lock(t, "job")
		return len(st.Waiters) == 0, fmt.Sprintf("%+v", st.Waiters)
	})
	// The member reaches the leader again: its next refresh finds the key
	// gone.
	nr.drop.Store(false)
	var again string
	coEventually(t, "bob to join again", func() (bool, string) {
		st := e.lock(t, "job")
		if len(st.Waiters) == 1 && st.Waiters[0].Key != first {
			again = st.Waiters[0].Key
		}
		return again != "" || bob.answered(), fmt.Sprintf("%+v", st.Waiters)
	})
	if bob.answered() {
		t.Fatalf("bob was answered when his key expired: %d %s", bob.answer(t).code, bob.answer(t).body)
	}
	ev := e.mustCode(t, 200, "GET", fmt.Sprintf("/v2/keys%s?wait=true&waitIndex=%d", first, created+1), "")
	if ev.Action != "expire" {
		t.Fatalf("bob's first key ended with %q, want expire", ev.Action)
	}
	e.mustCode(t, 200, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", alice.Token), "")
	got := coDecode(t, "bob", bob.answer(t))
	if got.Action != "acquire" || got.Node == nil || got.Node.Key != again || got.Node.value() != "bob" {
		t.Fatalf("bob's grant: %+v, want his second key %s", got, again)
	}

	// Deleted, not expired: carol is told she left the line. (The keys
	// API cannot delete under /_cairn; a release with her token can.)
	carol := e.start(t, "POST", "/v2/locks/job?ttl=30&wait=true", "value=carol")
	var key string
	coEventually(t, "carol in line", func() (bool, string) {
		st := e.lock(t, "job")
		if len(st.Waiters) == 1 {
			key = st.Waiters[0].Key
		}
		return key != "", fmt.Sprintf("%+v", st.Waiters)
	})
	if r := e.do(t, "DELETE", "/v2/keys"+key, ""); r.code != 400 || !strings.Contains(r.body, `"errorCode":106`) {
		t.Fatalf("DELETE /v2/keys%s: %d %s, want 400 and errorCode 106", key, r.code, r.body)
	}
	token, _ := strconv.ParseUint(key[strings.LastIndexByte(key, '/')+1:], 10, 64)
	e.mustCode(t, 200, "DELETE", fmt.Sprintf("/v2/locks/job?token=%d", token), "")
	if r := carol.answer(t); r.code != 404 || !strings.Contains(r.body, `"errorCode":100`) {
		t.Fatalf("carol after her key was deleted: %d %s", r.code, r.body)
	}
}
