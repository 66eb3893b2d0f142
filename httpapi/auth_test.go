package httpapi_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// authServer serves the handler over a fresh server.Local.
func authServer(t *testing.T, cfg httpapi.Config) (*httptest.Server, *server.Local) {
	t.Helper()
	be := server.NewLocal(store.New(store.DefaultEventHistory), 0xca172, nil)
	cfg.Backend = be
	srv := httptest.NewServer(httpapi.NewHandler(cfg))
	t.Cleanup(func() {
		srv.Close()
		be.Close()
	})
	return srv, be
}

// authStep is one request and the answer etcd 3.4.23 gave to it (API.md
// §5, observed): status, exact body, and whether X-Etcd-Cluster-Id is
// present.
type authStep struct {
	method, path, user, body string
	status                   int
	want                     string
	noCluster                bool   // etcd sends no X-Etcd-Cluster-Id (a 401 or 400 before the handler)
	header                   string // an Authorization header to send instead of user
}

func runAuthSteps(t *testing.T, base string, steps []authStep) {
	t.Helper()
	for i, s := range steps {
		req, _ := http.NewRequest(s.method, base+s.path, strings.NewReader(s.body))
		if s.user != "" {
			name, pw, _ := strings.Cut(s.user, ":")
			req.SetBasicAuth(name, pw)
		}
		if s.header != "" {
			req.Header.Set("Authorization", s.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.status || string(b) != s.want {
			t.Fatalf("step %d: %s %s (as %q): got %d %q, want %d %q", i, s.method, s.path, s.user, resp.StatusCode, b, s.status, s.want)
		}
		if _, has := resp.Header["X-Etcd-Cluster-Id"]; has == s.noCluster && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("step %d: %s %s: X-Etcd-Cluster-Id present %v", i, s.method, s.path, has)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusMethodNotAllowed && ct != "application/json" {
			t.Fatalf("step %d: Content-Type %q", i, ct)
		}
	}
}

const noAuth = `{"message":"Insufficient credentials"}`
const noAuthKeys = `{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}` + "\n"

// Every /v2/auth endpoint answers as etcd 3.4.23 did to the same
// sequence: statuses, bodies byte for byte (a newline after successful
// bodies, none after errors), headers.
func TestAuthEndpointsAsEtcd(t *testing.T) {
	srv, _ := authServer(t, httpapi.Config{})
	const rootRole = `{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}`
	runAuthSteps(t, srv.URL, []authStep{
		{method: "GET", path: "/v2/auth/enable", status: 200, want: `{"enabled":false}` + "\n"},
		{method: "GET", path: "/v2/auth/users", status: 200, want: `{"users":null}` + "\n"},
		{method: "GET", path: "/v2/auth/users/", status: 200, want: `{"users":null}` + "\n"},
		{method: "GET", path: "/v2/auth/roles", status: 200, want: `{"roles":[` + rootRole + `]}` + "\n"},
		{method: "GET", path: "/v2/auth/roles/root", status: 200, want: rootRole + "\n"},
		{method: "PUT", path: "/v2/auth/enable", status: 409, want: `{"message":"auth: No root user available, please create one"}`},
		{method: "DELETE", path: "/v2/auth/enable", status: 409, want: `{"message":"auth: already disabled"}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1"}`, status: 400, want: `{"message":"auth: Cannot create user u1 with an empty password"}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1","password":"p"}`, status: 201, want: `{"user":"u1","roles":null}` + "\n"},
		{method: "GET", path: "/v2/auth/users/u1", status: 200, want: `{"user":"u1"}` + "\n"},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1"}`, status: 200, want: `{"user":"u1","roles":[]}` + "\n"},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1"}`, status: 400, want: `{"message":"auth: User not updated. Use grant/revoke/password to update the user."}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1","password":"q"}`, status: 200, want: `{"user":"u1","roles":[]}` + "\n"},
		{method: "PUT", path: "/v2/auth/users/u2", body: `{"user":"u2","password":"p","roles":["b","a","a"]}`, status: 200, want: `{"user":"u2","roles":["b","a","a"]}` + "\n"},
		{method: "GET", path: "/v2/auth/users/u2", status: 404, want: `{"message":"auth: Role b does not exist."}`},
		{method: "GET", path: "/v2/auth/users", status: 200, want: `{"users":[{"user":"u1"},{"user":"u2"}]}` + "\n"},
		{method: "PUT", path: "/v2/auth/users/u2", body: `{"user":"u2","password":"z"}`, status: 200, want: `{"user":"u2","roles":["a","b"]}` + "\n"},
		{method: "PUT", path: "/v2/auth/roles/r1", body: `{"role":"r1"}`, status: 201, want: `{"role":"r1","permissions":{"kv":{"read":null,"write":null}}}` + "\n"},
		{method: "PUT", path: "/v2/auth/roles/r1", body: `{"role":"r1","grant":{"kv":{"read":["/b","/a"]}}}`, status: 200, want: `{"role":"r1","permissions":{"kv":{"read":["/a","/b"],"write":[]}}}` + "\n"},
		{method: "PUT", path: "/v2/auth/roles/r2", body: `{"role":"r2","permissions":{"kv":{"read":["/b","/a","/a"]}}}`, status: 201, want: `{"role":"r2","permissions":{"kv":{"read":["/b","/a","/a"],"write":null}}}` + "\n"},
		{method: "PUT", path: "/v2/auth/roles/r2", body: `{"role":"r2","revoke":{"kv":{"read":["/b"]}}}`, status: 200, want: `{"role":"r2","permissions":{"kv":{"read":["/a"],"write":[]}}}` + "\n"},
		{method: "PUT", path: "/v2/auth/roles/r2", body: `{"role":"r2","revoke":{"kv":{"read":["/zz"]}}}`, status: 400, want: `{"message":"auth: Role not updated. Use grant/revoke to update the role."}`},
		{method: "PUT", path: "/v2/auth/roles/r3", body: `{"role":"r3","grant":{"kv":{"read":[]}}}`, status: 201, want: `{"role":"r3","permissions":{"kv":{"read":null,"write":null}},"grant":{"kv":{"read":[],"write":null}}}` + "\n"},
		{method: "DELETE", path: "/v2/auth/roles/nope", status: 404, want: `{"message":"auth: Role nope doesn't exist."}`},
		{method: "DELETE", path: "/v2/auth/users/nope", status: 404, want: `{"message":"auth: User nope does not exist"}`},
		{method: "GET", path: "/v2/auth/roles/nope", status: 404, want: `{"message":"auth: Role nope does not exist."}`},
		{method: "GET", path: "/v2/auth/users/nope", status: 404, want: `{"message":"auth: User nope does not exist."}`},
		{method: "PUT", path: "/v2/auth/roles/root", body: `{"role":"root"}`, status: 403, want: `{"message":"auth: Cannot modify role root: is root role."}`},
		{method: "DELETE", path: "/v2/auth/roles/root", status: 403, want: `{"message":"auth: Cannot modify role root: is root role."}`},
		{method: "PUT", path: "/v2/auth/roles/root", body: `{"role":"root","grant":{"kv":{"read":["/x"]}}}`, status: 403, want: `{"message":"auth: Cannot modify role root: is root role."}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1","grant":["r1"],"roles":["x"]}`, status: 400, want: `{"message":"User JSON contains both roles and grant/revoke"}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1","grant":["r1"]}`, status: 200, want: `{"user":"u1","roles":["r1"]}` + "\n"},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1","grant":["r1"]}`, status: 409, want: `{"message":"auth: Granting duplicate role r1 for user u1"}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1","revoke":["zz"]}`, status: 409, want: `{"message":"auth: Revoking ungranted role zz for user u1"}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1","grant":["nothere"]}`, status: 200, want: `{"user":"u1","roles":["nothere","r1"]}` + "\n"},
		{method: "PUT", path: "/v2/auth/users/ghost", body: `{"user":"ghost","grant":["r1"]}`, status: 404, want: `{"message":"auth: User ghost does not exist."}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u2"}`, status: 400, want: `{"message":"User JSON name does not match the name in the URL"}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `nojson`, status: 400, want: `{"message":"Invalid JSON in request body."}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1","roles":"x"}`, status: 400, want: `{"message":"Invalid JSON in request body."}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1"} trailing`, status: 400, want: `{"message":"auth: User not updated. Use grant/revoke/password to update the user."}`},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"User":"u1","Grant":["q"]}`, status: 200, want: `{"user":"u1","roles":["nothere","q","r1"]}` + "\n"},
		{method: "PUT", path: "/v2/auth/users/u1", body: `{"user":"u1","password":"p","roles":["a"]}`, status: 409, want: `{"message":"auth: User u1 already exists."}`},
		{method: "GET", path: "/v2/auth/users/u1", status: 404, want: `{"message":"auth: Role nothere does not exist."}`},
		{method: "PUT", path: "/v2/auth/roles/r1", body: `{"role":"r1","permissions":{"kv":{"read":["/q"]}},"grant":{"kv":{"read":["/z"]}}}`, status: 400, want: `{"message":"Role JSON contains both permissions and grant/revoke"}`},
		{method: "PUT", path: "/v2/auth/roles/r1", body: `{"role":"r1","grant":{"kv":{"read":["/a"]}}}`, status: 409, want: `{"message":"auth: Granting duplicate read permission /a"}`},
		{method: "PUT", path: "/v2/auth/roles/r1", body: `{"role":"r1","grant":{"kv":{"write":["/w","/w"]}}}`, status: 409, want: `{"message":"auth: Granting duplicate write permission /w"}`},
		{method: "PUT", path: "/v2/auth/roles/r1", body: `{"role":"r1"}`, status: 409, want: `{"message":"auth: Role r1 already exists."}`},
		{method: "PUT", path: "/v2/auth/roles/nothere", body: `{"role":"nothere","grant":{"kv":{"read":["/a"]}}}`, status: 404, want: `{"message":"auth: Role nothere does not exist."}`},
		{method: "PUT", path: "/v2/auth/roles/r1", body: `{"role":"r2"}`, status: 400, want: `{"message":"Role JSON name does not match the name in the URL"}`},
		{method: "PUT", path: "/v2/auth/roles/r1", body: `[]`, status: 400, want: `{"message":"Invalid JSON in request body."}`},
		{method: "GET", path: "/v2/auth/users/a/b", status: 400, want: `{"message":"Invalid path"}`, noCluster: true},
		{method: "GET", path: "/v2/auth/roles/a/b", status: 400, want: `{"message":"Invalid path"}`, noCluster: true},
		{method: "POST", path: "/v2/auth/enable", status: 405, want: "Method Not Allowed\n"},
		{method: "HEAD", path: "/v2/auth/enable", status: 405},
		{method: "PUT", path: "/v2/auth/users", status: 405, want: "Method Not Allowed\n"},
		{method: "POST", path: "/v2/auth/roles/x", status: 405, want: "Method Not Allowed\n"},
		// Enabling: root first; guest is created with full access.
		{method: "PUT", path: "/v2/auth/users/root", body: `{"user":"root","password":"rootpw"}`, status: 201, want: `{"user":"root","roles":["root"]}` + "\n"},
		{method: "PUT", path: "/v2/auth/users/root", body: `{"user":"root"}`, status: 400, want: `{"message":"auth: User not updated. Use grant/revoke/password to update the user."}`},
		{method: "PUT", path: "/v2/auth/enable", status: 200, want: ""},
		{method: "GET", path: "/v2/auth/enable", status: 200, want: `{"enabled":true}` + "\n"},
		{method: "GET", path: "/v2/auth/roles/guest", status: 401, want: noAuth, noCluster: true},
		{method: "PUT", path: "/v2/auth/enable", status: 401, want: noAuth, noCluster: true},
		{method: "PUT", path: "/v2/auth/enable", user: "root:rootpw", status: 409, want: `{"message":"auth: already enabled"}`},
		{method: "GET", path: "/v2/auth/users", status: 401, want: noAuth, noCluster: true},
		{method: "GET", path: "/v2/auth/users", user: "root:bad", status: 401, want: noAuth, noCluster: true},
		{method: "GET", path: "/v2/auth/users", user: "u1:q", status: 401, want: noAuth, noCluster: true},
		{method: "GET", path: "/v2/auth/users", user: "root:rootpw", status: 200,
			want: `{"users":[{"user":"root","roles":[` + rootRole + `]},{"user":"u1","roles":[{"role":"r1","permissions":{"kv":{"read":["/a","/b"],"write":[]}}}]},{"user":"u2"}]}` + "\n"},
		{method: "GET", path: "/v2/auth/roles/guest", user: "root:rootpw", status: 200, want: `{"role":"guest","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}` + "\n"},
		{method: "DELETE", path: "/v2/auth/users/root", status: 401, want: noAuth, noCluster: true},
		{method: "DELETE", path: "/v2/auth/users/root", user: "root:rootpw", status: 403, want: `{"message":"auth: Cannot delete root user while auth is enabled."}`},
		{method: "GET", path: "/v2/auth/users/a/b", user: "root:rootpw", status: 400, want: `{"message":"Invalid path"}`, noCluster: true},
	})
	// Keys with guest's default access, then with guest's write revoked.
	keyStep := func(method, path, user, header string, status int) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader("value=1"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			name, pw, _ := strings.Cut(user, ":")
			req.SetBasicAuth(name, pw)
		}
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("%s %s as %q %q: %d %s, want %d", method, path, user, header, resp.StatusCode, b, status)
		}
		if status == http.StatusUnauthorized {
			if string(b) != noAuthKeys || resp.Header.Get("X-Etcd-Index") != "0" || resp.Header.Get("X-Etcd-Cluster-Id") == "" {
				t.Fatalf("%s %s: 401 as %q %v", method, path, b, resp.Header)
			}
		}
	}
	keyStep("PUT", "/v2/keys/foo", "", "", 201)
	keyStep("GET", "/v2/keys/foo", "", "", 200)
	keyStep("GET", "/v2/keys/", "", "", 200)
	keyStep("GET", "/v2/keys", "", "", 401) // the key is "", which "/*" does not match
	keyStep("GET", "/v2/keys/foo", "", "Bearer x", 401)
	keyStep("GET", "/v2/keys/foo", "root:bad", "", 401)
	keyStep("GET", "/v2/keys/foo", "nobody:bad", "", 401)
	keyStep("GET", "/v2/keys/foo", "", "Basic", 401)
	keyStep("GET", "/v2/keys/foo", "", "basic cm9vdDpyb290cHc=", 200)
	keyStep("GET", "/v2/keys/foo", "", "Basic  cm9vdDpyb290cHc=", 401)
	keyStep("GET", "/v2/keys/foo?recursive=bad", "nobody:bad", "", 400) // parameters are checked first
	runAuthSteps(t, srv.URL, []authStep{
		{method: "PUT", path: "/v2/auth/roles/guest", user: "root:rootpw", body: `{"role":"guest","revoke":{"kv":{"write":["/*"]}}}`,
			status: 200, want: `{"role":"guest","permissions":{"kv":{"read":["/*"],"write":[]}}}` + "\n"},
	})
	keyStep("PUT", "/v2/keys/f", "", "", 401)
	keyStep("GET", "/v2/keys/foo", "", "", 200)
	keyStep("PUT", "/v2/keys/f", "root:rootpw", "", 201)
	runAuthSteps(t, srv.URL, []authStep{
		{method: "DELETE", path: "/v2/auth/enable", user: "u1:q", status: 401, want: noAuth, noCluster: true},
		{method: "DELETE", path: "/v2/auth/enable", user: "root:rootpw", status: 200, want: ""},
		{method: "DELETE", path: "/v2/auth/users/root", status: 200, want: ""},
		{method: "DELETE", path: "/v2/auth/roles/r1", status: 200, want: ""},
	})
	keyStep("PUT", "/v2/keys/f", "", "", 200)
}

// The permission model on /v2/keys (observed on etcd 3.4.23 with a role
// reading /pub/* and /exact and writing /pub/w/*): recursive requests
// need a "*" pattern, the path counts as sent (a trailing slash too),
// watches need read access, writes need write access; other endpoints.
func TestAuthKeysPermissions(t *testing.T) {
	srv, be := authServer(t, httpapi.Config{})
	setupAlice(t, be)
	for _, k := range []string{"/pub/a", "/exact", "/exact2", "/pub/w/x"} {
		if _, err := be.Do(t.Context(), &store.Request{Op: store.OpSet, Path: k, Value: "1"}); err != nil {
			t.Fatal(err)
		}
	}
	a := "alice:apw"
	for _, c := range []struct {
		method, path, user string
		status             int
	}{
		{"GET", "/v2/keys/pub/a", a, 200},
		{"GET", "/v2/keys/pub", a, 401},
		{"GET", "/v2/keys/pub/", a, 200},
		{"GET", "/v2/keys/pub/?recursive=true", a, 200},
		{"GET", "/v2/keys/pub?recursive=true", a, 401},
		{"GET", "/v2/keys/pub/a?recursive=true", a, 200},
		{"GET", "/v2/keys/exact", a, 200},
		{"GET", "/v2/keys/exact?recursive=true", a, 401},
		{"GET", "/v2/keys/exact2", a, 401},
		{"GET", "/v2/keys/exact/", a, 401},
		{"GET", "/v2/keys/other", a, 401},
		{"HEAD", "/v2/keys/pub/a", a, 200},
		{"PUT", "/v2/keys/pub/a", a, 401},
		{"PUT", "/v2/keys/pub/w/x", a, 200},
		{"DELETE", "/v2/keys/pub/w/x", a, 200},
		{"POST", "/v2/keys/pub/w", a, 401},
		{"PUT", "/v2/keys/pub/w/y?recursive=true", a, 201},
		{"GET", "/v2/keys/pub/a?wait=true&waitIndex=1", a, 200},
		{"GET", "/v2/keys/pub?wait=true&recursive=true&waitIndex=1", a, 401},
		{"GET", "/v2/keys/pub/?wait=true&recursive=true&waitIndex=1", a, 200},
		{"GET", "/v2/keys/other?wait=true&waitIndex=1", a, 401},
		{"GET", "/v2/keys/pub/a?recursive=bad", a, 400},
		{"GET", "/v2/keys/pub/a", "alice:wrong", 401},
		{"GET", "/v2/keys/pub/a", "", 401},
		{"GET", "/v2/keys/pub/a?wait=true&waitIndex=1", "", 401},
		{"PATCH", "/v2/keys/pub/a", "", 405},
		{"GET", "/v2/ke%79s/pub/a", a, 200},
		{"GET", "/v2/keys/pu%62/a", a, 200},
		{"GET", "/v2/keys/pub/a", "root:rootpw", 200},
		{"GET", "/v2/keys/?recursive=true", "root:rootpw", 200},
		{"PUT", "/v2/keys/anything", "root:rootpw", 201},
		// Locks and queues take their hidden directory's permission.
		{"POST", "/v2/locks/l1?ttl=5", "", 401},
		{"GET", "/v2/locks/l1", "", 401},
		{"POST", "/v2/locks/l1?ttl=5", a, 401},
		{"POST", "/v2/locks/l1?ttl=5", "root:rootpw", 201},
		{"GET", "/v2/locks/l1", "root:rootpw", 200},
		{"GET", "/v2/locks/pl", a, 200},
		{"POST", "/v2/locks/pl?ttl=5", a, 201},
		{"PATCH", "/v2/locks/l1", "", 405},
		{"POST", "/v2/queues/q1?value=x", "", 401},
		{"GET", "/v2/queues/q1", "", 401},
		{"DELETE", "/v2/queues/q1", "", 401},
		{"POST", "/v2/queues/q1/reservations?ttl=5", "", 401},
		{"DELETE", "/v2/queues/q1/reservations/r1", "", 401},
		{"POST", "/v2/queues/q1?value=x", "root:rootpw", 201},
		{"POST", "/v2/queues/q1/reservations?ttl=5", "root:rootpw", 201},
		{"GET", "/v2/queues/pq", a, 200},
		{"POST", "/v2/queues/pq?value=x", a, 401},
		// Open endpoints.
		{"GET", "/version", "", 200},
		{"GET", "/health", "", 200},
		{"GET", "/v2/stats/store", "", 200},
		{"GET", "/v2/auth/enable", "", 200},
		{"GET", "/v2/auth/users", a, 401},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		if c.user != "" {
			name, pw, _ := strings.Cut(c.user, ":")
			req.SetBasicAuth(name, pw)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s as %q: %d %s, want %d", c.method, c.path, c.user, resp.StatusCode, b, c.status)
		}
		if c.status == 401 && string(b) != noAuthKeys && !strings.HasPrefix(c.path, "/v2/auth") {
			t.Errorf("%s %s: 401 body %q", c.method, c.path, b)
		}
	}
}

// setupAlice creates root, a role reading /pub/* and /exact and writing
// /pub/w/* (and the /_cairn directories of lock pl and queue pq), alice
// with that role, enables auth and takes every permission from guest.
func setupAlice(t *testing.T, be *server.Local) {
	t.Helper()
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := be.PutUser(ctx, server.UserChange{Mode: server.UserCreateOrUpdate, Name: "root", Password: "rootpw"})
	must(err)
	must(be.CreateRole(ctx, server.AuthRole{Name: "reader",
		Read:  []string{"/pub/*", "/exact", "/_cairn/locks/pl", "/_cairn/queues/pq"},
		Write: []string{"/pub/w/*", "/_cairn/locks/pl"}}))
	_, _, err = be.PutUser(ctx, server.UserChange{Mode: server.UserCreate, Name: "alice", Password: "apw", Roles: []string{"reader"}})
	must(err)
	must(be.EnableAuth(ctx, server.GuestNone))
}

// With a real member: /v2/members GET stays open, changes need root;
// /snapshot needs root.
func TestAuthMembersAndSnapshot(t *testing.T) {
	m, srv, _ := oneMember(t)
	ctx := t.Context()
	if _, _, err := m.PutUser(ctx, server.UserChange{Mode: server.UserCreate, Name: "alice", Password: "apw", Roles: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.PutUser(ctx, server.UserChange{Mode: server.UserCreateOrUpdate, Name: "root", Password: "rootpw"}); err != nil {
		t.Fatal(err)
	}
	if err := m.EnableAuth(ctx, server.GuestFull); err != nil {
		t.Fatal(err)
	}
	const js = "application/json"
	for _, c := range []struct {
		method, path, user, body string
		status                   int
		want                     string
	}{
		{"GET", "/v2/members", "", "", 200, ""},
		{"POST", "/v2/members", "", `{"peerURLs":["http://127.0.0.1:1"]}`, 401, noAuth},
		{"DELETE", "/v2/members/abc", "", "", 401, noAuth},
		{"PUT", "/v2/members/abc", "alice:apw", `{"peerURLs":["http://127.0.0.1:1"]}`, 401, noAuth},
		{"DELETE", "/v2/members/abc", "root:rootpw", "", 404, `{"message":"No such member: abc"}`},
		{"GET", "/snapshot", "", "", 401, noAuth},
		{"GET", "/snapshot", "alice:apw", "", 401, noAuth},
		{"GET", "/v2/machines", "", "", 200, ""},
		{"GET", "/v2/stats/self", "", "", 200, ""},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", js)
		if c.user != "" {
			name, pw, _ := strings.Cut(c.user, ":")
			req.SetBasicAuth(name, pw)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || c.want != "" && string(b) != c.want {
			t.Errorf("%s %s as %q: %d %q, want %d %q", c.method, c.path, c.user, resp.StatusCode, b, c.status, c.want)
		}
		if c.status == 401 && resp.Header.Get("X-Etcd-Cluster-Id") != "" {
			t.Errorf("%s %s: 401 with X-Etcd-Cluster-Id", c.method, c.path)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/snapshot", nil)
	req.SetBasicAuth("root", "rootpw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/snapshot as root: %d", resp.StatusCode)
	}
}

// With client-certificate auth on, a TLS request without an Authorization
// header is made by the user its certificate's common name names; an
// unknown name is a guest; an Authorization header still wins.
func TestAuthClientCertificate(t *testing.T) {
	be := server.NewLocal(store.New(store.DefaultEventHistory), 1, nil)
	defer be.Close()
	setupAlice(t, be)
	reg := prometheus.NewRegistry()
	h := httpapi.NewHandler(httpapi.Config{Backend: be, ClientCertAuth: true, Metrics: reg})
	off := httpapi.NewHandler(httpapi.Config{Backend: be})
	if _, err := be.Do(t.Context(), &store.Request{Op: store.OpSet, Path: "/pub/a", Value: "1"}); err != nil {
		t.Fatal(err)
	}
	do := func(h http.Handler, cn, user, path string) int {
		req := httptest.NewRequest("GET", path, nil)
		if cn != "" {
			req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: cn}}}}
		}
		if user != "" {
			name, pw, _ := strings.Cut(user, ":")
			req.SetBasicAuth(name, pw)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	for _, c := range []struct {
		h          http.Handler
		cn, user   string
		path       string
		want       int
		what       string
		failReason string
	}{
		{h, "alice", "", "/v2/keys/pub/a", 200, "alice by certificate", ""},
		{h, "alice", "", "/v2/keys/other", 401, "alice by certificate, no permission", "permission"},
		{h, "nobody", "", "/v2/keys/pub/a", 401, "an unknown name is a guest (no access)", "permission"},
		{h, "root", "", "/v2/auth/users", 200, "root by certificate", ""},
		{h, "alice", "", "/v2/auth/users", 401, "alice is not root", "permission"},
		{h, "root", "alice:wrong", "/v2/keys/pub/a", 401, "a bad header wins over the certificate", "password"},
		{h, "", "", "/v2/keys/pub/a", 401, "no certificate: a guest", "permission"},
		{off, "alice", "", "/v2/keys/pub/a", 401, "certificate auth off", ""},
	} {
		if got := do(c.h, c.cn, c.user, c.path); got != c.want {
			t.Errorf("%s: %d, want %d", c.what, got, c.want)
		}
	}
	if n := testutil.ToFloat64(mustCounter(t, reg, "cairn_auth_failures_total", "password")); n != 1 {
		t.Errorf("password failures %v", n)
	}
}

// mustCounter finds a counter with one label value in reg.
func mustCounter(t *testing.T, reg *prometheus.Registry, name, label string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return nil
}
