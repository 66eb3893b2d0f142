package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// authReq sends one request as user ("" for none; "user:password"),
// retrying while the member is unreachable or answers 500 (no leader yet).
func authReq(t *testing.T, p *proc, method, path, user string, form url.Values, ctype string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, p.client+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if user != "" {
			name, pw, _ := strings.Cut(user, ":")
			req.SetBasicAuth(name, pw)
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError {
				return resp.StatusCode, string(b)
			}
			err = fmt.Errorf("500: %s", b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s%s as %q: %v", method, p.client, path, user, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const e2eNoAuthKeys = `{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}` + "\n"

// authCheckEnforced asserts, on member p, what the auth set up by
// TestAuthEtcdctl allows: anonymous requests refused on keys, watches,
// locks, queues and members changes; alice (password alicePW) reads /pub
// and nothing else and writes nothing; a wrong password refused; root
// does everything.
func authCheckEnforced(t *testing.T, p *proc, alicePW string) {
	t.Helper()
	alice := "alice:" + alicePW
	for _, c := range []struct {
		method, path, user string
		form               url.Values
		ctype              string
		status             int
		body               string
	}{
		{"GET", "/v2/keys/pub/x", "", nil, "", 401, e2eNoAuthKeys},
		{"PUT", "/v2/keys/pub/x", "", url.Values{"value": {"anon"}}, "", 401, e2eNoAuthKeys},
		{"GET", "/v2/keys/pub/x?wait=true", "", nil, "", 401, e2eNoAuthKeys},
		{"GET", "/v2/keys/pub/?wait=true&recursive=true", "", nil, "", 401, e2eNoAuthKeys},
		{"POST", "/v2/locks/l1?ttl=5", "", nil, "", 401, e2eNoAuthKeys},
		{"GET", "/v2/locks/l1", "", nil, "", 401, e2eNoAuthKeys},
		{"POST", "/v2/queues/q1", "", url.Values{"value": {"x"}}, "", 401, e2eNoAuthKeys},
		{"DELETE", "/v2/queues/q1", "", nil, "", 401, e2eNoAuthKeys},
		{"POST", "/v2/members", "", nil, "application/json", 401, `{"message":"Insufficient credentials"}`},
		{"DELETE", "/v2/members/1", "", nil, "", 401, `{"message":"Insufficient credentials"}`},
		{"GET", "/v2/auth/users", "", nil, "", 401, `{"message":"Insufficient credentials"}`},
		{"GET", "/v2/members", "", nil, "", 200, ""},
		{"GET", "/v2/auth/enable", "", nil, "", 200, `{"enabled":true}` + "\n"},
		{"GET", "/v2/keys/pub/x", alice, nil, "", 200, ""},
		{"GET", "/v2/keys/pub/?recursive=true", alice, nil, "", 200, ""},
		{"GET", "/v2/keys/pub?recursive=true", alice, nil, "", 401, e2eNoAuthKeys},
		{"GET", "/v2/keys/secret", alice, nil, "", 401, e2eNoAuthKeys},
		{"PUT", "/v2/keys/pub/x", alice, url.Values{"value": {"alice"}}, "", 401, e2eNoAuthKeys},
		{"POST", "/v2/locks/l1?ttl=5", alice, nil, "", 401, e2eNoAuthKeys},
		{"GET", "/v2/auth/users", alice, nil, "", 401, `{"message":"Insufficient credentials"}`},
		{"GET", "/v2/keys/pub/x", "alice:wrong", nil, "", 401, e2eNoAuthKeys},
		{"GET", "/v2/keys/pub/x", "root:wrong", nil, "", 401, e2eNoAuthKeys},
		{"GET", "/v2/keys/secret", "root:rootpw", nil, "", 200, ""},
		{"GET", "/v2/auth/users", "root:rootpw", nil, "", 200, ""},
		{"GET", "/v2/locks/l1", "root:rootpw", nil, "", 200, ""},
	} {
		code, body := authReq(t, p, c.method, c.path, c.user, c.form, c.ctype)
		if code != c.status || (c.body != "" && body != c.body) {
			t.Fatalf("%s: %s %s as %q: %d %q, want %d %q", p.name, c.method, c.path, c.user, code, body, c.status, c.body)
		}
	}
}

// etcdctl in v2 mode sets up auth on a three-member cluster exactly as an
// operator would: a root user, a role reading /pub/*, a user alice with
// it, auth enabled, guest's access taken away. Then every member enforces
// it on keys, watches, locks, queues and members changes; alice reads
// /pub and nothing else; a wrong password is refused; root does
// everything. Auth survives a restart of every member, and a member that
// was down while the others wrote enough for a snapshot (and changed
// alice's password) installs that snapshot and enforces auth as they do.
func TestAuthEtcdctl(t *testing.T) {
	etcdctl := clEtcdctlPath(t)
	c := startClusterWith(t, []string{"--snapshot-count", "1000"}, "a", "b", "c")
	clReady(c)
	ep := c.procs[0].client
	root := []string{"--username", "root:rootpw"}
	ctl := func(want string, args ...string) {
		t.Helper()
		clOK(t, etcdctl, ep, want, args...)
	}
	ctl("User root created\n", "user", "add", "root:rootpw")
	ctl("Role reader created\n", "role", "add", "reader")
	ctl("Role reader updated\n", "role", "grant", "reader", "--path", "/pub/*", "--read")
	ctl("User alice created\n", "user", "add", "alice:apw")
	ctl("User alice updated\n", "user", "grant", "alice", "--roles", "reader")
	ctl("Authentication Enabled\n", "auth", "enable")
	authCtlFails(t, etcdctl, ep, "Insufficient credentials", "role", "revoke", "guest", "--path", "/*", "--readwrite")
	ctl("Role guest updated\n", append(root, "role", "revoke", "guest", "--path", "/*", "--readwrite")...)
	ctl("Role: guest\nKV Read:\nKV Write:\n", append(root, "role", "get", "guest")...)
	ctl("User: alice\nRoles:  reader\n", append(root, "user", "get", "alice")...)
	ctl("alice\nroot\n", append(root, "user", "list")...)
	ctl("guest\nreader\nroot\n", append(root, "role", "list")...)
	ctl("from root\n", append(root, "set", "/pub/x", "from root")...)
	ctl("secret\n", append(root, "set", "/secret", "secret")...)
	ctl("from root\n", "--username", "alice:apw", "get", "/pub/x")
	clFails(t, etcdctl, ep, "110: The request requires user authentication", "--username", "alice:apw", "set", "/pub/x", "alice")
	clFails(t, etcdctl, ep, "110: The request requires user authentication", "--username", "alice:apw", "get", "/secret")
	clFails(t, etcdctl, ep, "110: The request requires user authentication", "get", "/pub/x")
	clFails(t, etcdctl, ep, "110: The request requires user authentication", "--username", "alice:nope", "get", "/pub/x")
	// Members changes need root, through etcdctl too.
	authCtlFails(t, etcdctl, ep, "unexpected status code 401", "--username", "alice:apw", "member", "add", "d", "http://127.0.0.1:1")
	// Users and roles that come and go.
	ctl("User tmp created\n", append(root, "user", "add", "tmp:tpw")...)
	ctl("User tmp updated\n", append(root, "user", "grant", "tmp", "--roles", "reader")...)
	ctl("User tmp updated\n", append(root, "user", "revoke", "tmp", "--roles", "reader")...)
	ctl("User tmp removed\n", append(root, "user", "remove", "tmp")...)
	ctl("Role tmp created\n", append(root, "role", "add", "tmp")...)
	ctl("Role tmp removed\n", append(root, "role", "remove", "tmp")...)
	// The same answers from every member.
	for _, p := range c.procs {
		authCheckEnforced(t, p, "apw")
	}

	// Every member restarted: the auth state is in each one's applied
	// state and WAL.
	for _, p := range c.procs {
		c.kill(p, syscall.SIGTERM)
	}
	for _, p := range c.procs {
		fltRestart(c, p)
	}
	for _, p := range c.procs {
		fltWaitHealthy(t, p, 20*time.Second)
		authCheckEnforced(t, p, "apw")
	}

	// A member down while the others write past a snapshot, and change
	// alice's password, catches up by installing a snapshot.
	leader := fltWaitLeader(t, c.procs, 15*time.Second)
	var victim *proc
	var survivors []*proc
	for _, p := range c.procs {
		if p != leader && victim == nil {
			victim = p
		} else {
			survivors = append(survivors, p)
		}
	}
	c.kill(victim, syscall.SIGKILL)
	var victimPos uint64
	for _, p := range survivors {
		victimPos = max(victimPos, uint64(fltMetric(t, p, "cairn_server_proposals_committed_total", "")))
	}
	const catchUpEntries = 5000
	authWriteUntil(t, survivors, func() bool {
		for _, p := range survivors {
			idx := fltLogIndexes(p.dir+".log", "snapshot taken")
			if len(idx) == 0 || idx[len(idx)-1] <= victimPos+catchUpEntries+100 {
				return false
			}
		}
		return true
	})
	// Through etcdctl, with the password on standard input as a person
	// types it.
	passwd := clCtl(context.Background(), etcdctl, survivors[0].client, append(root, "user", "passwd", "alice")...)
	passwd.Stdin = strings.NewReader("apw2\n")
	if out, err := passwd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Password updated") {
		t.Fatalf("etcdctl user passwd: %v %s", err, out)
	}
	fltRestart(c, victim)
	fltWaitHealthy(t, victim, 30*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := authReq(t, victim, "GET", "/v2/keys/pub/x?serializable=true", "alice:apw2", nil, "")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never took alice's new password (%d)\nlog:\n%s", victim.name, code, fltTail(victim.dir+".log", 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	installed := fltLogIndexes(victim.dir+".log", "installed a snapshot from the leader")
	if len(installed) == 0 || installed[0] <= victimPos {
		t.Fatalf("%s: no snapshot past %d installed (log: %v)\n%s", victim.name, victimPos, installed, fltTail(victim.dir+".log", 20))
	}
	t.Logf("%s stopped at %d, installed a snapshot at %v", victim.name, victimPos, installed)
	for _, p := range c.procs {
		authCheckEnforced(t, p, "apw2")
		if code, _ := authReq(t, p, "GET", "/v2/keys/pub/x", "alice:apw", nil, ""); code != http.StatusUnauthorized {
			t.Fatalf("%s: alice's old password: %d", p.name, code)
		}
	}
	if n := fltMetric(t, victim, "cairn_auth_failures_total", `reason="password"`); n < 1 {
		t.Fatalf("%s counted no password failures", victim.name)
	}
	// A backup needs root, and keeps auth: a member restored from it is
	// as closed as the cluster was.
	backup := filepath.Join(t.TempDir(), "backup.db")
	if out, err := exec.Command(binary, "snapshot", "save", "--endpoints", ep, backup).CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Fatalf("snapshot save without credentials: %v %s", err, out)
	}
	if out, err := exec.Command(binary, "snapshot", "save", "--endpoints", ep, "--user", "root:rootpw", backup).CombinedOutput(); err != nil {
		t.Fatalf("snapshot save as root: %v %s", err, out)
	}
	r := &proc{name: "restored", dir: filepath.Join(t.TempDir(), "restored"),
		client: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), peer: fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
	rc := &cluster{t: t, initial: "restored=" + r.peer, procs: []*proc{r}}
	if out, err := exec.Command(binary, "snapshot", "restore", backup, "--name", r.name, "--data-dir", r.dir,
		"--initial-cluster", rc.initial, "--initial-advertise-peer-urls", r.peer).CombinedOutput(); err != nil {
		t.Fatalf("snapshot restore: %v\n%s", err, out)
	}
	rc.start(r)
	t.Cleanup(func() { rc.kill(r, syscall.SIGTERM) })
	fltWaitHealthy(t, r, 20*time.Second)
	authCheckEnforced(t, r, "apw2")

	// Disabling opens the cluster again.
	ctl("Authentication Disabled\n", append(root, "auth", "disable")...)
	for _, p := range c.procs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if code, _ := authReq(t, p, "GET", "/v2/keys/secret", "", nil, ""); code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still refuses after auth disable", p.name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// authWriteUntil writes keys as root through the members, 16 at a time,
// until done says so (checked every 100 ms) or 90 s pass.
func authWriteUntil(t *testing.T, procs []*proc, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var n, failed atomic.Int64
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			p := procs[w%len(procs)]
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, "PUT", fmt.Sprintf("%s/v2/keys/load/w%d/k%d", p.client, w, i%50),
					strings.NewReader("value=x"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("root", "rootpw")
				resp, err := client.Do(req)
				if err != nil {
					if !errors.Is(ctx.Err(), context.Canceled) {
						failed.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					n.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	for !done() {
		if ctx.Err() != nil {
			cancel()
			wg.Wait()
			t.Fatalf("not done after %d writes (%d failed)", n.Load(), failed.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	t.Logf("%d writes as root (%d failed) until the survivors took a snapshot past the stopped member", n.Load(), failed.Load())
}

// authCtlFails runs an etcdctl command that must fail with want in its
// error output.
func authCtlFails(t *testing.T, etcdctl, endpoint, want string, args ...string) {
	t.Helper()
	code, out, errOut := clRun(t, etcdctl, endpoint, args...)
	if code == 0 || !strings.Contains(errOut, want) {
		t.Fatalf("etcdctl %q at %s: want failure %q, got exit %d stdout %q stderr %q", args, endpoint, want, code, out, errOut)
	}
}

// The five auth cases of etcd's own etcdctl v2 end-to-end tests, in our
// words, against one member: a user granted a role shows it, and a second
// grant is refused as a duplicate; a user (an ordinary one, and root) is
// listed once added; a role is listed once added; a user whose name has a
// space, granted a role on /foo, and auth enabled, then a write of /foo.
// (etcd's last case writes as that user through its TLS client
// certificate's common name; httpapi's TestAuthClientCertificate covers
// that part.)
func TestAuthEtcdCtlV2Cases(t *testing.T) {
	etcdctl := clEtcdctlPath(t)
	c := startCluster(t, "solo")
	clReady(c)
	ep := c.procs[0].client
	clOK(t, etcdctl, ep, "Role foo created\n", "role", "add", "foo")
	clOK(t, etcdctl, ep, "User username created\n", "user", "add", "username:password")
	clOK(t, etcdctl, ep, "User username updated\n", "user", "grant", "--roles", "foo", "username")
	clOK(t, etcdctl, ep, "User: username\nRoles:  foo\n", "user", "get", "username")
	authCtlFails(t, etcdctl, ep, "duplicate", "user", "grant", "--roles", "foo", "username")
	clOK(t, etcdctl, ep, "username\n", "user", "list")
	clOK(t, etcdctl, ep, "User root created\n", "user", "add", "root:123")
	clOK(t, etcdctl, ep, "root\nusername\n", "user", "list")
	clOK(t, etcdctl, ep, "foo\nroot\n", "role", "list")
	clOK(t, etcdctl, ep, "Role testrole created\n", "role", "add", "testrole")
	clOK(t, etcdctl, ep, "Role testrole updated\n", "role", "grant", "--rw", "--path=/foo", "testrole")
	clOK(t, etcdctl, ep, "User Autogenerated CA created\n", "user", "add", "Autogenerated CA:123")
	clOK(t, etcdctl, ep, "User Autogenerated CA updated\n", "user", "grant", "--roles", "testrole", "Autogenerated CA")
	clOK(t, etcdctl, ep, "Authentication Enabled\n", "auth", "enable")
	clOK(t, etcdctl, ep, "bar\n", "--username", "Autogenerated CA:123", "set", "foo", "bar")
	clOK(t, etcdctl, ep, "bar\n", "set", "foo", "bar") // guest still has etcd's default full access
	authCtlFails(t, etcdctl, ep, "110", "--username", "Autogenerated CA:123", "set", "other", "x")
}
