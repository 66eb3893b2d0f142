package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// parseBasicAuth agrees with net/http's Request.BasicAuth, which etcd
// uses.
func TestParseBasicAuth(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	for _, c := range []struct {
		h              string
		user, password string
		ok             bool
	}{
		{"Basic " + b64([]byte("alice:apw")), "alice", "apw", true},
		{"basic " + b64([]byte("alice:apw")), "alice", "apw", true},
		{"BASIC " + b64([]byte("alice:a:b")), "alice", "a:b", true},
		{"Basic " + b64([]byte(":")), "", "", true},
		{"Basic " + b64([]byte("alice")), "", "", false},
		{"Basic  " + b64([]byte("alice:apw")), "", "", false},
		{"Basic " + b64([]byte("alice:apw"))[:5], "", "", false},
		{"Basic", "", "", false},
		{"Bearer x", "", "", false},
		{"", "", "", false},
		{"Basic !!!", "", "", false},
	} {
		u, p, ok := parseBasicAuth(c.h)
		if u != c.user || p != c.password || ok != c.ok {
			t.Errorf("%q: %q %q %v", c.h, u, p, ok)
		}
		r := &http.Request{Header: http.Header{"Authorization": {c.h}}}
		nu, np, nok := r.BasicAuth()
		if nu != u || np != p || nok != ok {
			t.Errorf("%q: net/http says %q %q %v", c.h, nu, np, nok)
		}
	}
}

// FuzzParseBasicAuth: never panics, and agrees with net/http.
func FuzzParseBasicAuth(f *testing.F) {
	for _, s := range []string{"Basic YWxpY2U6YXB3", "basic Og==", "Basic", "Bearer x", "Basic  YQ==", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		u, p, ok := parseBasicAuth(h)
		r := &http.Request{Header: http.Header{"Authorization": {h}}}
		nu, np, nok := r.BasicAuth()
		if u != nu || p != np || ok != nok {
			t.Fatalf("%q: %q %q %v; net/http %q %q %v", h, u, p, ok, nu, np, nok)
		}
	})
}

// The cache answers a credential it verified without bcrypt, forgets it
// when the user's hash changes, never answers another user or password,
// and holds at most its bound.
func TestCredCache(t *testing.T) {
	var compares atomic.Int64
	a := newAuthorizer(nil, false, zerolog.Nop(), nil)
	a.compare = func(h, p []byte) error {
		compares.Add(1)
		return bcrypt.CompareHashAndPassword(h, p)
	}
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	alice := server.AuthUser{Name: "alice", Hash: hash("apw")}
	for i := range 3 {
		if !a.checkPassword(alice, "apw") {
			t.Fatalf("check %d refused", i)
		}
	}
	if n := compares.Load(); n != 1 {
		t.Fatalf("%d bcrypt comparisons for three checks of one credential", n)
	}
	if a.checkPassword(alice, "wrong") || a.checkPassword(server.AuthUser{Name: "bob", Hash: alice.Hash}, "wrong") {
		t.Fatal("a wrong password passed")
	}
	// The same password for another user with the same hash is its own
	// entry: a miss first.
	before := compares.Load()
	if !a.checkPassword(server.AuthUser{Name: "bob", Hash: alice.Hash}, "apw") || compares.Load() != before+1 {
		t.Fatal("another user's credential was answered from alice's entry")
	}
	// A password change: the old password no longer passes, from the
	// cache or otherwise; the new one is verified once.
	alice2 := server.AuthUser{Name: "alice", Hash: hash("new")}
	before = compares.Load()
	if a.checkPassword(alice2, "apw") {
		t.Fatal("the old password passed after a change")
	}
	first, second := a.checkPassword(alice2, "new"), a.checkPassword(alice2, "new")
	if !first || !second || compares.Load() != before+2 {
		t.Fatalf("after the change: %d comparisons", compares.Load()-before)
	}
	// No password is kept.
	for k, el := range a.cache.m {
		if strings.Contains(fmt.Sprint(k), "apw") || strings.Contains(el.Value.(*credEntry).hash, "apw") {
			t.Fatal("a password in the cache")
		}
	}
	// The bound: least recently used out first.
	c := newCredCache(4)
	keys := make([]credKey, 6)
	for i := range keys {
		keys[i] = c.key(fmt.Sprint("u", i), "p")
		c.add(keys[i], "h")
		if i == 2 {
			c.hit(keys[0], "h") // 0 is now more recent than 1
		}
	}
	if c.len() != 4 {
		t.Fatalf("cache holds %d", c.len())
	}
	for i, want := range []bool{true, false, false, true, true, true} {
		if got := c.hit(keys[i], "h"); got != want {
			t.Errorf("key %d: hit %v", i, got)
		}
	}
	if c.key("u", "p") == newCredCache(1).key("u", "p") {
		t.Error("two caches share a salt")
	}
}

// A request with basic auth pays bcrypt once, not on every request.
func TestAuthRequestsHitTheCache(t *testing.T) {
	be, h, compares := authCountingEnv(t)
	ctx := t.Context()
	for range 20 {
		req := httptest.NewRequest("PUT", "/v2/keys/k?value=v", nil)
		req.SetBasicAuth("root", "rootpw")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code/100 != 2 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	if n := compares.Load(); n != 1 {
		t.Fatalf("%d bcrypt comparisons for 20 requests", n)
	}
	// A new password: the old one is refused at once.
	if _, _, err := be.PutUser(ctx, server.UserChange{Mode: server.UserCreateOrUpdate, Name: "root", Password: "other"}); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v2/keys/k", nil)
	req.SetBasicAuth("root", "rootpw")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("old password after a change: %d", w.Code)
	}
}

// authCountingEnv is a handler over a Local with root (password rootpw)
// and auth enabled (guest closed), whose password checks are counted.
func authCountingEnv(t *testing.T) (*server.Local, http.Handler, *atomic.Int64) {
	t.Helper()
	be := server.NewLocal(store.New(100), 1, nil)
	t.Cleanup(func() { be.Close() })
	ctx := t.Context()
	if _, _, err := be.PutUser(ctx, server.UserChange{Mode: server.UserCreateOrUpdate, Name: "root", Password: "rootpw"}); err != nil {
		t.Fatal(err)
	}
	if err := be.EnableAuth(ctx, server.GuestNone); err != nil {
		t.Fatal(err)
	}
	h, authz := newHandler(Config{Backend: be})
	compares := new(atomic.Int64)
	authz.compare = func(hash, p []byte) error { compares.Add(1); return bcrypt.CompareHashAndPassword(hash, p) }
	return be, h, compares
}

// A request naming a user that does not exist pays a bcrypt comparison
// too, as a wrong password does, so that timing does not tell which user
// names exist; it is refused all the same.
func TestUnknownUserCostsACompare(t *testing.T) {
	_, h, compares := authCountingEnv(t)
	for _, name := range []string{"nobody", "root"} {
		req := httptest.NewRequest("GET", "/v2/keys/k", nil)
		req.SetBasicAuth(name, "wrong")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("%s with a wrong password: %d", name, w.Code)
		}
	}
	if n := compares.Load(); n != 2 {
		t.Fatalf("%d bcrypt comparisons for an unknown user and a wrong password, want 2", n)
	}
}

// User and role bodies are read as encoding/json reads them into etcd's
// structs.
func TestParseAuthJSON(t *testing.T) {
	type etcdUser struct {
		User     string   `json:"user"`
		Password string   `json:"password,omitempty"`
		Roles    []string `json:"roles"`
		Grant    []string `json:"grant,omitempty"`
		Revoke   []string `json:"revoke,omitempty"`
	}
	users := []string{
		`{"user":"u","password":"p","roles":["a","b"]}`,
		`{"User":"u","GRANT":["a"],"revoke":null}`,
		`{"user":"a","user":"b"}`,
		`{"user":"a","user":null}`,
		`{"roles":["a"],"roles":[]}`,
		`{"roles":["a",null]}`,
		`  {"user":"u"} trailing`,
		`null`,
		`{"user":1}`,
		`{"roles":"x"}`,
		`{"roles":[1]}`,
		`[]`,
		`"x"`,
		``,
		`{"user":"u"`,
		`{"user":"\u00e9\"}"}`,
		`{"other":{"deep":[1,2,{"x":"}"}]},"user":"u"}`,
		`{"user":"u",}`,
	}
	for _, in := range users {
		var want etcdUser
		err := json.NewDecoder(strings.NewReader(in)).Decode(&want)
		got, ok := parseUserJSON([]byte(in))
		if ok != (err == nil) {
			t.Errorf("user %q: ok %v, encoding/json %v", in, ok, err)
			continue
		}
		if ok && !reflect.DeepEqual(etcdUser(got), want) {
			t.Errorf("user %q: %#v, encoding/json %#v", in, got, want)
		}
	}
	type rw struct {
		Read  []string `json:"read"`
		Write []string `json:"write"`
	}
	type perms struct {
		KV rw `json:"kv"`
	}
	type etcdRole struct {
		Role        string `json:"role"`
		Permissions perms  `json:"permissions"`
		Grant       *perms `json:"grant,omitempty"`
		Revoke      *perms `json:"revoke,omitempty"`
	}
	roles := []string{
		`{"role":"r","permissions":{"kv":{"read":["/a"],"write":null}}}`,
		`{"role":"r","permissions":{"kv":{"read":["/a"]}},"permissions":{"kv":{"write":["/w"]}}}`,
		`{"role":"r","grant":{"kv":{"read":["/a"]}},"grant":{"kv":{"write":["/b"]}}}`,
		`{"role":"r","grant":{"kv":{"read":[]}},"revoke":null}`,
		`{"role":"r","grant":{"kv":null}}`,
		`{"role":"r","grant":{}}`,
		`{"role":"r","permissions":null}`,
		`{"role":"r","permissions":[]}`,
		`{"role":"r","grant":"x"}`,
		`{"role":"r","grant":{"kv":[]}}`,
		`{"ROLE":"r","Permissions":{"KV":{"Read":["/x"]}}}`,
		`null`,
		`{"role":"r"}x`,
	}
	for _, in := range roles {
		var want etcdRole
		err := json.NewDecoder(strings.NewReader(in)).Decode(&want)
		got, ok := parseRoleJSON([]byte(in))
		if ok != (err == nil) {
			t.Errorf("role %q: ok %v, encoding/json %v", in, ok, err)
			continue
		}
		if !ok {
			continue
		}
		conv := func(p *permsBody) *perms {
			if p == nil {
				return nil
			}
			return &perms{KV: rw{p.Read, p.Write}}
		}
		mine := etcdRole{got.Role, *conv(&got.Permissions), conv(got.Grant), conv(got.Revoke)}
		if !reflect.DeepEqual(mine, want) {
			t.Errorf("role %q: %#v, encoding/json %#v", in, mine, want)
		}
	}
}

// FuzzParseUserJSON: never panics; whenever encoding/json accepts a body
// into etcd's user struct, so does parseUserJSON, with the same fields
// (valid UTF-8 only: encoding/json replaces bad bytes its own way).
func FuzzParseUserJSON(f *testing.F) {
	for _, s := range []string{`{"user":"u","password":"p","roles":["a"]}`, `{"User":"u","grant":["a"],"revoke":["b"]}`, `null`, `{"roles":null}`, `{"user":"u"} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := parseUserJSON(b)
		var want struct {
			User                 string
			Password             string
			Roles, Grant, Revoke []string
		}
		err := json.NewDecoder(strings.NewReader(string(b))).Decode(&want)
		if !strings.Contains(string(b), "\\u") && validUTF8JSON(b) && err == nil {
			if !ok {
				t.Fatalf("%q refused; encoding/json took it", b)
			}
			if got.User != want.User || got.Password != want.Password || !reflect.DeepEqual(got.Roles, want.Roles) ||
				!reflect.DeepEqual(got.Grant, want.Grant) || !reflect.DeepEqual(got.Revoke, want.Revoke) {
				t.Fatalf("%q: %#v, encoding/json %#v", b, got, want)
			}
		}
	})
}

// FuzzParseRoleJSON: never panics; whenever encoding/json accepts a body
// into etcd's role struct, so does parseRoleJSON, with the same fields.
func FuzzParseRoleJSON(f *testing.F) {
	for _, s := range []string{`{"role":"r","permissions":{"kv":{"read":["/a"],"write":["/b"]}}}`, `{"role":"r","grant":{"kv":{"read":["/a"]}}}`, `{"role":"r","revoke":null}`, `[]`} {
		f.Add([]byte(s))
	}
	type rw struct{ Read, Write []string }
	type perms struct{ KV rw }
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := parseRoleJSON(b)
		var want struct {
			Role          string
			Permissions   perms
			Grant, Revoke *perms
		}
		err := json.NewDecoder(strings.NewReader(string(b))).Decode(&want)
		if err != nil || !validUTF8JSON(b) || strings.Contains(string(b), "\\u") {
			return
		}
		if !ok {
			t.Fatalf("%q refused; encoding/json took it", b)
		}
		conv := func(p *permsBody) *perms {
			if p == nil {
				return nil
			}
			return &perms{rw{p.Read, p.Write}}
		}
		if got.Role != want.Role || !reflect.DeepEqual(*conv(&got.Permissions), want.Permissions) ||
			!reflect.DeepEqual(conv(got.Grant), want.Grant) || !reflect.DeepEqual(conv(got.Revoke), want.Revoke) {
			t.Fatalf("%q: %#v, encoding/json %#v", b, got, want)
		}
	})
}

func validUTF8JSON(b []byte) bool { return strings.ToValidUTF8(string(b), "") == string(b) }
