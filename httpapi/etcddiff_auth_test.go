package httpapi_test

import (
	"encoding/base64"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestEtcdDiffAuth sends one fixed sequence of v2 auth requests — users,
// roles, enabling and disabling, every refusal etcd 3.4.23 answers, bad
// JSON bodies, bad Authorization headers — and keys requests and watches
// made as guests and as users with and without the permission, to a real
// etcd and to Cairn's handler, and compares statuses, headers and JSON as
// TestEtcdDiff does. Index values are compared relative to each server's
// index just before each request: etcd's auth changes advance its index
// (they are keys under /2), Cairn's do not (API.md "Where Cairn
// deliberately differs" 4). What Cairn does differently on purpose is left
// out and listed in docs/compat.md (a role created with an empty grant or
// revoke object; HTTP status 500 paths; passwords over 72 bytes).
//
// CAIRN_DIFF_AGAINST=etcd compares etcd with a second etcd.
func TestEtcdDiffAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an etcd process; skipped with -short")
	}
	bin := requireEtcd(t)
	etcd := startEtcd(t, bin)
	var other *diffTarget
	if os.Getenv("CAIRN_DIFF_AGAINST") == "etcd" {
		other = startEtcd(t, bin)
		other.name = "etcd2"
	} else {
		other = startCairn(t)
	}
	d := newDiffer(t, etcd, other, 0)
	d.repro = "CAIRN_REQUIRE_ETCD=1 go test -race -count=1 -run 'TestEtcdDiffAuth$' ./httpapi"
	d.max = 1000
	steps := authDiffSteps()
	for i, s := range steps {
		diffRebase(t, d, basic("root", "rootpw"))
		op := &diffOp{kind: "auth", method: s.method, target: s.path, body: s.body, authorization: s.auth,
			watch: strings.Contains(s.path, "wait=true")}
		if s.body != "" {
			op.withBody = true
			if strings.HasPrefix(s.path, "/v2/keys") {
				op.ctype = "application/x-www-form-urlencoded"
			}
		}
		if s.olderIndexes {
			looseExec(d, i, op)
			continue
		}
		d.exec(i, op)
	}
	t.Logf("%d requests compared, %d differences", len(steps), d.reported)
}

// diffRebase makes each server's current index the base, reading it with
// credentials that pass once root exists (and are ignored before).
func diffRebase(t *testing.T, d *differ, auth string) {
	t.Helper()
	for _, tg := range []*diffTarget{d.etcd, d.other} {
		r := tg.do(&wireRequest{method: "GET", target: "/v2/keys/", authorization: auth}, opTimeout)
		idx, err := strconv.ParseUint(r.header.Get("X-Etcd-Index"), 10, 64)
		if r.err != nil || err != nil || r.status != 200 {
			t.Fatalf("%s: reading the current index: status %d, %v %s", tg.name, r.status, r.err, r.body)
		}
		tg.base = idx
	}
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

type authDiffStep struct {
	method, path, auth, body string
	// olderIndexes: the answer shows nodes written before auth changes,
	// whose index values differ by the auth changes etcd counted in
	// between (compared with node indexes masked).
	olderIndexes bool
}

// authDiffSteps is the sequence: first with auth disabled (everything
// open), then enabled with guest's default full access, then guest
// reduced, then users with roles, then disabled again.
func authDiffSteps() []authDiffStep {
	root, alice := basic("root", "rootpw"), basic("alice", "apw")
	s := func(method, path, auth, body string) authDiffStep {
		return authDiffStep{method: method, path: path, auth: auth, body: body}
	}
	older := func(st authDiffStep) authDiffStep { st.olderIndexes = true; return st }
	steps := []authDiffStep{
		// Disabled: every endpoint is open.
		s("GET", "/v2/auth/enable", "", ""),
		s("GET", "/v2/auth/users", "", ""),
		s("GET", "/v2/auth/users/", "", ""),
		s("GET", "/v2/auth/roles", "", ""),
		s("GET", "/v2/auth/roles/", "", ""),
		s("GET", "/v2/auth/roles/root", "", ""),
		s("PUT", "/v2/auth/enable", "", ""),
		s("DELETE", "/v2/auth/enable", "", ""),
		s("GET", "/v2/auth/users/u1", "", ""),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1"}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","password":"p"}`),
		s("GET", "/v2/auth/users/u1", "", ""),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1"}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1"}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","password":"q"}`),
		s("PUT", "/v2/auth/users/u2", "", `{"user":"u2","password":"p","roles":["b","a","a"]}`),
		s("GET", "/v2/auth/users/u2", "", ""),
		s("GET", "/v2/auth/users", "", ""),
		s("PUT", "/v2/auth/users/u2", "", `{"user":"u2","password":"z"}`),
		s("PUT", "/v2/auth/users/u3", "", `{"user":"u3","password":"p","roles":[]}`),
		s("GET", "/v2/auth/users/u3", "", ""),
		s("PUT", "/v2/auth/roles/r1", "", `{"role":"r1"}`),
		s("PUT", "/v2/auth/roles/r1", "", `{"role":"r1","grant":{"kv":{"read":["/b","/a"]}}}`),
		s("PUT", "/v2/auth/roles/r2", "", `{"role":"r2","permissions":{"kv":{"read":["/b","/a","/a"]}}}`),
		s("GET", "/v2/auth/roles/r2", "", ""),
		s("PUT", "/v2/auth/roles/r2", "", `{"role":"r2","revoke":{"kv":{"read":["/b"]}}}`),
		s("PUT", "/v2/auth/roles/r2", "", `{"role":"r2","revoke":{"kv":{"read":["/zz"]}}}`),
		s("PUT", "/v2/auth/roles/r4", "", `{"role":"r4"}`),
		s("PUT", "/v2/auth/roles/r4", "", `{"role":"r4","revoke":{"kv":{"write":["/zz"]}}}`),
		s("PUT", "/v2/auth/roles/r4", "", `{"role":"r4","revoke":{"kv":{"write":["/zz"]}}}`),
		s("PUT", "/v2/auth/roles/r4", "", `{"role":"r4","grant":{"kv":{"write":["/w","/w"]}}}`),
		s("PUT", "/v2/auth/roles/r4", "", `{"role":"r4","grant":{"kv":{"write":["/w"],"read":["/r"]}},"revoke":{"kv":{"write":["/w"]}}}`),
		s("GET", "/v2/auth/roles", "", ""),
		s("DELETE", "/v2/auth/roles/nope", "", ""),
		s("DELETE", "/v2/auth/users/nope", "", ""),
		s("GET", "/v2/auth/roles/nope", "", ""),
		s("GET", "/v2/auth/users/nope", "", ""),
		s("PUT", "/v2/auth/roles/root", "", `{"role":"root"}`),
		s("DELETE", "/v2/auth/roles/root", "", ""),
		s("PUT", "/v2/auth/roles/root", "", `{"role":"root","grant":{"kv":{"read":["/x"]}}}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","grant":["r1"],"roles":["x"]}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","grant":["r1"]}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","grant":["r1"]}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","revoke":["zz"]}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","grant":["nothere","x"],"revoke":["nothere"]}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","grant":["nothere"]}`),
		s("PUT", "/v2/auth/users/ghost", "", `{"user":"ghost","grant":["r1"]}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u2"}`),
		s("PUT", "/v2/auth/users/u1", "", `nojson`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","roles":"x"}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","roles":[1]}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1"} trailing`),
		s("PUT", "/v2/auth/users/u1", "", `{"User":"u1","Grant":["q"]}`),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","password":"p","roles":["a"]}`),
		s("PUT", "/v2/auth/users/u1", "", `[]`),
		s("PUT", "/v2/auth/users/u1", "", `null`),
		s("PUT", "/v2/auth/users/u1", "", ""),
		s("PUT", "/v2/auth/users/u1", "", `{"user":"u1","grant":null,"revoke":[],"password":null}`),
		s("GET", "/v2/auth/users/u1", "", ""),
		s("GET", "/v2/auth/users", "", ""),
		s("PUT", "/v2/auth/roles/r1", "", `{"role":"r1","permissions":{"kv":{"read":["/q"]}},"grant":{"kv":{"read":["/z"]}}}`),
		s("PUT", "/v2/auth/roles/r1", "", `{"role":"r1","grant":{"kv":{"read":["/a"]}}}`),
		s("PUT", "/v2/auth/roles/r1", "", `{"role":"r1"}`),
		s("PUT", "/v2/auth/roles/nothere", "", `{"role":"nothere","grant":{"kv":{"read":["/a"]}}}`),
		s("PUT", "/v2/auth/roles/r1", "", `{"role":"r2"}`),
		s("PUT", "/v2/auth/roles/r1", "", `{"role":"r1","permissions":[]}`),
		s("PUT", "/v2/auth/roles/r1", "", `{"ROLE":"r1","Grant":{"KV":{"Write":["/k"]}}}`),
		s("PUT", "/v2/auth/roles/r5", "", `{"role":"r5","permissions":{"kv":{"read":["/a"]}},"permissions":{"kv":{"write":["/b"]}}}`),
		s("GET", "/v2/auth/roles/r5", "", ""),
		s("GET", "/v2/auth/users/a/b", "", ""),
		s("GET", "/v2/auth/roles/a/b", "", ""),
		s("GET", "/v2/auth/users/u1/", "", ""),
		s("POST", "/v2/auth/enable", "", ""),
		s("HEAD", "/v2/auth/enable", "", ""),
		s("PUT", "/v2/auth/users", "", ""),
		s("DELETE", "/v2/auth/roles", "", ""),
		s("POST", "/v2/auth/roles/x", "", ""),
		s("GET", "/v2/auth", "", ""),
		s("GET", "/v2/auth/nothing", "", ""),
		s("GET", "/v2/auth/enable/", "", ""),
		s("DELETE", "/v2/auth/users/u3", "", ""),
		s("DELETE", "/v2/auth/roles/r4", "", ""),
		// Keys while disabled: credentials are ignored, even bad ones.
		s("PUT", "/v2/keys/open", "", "value=1"),
		s("GET", "/v2/keys/open", basic("nobody", "x"), ""),
		s("GET", "/v2/keys/open", "Bearer x", ""),

		// Enabling: root first; guest gets full access.
		s("PUT", "/v2/auth/users/root", "", `{"user":"root","password":"rootpw"}`),
		s("PUT", "/v2/auth/users/root", "", `{"user":"root"}`),
		s("GET", "/v2/auth/users/root", "", ""),
		s("PUT", "/v2/auth/enable", "", ""),
		s("GET", "/v2/auth/enable", "", ""),
		s("GET", "/v2/auth/enable", basic("nobody", "x"), ""),
		s("GET", "/v2/auth/roles/guest", "", ""),
		s("PUT", "/v2/auth/enable", "", ""),
		s("PUT", "/v2/auth/enable", root, ""),
		s("GET", "/v2/auth/users", "", ""),
		s("GET", "/v2/auth/users", basic("root", "bad"), ""),
		s("GET", "/v2/auth/users", basic("u1", "q"), ""),
		s("GET", "/v2/auth/users", "Bearer x", ""),
		s("GET", "/v2/auth/users", root, ""),
		s("GET", "/v2/auth/roles", root, ""),
		s("GET", "/v2/auth/roles/guest", root, ""),
		s("DELETE", "/v2/auth/users/root", "", ""),
		s("DELETE", "/v2/auth/users/root", root, ""),
		s("GET", "/v2/auth/users/a/b", root, ""),
		s("POST", "/v2/auth/users/x", "", ""),
		s("PUT", "/v2/auth/users/u9", "", `{"user":"u9","password":"p"}`),
		// Keys with guest's full access.
		s("PUT", "/v2/keys/foo", "", "value=1"),
		s("GET", "/v2/keys/foo", "", ""),
		older(s("GET", "/v2/keys/", "", "")),
		s("GET", "/v2/keys", "", ""),
		s("GET", "/v2/keys/foo", "Bearer x", ""),
		s("GET", "/v2/keys/foo", basic("root", "bad"), ""),
		s("GET", "/v2/keys/foo", basic("nobody", "bad"), ""),
		s("GET", "/v2/keys/foo", "Basic", ""),
		s("GET", "/v2/keys/foo", "basic "+strings.TrimPrefix(root, "Basic "), ""),
		s("GET", "/v2/keys/foo", "Basic  "+strings.TrimPrefix(root, "Basic "), ""),
		s("GET", "/v2/keys/foo", "Basic "+base64.StdEncoding.EncodeToString([]byte("root")), ""),
		s("GET", "/v2/keys/foo?recursive=bad", basic("nobody", "bad"), ""),
		s("GET", "/v2/keys/foo?waitIndex=x", "", ""),
		s("PATCH", "/v2/keys/foo", basic("nobody", "bad"), ""),
		s("DELETE", "/v2/keys/foo", "", ""),
		// Guest reads only; an exact pattern for guests is not checked as
		// recursive.
		s("PUT", "/v2/auth/roles/guest", root, `{"role":"guest","revoke":{"kv":{"write":["/*"]}}}`),
		s("PUT", "/v2/keys/f", "", "value=x"),
		older(s("GET", "/v2/keys/open", "", "")),
		s("PUT", "/v2/keys/f", root, "value=x"),
		s("PUT", "/v2/auth/roles/guest", root, `{"role":"guest","revoke":{"kv":{"read":["/*"]}},"grant":{"kv":{"read":["/gx"]}}}`),
		s("GET", "/v2/keys/open", "", ""),
		s("GET", "/v2/keys/gx", "", ""),
		s("GET", "/v2/keys/gx?recursive=true", "", ""),
		// Users with roles.
		s("PUT", "/v2/auth/roles/reader", root, `{"role":"reader","permissions":{"kv":{"read":["/pub/*","/exact"],"write":["/pub/w/*"]}}}`),
		s("GET", "/v2/auth/users/alice", root, ""),
		s("PUT", "/v2/auth/users/alice", root, `{"user":"alice","password":"apw","roles":["reader"]}`),
		s("GET", "/v2/auth/users/alice", root, ""),
		s("PUT", "/v2/keys/pub/a", root, "value=1"),
		s("PUT", "/v2/keys/exact", root, "value=1"),
		s("PUT", "/v2/keys/exact2", root, "value=1"),
		s("PUT", "/v2/keys/pub/w/x", root, "value=1"),
		s("GET", "/v2/keys/pub/a", alice, ""),
		s("GET", "/v2/keys/pub", alice, ""),
		s("GET", "/v2/keys/pub/", alice, ""),
		s("GET", "/v2/keys/pub/?recursive=true", alice, ""),
		s("GET", "/v2/keys/pub?recursive=true", alice, ""),
		s("GET", "/v2/keys/pub/a?recursive=true", alice, ""),
		s("GET", "/v2/keys/exact", alice, ""),
		s("GET", "/v2/keys/exact?recursive=true", alice, ""),
		s("GET", "/v2/keys/exact2", alice, ""),
		s("GET", "/v2/keys/exact/", alice, ""),
		s("GET", "/v2/keys/other", alice, ""),
		s("HEAD", "/v2/keys/pub/a", alice, ""),
		s("GET", "/v2/ke%79s/pub/a", alice, ""),
		s("GET", "/v2/keys/pu%62/a", alice, ""),
		s("PUT", "/v2/keys/pub/a", alice, "value=2"),
		s("PUT", "/v2/keys/pub/w/x", alice, "value=2"),
		s("GET", "/v2/keys/pub/a?wait=true&waitIndex={i:-4}", alice, ""),
		s("GET", "/v2/keys/pub/w/x?wait=true&waitIndex={i:0}", alice, ""),
		s("GET", "/v2/keys/pub?wait=true&recursive=true&waitIndex={i:0}", alice, ""),
		s("GET", "/v2/keys/pub/?wait=true&recursive=true&waitIndex={i:0}", alice, ""),
		s("GET", "/v2/keys/pub/w/x?wait=true&waitIndex={i:0}", "", ""),
		s("DELETE", "/v2/keys/pub/w/x", alice, ""),
		s("POST", "/v2/keys/pub/w", alice, "value=3"),
		s("PUT", "/v2/keys/pub/w/y?recursive=true", alice, "value=2"),
		s("DELETE", "/v2/keys/pub/w?recursive=true", alice, ""),
		s("GET", "/v2/keys/pub/a", basic("alice", "wrong"), ""),
		s("GET", "/v2/auth/users", alice, ""),
		s("GET", "/v2/auth/enable", alice, ""),
		s("DELETE", "/v2/auth/enable", alice, ""),
		// A password change; a user given the root role; a role removed
		// from under its users.
		s("PUT", "/v2/auth/users/alice", root, `{"user":"alice","password":"apw2"}`),
		s("GET", "/v2/keys/pub/a", alice, ""),
		older(s("GET", "/v2/keys/pub/a", basic("alice", "apw2"), "")),
		s("PUT", "/v2/auth/users/bob", root, `{"user":"bob","password":"bpw","roles":["root"]}`),
		s("GET", "/v2/auth/users", basic("bob", "bpw"), ""),
		s("PUT", "/v2/keys/anything", basic("bob", "bpw"), "value=b"),
		s("DELETE", "/v2/auth/roles/reader", root, ""),
		s("GET", "/v2/keys/pub/a", basic("alice", "apw2"), ""),
		s("GET", "/v2/auth/users/alice", root, ""),
		s("GET", "/v2/auth/users", root, ""),
		s("PUT", "/v2/auth/users/root", root, `{"user":"root","revoke":["root"]}`),
		s("GET", "/v2/auth/users/root", root, ""),
		// Disabling.
		s("DELETE", "/v2/auth/enable", basic("u1", "q"), ""),
		s("DELETE", "/v2/auth/enable", root, ""),
		s("DELETE", "/v2/auth/enable", "", ""),
		older(s("PUT", "/v2/keys/f", "", "value=y")),
		s("DELETE", "/v2/auth/users/root", "", ""),
		s("DELETE", "/v2/auth/roles/guest", "", ""),
		s("GET", "/v2/auth/users", "", ""),
		s("GET", "/v2/auth/roles", "", ""),
	}
	return steps
}

// nodeIndex matches a node's index values in a rendered body.
var nodeIndex = regexp.MustCompile(`((?:modified|created)Index\\":)-?[0-9]+`)

// looseExec is differ.exec with the nodes' index values masked.
func looseExec(d *differ, step int, op *diffOp) {
	er := d.etcd.do(op.wire(d.etcd.base), opTimeout)
	or := d.other.do(op.wire(d.other.base), opTimeout)
	ev, ov := compareResponses(er, or, d.etcd.base, d.other.base, false)
	ev, ov = nodeIndex.ReplaceAllString(ev, "${1}N"), nodeIndex.ReplaceAllString(ov, "${1}N")
	if ev != ov {
		d.reported++
		d.t.Errorf("difference at step %d (node indexes masked): %s\n--- %s\n%s--- %s\n%s", step, op, d.etcd.name, ev, d.other.name, ov)
	}
}
