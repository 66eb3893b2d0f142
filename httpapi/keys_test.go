package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// These tests drive the /v2/keys handler through real HTTP and compare what
// a client sees with API.md §1-3: status, exact body bytes (trailing newline
// included) and headers.

const (
	ktCluster = 0x1234
	ktFormCT  = "application/x-www-form-urlencoded"
	ktJSONCT  = "application/json"
)

// ktClock is the fixed clock of every test server: handler and backend share
// it, so TTLs render deterministically and nothing with ttl>0 ever expires.
var ktClock = time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)

func ktNow() time.Time { return ktClock }

// kEnv is one store, one Local backend and one HTTP server over the handler.
type kEnv struct {
	st  *store.Store
	be  *server.Local
	srv *httptest.Server
	cl  *http.Client // never follows redirects
}

type kEnvOpts struct {
	history int                                 // store.New size; default store.DefaultEventHistory
	cluster uint64                              // default ktCluster
	wrap    func(*server.Local) httpapi.Backend // wraps the backend (fakes)
	handler func(http.Handler) http.Handler     // wraps the handler (test plumbing)
	clock   func() time.Time                    // default ktNow
	cors    []string                            // Config.CORS
	limits  httpapi.Limits                      // Config.Limits
	metrics *prometheus.Registry                // Config.Metrics
}

func newKEnv(t testing.TB) *kEnv { return newKEnvOpts(t, kEnvOpts{}) }

func newKEnvOpts(t testing.TB, o kEnvOpts) *kEnv {
	t.Helper()
	if o.history == 0 {
		o.history = store.DefaultEventHistory
	}
	if o.cluster == 0 {
		o.cluster = ktCluster
	}
	if o.clock == nil {
		o.clock = ktNow
	}
	st := store.New(o.history)
	be := server.NewLocal(st, o.cluster, o.clock)
	var b httpapi.Backend = be
	if o.wrap != nil {
		b = o.wrap(be)
	}
	h := httpapi.NewHandler(httpapi.Config{Backend: b, Now: o.clock, CORS: o.cors, Limits: o.limits, Metrics: o.metrics})
	if o.handler != nil {
		h = o.handler(h)
	}
	srv := httptest.NewServer(h)
	c := *srv.Client() // a copy: watches use srv.Client(), without the timeout
	cl := &c
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cl.Timeout = 30 * time.Second // hang guard only
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		be.Close()
	})
	return &kEnv{st: st, be: be, srv: srv, cl: cl}
}

type kResp struct {
	code int
	hdr  http.Header
	body string
}

// do sends a request; a non-empty form is sent as a form body.
func (e *kEnv) do(t testing.TB, method, target, form string) kResp {
	t.Helper()
	ct := ""
	if form != "" {
		ct = ktFormCT
	}
	return e.send(t, method, target, form, ct)
}

// send sends body with Content-Type ct (none when ct is "").
func (e *kEnv) send(t testing.TB, method, target, body, ct string) kResp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+target, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := e.cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, target, err)
	}
	return kResp{code: resp.StatusCode, hdr: resp.Header, body: string(b)}
}

// mustOK sends a request that must succeed (2xx).
func (e *kEnv) mustOK(t testing.TB, method, target, form string) kResp {
	t.Helper()
	r := e.do(t, method, target, form)
	if r.code/100 != 2 {
		t.Fatalf("setup %s %s %q: status %d, body %q", method, target, form, r.code, r.body)
	}
	return r
}

// kReq is one request of a table.
type kReq struct{ method, target, form string }

func (e *kEnv) setup(t testing.TB, reqs []kReq) {
	t.Helper()
	for _, r := range reqs {
		e.mustOK(t, r.method, r.target, r.form)
	}
}

// checkErrorHeaders asserts the headers of a v2 error response (API.md
// §1.4, §3.1): JSON, X-Etcd-Index = the error's index, cluster id, and no
// X-Raft-* headers.
func checkErrorHeaders(t testing.TB, r kResp, index string) {
	t.Helper()
	if got := r.hdr.Get("Content-Type"); got != ktJSONCT {
		t.Errorf("Content-Type = %q, want %q", got, ktJSONCT)
	}
	if got := r.hdr.Values("X-Etcd-Index"); len(got) != 1 || got[0] != index {
		t.Errorf("X-Etcd-Index = %q, want [%q]", got, index)
	}
	if got := r.hdr.Get("X-Etcd-Cluster-Id"); got != strconv.FormatUint(ktCluster, 16) {
		t.Errorf("X-Etcd-Cluster-Id = %q, want %q", got, strconv.FormatUint(ktCluster, 16))
	}
	for _, h := range []string{"X-Raft-Index", "X-Raft-Term"} {
		if v, ok := r.hdr[h]; ok {
			t.Errorf("error response carries %s: %q", h, v)
		}
	}
	if got := r.hdr.Get("Content-Length"); got != "" && got != strconv.Itoa(len(r.body)) {
		t.Errorf("Content-Length = %s, body is %d bytes", got, len(r.body))
	}
}

// checkSuccessHeaders asserts the headers of a successful key response.
func checkSuccessHeaders(t testing.TB, e *kEnv, r kResp, index string) {
	t.Helper()
	if got := r.hdr.Get("Content-Type"); got != ktJSONCT {
		t.Errorf("Content-Type = %q, want %q", got, ktJSONCT)
	}
	if got := r.hdr.Get("X-Etcd-Index"); got != index {
		t.Errorf("X-Etcd-Index = %q, want %q", got, index)
	}
	if got := r.hdr.Get("X-Etcd-Cluster-Id"); got != strconv.FormatUint(ktCluster, 16) {
		t.Errorf("X-Etcd-Cluster-Id = %q", got)
	}
	if got, want := r.hdr.Get("X-Raft-Index"), strconv.FormatUint(e.st.RaftIndex(), 10); got != want {
		t.Errorf("X-Raft-Index = %q, want %q", got, want)
	}
	if got := r.hdr.Get("X-Raft-Term"); got != "1" {
		t.Errorf("X-Raft-Term = %q, want \"1\"", got)
	}
	if got := r.hdr.Get("Content-Length"); got != strconv.Itoa(len(r.body)) {
		t.Errorf("Content-Length = %q, body is %d bytes", got, len(r.body))
	}
}

// failingBackend is the one fake: a Local whose Do fails with err.
type failingBackend struct {
	*server.Local
	err error
}

func (f failingBackend) Do(context.Context, *store.Request) (*store.Event, error) {
	return nil, f.err
}

// TestKeysErrorCodes asserts every v2 error code the keys API returns, each
// with exact status, body, Content-Type, X-Etcd-Index and no X-Raft-*.
func TestKeysErrorCodes(t *testing.T) {
	setK := []kReq{{"PUT", "/v2/keys/k", "value=one"}} // /k = "one" at index 1
	setDir := []kReq{{"PUT", "/v2/keys/d?dir=true", ""}}
	setFile := []kReq{{"PUT", "/v2/keys/f", "value=1"}}

	const (
		e100  = `{"errorCode":100,"message":"Key not found","cause":%q,"index":%d}` + "\n"
		e101  = `{"errorCode":101,"message":"Compare failed","cause":%q,"index":1}` + "\n"
		e102  = `{"errorCode":102,"message":"Not a file","cause":"/d","index":1}` + "\n"
		e104  = `{"errorCode":104,"message":"Not a directory","cause":"/f","index":1}` + "\n"
		e105  = `{"errorCode":105,"message":"Key already exists","cause":"/k","index":1}` + "\n"
		e107  = `{"errorCode":107,"message":"Root is read only","cause":"/","index":%d}` + "\n"
		e108  = `{"errorCode":108,"message":"Directory not empty","cause":"/d","index":1}` + "\n"
		e201  = `{"errorCode":201,"message":"PrevValue is Required in POST form","cause":"\"prevValue\" cannot be empty","index":0}` + "\n"
		e202  = `{"errorCode":202,"message":"The given TTL in POST form is not a number","cause":"invalid value for \"ttl\"","index":0}` + "\n"
		e203  = `{"errorCode":203,"message":"The given index in POST form is not a number","cause":"invalid value for \"%s\"","index":0}` + "\n"
		e209  = `{"errorCode":209,"message":"Invalid field","cause":"invalid value for \"%s\"","index":0}` + "\n"
		e209w = `{"errorCode":209,"message":"Invalid field","cause":"\"wait\" can only be used with GET requests","index":0}` + "\n"
		e209p = `{"errorCode":209,"message":"Invalid field","cause":"invalid value for prevExist","index":0}` + "\n"
		e209r = `{"errorCode":209,"message":"Invalid field","cause":"invalid value for refresh","index":0}` + "\n"
		e210  = `{"errorCode":210,"message":"Invalid POST form","cause":%s,"index":0}` + "\n"
		e211  = `{"errorCode":211,"message":"Value provided on refresh","cause":"A value was provided on a refresh","index":0}` + "\n"
		e212  = `{"errorCode":212,"message":"A TTL must be provided on refresh","cause":"No TTL value set","index":0}` + "\n"
	)
	// A JSON string literal for a 210 cause.
	q210 := func(s string) string { return strconv.Quote(s) }
	tooBig := "value=" + strings.Repeat("a", 10<<20+100-len("value="))

	tests := []struct {
		name   string
		setup  []kReq
		req    kReq
		ct     string // Content-Type of the body; form when "" and form != ""
		status int
		body   string
		index  string
	}{
		// 100 Key not found: cause is the first missing component.
		{"100 get missing", nil, kReq{"GET", "/v2/keys/missing", ""}, "", 404, fmt.Sprintf(e100, "/missing", 0), "0"},
		{"100 first missing component", []kReq{{"PUT", "/v2/keys/a/b", "value=1"}}, kReq{"GET", "/v2/keys/a/x/y", ""}, "", 404, fmt.Sprintf(e100, "/a/x", 1), "1"},
		{"100 delete missing", setK, kReq{"DELETE", "/v2/keys/nope", ""}, "", 404, fmt.Sprintf(e100, "/nope", 1), "1"},
		{"100 update missing", setK, kReq{"PUT", "/v2/keys/nope?prevExist=true", "value=x"}, "", 404, fmt.Sprintf(e100, "/nope", 1), "1"},
		{"100 cas missing", setK, kReq{"PUT", "/v2/keys/nope?prevValue=x", "value=x"}, "", 404, fmt.Sprintf(e100, "/nope", 1), "1"},
		{"100 refresh missing", setK, kReq{"PUT", "/v2/keys/nope?refresh=true&ttl=5", ""}, "", 404, fmt.Sprintf(e100, "/nope", 1), "1"},

		// 101 Compare failed, in the three cause formats.
		{"101 prevValue", setK, kReq{"PUT", "/v2/keys/k?prevValue=three", "value=x"}, "", 412, fmt.Sprintf(e101, "[three != one]"), "1"},
		{"101 prevIndex", setK, kReq{"PUT", "/v2/keys/k?prevIndex=7", "value=x"}, "", 412, fmt.Sprintf(e101, "[7 != 1]"), "1"},
		{"101 both", setK, kReq{"PUT", "/v2/keys/k?prevValue=three&prevIndex=7", "value=x"}, "", 412, fmt.Sprintf(e101, "[three != one] [7 != 1]"), "1"},
		{"101 compareAndDelete", setK, kReq{"DELETE", "/v2/keys/k?prevValue=three", ""}, "", 412, fmt.Sprintf(e101, "[three != one]"), "1"},
		{"101 prevExist=true with prevValue", setK, kReq{"PUT", "/v2/keys/k?prevExist=true&prevValue=three", "value=x"}, "", 412, fmt.Sprintf(e101, "[three != one]"), "1"},
		{"101 cause is HTML-escaped", setK, kReq{"PUT", "/v2/keys/k?prevValue=%3Cb%3E%26", "value=x"}, "", 412,
			`{"errorCode":101,"message":"Compare failed","cause":"[\u003cb\u003e\u0026 != one]","index":1}` + "\n", "1"},

		// 102 Not a file.
		{"102 set on dir", setDir, kReq{"PUT", "/v2/keys/d", "value=x"}, "", 403, e102, "1"},
		{"102 delete dir without dir", setDir, kReq{"DELETE", "/v2/keys/d", ""}, "", 403, e102, "1"},
		{"102 cas on dir", setDir, kReq{"PUT", "/v2/keys/d?prevValue=x", "value=x"}, "", 403, e102, "1"},
		{"102 compareAndDelete on dir", setDir, kReq{"DELETE", "/v2/keys/d?prevIndex=1", ""}, "", 403, e102, "1"},
		{"102 update dir with value", setDir, kReq{"PUT", "/v2/keys/d?prevExist=true", "value=x"}, "", 403, e102, "1"},

		// 104 Not a directory: cause is the blocking key.
		{"104 get under file", setFile, kReq{"GET", "/v2/keys/f/sub", ""}, "", 400, e104, "1"},
		{"104 put under file", setFile, kReq{"PUT", "/v2/keys/f/sub/x", "value=2"}, "", 400, e104, "1"},
		{"104 delete under file", setFile, kReq{"DELETE", "/v2/keys/f/sub", ""}, "", 400, e104, "1"},
		{"104 post on file", setFile, kReq{"POST", "/v2/keys/f", "value=2"}, "", 400, e104, "1"},

		// 105 Key already exists (prevValue ignored by create).
		{"105 create existing", setK, kReq{"PUT", "/v2/keys/k?prevExist=false", "value=x"}, "", 412, e105, "1"},
		{"105 create ignores prevValue", setK, kReq{"PUT", "/v2/keys/k?prevExist=false&prevValue=zzz", "value=x"}, "", 412, e105, "1"},
		{"105 create existing dir", []kReq{{"PUT", "/v2/keys/k?dir=true", ""}}, kReq{"PUT", "/v2/keys/k?prevExist=false&dir=true", ""}, "", 412, e105, "1"},

		// 107 Root is read only.
		{"107 put root", nil, kReq{"PUT", "/v2/keys", "value=x"}, "", 400, fmt.Sprintf(e107, 0), "0"},
		{"107 put root slash", setK, kReq{"PUT", "/v2/keys/", "value=x"}, "", 400, fmt.Sprintf(e107, 1), "1"},
		{"107 delete root", setK, kReq{"DELETE", "/v2/keys/?recursive=true", ""}, "", 400, fmt.Sprintf(e107, 1), "1"},
		{"107 create root", nil, kReq{"PUT", "/v2/keys/?prevExist=false", ""}, "", 400, fmt.Sprintf(e107, 0), "0"},
		{"107 update root", nil, kReq{"PUT", "/v2/keys/?prevExist=true", ""}, "", 400, fmt.Sprintf(e107, 0), "0"},
		{"107 compareAndSwap root", setK, kReq{"PUT", "/v2/keys?prevIndex=2", "value=1"}, "", 400, fmt.Sprintf(e107, 1), "1"},

		// 108 Directory not empty.
		{"108 delete dir=true", []kReq{{"PUT", "/v2/keys/d/c", "value=1"}}, kReq{"DELETE", "/v2/keys/d?dir=true", ""}, "", 403, e108, "1"},

		// 201 PrevValue is Required.
		{"201 empty prevValue", setK, kReq{"PUT", "/v2/keys/k?prevValue=", "value=x"}, "", 400, e201, "0"},
		{"201 empty prevValue in body", setK, kReq{"PUT", "/v2/keys/k", "prevValue=&value=x"}, "", 400, e201, "0"},
		{"201 delete empty prevValue", setK, kReq{"DELETE", "/v2/keys/k?prevValue=", ""}, "", 400, e201, "0"},

		// 202 TTL not a number, including TTLs too large to represent.
		{"202 letters", nil, kReq{"PUT", "/v2/keys/k?ttl=abc", ""}, "", 400, e202, "0"},
		{"202 negative", nil, kReq{"PUT", "/v2/keys/k?ttl=-1", ""}, "", 400, e202, "0"},
		{"202 decimal", nil, kReq{"PUT", "/v2/keys/k", "ttl=1.5"}, "", 400, e202, "0"},
		{"202 post", nil, kReq{"POST", "/v2/keys/q", "ttl=x"}, "", 400, e202, "0"},
		{"202 uint64 overflow", nil, kReq{"PUT", "/v2/keys/k?ttl=18446744073709551616", ""}, "", 400, e202, "0"},
		{"202 too large to represent 1e10", setK, kReq{"PUT", "/v2/keys/k?ttl=10000000000", ""}, "", 400, e202, "0"},
		{"202 too large to represent max uint64", setK, kReq{"PUT", "/v2/keys/k?ttl=18446744073709551615", ""}, "", 400, e202, "0"},
		// MaxInt64 ns is 9223372036.854775807 s; from ktClock one more
		// second than 7428134836 does not fit. These are request errors
		// (index 0), refused before anything is proposed.
		{"202 one past the largest deadline", setK, kReq{"PUT", "/v2/keys/k?ttl=7428134837", ""}, "", 400, e202, "0"},

		// 203 index not a number.
		{"203 prevIndex", nil, kReq{"PUT", "/v2/keys/k?prevIndex=abc", ""}, "", 400, fmt.Sprintf(e203, "prevIndex"), "0"},
		{"203 prevIndex negative", nil, kReq{"DELETE", "/v2/keys/k?prevIndex=-1", ""}, "", 400, fmt.Sprintf(e203, "prevIndex"), "0"},
		{"203 waitIndex", nil, kReq{"GET", "/v2/keys/k?wait=true&waitIndex=-1", ""}, "", 400, fmt.Sprintf(e203, "waitIndex"), "0"},
		{"203 waitIndex letters", nil, kReq{"GET", "/v2/keys/k?waitIndex=x", ""}, "", 400, fmt.Sprintf(e203, "waitIndex"), "0"},

		// 209 Invalid field: each bool, prevExist, refresh, wait on non-GET.
		{"209 recursive", nil, kReq{"GET", "/v2/keys/k?recursive=yes", ""}, "", 400, fmt.Sprintf(e209, "recursive"), "0"},
		{"209 sorted", nil, kReq{"GET", "/v2/keys/k?sorted=no", ""}, "", 400, fmt.Sprintf(e209, "sorted"), "0"},
		{"209 wait", nil, kReq{"GET", "/v2/keys/k?wait=y", ""}, "", 400, fmt.Sprintf(e209, "wait"), "0"},
		{"209 dir", nil, kReq{"PUT", "/v2/keys/k?dir=2", ""}, "", 400, fmt.Sprintf(e209, "dir"), "0"},
		{"209 quorum", nil, kReq{"GET", "/v2/keys/k?quorum=maybe", ""}, "", 400, fmt.Sprintf(e209, "quorum"), "0"},
		{"209 stream", nil, kReq{"GET", "/v2/keys/k?wait=true&stream=tRuE", ""}, "", 400, fmt.Sprintf(e209, "stream"), "0"},
		{"209 noValueOnSuccess", nil, kReq{"PUT", "/v2/keys/k?noValueOnSuccess=on", ""}, "", 400, fmt.Sprintf(e209, "noValueOnSuccess"), "0"},
		{"209 prevExist", nil, kReq{"PUT", "/v2/keys/k?prevExist=yes", ""}, "", 400, e209p, "0"},
		{"209 refresh", nil, kReq{"PUT", "/v2/keys/k?refresh=yes&ttl=5", ""}, "", 400, e209r, "0"},
		{"209 wait with PUT", nil, kReq{"PUT", "/v2/keys/k?wait=true", "value=1"}, "", 400, e209w, "0"},
		{"209 wait with POST", nil, kReq{"POST", "/v2/keys/k", "wait=true"}, "", 400, e209w, "0"},
		{"209 wait with DELETE", nil, kReq{"DELETE", "/v2/keys/k?wait=1", ""}, "", 400, e209w, "0"},
		{"209 bool in form body", nil, kReq{"PUT", "/v2/keys/k", "dir=nope"}, "", 400, fmt.Sprintf(e209, "dir"), "0"},

		// 210 Invalid POST form.
		{"210 query escape", nil, kReq{"GET", "/v2/keys/k?value=%zz", ""}, "", 400, fmt.Sprintf(e210, q210(`invalid URL escape "%zz"`)), "0"},
		{"210 query escape on PUT", nil, kReq{"PUT", "/v2/keys/k?a=%", ""}, "", 400, fmt.Sprintf(e210, q210(`invalid URL escape "%"`)), "0"},
		{"210 form body escape", nil, kReq{"PUT", "/v2/keys/k", "value=%zz"}, "", 400, fmt.Sprintf(e210, q210(`invalid URL escape "%zz"`)), "0"},
		{"210 form body escape on POST", nil, kReq{"POST", "/v2/keys/q", "value=%4"}, "", 400, fmt.Sprintf(e210, q210(`invalid URL escape "%4"`)), "0"},
		// Go's 10 MiB form cap (etcd's 210) is never reached: the request
		// limit (default 1.5 MiB) refuses first, with 413 and 124.
		{"124 form body over 10 MiB", nil, kReq{"PUT", "/v2/keys/k", tooBig}, "", 413,
			fmt.Sprintf(`{"errorCode":124,"message":"Request too large","cause":"request of %d bytes; at most 1572864 (--max-request-bytes)","index":0}`+"\n", len("/v2/keys/k")+len(tooBig)), "0"},

		// 211, 212 refresh.
		{"211 value on refresh", setK, kReq{"PUT", "/v2/keys/k?refresh=true&ttl=5&value=x", ""}, "", 400, e211, "0"},
		{"211 value in body on refresh", setK, kReq{"PUT", "/v2/keys/k?refresh=true", "ttl=5&value=x"}, "", 400, e211, "0"},
		{"212 no ttl on refresh", setK, kReq{"PUT", "/v2/keys/k?refresh=true", ""}, "", 400, e212, "0"},
		{"212 empty ttl on refresh", setK, kReq{"PUT", "/v2/keys/k?refresh=true&ttl=", ""}, "", 400, e212, "0"},

		// Validation order (API.md §1.2): the first failure wins.
		{"order 210 before 203", nil, kReq{"GET", "/v2/keys/k?prevIndex=x&v=%zz", ""}, "", 400, fmt.Sprintf(e210, q210(`invalid URL escape "%zz"`)), "0"},
		{"order prevIndex before waitIndex", nil, kReq{"GET", "/v2/keys/k?waitIndex=x&prevIndex=y", ""}, "", 400, fmt.Sprintf(e203, "prevIndex"), "0"},
		{"order waitIndex before bools", nil, kReq{"GET", "/v2/keys/k?recursive=x&waitIndex=y", ""}, "", 400, fmt.Sprintf(e203, "waitIndex"), "0"},
		{"order recursive before sorted", nil, kReq{"GET", "/v2/keys/k?sorted=x&recursive=y", ""}, "", 400, fmt.Sprintf(e209, "recursive"), "0"},
		{"order stream before wait-on-PUT", nil, kReq{"PUT", "/v2/keys/k?wait=true&stream=x", ""}, "", 400, fmt.Sprintf(e209, "stream"), "0"},
		{"order wait-on-PUT before 201", nil, kReq{"PUT", "/v2/keys/k?wait=true&prevValue=", ""}, "", 400, e209w, "0"},
		{"order 201 before noValueOnSuccess", nil, kReq{"PUT", "/v2/keys/k?noValueOnSuccess=x&prevValue=", ""}, "", 400, e201, "0"},
		{"order noValueOnSuccess before ttl", nil, kReq{"PUT", "/v2/keys/k?ttl=x&noValueOnSuccess=x", ""}, "", 400, fmt.Sprintf(e209, "noValueOnSuccess"), "0"},
		{"order ttl before prevExist", nil, kReq{"PUT", "/v2/keys/k?prevExist=x&ttl=x", ""}, "", 400, e202, "0"},
		{"order prevExist before refresh", nil, kReq{"PUT", "/v2/keys/k?refresh=x&prevExist=x", ""}, "", 400, e209p, "0"},
		{"order 211 before 212", nil, kReq{"PUT", "/v2/keys/k?refresh=true&value=x", ""}, "", 400, e211, "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newKEnv(t)
			e.setup(t, tc.setup)
			before := e.st.Index()
			ct := tc.ct
			if ct == "" && tc.req.form != "" {
				ct = ktFormCT
			}
			r := e.send(t, tc.req.method, tc.req.target, tc.req.form, ct)
			if r.code != tc.status {
				t.Errorf("status = %d, want %d", r.code, tc.status)
			}
			if r.body != tc.body {
				t.Errorf("body =\n%q\nwant\n%q", r.body, tc.body)
			}
			checkErrorHeaders(t, r, tc.index)
			if got := e.st.Index(); got != before {
				t.Errorf("store index moved from %d to %d on an error", before, got)
			}
		})
	}
}

// compareAndDelete on the root. The table of API.md §1.7 says "/ |
// anything | 107", but etcd 3.4.23 checks for the root only in delete, not
// in compareAndDelete: the root is a directory, so it answers 403/102, and
// the cause (the internal key "/1" with the "/1" prefix trimmed) is empty
// and omitted. Observed with curl against etcd 3.4.23 --enable-v2:
//
//	DELETE /v2/keys?prevValue=x  → 403 {"errorCode":102,"message":"Not a file","index":4}
//	DELETE /v2/keys/?prevIndex=3 → 403 {"errorCode":102,"message":"Not a file","index":4}
//
// (docs/compat.md, table 3; docs/api.md follows etcd.)
func TestKeysCompareAndDeleteRoot(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/k", "value=v") // index 1
	for _, target := range []string{"/v2/keys?prevValue=x", "/v2/keys/?prevIndex=3", "/v2/keys?prevValue=x&prevIndex=1&recursive=true"} {
		r := e.do(t, "DELETE", target, "")
		want := `{"errorCode":102,"message":"Not a file","index":1}` + "\n"
		if r.code != 403 || r.body != want {
			t.Errorf("DELETE %s: %d %q, want 403 %q", target, r.code, r.body, want)
		}
		checkErrorHeaders(t, r, "1")
	}
	if e.st.Index() != 1 {
		t.Errorf("the root was changed: index %d", e.st.Index())
	}
}

// The largest representable TTL is accepted and rendered.
func TestKeysLargestTTL(t *testing.T) {
	e := newKEnv(t)
	r := e.do(t, "PUT", "/v2/keys/k?ttl=7428134836", "value=v")
	if r.code != http.StatusCreated {
		t.Fatalf("status = %d, body %q", r.code, r.body)
	}
	exp := ktClock.Add(7428134836 * time.Second).UTC().Format(time.RFC3339Nano)
	want := `{"action":"set","node":{"key":"/k","value":"v","expiration":"` + exp + `","ttl":7428134836,"modifiedIndex":1,"createdIndex":1}}` + "\n"
	if r.body != want {
		t.Errorf("body =\n%s\nwant\n%s", r.body, want)
	}
}

// HEAD with wait=true is refused like any non-GET (209), headers only.
func TestKeysHeadWait(t *testing.T) {
	e := newKEnv(t)
	r := e.do(t, "HEAD", "/v2/keys/k?wait=true", "")
	want := `{"errorCode":209,"message":"Invalid field","cause":"\"wait\" can only be used with GET requests","index":0}` + "\n"
	if r.code != 400 || r.body != "" {
		t.Errorf("HEAD wait: status %d body %q, want 400 and no body", r.code, r.body)
	}
	if got := r.hdr.Get("Content-Length"); got != strconv.Itoa(len(want)) {
		t.Errorf("Content-Length = %q, want %d", got, len(want))
	}
	checkErrorHeaders(t, kResp{code: r.code, hdr: r.hdr, body: want}, "0")
}

// errorCode 401: a waitIndex older than the history.
func TestKeysEventIndexCleared(t *testing.T) {
	e := newKEnvOpts(t, kEnvOpts{history: 3})
	for i := 0; i < 5; i++ { // indexes 1..5; history keeps 3..5
		e.mustOK(t, "PUT", "/v2/keys/old", "value="+strconv.Itoa(i))
	}
	for _, tc := range []struct {
		target, cause string
	}{
		{"/v2/keys/old?wait=true&waitIndex=1", "[3/1]"},
		{"/v2/keys/other?wait=true&waitIndex=2&recursive=true", "[3/2]"},
		{"/v2/keys/old?wait=true&stream=true&waitIndex=2", "[3/2]"},
	} {
		r := e.do(t, "GET", tc.target, "")
		want := `{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared ` + tc.cause + `","index":5}` + "\n"
		if r.code != 400 || r.body != want {
			t.Errorf("GET %s: %d %q, want 400 %q", tc.target, r.code, r.body, want)
		}
		checkErrorHeaders(t, r, "5")
	}
	// The oldest retained index itself is still served.
	r := e.do(t, "GET", "/v2/keys/old?wait=true&waitIndex=3", "")
	want := `{"action":"set","node":{"key":"/old","value":"2","modifiedIndex":3,"createdIndex":3},"prevNode":{"key":"/old","value":"1","modifiedIndex":2,"createdIndex":2}}` + "\n"
	if r.code != 200 || r.body != want {
		t.Errorf("waitIndex=3: %d %q, want 200 %q", r.code, r.body, want)
	}
	if e.st.WatcherCount() != 0 {
		t.Errorf("WatcherCount = %d after the 401s", e.st.WatcherCount())
	}
}

// errorCode 300: a backend failure that is not a *store.Error.
func TestKeysBackendError(t *testing.T) {
	e := newKEnvOpts(t, kEnvOpts{wrap: func(l *server.Local) httpapi.Backend {
		return failingBackend{Local: l, err: errors.New("etcdserver: request timed out")}
	}})
	for _, m := range []string{"PUT", "POST", "DELETE"} {
		r := e.do(t, m, "/v2/keys/x", "value=1")
		want := `{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}` + "\n"
		if r.code != 500 || r.body != want {
			t.Errorf("%s: %d %q, want 500 %q", m, r.code, r.body, want)
		}
		checkErrorHeaders(t, r, "0")
	}

	// A *store.Error wrapped by the backend keeps its own code and index.
	e2 := newKEnvOpts(t, kEnvOpts{wrap: func(l *server.Local) httpapi.Backend {
		return failingBackend{Local: l, err: fmt.Errorf("apply: %w", store.NewError(store.EcodeNodeExist, "/x", 7))}
	}})
	r := e2.do(t, "PUT", "/v2/keys/x", "value=1")
	want := `{"errorCode":105,"message":"Key already exists","cause":"/x","index":7}` + "\n"
	if r.code != 412 || r.body != want {
		t.Errorf("wrapped store error: %d %q, want 412 %q", r.code, r.body, want)
	}
	checkErrorHeaders(t, r, "7")
}

// Success bodies, 201-vs-200, and success headers over a sequence of
// writes (API.md §1.4-1.7).
func TestKeysSuccessSequence(t *testing.T) {
	e := newKEnv(t)
	steps := []struct {
		req    kReq
		status int
		index  string
		body   string
	}{
		{kReq{"GET", "/v2/keys", ""}, 200, "0", `{"action":"get","node":{"dir":true}}`},
		{kReq{"PUT", "/v2/keys/k", "value=1"}, 201, "1",
			`{"action":"set","node":{"key":"/k","value":"1","modifiedIndex":1,"createdIndex":1}}`},
		{kReq{"PUT", "/v2/keys/k", "value=2"}, 200, "2",
			`{"action":"set","node":{"key":"/k","value":"2","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/k","value":"1","modifiedIndex":1,"createdIndex":1}}`},
		{kReq{"PUT", "/v2/keys/k?prevExist=true", "value=3"}, 200, "3",
			`{"action":"update","node":{"key":"/k","value":"3","modifiedIndex":3,"createdIndex":2},"prevNode":{"key":"/k","value":"2","modifiedIndex":2,"createdIndex":2}}`},
		{kReq{"PUT", "/v2/keys/k?prevValue=3", "value=4"}, 200, "4",
			`{"action":"compareAndSwap","node":{"key":"/k","value":"4","modifiedIndex":4,"createdIndex":2},"prevNode":{"key":"/k","value":"3","modifiedIndex":3,"createdIndex":2}}`},
		{kReq{"PUT", "/v2/keys/n?prevExist=false", "value=1"}, 201, "5",
			`{"action":"create","node":{"key":"/n","value":"1","modifiedIndex":5,"createdIndex":5}}`},
		{kReq{"POST", "/v2/keys/q", "value=x"}, 201, "6",
			`{"action":"create","node":{"key":"/q/00000000000000000006","value":"x","modifiedIndex":6,"createdIndex":6}}`},
		{kReq{"PUT", "/v2/keys/d?dir=true", ""}, 201, "7",
			`{"action":"set","node":{"key":"/d","dir":true,"modifiedIndex":7,"createdIndex":7}}`},
		{kReq{"PUT", "/v2/keys/k?refresh=true&ttl=10", ""}, 200, "8",
			`{"action":"set","node":{"key":"/k","value":"4","expiration":"2026-11-21T05:00:10Z","ttl":10,"modifiedIndex":8,"createdIndex":8},"prevNode":{"key":"/k","value":"4","modifiedIndex":4,"createdIndex":2}}`},
		{kReq{"GET", "/v2/keys/k", ""}, 200, "8",
			`{"action":"get","node":{"key":"/k","value":"4","expiration":"2026-11-21T05:00:10Z","ttl":10,"modifiedIndex":8,"createdIndex":8}}`},
		{kReq{"DELETE", "/v2/keys/k", ""}, 200, "9",
			`{"action":"delete","node":{"key":"/k","modifiedIndex":9,"createdIndex":8},"prevNode":{"key":"/k","value":"4","expiration":"2026-11-21T05:00:10Z","ttl":10,"modifiedIndex":8,"createdIndex":8}}`},
		{kReq{"PUT", "/v2/keys/d2?dir=true&prevExist=false", ""}, 201, "10",
			`{"action":"create","node":{"key":"/d2","dir":true,"modifiedIndex":10,"createdIndex":10}}`},
		{kReq{"DELETE", "/v2/keys/n?prevValue=1", ""}, 200, "11",
			`{"action":"compareAndDelete","node":{"key":"/n","modifiedIndex":11,"createdIndex":5},"prevNode":{"key":"/n","value":"1","modifiedIndex":5,"createdIndex":5}}`},
		{kReq{"PUT", "/v2/keys/k", "value="}, 201, "12",
			`{"action":"set","node":{"key":"/k","value":"","modifiedIndex":12,"createdIndex":12}}`},
		{kReq{"GET", "/v2/keys/?sorted=true", ""}, 200, "12",
			`{"action":"get","node":{"dir":true,"nodes":[{"key":"/d","dir":true,"modifiedIndex":7,"createdIndex":7},{"key":"/d2","dir":true,"modifiedIndex":10,"createdIndex":10},{"key":"/k","value":"","modifiedIndex":12,"createdIndex":12},{"key":"/q","dir":true,"modifiedIndex":6,"createdIndex":6}]}}`},
		{kReq{"GET", "/v2/keys?recursive=true&sorted=true", ""}, 200, "12",
			`{"action":"get","node":{"dir":true,"nodes":[{"key":"/d","dir":true,"modifiedIndex":7,"createdIndex":7},{"key":"/d2","dir":true,"modifiedIndex":10,"createdIndex":10},{"key":"/k","value":"","modifiedIndex":12,"createdIndex":12},{"key":"/q","dir":true,"nodes":[{"key":"/q/00000000000000000006","value":"x","modifiedIndex":6,"createdIndex":6}],"modifiedIndex":6,"createdIndex":6}]}}`},
		{kReq{"PUT", "/v2/keys/d?dir=true&prevExist=true&ttl=5", ""}, 200, "13",
			`{"action":"update","node":{"key":"/d","dir":true,"expiration":"2026-11-21T05:00:05Z","ttl":5,"modifiedIndex":13,"createdIndex":7},"prevNode":{"key":"/d","dir":true,"modifiedIndex":7,"createdIndex":7}}`},
		{kReq{"DELETE", "/v2/keys/d?dir=true", ""}, 200, "14",
			`{"action":"delete","node":{"key":"/d","dir":true,"modifiedIndex":14,"createdIndex":7},"prevNode":{"key":"/d","dir":true,"expiration":"2026-11-21T05:00:05Z","ttl":5,"modifiedIndex":7,"createdIndex":7}}`},
		{kReq{"DELETE", "/v2/keys/q?recursive=true", ""}, 200, "15",
			`{"action":"delete","node":{"key":"/q","dir":true,"modifiedIndex":15,"createdIndex":6},"prevNode":{"key":"/q","dir":true,"modifiedIndex":6,"createdIndex":6}}`},
		{kReq{"PUT", "/v2/keys/d2", "value=x&dir=true&prevExist=false"}, 412, "15",
			`{"errorCode":105,"message":"Key already exists","cause":"/d2","index":15}`},
		{kReq{"PUT", "/v2/keys/k", "dir=true"}, 200, "16",
			`{"action":"set","node":{"key":"/k","dir":true,"modifiedIndex":16,"createdIndex":16},"prevNode":{"key":"/k","value":"","modifiedIndex":12,"createdIndex":12}}`},
	}
	for i, s := range steps {
		r := e.do(t, s.req.method, s.req.target, s.req.form)
		where := fmt.Sprintf("step %d: %s %s %q", i, s.req.method, s.req.target, s.req.form)
		if r.code != s.status {
			t.Errorf("%s: status %d, want %d", where, r.code, s.status)
		}
		if r.body != s.body+"\n" {
			t.Errorf("%s: body\n%s\nwant\n%s", where, r.body, s.body+"\n")
		}
		if s.status >= 400 {
			checkErrorHeaders(t, r, s.index)
		} else {
			checkSuccessHeaders(t, e, r, s.index)
		}
	}
}

// X-Raft-Index follows the backend's committed index; X-Etcd-Index of a
// write is the index it was given, of a read the current index.
func TestKeysRaftHeaders(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/a", "value=1")
	e.do(t, "PUT", "/v2/keys/a?prevExist=false", "value=1") // refused, still an entry
	r := e.mustOK(t, "PUT", "/v2/keys/b", "value=1")
	if got := r.hdr.Get("X-Raft-Index"); got != "3" {
		t.Errorf("X-Raft-Index = %q, want 3 (three proposals)", got)
	}
	if got := r.hdr.Get("X-Etcd-Index"); got != "2" {
		t.Errorf("X-Etcd-Index = %q, want 2 (two changes)", got)
	}
	r = e.mustOK(t, "GET", "/v2/keys/a", "")
	if r.hdr.Get("X-Raft-Index") != "3" || r.hdr.Get("X-Raft-Term") != "1" || r.hdr.Get("X-Etcd-Index") != "2" {
		t.Errorf("GET headers: %v", r.hdr)
	}
}

func TestKeysClusterIDHex(t *testing.T) {
	for _, tc := range []struct {
		id   uint64
		want string
	}{
		{0xfedcba9876543210, "fedcba9876543210"},
		{0x0abc, "abc"},
		{1, "1"},
	} {
		e := newKEnvOpts(t, kEnvOpts{cluster: tc.id})
		for _, req := range []kReq{
			{"PUT", "/v2/keys/k", "value=1"},      // success
			{"GET", "/v2/keys/missing", ""},       // store error
			{"GET", "/v2/keys/k?recursive=x", ""}, // parse error
		} {
			r := e.do(t, req.method, req.target, req.form)
			if got := r.hdr.Values("X-Etcd-Cluster-Id"); len(got) != 1 || got[0] != tc.want {
				t.Errorf("cluster %#x, %s %s: X-Etcd-Cluster-Id = %q, want %q", tc.id, req.method, req.target, got, tc.want)
			}
		}
	}
}

// check405 lists how r differs from the 405 of API.md §1.1.
func check405(r kResp) []string {
	var bad []string
	if r.code != http.StatusMethodNotAllowed {
		bad = append(bad, fmt.Sprintf("status %d, want 405", r.code))
	}
	if got := r.hdr.Values("Allow"); len(got) != 1 || got[0] != "HEAD,GET,PUT,POST,DELETE" {
		bad = append(bad, fmt.Sprintf("Allow %q, want %q", got, "HEAD,GET,PUT,POST,DELETE"))
	}
	if r.body != "Method Not Allowed\n" {
		bad = append(bad, fmt.Sprintf("body %q, want %q", r.body, "Method Not Allowed\n"))
	}
	if got := r.hdr.Get("Content-Type"); got != "text/plain; charset=utf-8" {
		bad = append(bad, fmt.Sprintf("Content-Type %q, want text/plain; charset=utf-8", got))
	}
	if got := r.hdr.Get("X-Content-Type-Options"); got != "nosniff" {
		bad = append(bad, fmt.Sprintf("X-Content-Type-Options %q, want nosniff", got))
	}
	if v, ok := r.hdr["X-Etcd-Cluster-Id"]; ok {
		bad = append(bad, fmt.Sprintf("carries X-Etcd-Cluster-Id %q", v))
	}
	return bad
}

var keysTargets = []string{"/v2/keys", "/v2/keys/", "/v2/keys/a/b?value=1"}

func TestKeysMethodNotAllowed(t *testing.T) {
	e := newKEnv(t)
	for _, m := range []string{"PATCH", "TRACE"} {
		for _, target := range keysTargets {
			r := e.do(t, m, target, "value=2")
			for _, p := range check405(r) {
				t.Errorf("%s %s: %s", m, target, p)
			}
		}
	}
	if e.st.Index() != 0 {
		t.Errorf("a 405 wrote: index %d", e.st.Index())
	}
}

// Methods outside net/http's standard set (and lower-case spellings) are
// also answered by the keys handler in etcd: its ServeMux does not look at
// the method (checked against etcd 3.4.23: PURGE, PROPFIND → this 405).
func TestKeysMethodNotAllowedExtensionMethod(t *testing.T) {
	e := newKEnv(t)
	for _, m := range []string{"PURGE", "PROPFIND", "FOO", "get", "Put"} {
		for _, target := range keysTargets {
			for _, p := range check405(e.do(t, m, target, "value=2")) {
				t.Errorf("%s %s: %s", m, target, p)
			}
		}
	}
	if e.st.Index() != 0 {
		t.Errorf("a 405 wrote: index %d", e.st.Index())
	}
}

func TestKeysOptions(t *testing.T) {
	e := newKEnv(t)
	for _, target := range []string{"/v2/keys", "/v2/keys/a?wait=true", "/nowhere/at/all", "/v2/keys/a?value=%zz"} {
		r := e.do(t, "OPTIONS", target, "value=1")
		if r.code != 200 || r.body != "" {
			t.Errorf("OPTIONS %s: %d %q, want 200 and an empty body", target, r.code, r.body)
		}
	}
	if e.st.Index() != 0 || e.st.WatcherCount() != 0 {
		t.Errorf("OPTIONS had effects: index %d, watchers %d", e.st.Index(), e.st.WatcherCount())
	}
}

// OPTIONS is answered before routing, on any path (API.md §1.1): that
// includes paths that a GET would be redirected from, since etcd's CORS
// layer sits in front of the ServeMux that redirects (checked against etcd
// 3.4.23: OPTIONS /v2/keys//a → 200, empty).
func TestKeysOptionsUncleanPath(t *testing.T) {
	e := newKEnv(t)
	for _, target := range []string{"/v2/keys//a", "/v2/keys/./a", "/v2/keys/a/../b", "/v2/keys/a%2F%2E%2E%2Fb"} {
		r := e.do(t, "OPTIONS", target, "")
		if r.code != 200 || r.body != "" || r.hdr.Get("Location") != "" {
			t.Errorf("OPTIONS %s: %d %q (Location %q), want 200 with an empty body", target, r.code, r.body, r.hdr.Get("Location"))
		}
	}
}

func TestKeysRedirectUnclean(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/a", "value=orig") // index 1
	tests := []struct {
		method, target, form, location string
	}{
		{"GET", "/v2/keys//pa/b", "", "/v2/keys/pa/b"},
		{"GET", "/v2/keys/pa/./b?recursive=true&x=%20y", "", "/v2/keys/pa/b?recursive=true&x=%20y"},
		{"GET", "/v2/keys/x/../pa/b", "", "/v2/keys/pa/b"},
		{"GET", "/v2/keys//pa/", "", "/v2/keys/pa/"},
		{"HEAD", "/v2/keys//a", "", "/v2/keys/a"},
		{"PUT", "/v2/keys//pa/b?value=1", "value=2", "/v2/keys/pa/b?value=1"},
		{"PUT", "/v2/keys/x/../a?value=changed", "", "/v2/keys/a?value=changed"},
		{"POST", "/v2/keys//q", "value=1", "/v2/keys/q"},
		{"DELETE", "/v2/keys/./a", "", "/v2/keys/a"},
		{"DELETE", "/v2/keys//a?recursive=true", "", "/v2/keys/a?recursive=true"},
		// Percent-encoded separators and dots count too.
		{"GET", "/v2/keys/pa%2F%2Fb", "", "/v2/keys/pa/b"},
		{"PUT", "/v2/keys/x%2F%2E%2E%2Fa?value=changed", "", "/v2/keys/a?value=changed"},
		{"PUT", "/v2/keys/x%2F.%2Fa", "value=changed", "/v2/keys/x/a"},
		{"DELETE", "/v2/keys/pa%2F%2E%2Fa", "", "/v2/keys/pa/a"},
		// A parameter error does not come first: no parsing happens.
		{"GET", "/v2/keys//a?recursive=nope", "", "/v2/keys/a?recursive=nope"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			r := e.do(t, tc.method, tc.target, tc.form)
			if r.code != http.StatusMovedPermanently {
				t.Fatalf("status = %d, body %q; want 301", r.code, r.body)
			}
			if got := r.hdr.Get("Location"); got != tc.location {
				t.Errorf("Location = %q, want %q", got, tc.location)
			}
			wantBody := ""
			if tc.method == "GET" {
				wantBody = `<a href="` + strings.ReplaceAll(tc.location, "&", "&amp;") + `">Moved Permanently</a>.` + "\n\n"
			}
			if r.body != wantBody {
				t.Errorf("body = %q, want %q", r.body, wantBody)
			}
		})
	}
	// None of the writes happened.
	if got := e.st.Index(); got != 1 {
		t.Errorf("store index = %d after redirected writes, want 1", got)
	}
	g := e.mustOK(t, "GET", "/v2/keys/a", "")
	if want := `{"action":"get","node":{"key":"/a","value":"orig","modifiedIndex":1,"createdIndex":1}}` + "\n"; g.body != want {
		t.Errorf("/a = %q, want %q", g.body, want)
	}
}

func TestKeysTrailingSlash(t *testing.T) {
	e := newKEnv(t)
	r := e.mustOK(t, "PUT", "/v2/keys/pa/c/", "value=1")
	if want := `{"action":"set","node":{"key":"/pa/c","value":"1","modifiedIndex":1,"createdIndex":1}}` + "\n"; r.body != want {
		t.Errorf("PUT /pa/c/: %q, want %q", r.body, want)
	}
	for _, target := range []string{"/v2/keys/pa/c/", "/v2/keys/pa/c"} {
		r = e.mustOK(t, "GET", target, "")
		if want := `{"action":"get","node":{"key":"/pa/c","value":"1","modifiedIndex":1,"createdIndex":1}}` + "\n"; r.body != want {
			t.Errorf("GET %s: %q, want %q", target, r.body, want)
		}
	}
	r = e.mustOK(t, "GET", "/v2/keys/pa/", "")
	if want := `{"action":"get","node":{"key":"/pa","dir":true,"nodes":[{"key":"/pa/c","value":"1","modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1}}` + "\n"; r.body != want {
		t.Errorf("GET /pa/: %q, want %q", r.body, want)
	}
	r = e.mustOK(t, "DELETE", "/v2/keys/pa/c/", "")
	if !strings.HasPrefix(r.body, `{"action":"delete","node":{"key":"/pa/c",`) {
		t.Errorf("DELETE /pa/c/: %q", r.body)
	}
}

func TestKeysPercentEncodedPath(t *testing.T) {
	e := newKEnv(t)
	r := e.mustOK(t, "PUT", "/v2/keys/pa%2Fb", "value=v")
	if want := `{"action":"set","node":{"key":"/pa/b","value":"v","modifiedIndex":1,"createdIndex":1}}` + "\n"; r.body != want {
		t.Errorf("PUT pa%%2Fb: %q, want %q", r.body, want)
	}
	for _, target := range []string{"/v2/keys/pa/b", "/v2/keys/pa%2Fb", "/v2/keys/p%61%2F%62"} {
		r = e.do(t, "GET", target, "")
		if want := `{"action":"get","node":{"key":"/pa/b","value":"v","modifiedIndex":1,"createdIndex":1}}` + "\n"; r.code != 200 || r.body != want {
			t.Errorf("GET %s: %d %q, want %q", target, r.code, r.body, want)
		}
	}
	r = e.mustOK(t, "PUT", "/v2/keys/sp%20ace", "value=%3Chtml%3E")
	if want := `{"action":"set","node":{"key":"/sp ace","value":"\u003chtml\u003e","modifiedIndex":2,"createdIndex":2}}` + "\n"; r.body != want {
		t.Errorf("PUT sp%%20ace: %q, want %q", r.body, want)
	}
	r = e.mustOK(t, "PUT", "/v2/keys/%E2%82%AC%3F%23", "value=x")
	if want := `{"action":"set","node":{"key":"/€?#","value":"x","modifiedIndex":3,"createdIndex":3}}` + "\n"; r.body != want {
		t.Errorf("PUT €?#: %q, want %q", r.body, want)
	}
}

// API.md §1.1 mounts the handler at /v2/keys on the decoded path (etcd's
// ServeMux matched r.URL.Path): an escaped character in the prefix still
// reaches the keys handler (checked against etcd 3.4.23).
func TestKeysEscapedPrefix(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/k", "value=v")
	want := `{"action":"get","node":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}` + "\n"
	for _, target := range []string{"/v2/%6beys/k", "/v2%2Fkeys/k", "/v2/keys%2Fk", "/v2/ke%79s/k"} {
		r := e.do(t, "GET", target, "")
		if r.code != 200 || r.body != want {
			t.Errorf("GET %s: %d %q, want 200 %q", target, r.code, r.body, want)
		}
	}
	// A write through such a path lands on the decoded key.
	r := e.do(t, "PUT", "/v2/ke%79s/k2", "value=w")
	if r.code != 201 || !strings.Contains(r.body, `"key":"/k2"`) {
		t.Errorf("PUT /v2/ke%%79s/k2: %d %q", r.code, r.body)
	}
}

func TestKeysFormBodyOverQuery(t *testing.T) {
	e := newKEnv(t)
	r := e.mustOK(t, "PUT", "/v2/keys/k?value=query", "value=body")
	if !strings.Contains(r.body, `"value":"body"`) {
		t.Errorf("PUT: body value should win: %q", r.body)
	}
	e.mustOK(t, "PUT", "/v2/keys/k", "value=zzz")
	// prevValue=five in the query, zzz in the body: compared against zzz.
	r = e.do(t, "PUT", "/v2/keys/k?prevValue=five", "prevValue=zzz&value=new")
	if r.code != 200 || !strings.HasPrefix(r.body, `{"action":"compareAndSwap","node":{"key":"/k","value":"new"`) {
		t.Errorf("CAS with body prevValue: %d %q", r.code, r.body)
	}
	// Conflicting booleans: the body's dir=false beats the query's dir=true.
	r = e.mustOK(t, "PUT", "/v2/keys/f?dir=true", "dir=false&value=v")
	if !strings.Contains(r.body, `"key":"/f","value":"v"`) {
		t.Errorf("dir in body should win: %q", r.body)
	}
	r = e.mustOK(t, "POST", "/v2/keys/q?value=query", "value=body")
	if !strings.Contains(r.body, `"value":"body"`) {
		t.Errorf("POST: body value should win: %q", r.body)
	}
	// Query-only parameters still count alongside the body.
	r = e.mustOK(t, "PUT", "/v2/keys/t?ttl=30", "value=x")
	if !strings.Contains(r.body, `"ttl":30`) {
		t.Errorf("query ttl with body value: %q", r.body)
	}
}

func TestKeysDeleteIgnoresBody(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/dk", "value=one")
	r := e.do(t, "DELETE", "/v2/keys/dk", "prevValue=two")
	want := `{"action":"delete","node":{"key":"/dk","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/dk","value":"one","modifiedIndex":1,"createdIndex":1}}` + "\n"
	if r.code != 200 || r.body != want {
		t.Errorf("DELETE with body: %d %q, want 200 %q", r.code, r.body, want)
	}
	// Even a malformed DELETE body is not parsed.
	e.mustOK(t, "PUT", "/v2/keys/dk", "value=one")
	r = e.do(t, "DELETE", "/v2/keys/dk", "prevValue=%zz")
	if r.code != 200 {
		t.Errorf("DELETE with a malformed body: %d %q", r.code, r.body)
	}
}

func TestKeysNonFormContentTypeIgnored(t *testing.T) {
	e := newKEnv(t)
	for i, ct := range []string{"application/json", "text/plain", "", "multipart/form-data; boundary=x"} {
		key := "/v2/keys/k" + strconv.Itoa(i)
		r := e.send(t, "PUT", key+"?value=fromquery", "value=frombody&ttl=junk", ct)
		if r.code != 201 || !strings.Contains(r.body, `"value":"fromquery"`) {
			t.Errorf("Content-Type %q: %d %q, want the query value", ct, r.code, r.body)
		}
		// No query value: the value becomes "".
		r = e.send(t, "PUT", key, `{"value":"json"}`, ct)
		if r.code != 200 || !strings.Contains(r.body, `"node":{"key":"/k`+strconv.Itoa(i)+`","value":""`) {
			t.Errorf("Content-Type %q without a query value: %d %q, want value \"\"", ct, r.code, r.body)
		}
	}
	// Parameters on a form Content-Type are fine.
	r := e.send(t, "PUT", "/v2/keys/cs", "value=b", "application/x-www-form-urlencoded; charset=utf-8")
	if r.code != 201 || !strings.Contains(r.body, `"value":"b"`) {
		t.Errorf("form with charset: %d %q", r.code, r.body)
	}
}

func TestKeysRepeatedParams(t *testing.T) {
	e := newKEnv(t)
	r := e.mustOK(t, "PUT", "/v2/keys/k?value=a&value=b", "")
	if !strings.Contains(r.body, `"value":"a"`) {
		t.Errorf("query value=a&value=b: %q", r.body)
	}
	r = e.mustOK(t, "PUT", "/v2/keys/k", "value=c&value=d")
	if !strings.Contains(r.body, `"node":{"key":"/k","value":"c"`) {
		t.Errorf("body value=c&value=d: %q", r.body)
	}
	r = e.do(t, "GET", "/v2/keys/k?recursive=true&recursive=xyz", "")
	if r.code != 200 {
		t.Errorf("recursive=true&recursive=xyz: %d %q", r.code, r.body)
	}
	r = e.do(t, "GET", "/v2/keys/k?recursive=xyz&recursive=true", "")
	if r.code != 400 {
		t.Errorf("recursive=xyz&recursive=true: %d %q, want 400", r.code, r.body)
	}
	// ttl: the first one counts, even when it is empty.
	r = e.mustOK(t, "PUT", "/v2/keys/t?ttl=&ttl=junk", "value=x")
	if strings.Contains(r.body, "ttl") {
		t.Errorf("ttl=&ttl=junk: %q, want no TTL", r.body)
	}
	r = e.mustOK(t, "PUT", "/v2/keys/t?ttl=9&ttl=junk", "value=x")
	if !strings.Contains(r.body, `"ttl":9,`) {
		t.Errorf("ttl=9&ttl=junk: %q", r.body)
	}
}

func TestKeysNoValueOnSuccess(t *testing.T) {
	e := newKEnv(t)
	steps := []struct {
		req    kReq
		status int
		body   string
	}{
		{kReq{"PUT", "/v2/keys/k?noValueOnSuccess=true", "value=1"}, 201, `{"action":"set"}`},
		{kReq{"PUT", "/v2/keys/k", "value=2&noValueOnSuccess=true"}, 200, `{"action":"set"}`},
		{kReq{"PUT", "/v2/keys/k?noValueOnSuccess=1&prevExist=true", "value=3"}, 200, `{"action":"update"}`},
		{kReq{"PUT", "/v2/keys/k?noValueOnSuccess=T&prevValue=3", "value=4"}, 200, `{"action":"compareAndSwap"}`},
		{kReq{"PUT", "/v2/keys/n?noValueOnSuccess=true&prevExist=false", "value=1"}, 201, `{"action":"create"}`},
		{kReq{"POST", "/v2/keys/q?noValueOnSuccess=true", "value=1"}, 201, `{"action":"create"}`},
		{kReq{"PUT", "/v2/keys/k?noValueOnSuccess=false", "value=5"}, 200,
			`{"action":"set","node":{"key":"/k","value":"5","modifiedIndex":7,"createdIndex":7},"prevNode":{"key":"/k","value":"4","modifiedIndex":4,"createdIndex":2}}`},
		// Deletes and gets keep their nodes.
		{kReq{"DELETE", "/v2/keys/n?noValueOnSuccess=true", ""}, 200,
			`{"action":"delete","node":{"key":"/n","modifiedIndex":8,"createdIndex":5},"prevNode":{"key":"/n","value":"1","modifiedIndex":5,"createdIndex":5}}`},
		{kReq{"DELETE", "/v2/keys/k?noValueOnSuccess=true&prevValue=5", ""}, 200,
			`{"action":"compareAndDelete","node":{"key":"/k","modifiedIndex":9,"createdIndex":7},"prevNode":{"key":"/k","value":"5","modifiedIndex":7,"createdIndex":7}}`},
		{kReq{"GET", "/v2/keys/q/00000000000000000006?noValueOnSuccess=true", ""}, 200,
			`{"action":"get","node":{"key":"/q/00000000000000000006","value":"1","modifiedIndex":6,"createdIndex":6}}`},
		// Errors are unaffected.
		{kReq{"PUT", "/v2/keys/n?noValueOnSuccess=true&prevExist=true", "value=1"}, 404,
			`{"errorCode":100,"message":"Key not found","cause":"/n","index":9}`},
	}
	for i, s := range steps {
		r := e.do(t, s.req.method, s.req.target, s.req.form)
		if r.code != s.status || r.body != s.body+"\n" {
			t.Errorf("step %d %s %s: %d %q, want %d %q", i, s.req.method, s.req.target, r.code, r.body, s.status, s.body+"\n")
		}
		if s.status < 300 {
			checkSuccessHeaders(t, e, r, strconv.FormatUint(e.st.Index(), 10))
		}
	}
}

// quorum=true beats wait=true: an immediate get, not a watch.
func TestKeysQuorumBeatsWait(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/k", "value=1")
	for _, target := range []string{"/v2/keys/k?wait=true&quorum=true", "/v2/keys/k?quorum=true&wait=true&stream=true"} {
		r := e.do(t, "GET", target, "") // a watch would hang until the client timeout
		want := `{"action":"get","node":{"key":"/k","value":"1","modifiedIndex":1,"createdIndex":1}}` + "\n"
		if r.code != 200 || r.body != want {
			t.Errorf("GET %s: %d %q, want %q", target, r.code, r.body, want)
		}
		checkSuccessHeaders(t, e, r, "1")
	}
	// quorum=true on a missing key is an ordinary 100.
	r := e.do(t, "GET", "/v2/keys/missing?wait=true&quorum=true", "")
	if r.code != 404 {
		t.Errorf("quorum get of a missing key: %d %q", r.code, r.body)
	}
	if e.st.WatcherCount() != 0 {
		t.Errorf("a watcher was registered")
	}
}

func TestKeysHead(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/dir/k", "value=hello")
	for _, target := range []string{"/v2/keys/dir/k", "/v2/keys/dir?recursive=true", "/v2/keys/", "/v2/keys/missing", "/v2/keys/dir/k?sorted=x"} {
		g := e.do(t, "GET", target, "")
		h := e.do(t, "HEAD", target, "")
		if h.code != g.code {
			t.Errorf("HEAD %s: status %d, GET gave %d", target, h.code, g.code)
		}
		if h.body != "" {
			t.Errorf("HEAD %s: body %q", target, h.body)
		}
		if got, want := h.hdr.Get("Content-Length"), strconv.Itoa(len(g.body)); got != want {
			t.Errorf("HEAD %s: Content-Length %q, want %q (the GET body's)", target, got, want)
		}
		for _, name := range []string{"Content-Type", "X-Etcd-Index", "X-Etcd-Cluster-Id", "X-Raft-Index", "X-Raft-Term"} {
			if got, want := h.hdr.Values(name), g.hdr.Values(name); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("HEAD %s: %s = %q, GET gave %q", target, name, got, want)
			}
		}
	}
}

// TestKeysDispatch checks API.md §1.3: which action each PUT, POST, DELETE
// (and GET) combination produces.
func TestKeysDispatch(t *testing.T) {
	setK := []kReq{{"PUT", "/v2/keys/k", "value=v"}} // /k = v at index 1
	tests := []struct {
		name   string
		setup  []kReq
		req    kReq
		status int
		body   string
	}{
		{"GET plain", setK, kReq{"GET", "/v2/keys/k", ""}, 200,
			`{"action":"get","node":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"GET quorum", setK, kReq{"GET", "/v2/keys/k?quorum=true", ""}, 200,
			`{"action":"get","node":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"GET serializable", setK, kReq{"GET", "/v2/keys/k?serializable=true", ""}, 200,
			`{"action":"get","node":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT prevExist=true", setK, kReq{"PUT", "/v2/keys/k?prevExist=true", "value=w"}, 200,
			`{"action":"update","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT prevExist=true prevIndex=0 is update", setK, kReq{"PUT", "/v2/keys/k?prevExist=true&prevIndex=0", "value=w"}, 200,
			`{"action":"update","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT prevExist=true dir=true on key is update", setK, kReq{"PUT", "/v2/keys/k?prevExist=true&dir=true", ""}, 200,
			`{"action":"update","node":{"key":"/k","value":"","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT prevExist=true prevValue", setK, kReq{"PUT", "/v2/keys/k?prevExist=true&prevValue=v", "value=w"}, 200,
			`{"action":"compareAndSwap","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT prevExist=true prevIndex", setK, kReq{"PUT", "/v2/keys/k?prevExist=true&prevIndex=1", "value=w"}, 200,
			`{"action":"compareAndSwap","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT prevExist=false", nil, kReq{"PUT", "/v2/keys/k?prevExist=false", "value=w"}, 201,
			`{"action":"create","node":{"key":"/k","value":"w","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT prevExist=false ignores prevValue and prevIndex", nil, kReq{"PUT", "/v2/keys/k?prevExist=false&prevValue=zzz&prevIndex=9", "value=w"}, 201,
			`{"action":"create","node":{"key":"/k","value":"w","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT prevExist=false refresh creates with empty value", nil, kReq{"PUT", "/v2/keys/k?prevExist=false&refresh=true&ttl=70", ""}, 201,
			`{"action":"create","node":{"key":"/k","value":"","expiration":"2026-11-21T05:01:10Z","ttl":70,"modifiedIndex":1,"createdIndex":1}}`},
		{"PUT prevValue", setK, kReq{"PUT", "/v2/keys/k?prevValue=v", "value=w"}, 200,
			`{"action":"compareAndSwap","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT prevIndex", setK, kReq{"PUT", "/v2/keys/k?prevIndex=1", "value=w"}, 200,
			`{"action":"compareAndSwap","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT prevIndex=0 is set", setK, kReq{"PUT", "/v2/keys/k?prevIndex=0", "value=w"}, 200,
			`{"action":"set","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT plain", setK, kReq{"PUT", "/v2/keys/k", "value=w"}, 200,
			`{"action":"set","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT no value stores empty", nil, kReq{"PUT", "/v2/keys/k", ""}, 201,
			`{"action":"set","node":{"key":"/k","value":"","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT dir=true with value", nil, kReq{"PUT", "/v2/keys/k?dir=true", "value=ignored"}, 201,
			`{"action":"set","node":{"key":"/k","dir":true,"modifiedIndex":1,"createdIndex":1}}`},
		{"PUT refresh is set", []kReq{{"PUT", "/v2/keys/k?ttl=100", "value=v"}}, kReq{"PUT", "/v2/keys/k?refresh=true&ttl=50", "value="}, 200,
			`{"action":"set","node":{"key":"/k","value":"v","expiration":"2026-11-21T05:00:50Z","ttl":50,"modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/k","value":"v","expiration":"2026-11-21T05:01:40Z","ttl":100,"modifiedIndex":1,"createdIndex":1}}`},
		{"PUT refresh prevExist=true is update", setK, kReq{"PUT", "/v2/keys/k?refresh=true&ttl=60&prevExist=true", ""}, 200,
			`{"action":"update","node":{"key":"/k","value":"v","expiration":"2026-11-21T05:01:00Z","ttl":60,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT refresh prevValue is compareAndSwap", setK, kReq{"PUT", "/v2/keys/k?refresh=true&ttl=60&prevValue=v", ""}, 200,
			`{"action":"compareAndSwap","node":{"key":"/k","value":"v","expiration":"2026-11-21T05:01:00Z","ttl":60,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"PUT update without ttl removes it", []kReq{{"PUT", "/v2/keys/k?ttl=100", "value=v"}}, kReq{"PUT", "/v2/keys/k?prevExist=true&ttl=", "value=w"}, 200,
			`{"action":"update","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","expiration":"2026-11-21T05:01:40Z","ttl":100,"modifiedIndex":1,"createdIndex":1}}`},
		{"POST", nil, kReq{"POST", "/v2/keys/queue", "value=j"}, 201,
			`{"action":"create","node":{"key":"/queue/00000000000000000001","value":"j","modifiedIndex":1,"createdIndex":1}}`},
		{"POST ignores prevExist and prevValue", setK, kReq{"POST", "/v2/keys/queue?prevExist=true&prevValue=x", "value=j"}, 201,
			`{"action":"create","node":{"key":"/queue/00000000000000000002","value":"j","modifiedIndex":2,"createdIndex":2}}`},
		{"POST on root", setK, kReq{"POST", "/v2/keys", "value=r"}, 201,
			`{"action":"create","node":{"key":"/00000000000000000002","value":"r","modifiedIndex":2,"createdIndex":2}}`},
		{"POST dir=true ttl", nil, kReq{"POST", "/v2/keys/queue?dir=true&ttl=5", ""}, 201,
			`{"action":"create","node":{"key":"/queue/00000000000000000001","dir":true,"expiration":"2026-11-21T05:00:05Z","ttl":5,"modifiedIndex":1,"createdIndex":1}}`},
		{"DELETE prevValue", setK, kReq{"DELETE", "/v2/keys/k?prevValue=v", ""}, 200,
			`{"action":"compareAndDelete","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"DELETE prevIndex with dir and recursive", setK, kReq{"DELETE", "/v2/keys/k?prevIndex=1&dir=true&recursive=true", ""}, 200,
			`{"action":"compareAndDelete","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"DELETE plain", setK, kReq{"DELETE", "/v2/keys/k", ""}, 200,
			`{"action":"delete","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"DELETE ignores prevExist", setK, kReq{"DELETE", "/v2/keys/k?prevExist=false", ""}, 200,
			`{"action":"delete","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"DELETE prevIndex=0 is delete", setK, kReq{"DELETE", "/v2/keys/k?prevIndex=0", ""}, 200,
			`{"action":"delete","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
		{"DELETE empty dir dir=true", []kReq{{"PUT", "/v2/keys/d?dir=true", ""}}, kReq{"DELETE", "/v2/keys/d?dir=true", ""}, 200,
			`{"action":"delete","node":{"key":"/d","dir":true,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}`},
		{"DELETE key with recursive", setK, kReq{"DELETE", "/v2/keys/k?recursive=true", ""}, 200,
			`{"action":"delete","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newKEnv(t)
			e.setup(t, tc.setup)
			r := e.do(t, tc.req.method, tc.req.target, tc.req.form)
			if r.code != tc.status {
				t.Errorf("status = %d, want %d", r.code, tc.status)
			}
			if r.body != tc.body+"\n" {
				t.Errorf("body =\n%s\nwant\n%s", r.body, tc.body+"\n")
			}
			checkSuccessHeaders(t, e, r, strconv.FormatUint(e.st.Index(), 10))
		})
	}
}

// ttl=0 gives an expiration of "now" and no ttl field (API.md §1.6).
func TestKeysTTLZero(t *testing.T) {
	e := newKEnv(t)
	r := e.do(t, "PUT", "/v2/keys/z?ttl=0", "value=v")
	want := `{"action":"set","node":{"key":"/z","value":"v","expiration":"2026-11-21T05:00:00Z","modifiedIndex":1,"createdIndex":1}}` + "\n"
	if r.code != 201 || r.body != want {
		t.Errorf("ttl=0: %d %q, want 201 %q", r.code, r.body, want)
	}
}

// Hidden nodes are addressable but left out of listings.
func TestKeysHidden(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/h/_hidden", "value=x")
	e.mustOK(t, "PUT", "/v2/keys/h/seen", "value=y")
	e.mustOK(t, "PUT", "/v2/keys/h/_hdir/c", "value=z")
	r := e.mustOK(t, "GET", "/v2/keys/h?recursive=true", "")
	want := `{"action":"get","node":{"key":"/h","dir":true,"nodes":[{"key":"/h/seen","value":"y","modifiedIndex":2,"createdIndex":2}],"modifiedIndex":1,"createdIndex":1}}` + "\n"
	if r.body != want {
		t.Errorf("listing: %q, want %q", r.body, want)
	}
	r = e.mustOK(t, "GET", "/v2/keys/h/_hidden", "")
	if !strings.Contains(r.body, `"value":"x"`) {
		t.Errorf("hidden key: %q", r.body)
	}
	r = e.mustOK(t, "GET", "/v2/keys/h/_hdir", "")
	if !strings.Contains(r.body, `"nodes":[{"key":"/h/_hdir/c"`) {
		t.Errorf("hidden dir listing: %q", r.body)
	}
}

// corsHeaders are etcd's three CORS headers (API.md §1.12), without the
// origin.
var corsHeaders = map[string]string{
	"Access-Control-Allow-Headers": "accept, content-type, authorization",
	"Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
}

// corsRequests cover every kind of answer: success, store error, request
// error, redirect, 405, OPTIONS, an unknown path.
var corsRequests = []kReq{
	{"PUT", "/v2/keys/k", "value=1"},
	{"GET", "/v2/keys/k", ""},
	{"GET", "/v2/keys/missing", ""},
	{"GET", "/v2/keys/k?recursive=maybe", ""},
	{"GET", "/v2/keys//k", ""},
	{"PURGE", "/v2/keys/k", ""},
	{"OPTIONS", "/v2/keys/k", ""},
	{"OPTIONS", "/nowhere", ""},
	{"GET", "/nowhere", ""},
}

func (e *kEnv) doOrigin(t testing.TB, r kReq, origin string) kResp {
	t.Helper()
	var body io.Reader
	if r.form != "" {
		body = strings.NewReader(r.form)
	}
	req, err := http.NewRequest(r.method, e.srv.URL+r.target, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.form != "" {
		req.Header.Set("Content-Type", ktFormCT)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := e.cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return kResp{code: resp.StatusCode, hdr: resp.Header, body: string(b)}
}

// checkCORS: the three headers with allowOrigin, or none when it is "".
func checkCORS(t testing.TB, where string, r kResp, allowOrigin string) {
	t.Helper()
	want := map[string]string{}
	if allowOrigin != "" {
		for k, v := range corsHeaders {
			want[k] = v
		}
		want["Access-Control-Allow-Origin"] = allowOrigin
	}
	for _, name := range []string{"Access-Control-Allow-Headers", "Access-Control-Allow-Methods", "Access-Control-Allow-Origin"} {
		got, ok := r.hdr[name]
		w, wok := want[name]
		if ok != wok || ok && (len(got) != 1 || got[0] != w) {
			t.Errorf("%s: %s = %q, want %q (present %v)", where, name, got, w, wok)
		}
	}
}

func TestKeysCORSDefault(t *testing.T) {
	e := newKEnv(t) // Config.CORS nil: etcd's default --cors '*'
	for _, r := range corsRequests {
		for _, origin := range []string{"", "http://elsewhere.example"} {
			resp := e.doOrigin(t, r, origin)
			checkCORS(t, fmt.Sprintf("%s %s (Origin %q) → %d", r.method, r.target, origin, resp.code), resp, "*")
		}
	}
	// A watch carries them too, with its headers flushed.
	w := e.startWatch(t, "/v2/keys/w?wait=true")
	checkCORS(t, "watch", kResp{hdr: w.resp.Header}, "*")
}

func TestKeysCORSList(t *testing.T) {
	const allowed = "http://a.example:8080"
	e := newKEnvOpts(t, kEnvOpts{cors: []string{allowed, "http://b.example:9090"}})
	for _, r := range corsRequests {
		for origin, want := range map[string]string{
			allowed:                  allowed,
			"http://b.example:9090":  "http://b.example:9090",
			"http://evil.example:80": "",
			"":                       "",
		} {
			resp := e.doOrigin(t, r, origin)
			where := fmt.Sprintf("%s %s (Origin %q) → %d", r.method, r.target, origin, resp.code)
			checkCORS(t, where, resp, want)
			if r.method == "OPTIONS" && (resp.code != 200 || resp.body != "") {
				t.Errorf("%s: OPTIONS answered %d %q, want 200 and no body whatever the origin", where, resp.code, resp.body)
			}
		}
	}
}
