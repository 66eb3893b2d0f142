package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// fuzzContentTypes are the Content-Types FuzzKeysRequest picks from.
var fuzzContentTypes = []string{
	"",
	"application/x-www-form-urlencoded",
	"application/x-www-form-urlencoded; charset=utf-8",
	"application/json",
	"multipart/form-data; boundary=x",
	"text/plain; charset", // malformed: ParseForm fails
}

// fuzzStatus is the HTTP status of each v2 error code (API.md §3.2).
var fuzzStatus = map[int]int{
	100: 404, 101: 412, 102: 403, 104: 400, 105: 412, 107: 400, 108: 403, 110: 401,
	201: 400, 202: 400, 203: 400, 209: 400, 210: 400, 211: 400, 212: 400,
	300: 500, 400: 400, 401: 400,
}

// fuzzRecorder cancels the request when the handler flushes: a watch has
// then sent its headers and would otherwise wait forever.
type fuzzRecorder struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

func (r *fuzzRecorder) Flush() {
	r.ResponseRecorder.Flush()
	r.cancel()
}

// fuzzEnv is a small populated store; history 8 so that old waitIndexes
// answer 401.
func fuzzEnv(t testing.TB) (*store.Store, *server.Local, http.Handler) {
	st := store.New(8)
	// The backend's clock is long before the handler's: nothing expires
	// in the background, so every answer depends on the input only.
	be := server.NewLocal(st, 0xc0ffee, func() time.Time { return time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) })
	now := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	for _, r := range []store.Request{
		{Op: store.OpSet, Path: "/k", Value: "v"},
		{Op: store.OpSet, Path: "/d/c", Value: "1"},
		{Op: store.OpSet, Path: "/e", Dir: true},
		{Op: store.OpSet, Path: "/h/_hidden", Value: "x"},
		{Op: store.OpSet, Path: "/t", Value: "t", HasTTL: true, TTL: 30},
		{Op: store.OpSet, Path: "/k", Value: "w"},
		{Op: store.OpSet, Path: "/d/c2", Value: "2"},
		{Op: store.OpSet, Path: "/k", Value: "<&>"},
		{Op: store.OpSet, Path: "/d/c", Value: "3"},
		{Op: store.OpSet, Path: "/q/00000000000000000001", Value: "j"},
	} {
		r.Time = now.UnixNano()
		if _, err := be.Do(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
	}
	return st, be, NewHandler(Config{Backend: be, Now: func() time.Time { return now }})
}

func FuzzKeysRequest(f *testing.F) {
	type seed struct {
		method, path, query string
		body                string
		ct                  uint8
	}
	for _, s := range []seed{
		{"GET", "k", "", "", 0},
		{"GET", "", "recursive=true&sorted=true", "", 0},
		{"GET", "d/", "recursive=1", "", 0},
		{"HEAD", "k", "", "", 0},
		{"GET", "k", "wait=true", "", 0},
		{"GET", "k", "wait=true&waitIndex=1", "", 0},
		{"GET", "d", "wait=true&recursive=true&stream=true&waitIndex=9", "", 0},
		{"GET", "k", "wait=true&quorum=true", "", 0},
		{"GET", "missing/x", "", "", 0},
		{"GET", "k/sub", "", "", 0},
		{"PUT", "k", "", "value=x", 1},
		{"PUT", "k", "prevValue=w", "value=x", 1},
		{"PUT", "k", "prevIndex=8&prevValue=zz", "value=x", 1},
		{"PUT", "k", "prevExist=false", "value=x", 1},
		{"PUT", "k", "prevExist=true&noValueOnSuccess=true", "value=x", 2},
		{"PUT", "new", "", "value=x&ttl=5", 1},
		{"PUT", "k", "refresh=true&ttl=5", "", 0},
		{"PUT", "k", "refresh=true", "", 0},
		{"PUT", "k", "refresh=true&ttl=5&value=v", "", 0},
		{"PUT", "e", "", "value=x", 1},
		{"PUT", "", "", "value=x", 1},
		{"PUT", "k", "ttl=18446744073709551615", "", 0},
		{"PUT", "k", "ttl=-1", "", 0},
		{"PUT", "k", "prevValue=", "", 0},
		{"PUT", "k", "wait=true", "", 0},
		{"PUT", "k", "value=%zz", "", 0},
		{"PUT", "k", "", "value=%zz", 1},
		{"PUT", "k", "", `{"value":"json"}`, 3},
		{"PUT", "k", "", "value=x", 5},
		{"PUT", "k", "dir=maybe", "", 0},
		{"PUT", "k", "prevExist=maybe", "", 0},
		{"POST", "q", "", "value=x", 1},
		{"POST", "k", "", "value=x", 1},
		{"DELETE", "k", "", "", 0},
		{"DELETE", "d", "dir=true", "", 0},
		{"DELETE", "d", "recursive=true", "", 0},
		{"DELETE", "e", "", "", 0},
		{"DELETE", "k", "prevValue=zz", "", 0},
		{"DELETE", "", "", "", 0},
		{"PUT", "%2F%2E%2E%2Fk", "value=x", "", 0},
		{"GET", "/k", "a=b", "", 0},
		{"PUT", "./k", "", "value=x", 1},
		{"OPTIONS", "k", "", "", 0},
		{"PATCH", "k", "", "", 0},
		{"GET", "sp%20ace%3Cx%3E", "", "", 0},
		{"GET", "a%2Fb", "prevIndex=x", "", 0},
		{"GET", "k", "waitIndex=x&wait=true", "", 0},
		{"GET", "h/_hidden", "", "", 0},
		{"GET", ".", "\xce", "0", 0},                    // found by the fuzzer: non-ASCII in a redirect
		{"GET", "%C3%A9//x", "q=\xc3\xa9&a=<b>", "", 0}, // non-ASCII path and HTML in a redirect
	} {
		f.Add(s.method, s.path, s.query, []byte(s.body), s.ct)
	}
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte, ct uint8) {
		var raw bytes.Buffer
		target := "/v2/keys/" + path
		if query != "" {
			target += "?" + query
		}
		fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: cairn\r\n", method, target)
		if c := fuzzContentTypes[int(ct)%len(fuzzContentTypes)]; c != "" {
			fmt.Fprintf(&raw, "Content-Type: %s\r\n", c)
		}
		fmt.Fprintf(&raw, "Content-Length: %d\r\n\r\n", len(body))
		raw.Write(body)
		req, err := http.ReadRequest(bufio.NewReader(&raw))
		if err != nil {
			return // not a request a server would hand to the handler
		}
		st, be, h := fuzzEnv(t)
		defer be.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req = req.WithContext(ctx)
		rec := &fuzzRecorder{ResponseRecorder: httptest.NewRecorder(), cancel: cancel}
		before := st.Index()
		h.ServeHTTP(rec, req)
		checkFuzzResponse(t, req, rec.ResponseRecorder, before, st)
		if n := st.WatcherCount(); n != 0 {
			t.Errorf("%d watchers left registered", n)
		}
	})
}

func checkFuzzResponse(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder, before uint64, st *store.Store) {
	res := rec.Result()
	body := rec.Body.String()
	hd := res.Header
	moved := st.Index() != before
	where := fmt.Sprintf("%s %s", req.Method, req.RequestURI)
	known := map[string]bool{"HEAD": true, "GET": true, "PUT": true, "POST": true, "DELETE": true}

	switch {
	case req.Method == http.MethodOptions:
		if res.StatusCode != 200 || body != "" {
			t.Fatalf("%s: %d %q, want 200 and no body", where, res.StatusCode, body)
		}
	case res.StatusCode == http.StatusMovedPermanently:
		loc := hd.Get("Location")
		if loc == "" || !strings.HasPrefix(loc, "/") || strings.Contains(loc, "//") {
			t.Fatalf("%s: 301 with Location %q", where, loc)
		}
		// net/http writes the raw URL into the body (HTML-escaped) and
		// the Location with non-ASCII bytes hex-escaped.
		if req.Method == "GET" {
			href, ok := strings.CutPrefix(body, `<a href="`)
			href, ok2 := strings.CutSuffix(href, "\">Moved Permanently</a>.\n\n")
			if !ok || !ok2 || hexNonASCII(html.UnescapeString(href)) != loc {
				t.Fatalf("%s: 301 body %q does not match Location %q", where, body, loc)
			}
		} else if body != "" {
			t.Fatalf("%s: 301 body %q", where, body)
		}
	case !known[req.Method]:
		if res.StatusCode != 405 || body != "Method Not Allowed\n" || hd.Get("Allow") != "HEAD,GET,PUT,POST,DELETE" {
			t.Fatalf("%s: %d %q Allow %q, want the keys 405", where, res.StatusCode, body, hd.Get("Allow"))
		}
	default:
		checkFuzzJSON(t, where, req, res, body)
	}
	write := req.Method == "PUT" || req.Method == "POST" || req.Method == "DELETE"
	if moved && (res.StatusCode/100 != 2 || !write) {
		t.Fatalf("%s: store index moved from %d to %d on a %d", where, before, st.Index(), res.StatusCode)
	}
	if write && res.StatusCode/100 == 2 && st.Index() != before+1 {
		t.Fatalf("%s: a %d write moved the index from %d to %d", where, res.StatusCode, before, st.Index())
	}
}

// checkFuzzJSON checks a keys-handler answer: JSON objects, one per line,
// consistent with the status and headers.
func checkFuzzJSON(t *testing.T, where string, req *http.Request, res *http.Response, body string) {
	hd := res.Header
	if ct := hd.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, status %d, body %q", where, ct, res.StatusCode, body)
	}
	if hd.Get("X-Etcd-Cluster-Id") != "c0ffee" {
		t.Fatalf("%s: X-Etcd-Cluster-Id %q", where, hd.Get("X-Etcd-Cluster-Id"))
	}
	if !strings.HasSuffix(body, "\n") && body != "" {
		t.Fatalf("%s: body without its trailing newline: %q", where, body)
	}
	lines := strings.SplitAfter(body, "\n")
	lines = lines[:len(lines)-1]
	isWatch := res.StatusCode == 200 && hd.Get("Content-Length") == ""
	if !isWatch && len(lines) != 1 {
		t.Fatalf("%s: %d lines in a non-watch answer: %q", where, len(lines), body)
	}
	for i, line := range lines {
		var obj struct {
			Action    *string         `json:"action"`
			Node      json.RawMessage `json:"node"`
			PrevNode  json.RawMessage `json:"prevNode"`
			ErrorCode *int            `json:"errorCode"`
			Message   *string         `json:"message"`
			Index     *uint64         `json:"index"`
		}
		if !json.Valid([]byte(line)) {
			t.Fatalf("%s: line %d is not JSON: %q", where, i, line)
		}
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("%s: line %d: %v: %q", where, i, err, line)
		}
		switch {
		case obj.ErrorCode != nil:
			code := *obj.ErrorCode
			if obj.Message == nil || *obj.Message != store.Message(code) || *obj.Message == "" {
				t.Fatalf("%s: error %d with message %v", where, code, obj.Message)
			}
			if obj.Index == nil {
				t.Fatalf("%s: error without index: %q", where, line)
			}
			if isWatch {
				// Only the last line of a stream may be an error: 400.
				if code != store.EcodeWatcherCleared || i != len(lines)-1 {
					t.Fatalf("%s: error line %d in a watch: %q", where, i, line)
				}
				continue
			}
			want, ok := fuzzStatus[code]
			if !ok {
				t.Fatalf("%s: unexpected errorCode %d", where, code)
			}
			if res.StatusCode != want {
				t.Fatalf("%s: errorCode %d with status %d, want %d", where, code, res.StatusCode, want)
			}
			if got := hd.Get("X-Etcd-Index"); got != strconv.FormatUint(*obj.Index, 10) {
				t.Fatalf("%s: X-Etcd-Index %q, error index %d", where, got, *obj.Index)
			}
			if hd.Get("X-Raft-Index") != "" || hd.Get("X-Raft-Term") != "" {
				t.Fatalf("%s: error with X-Raft headers", where)
			}
			if code >= 200 && code < 300 && *obj.Index != 0 {
				t.Fatalf("%s: request error %d with index %d, want 0", where, code, *obj.Index)
			}
		case obj.Action != nil:
			checkFuzzAction(t, where, req, res, *obj.Action, obj.Node, obj.PrevNode, isWatch)
		default:
			t.Fatalf("%s: neither an event nor an error: %q", where, line)
		}
	}
}

func checkFuzzAction(t *testing.T, where string, req *http.Request, res *http.Response, action string, node, prev json.RawMessage, isWatch bool) {
	hd := res.Header
	if hd.Get("X-Raft-Index") == "" || hd.Get("X-Raft-Term") == "" || hd.Get("X-Etcd-Index") == "" {
		t.Fatalf("%s: success without X-Raft-*/X-Etcd-Index headers", where)
	}
	if isWatch {
		switch action {
		case "set", "create", "update", "compareAndSwap", "delete", "compareAndDelete", "expire":
		default:
			t.Fatalf("%s: watch delivered action %q", where, action)
		}
		return
	}
	allowed := map[string][]string{
		"GET":    {"get"},
		"HEAD":   {"get"},
		"PUT":    {"set", "create", "update", "compareAndSwap"},
		"POST":   {"create"},
		"DELETE": {"delete", "compareAndDelete"},
	}[req.Method]
	ok := false
	for _, a := range allowed {
		ok = ok || a == action
	}
	if !ok {
		t.Fatalf("%s: action %q", where, action)
	}
	created := action == "create" || action == "set" && prev == nil
	if node == nil && action == "set" { // noValueOnSuccess: cannot tell
		if res.StatusCode != 200 && res.StatusCode != 201 {
			t.Fatalf("%s: %q with status %d", where, action, res.StatusCode)
		}
		return
	}
	if want := map[bool]int{true: 201, false: 200}[created]; res.StatusCode != want {
		t.Fatalf("%s: action %q (prevNode %v) with status %d, want %d", where, action, prev != nil, res.StatusCode, want)
	}
	if hd.Get("Content-Length") == "" {
		t.Fatalf("%s: no Content-Length", where)
	}
}

// hexNonASCII escapes the bytes >= 0x80 of s as %xx, as net/http does for
// a Location header.
func hexNonASCII(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			fmt.Fprintf(&b, "%%%x", s[i])
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func FuzzAppendString(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Add("\\b\b\\f\f")
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString([]byte("x"), s)
		if got[0] != 'x' {
			t.Fatalf("prefix lost")
		}
		got = got[1:]
		if want := refString(t, s); string(got) != want {
			t.Fatalf("appendString(%q)\n got %s\nwant %s", s, got, want)
		}
		if !utf8.Valid(got) || !json.Valid(got) {
			t.Fatalf("appendString(%q) = %q: not valid UTF-8 JSON", s, got)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != sanitize(s) {
			t.Fatalf("appendString(%q) decodes to %q (%v), want %q", s, back, err, sanitize(s))
		}
	})
}
