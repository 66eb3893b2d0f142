package httpapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// fakeCluster is a Backend with the membership endpoints that records
// what it is asked to propose. Member 1 has the peer URL
// http://127.0.0.1:2380.
type fakeCluster struct {
	*server.Local
	mu    sync.Mutex
	calls []string // "add URL,...", "update ID URL,...", "remove ID"
}

const fakeSelfURL = "http://127.0.0.1:2380"

func (f *fakeCluster) Members() []server.MemberInfo {
	return []server.MemberInfo{{ID: 1, Name: "one", PeerURLs: []string{fakeSelfURL}, ClientURLs: []string{"http://127.0.0.1:2379"}}}
}

func (f *fakeCluster) Leader() (server.MemberInfo, bool) { return f.Members()[0], true }

func (f *fakeCluster) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeCluster) taken(urls []string) bool { return slices.Contains(urls, fakeSelfURL) }

func (f *fakeCluster) AddMember(_ context.Context, urls []string) (server.MemberInfo, error) {
	f.record("add " + strings.Join(urls, ","))
	if f.taken(urls) {
		return server.MemberInfo{}, server.ErrPeerURLExists
	}
	return server.MemberInfo{ID: 0xabc, PeerURLs: urls, ClientURLs: []string{}}, nil
}

func (f *fakeCluster) RemoveMember(_ context.Context, id uint64) error {
	f.record("remove " + hexID(id))
	if id != 1 {
		return server.ErrMemberNotFound
	}
	return nil
}

func (f *fakeCluster) UpdateMember(_ context.Context, id uint64, urls []string) error {
	f.record("update " + hexID(id) + " " + strings.Join(urls, ","))
	if id != 1 {
		return server.ErrMemberNotFound
	}
	return nil
}

func (f *fakeCluster) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func hexID(id uint64) string { return strconv.FormatUint(id, 16) }

func newFakeCluster(t *testing.T) (*fakeCluster, *httptest.Server) {
	t.Helper()
	be := &fakeCluster{Local: server.NewLocal(store.New(10), 1, nil)}
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Config{Backend: be}))
	t.Cleanup(func() {
		srv.Close()
		be.Close()
	})
	return be, srv
}

// memberBodyCases are request bodies for POST /v2/members and PUT
// /v2/members/<id>, with etcd 3.4.23's answer to each (captured from a
// running etcd; TestMembersBodiesAsEtcd compares with one live). SELF
// stands for the peer URL of the member answering, so that a body that
// passes every check meets a 409 instead of adding a member to etcd.
var memberBodyCases = []struct {
	name, body string
	status     int
	message    string
}{
	{"truncated", `{"peerURLs":`, 400, "unexpected end of JSON input"},
	{"empty", ``, 400, "unexpected end of JSON input"},
	{"blank", "  \n", 400, "unexpected end of JSON input"},
	{"not JSON", `not json`, 400, "invalid character 'o' in literal null (expecting 'u')"},
	{"trailing garbage", `{"peerURLs":["SELF"]} trailing`, 400, "invalid character 't' after top-level value"},
	{"two values", `{"peerURLs":["SELF"]}{}`, 400, "invalid character '{' after top-level value"},
	{"trailing comma", `{"peerURLs":["a"],}`, 400, "invalid character '}' looking for beginning of object key string"},
	{"missing comma", `{"peerURLs":["x"] "y"}`, 400, `invalid character '"' after object key:value pair`},
	{"leading zero", `{"peerURLs":01}`, 400, "invalid character '1' after object key:value pair"},
	{"bad escape", `{"peerURLs":["\x"]}`, 400, "invalid character 'x' in string escape code"},
	{"control character", "{\"peerURLs\":[\"a\x01\"]}", 400, `invalid character '\x01' in string literal`},
	{"byte order mark", "\xef\xbb\xbf{}", 400, "invalid character 'ï' looking for beginning of value"},
	{"syntax error elsewhere", `{"peerURLs":["SELF"],"x":[1,}`, 400, "invalid character '}' looking for beginning of value"},
	{"too deep", strings.Repeat("[", 10001) + strings.Repeat("]", 10001), 400, "invalid character '[' exceeded max depth"},
	{"deep but allowed", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), 400, `json: cannot unmarshal array into Go value of type struct { PeerURLs []string "json:\"peerURLs\"" }`},
	{"a string", `"a string"`, 400, `json: cannot unmarshal string into Go value of type struct { PeerURLs []string "json:\"peerURLs\"" }`},
	{"an array", `[1]`, 400, `json: cannot unmarshal array into Go value of type struct { PeerURLs []string "json:\"peerURLs\"" }`},
	{"a number", `42`, 400, `json: cannot unmarshal number into Go value of type struct { PeerURLs []string "json:\"peerURLs\"" }`},
	{"a bool", `true`, 400, `json: cannot unmarshal bool into Go value of type struct { PeerURLs []string "json:\"peerURLs\"" }`},
	{"null", `null`, 400, "no valid URLs given"},
	{"peerURLs a string", `{"peerURLs":"SELF"}`, 400, "json: cannot unmarshal string into Go struct field .peerURLs of type []string"},
	{"peerURLs an object", `{"peerURLs":{"a":1}}`, 400, "json: cannot unmarshal object into Go struct field .peerURLs of type []string"},
	{"peerURLs a bool", `{"peerURLs":true}`, 400, "json: cannot unmarshal bool into Go struct field .peerURLs of type []string"},
	{"peerURLs a number", `{"peerURLs":1.5}`, 400, "json: cannot unmarshal number into Go struct field .peerURLs of type []string"},
	{"numbers", `{"peerURLs":[1,2]}`, 400, "json: cannot unmarshal number into Go struct field .peerURLs of type string"},
	{"a number after a URL", `{"peerURLs":["SELF",2]}`, 400, "json: cannot unmarshal number into Go struct field .peerURLs of type string"},
	{"a huge number", `{"peerURLs":[1e400]}`, 400, "json: cannot unmarshal number into Go struct field .peerURLs of type string"},
	{"a bool element", `{"peerURLs":[true]}`, 400, "json: cannot unmarshal bool into Go struct field .peerURLs of type string"},
	{"an object element", `{"peerURLs":[{"a":1}]}`, 400, "json: cannot unmarshal object into Go struct field .peerURLs of type string"},
	{"an array element", `{"peerURLs":[[]]}`, 400, "json: cannot unmarshal array into Go struct field .peerURLs of type string"},
	{"a null element", `{"peerURLs":[null]}`, 400, "URL scheme must be http, https, unix, or unixs: "},
	{"a null element after a URL", `{"peerURLs":["SELF",null]}`, 400, "URL scheme must be http, https, unix, or unixs: "},
	{"missing field", `{}`, 400, "no valid URLs given"},
	{"another field only", `{"clientURLs":["x"]}`, 400, "no valid URLs given"},
	{"empty array", `{"peerURLs":[]}`, 400, "no valid URLs given"},
	{"peerURLs null", `{"peerURLs":null}`, 400, "no valid URLs given"},
	{"extra fields", `{"peerURLs":["SELF"],"extra":1,"name":"x"}`, 409, "membership: peerURL exists"},
	{"name in another case", `{"PeerURLs":["SELF"]}`, 409, "membership: peerURL exists"},
	{"name in lower case", `{"peerurls":["SELF"]}`, 409, "membership: peerURL exists"},
	{"name with a long s", `{"peerURLſ":["SELF"]}`, 409, "membership: peerURL exists"},
	{"name escaped", `{"peer\u0055RLs":["SELF"]}`, 409, "membership: peerURL exists"},
	{"duplicate, last empty", `{"peerURLs":["SELF"],"peerURLs":[]}`, 400, "no valid URLs given"},
	{"duplicate, last null", `{"peerURLs":["SELF"],"peerURLs":null}`, 400, "no valid URLs given"},
	{"duplicate, last good", `{"peerURLs":[],"peerURLs":["SELF"]}`, 409, "membership: peerURL exists"},
	{"duplicate, first a type error", `{"peerURLs":"x","peerURLs":["SELF"]}`, 400, "json: cannot unmarshal string into Go struct field .peerURLs of type []string"},
	{"spaces around the URL", `{"peerURLs":["  SELF  "]}`, 409, "membership: peerURL exists"},
	{"scheme in upper case", `{"peerURLs":["HTTP://SELFHOST"]}`, 409, "membership: peerURL exists"},
	{"spaces around a bad URL", `{"peerURLs":[" foo "]}`, 400, "URL scheme must be http, https, unix, or unixs: foo"},
	{"lone surrogate", `{"peerURLs":["\ud800"]}`, 400, "URL scheme must be http, https, unix, or unixs: \ufffd"},
	{"invalid UTF-8", "{\"peerURLs\":[\"\xff\xfehttp://x\"]}", 400, "parse \"\ufffd\ufffdhttp://x\": first path segment in URL cannot contain colon"},
	{"no port", `{"peerURLs":["http://127.0.0.1"]}`, 400, `URL address does not have the form "host:port": http://127.0.0.1`},
	{"a path", `{"peerURLs":["SELF/"]}`, 400, "URL must not contain a path: SELF/"},
	{"unparsable", `{"peerURLs":["http://[::1"]}`, 400, "parse \"http://[::1\": missing ']' in host"},
	{"first bad URL wins", `{"peerURLs":["foo","http://127.0.0.1"]}`, 400, "URL scheme must be http, https, unix, or unixs: foo"},
	{"a good URL and a taken one", `{"peerURLs":["http://127.0.0.1:1", "SELF"]}`, 409, "membership: peerURL exists"},
	{"whitespace around the body", " \t\n{\"peerURLs\":[\"SELF\"]}\r\n ", 409, "membership: peerURL exists"},
}

// expandSelf puts a member's peer URL (and its host:port) into a case.
func expandSelf(s, selfURL string) string {
	s = strings.ReplaceAll(s, "SELFHOST", strings.TrimPrefix(selfURL, "http://"))
	return strings.ReplaceAll(s, "SELF", selfURL)
}

// The bodies of POST and PUT /v2/members are answered as etcd answers
// them, and a refused body proposes nothing.
func TestMembersBodies(t *testing.T) {
	be, srv := newFakeCluster(t)
	for _, c := range memberBodyCases {
		body := expandSelf(c.body, fakeSelfURL)
		want := `{"message":"` + jsonEscape(expandSelf(c.message, fakeSelfURL)) + `"}`
		for _, method := range []string{"POST", "PUT"} {
			path := "/v2/members"
			if method == "PUT" {
				path += "/2" // a valid ID no member has: the body is read first
			}
			resp, got := call(t, method, srv.URL+path, "application/json", body)
			wantStatus := c.status
			if method == "PUT" && c.status == 409 {
				wantStatus, want = 404, `{"message":"No such member: 2"}`
			}
			if resp.StatusCode != wantStatus || got != want {
				t.Errorf("%s %s (%s): %d %s, want %d %s", method, path, c.name, resp.StatusCode, got, wantStatus, want)
			}
			calls := be.takeCalls()
			if c.status == 400 && len(calls) != 0 {
				t.Errorf("%s (%s): proposed %q", method, c.name, calls)
			}
		}
	}
}

// jsonEscape escapes s as encoding/json does inside a string.
func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		case r == '<' || r == '>' || r == '&':
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Content-Type is checked as etcd checks it (answers captured from etcd
// 3.4.23): application/json exactly, unless parameters follow, when the
// media type before ";" is trimmed and lower-cased; the 415 names that.
func TestMembersContentType(t *testing.T) {
	be, srv := newFakeCluster(t)
	const bad = `{"message":"unexpected end of JSON input"}` // the body reached
	for _, c := range []struct {
		ctype  string
		status int
		body   string
	}{
		{"application/json", 400, bad},
		{"application/json; charset=utf-8", 400, bad},
		{"application/json; x", 400, bad},
		{"application/json;;", 400, bad},
		{"Application/JSON; x", 400, bad},
		{"APPLICATION/JSON ;", 400, bad},
		{"Application/JSON", 415, `{"message":"Bad Content-Type Application/JSON, accept application/json"}`},
		{"application/jsonx", 415, `{"message":"Bad Content-Type application/jsonx, accept application/json"}`},
		{"application/json, text/plain", 415, `{"message":"Bad Content-Type application/json, text/plain, accept application/json"}`},
		{"text/plain; application/json", 415, `{"message":"Bad Content-Type text/plain, accept application/json"}`},
		{"TEXT/Plain; charset=utf-8", 415, `{"message":"Bad Content-Type text/plain, accept application/json"}`},
		{"", 415, `{"message":"Bad Content-Type , accept application/json"}`},
	} {
		resp, got := call(t, "POST", srv.URL+"/v2/members", c.ctype, `{"peerURLs":`)
		if resp.StatusCode != c.status || got != c.body {
			t.Errorf("Content-Type %q: %d %s, want %d %s", c.ctype, resp.StatusCode, got, c.status, c.body)
		}
	}
	if calls := be.takeCalls(); len(calls) != 0 {
		t.Errorf("proposed %q", calls)
	}
}

// A body over httpapi.MaxJSONBody is refused with 400 before it is
// parsed, and nothing is proposed.
func TestMembersBodyBounded(t *testing.T) {
	be, srv := newFakeCluster(t)
	pad := strings.Repeat(" ", httpapi.MaxJSONBody)
	for _, method := range []string{"POST", "PUT"} {
		path := map[string]string{"POST": "/v2/members", "PUT": "/v2/members/1"}[method]
		resp, got := call(t, method, srv.URL+path, "application/json", `{"peerURLs":["http://127.0.0.1:9"]}`+pad)
		if want := `{"message":"request body too large: the limit is 65536 bytes"}`; resp.StatusCode != 400 || got != want {
			t.Errorf("%s over the limit: %d %s, want 400 %s", method, resp.StatusCode, got, want)
		}
		// Just under the limit is read.
		resp, got = call(t, method, srv.URL+path, "application/json", `{"peerURLs":["http://127.0.0.1:9"]}`+pad[:httpapi.MaxJSONBody-35])
		if resp.StatusCode/100 != 2 {
			t.Errorf("%s at the limit: %d %s", method, resp.StatusCode, got)
		}
	}
	if calls := be.takeCalls(); !slices.Equal(calls, []string{"add http://127.0.0.1:9", "update 1 http://127.0.0.1:9"}) {
		t.Errorf("proposed %q", calls)
	}
}

// memberIDCases: which of the ID, the Content-Type and the body etcd
// complains about first (answers captured from etcd 3.4.23). An ID that
// is not hex is 404 at once, whatever follows; a hex ID no member has is
// 404 only once the body is good, and is named as hex without padding.
var memberIDCases = []memberRequest{
	{"not hex, bad body", "PUT", "/v2/members/zzz", "application/json", `{"peerURLs":`},
	{"not hex, good body", "PUT", "/v2/members/zzz", "application/json", `{"peerURLs":["http://127.0.0.1:9"]}`},
	{"not hex, bad Content-Type", "PUT", "/v2/members/zzz", "text/plain", `{"peerURLs":`},
	{"a path, bad body", "PUT", "/v2/members/abc/def", "application/json", `{"peerURLs":`},
	{"negative", "PUT", "/v2/members/-1", "application/json", `{"peerURLs":`},
	{"0x prefix", "PUT", "/v2/members/0x1", "application/json", `{"peerURLs":`},
	{"over 64 bits", "PUT", "/v2/members/10000000000000000", "application/json", `{"peerURLs":`},
	{"unknown, bad body", "PUT", "/v2/members/abc", "application/json", `{"peerURLs":`},
	{"unknown, empty list", "PUT", "/v2/members/abc", "application/json", `{"peerURLs":[]}`},
	{"unknown, bad URL", "PUT", "/v2/members/abc", "application/json", `{"peerURLs":["foo"]}`},
	{"unknown, bad Content-Type", "PUT", "/v2/members/abc", "text/plain", `{"peerURLs":`},
	{"upper case, bad body", "PUT", "/v2/members/ABC", "application/json", `{"peerURLs":`},
	{"zero, bad body", "PUT", "/v2/members/0", "application/json", `{"peerURLs":`},
	{"zero, good body", "PUT", "/v2/members/0", "application/json", `{"peerURLs":["http://127.0.0.1:9"]}`},
	{"padded upper case, good body", "PUT", "/v2/members/00ABC", "application/json", `{"peerURLs":["http://127.0.0.1:9"]}`},
	{"padded upper case, taken URL", "PUT", "/v2/members/00ABC", "application/json", `{"peerURLs":["SELF"]}`},
	{"delete padded upper case", "DELETE", "/v2/members/00ABC", "", ""},
	{"delete a path", "DELETE", "/v2/members/abc/def", "", ""},
	{"delete not hex", "DELETE", "/v2/members/zzz", "", ""},
	{"delete zero", "DELETE", "/v2/members/0", "", ""},
}

var memberIDAnswers = map[string]string{
	"not hex, bad body":            `404 {"message":"No such member: zzz"}`,
	"not hex, good body":           `404 {"message":"No such member: zzz"}`,
	"not hex, bad Content-Type":    `404 {"message":"No such member: zzz"}`,
	"a path, bad body":             `404 {"message":"No such member: abc/def"}`,
	"negative":                     `404 {"message":"No such member: -1"}`,
	"0x prefix":                    `404 {"message":"No such member: 0x1"}`,
	"over 64 bits":                 `404 {"message":"No such member: 10000000000000000"}`,
	"unknown, bad body":            `400 {"message":"unexpected end of JSON input"}`,
	"unknown, empty list":          `400 {"message":"no valid URLs given"}`,
	"unknown, bad URL":             `400 {"message":"URL scheme must be http, https, unix, or unixs: foo"}`,
	"unknown, bad Content-Type":    `415 {"message":"Bad Content-Type text/plain, accept application/json"}`,
	"upper case, bad body":         `400 {"message":"unexpected end of JSON input"}`,
	"zero, bad body":               `400 {"message":"unexpected end of JSON input"}`,
	"zero, good body":              `404 {"message":"No such member: 0"}`,
	"padded upper case, good body": `404 {"message":"No such member: abc"}`,
	"padded upper case, taken URL": `404 {"message":"No such member: abc"}`,
	"delete padded upper case":     `404 {"message":"No such member: abc"}`,
	"delete a path":                `404 {"message":"No such member: abc/def"}`,
	"delete not hex":               `404 {"message":"No such member: zzz"}`,
	"delete zero":                  `404 {"message":"No such member: 0"}`,
}

func TestMembersIDBeforeBody(t *testing.T) {
	be, srv := newFakeCluster(t)
	for _, c := range memberIDCases {
		resp, got := call(t, c.method, srv.URL+c.path, c.ctype, expandSelf(c.body, fakeSelfURL))
		if got := fmt.Sprintf("%d %s", resp.StatusCode, got); got != memberIDAnswers[c.name] {
			t.Errorf("%s %s (%s): %s, want %s", c.method, c.path, c.name, got, memberIDAnswers[c.name])
		}
		// Only a hex ID with a good body (or none: DELETE) reaches the
		// cluster.
		_, err := strconv.ParseUint(strings.TrimPrefix(c.path, "/v2/members/"), 16, 64)
		want := err == nil && strings.HasPrefix(memberIDAnswers[c.name], "404 ")
		if calls := be.takeCalls(); (len(calls) > 0) != want {
			t.Errorf("%s (%s): the cluster was asked %q", c.path, c.name, calls)
		}
	}
}

// peerURLsBody is {"peerURLs":[...]} with n URLs of the form
// http://127.0.0.1:<port>.
func peerURLsBody(n int, more ...string) string {
	var b strings.Builder
	b.WriteString(`{"peerURLs":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"http://127.0.0.1:%d"`, 10000+i)
	}
	for _, u := range more {
		if b.Len() > len(`{"peerURLs":[`) {
			b.WriteByte(',')
		}
		b.WriteString(`"` + u + `"`)
	}
	return b.String() + "]}"
}

// A member add or update carries at most server.MaxPeerURLs URLs of at
// most server.MaxURLBytes bytes each; past that it is refused with 400,
// before any URL is parsed, and nothing is proposed.
func TestMembersURLBounds(t *testing.T) {
	be, srv := newFakeCluster(t)
	long := "http://127.0.0.1:1?" + strings.Repeat("x", server.MaxURLBytes-19) // exactly the bound
	for _, c := range []struct {
		name, body string
		status     int
		message    string
	}{
		{"the most URLs", peerURLsBody(server.MaxPeerURLs), 201, ""},
		{"one URL too many", peerURLsBody(server.MaxPeerURLs + 1), 400, "too many peer URLs: 17, at most 16"},
		{"far too many", peerURLsBody(2000), 400, "too many peer URLs: 2000, at most 16"},
		{"too many, one bad", peerURLsBody(server.MaxPeerURLs, "foo"), 400, "too many peer URLs: 17, at most 16"},
		{"the longest URL", peerURLsBody(0, long), 201, ""},
		{"the longest URL, spaces around", peerURLsBody(0, "  "+long+"  "), 201, ""},
		{"a URL too long", peerURLsBody(0, long+"x"), 400, "peer URL too long: 257 bytes, at most 256"},
		{"a bad URL too long", peerURLsBody(0, strings.Repeat("x", 300)), 400, "peer URL too long: 300 bytes, at most 256"},
		// The body's own checks come first.
		{"too many, a number", `{"peerURLs":[` + strings.Repeat(`"a",`, 20) + `1]}`, 400,
			"json: cannot unmarshal number into Go struct field .peerURLs of type string"},
	} {
		for _, method := range []string{"POST", "PUT"} {
			path, status := "/v2/members", c.status
			if method == "PUT" {
				path += "/1"
				if status == 201 {
					status = 204
				}
			}
			resp, got := call(t, method, srv.URL+path, "application/json", c.body)
			want := ""
			if c.message != "" {
				want = `{"message":"` + c.message + `"}`
			}
			if resp.StatusCode != status || want != "" && got != want {
				t.Errorf("%s (%s): %d %s, want %d %s", method, c.name, resp.StatusCode, got, status, want)
			}
			if calls := be.takeCalls(); (len(calls) == 1) != (c.status == 201) {
				t.Errorf("%s (%s): the cluster was asked %q", method, c.name, calls)
			}
		}
	}
}
