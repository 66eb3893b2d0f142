package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	client "go.etcd.io/etcd/client/v2"

	"github.com/cairnkv/cairn/internal/etcdtest"
)

// clCallTimeout bounds every single client call and etcdctl command.
const clCallTimeout = 15 * time.Second

// clReady waits until every member of c takes a write, so that the
// clients below start against a cluster with a leader.
func clReady(c *cluster) {
	c.t.Helper()
	for _, p := range c.procs {
		if code, body := c.do(p, "PUT", "/v2/keys/clready/"+p.name, url.Values{"value": {"up"}}); code != 200 && code != 201 {
			c.t.Fatalf("warm-up write at %s: %d %s", p.name, code, body)
		}
	}
}

// clKeys is the official etcd v2 Go client pointed at one member only, so
// that every request, writes included, goes to that member.
func clKeys(t *testing.T, endpoint string) client.KeysAPI {
	t.Helper()
	c, err := client.New(client.Config{
		Endpoints:               []string{endpoint},
		HeaderTimeoutPerRequest: clCallTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return client.NewKeysAPI(c)
}

// clCtx is a context for one client call.
func clCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), clCallTimeout)
	t.Cleanup(cancel)
	return ctx
}

// clWantCode fails unless err is the client's etcd error with the code.
func clWantCode(t *testing.T, what string, err error, code int) client.Error {
	t.Helper()
	var e client.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: want client.Error %d, got %T %v", what, code, err, err)
	}
	if e.Code != code {
		t.Fatalf("%s: want error code %d, got %d (%v)", what, code, e.Code, e)
	}
	return e
}

// clWant fails on err or when the response's action or value differ.
func clWant(t *testing.T, what string, resp *client.Response, err error, action, value string) *client.Response {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp.Action != action || resp.Node == nil || resp.Node.Value != value {
		t.Fatalf("%s: want action %q value %q, got %+v node %v", what, action, value, resp, resp.Node)
	}
	return resp
}

// clKeysOf lists the keys of nodes in the order given.
func clKeysOf(nodes client.Nodes) []string {
	var keys []string
	for _, n := range nodes {
		keys = append(keys, n.Key)
	}
	return keys
}

// The official etcd v2 Go client (go.etcd.io/etcd/client/v2), pointed at
// each member of a three-member cluster in turn, leaders and followers
// alike: set, get, create and its conflict (105), compare-and-swap by
// value and by index and their failures (101), compare-and-delete,
// delete, in-order keys, a key with a TTL that expires, a recursive sorted
// directory listing, and a watcher that sees writes made through another
// member. The client's typed errors carry etcd's error codes.
func TestClientsGoV2KeysAPI(t *testing.T) {
	c := startCluster(t, "a", "b", "c")
	clReady(c)
	for i, p := range c.procs {
		other := c.procs[(i+1)%len(c.procs)]
		t.Run("via-"+p.name, func(t *testing.T) {
			clGoClientAgainst(t, clKeys(t, p.client), clKeys(t, other.client), "/goclient/"+p.name)
		})
	}
}

// clGoClientAgainst runs the client scenario under prefix through kapi,
// with okapi (another member) for the cross-member reads and writes.
func clGoClientAgainst(t *testing.T, kapi, okapi client.KeysAPI, prefix string) {
	// A key with a TTL reports it (through this member and another); it
	// is watched for its expiry at the end, when the TTL has run out.
	tk := prefix + "/ttl"
	resp, err := kapi.Set(clCtx(t), tk, "temporary", &client.SetOptions{TTL: 3 * time.Second})
	tr := clWant(t, "Set with TTL", resp, err, "set", "temporary")
	if tr.Node.TTL != 3 || tr.Node.Expiration == nil {
		t.Fatalf("Set with TTL: ttl %d expiration %v", tr.Node.TTL, tr.Node.Expiration)
	}
	resp, err = okapi.Get(clCtx(t), tk, &client.GetOptions{Quorum: true})
	if g := clWant(t, "Get of the TTL key", resp, err, "get", "temporary"); g.Node.TTL < 1 || g.Node.TTL > 3 || g.Node.Expiration == nil {
		t.Fatalf("Get of the TTL key: ttl %d expiration %v", g.Node.TTL, g.Node.Expiration)
	}

	// Set and Get, through this member and through another.
	k := prefix + "/k"
	resp, err = kapi.Set(clCtx(t), k, "v1", nil)
	set := clWant(t, "Set", resp, err, "set", "v1")
	if set.Node.Key != k || set.PrevNode != nil || set.Index < set.Node.ModifiedIndex {
		t.Fatalf("Set: %+v %v", set, set.Node)
	}
	resp, err = kapi.Get(clCtx(t), k, nil)
	clWant(t, "Get", resp, err, "get", "v1")
	resp, err = okapi.Get(clCtx(t), k, &client.GetOptions{Quorum: true})
	clWant(t, "Get through another member", resp, err, "get", "v1")

	// Create: conflict on an existing key, success on a new one.
	_, err = kapi.Create(clCtx(t), k, "again")
	if e := clWantCode(t, "Create on an existing key", err, client.ErrorCodeNodeExist); e.Message != "Key already exists" || e.Cause != k {
		t.Fatalf("Create on an existing key: %#v", e)
	}
	resp, err = kapi.Create(clCtx(t), prefix+"/new", "fresh")
	clWant(t, "Create", resp, err, "create", "fresh")
	_, err = kapi.Update(clCtx(t), prefix+"/missing", "x")
	clWantCode(t, "Update of a missing key", err, client.ErrorCodeKeyNotFound)

	// Compare-and-swap by previous value.
	resp, err = kapi.Set(clCtx(t), k, "v2", &client.SetOptions{PrevValue: "v1"})
	cas := clWant(t, "CompareAndSwap by value", resp, err, "compareAndSwap", "v2")
	if cas.PrevNode == nil || cas.PrevNode.Value != "v1" {
		t.Fatalf("CompareAndSwap by value: prevNode %v", cas.PrevNode)
	}
	_, err = kapi.Set(clCtx(t), k, "v3", &client.SetOptions{PrevValue: "v1"})
	if e := clWantCode(t, "CompareAndSwap with a stale value", err, client.ErrorCodeTestFailed); e.Message != "Compare failed" || e.Cause != "[v1 != v2]" {
		t.Fatalf("CompareAndSwap with a stale value: %#v", e)
	}

	// Compare-and-swap by previous index.
	mod := cas.Node.ModifiedIndex
	resp, err = kapi.Set(clCtx(t), k, "v3", &client.SetOptions{PrevIndex: mod})
	cas = clWant(t, "CompareAndSwap by index", resp, err, "compareAndSwap", "v3")
	_, err = kapi.Set(clCtx(t), k, "v4", &client.SetOptions{PrevIndex: mod})
	if e := clWantCode(t, "CompareAndSwap with a stale index", err, client.ErrorCodeTestFailed); e.Cause != fmt.Sprintf("[%d != %d]", mod, cas.Node.ModifiedIndex) {
		t.Fatalf("CompareAndSwap with a stale index: %#v", e)
	}
	resp, err = okapi.Get(clCtx(t), k, &client.GetOptions{Quorum: true})
	clWant(t, "Get after the failed swaps", resp, err, "get", "v3")

	// Compare-and-delete, then delete.
	_, err = kapi.Delete(clCtx(t), prefix+"/new", &client.DeleteOptions{PrevValue: "stale"})
	clWantCode(t, "CompareAndDelete with a stale value", err, client.ErrorCodeTestFailed)
	resp, err = kapi.Delete(clCtx(t), prefix+"/new", &client.DeleteOptions{PrevValue: "fresh"})
	clWant(t, "CompareAndDelete", resp, err, "compareAndDelete", "")
	resp, err = kapi.Delete(clCtx(t), k, nil)
	del := clWant(t, "Delete", resp, err, "delete", "")
	if del.PrevNode == nil || del.PrevNode.Value != "v3" {
		t.Fatalf("Delete: prevNode %v", del.PrevNode)
	}
	_, err = kapi.Get(clCtx(t), k, nil)
	clWantCode(t, "Get after Delete", err, client.ErrorCodeKeyNotFound)
	_, err = okapi.Get(clCtx(t), k, &client.GetOptions{Quorum: true})
	clWantCode(t, "Get after Delete through another member", err, client.ErrorCodeKeyNotFound)
	_, err = kapi.Delete(clCtx(t), k, nil)
	clWantCode(t, "Delete of a deleted key", err, client.ErrorCodeKeyNotFound)

	// In-order keys: increasing names, listed in creation order.
	queue := prefix + "/queue"
	var created []string
	for _, v := range []string{"first", "second", "third"} {
		resp, err = kapi.CreateInOrder(clCtx(t), queue, v, nil)
		r := clWant(t, "CreateInOrder", resp, err, "create", v)
		if !strings.HasPrefix(r.Node.Key, queue+"/") || (len(created) > 0 && r.Node.Key <= created[len(created)-1]) {
			t.Fatalf("CreateInOrder: key %q after %q", r.Node.Key, created)
		}
		created = append(created, r.Node.Key)
	}
	resp, err = okapi.Get(clCtx(t), queue, &client.GetOptions{Sort: true, Quorum: true})
	if err != nil {
		t.Fatalf("Get of the in-order directory: %v", err)
	}
	if got := clKeysOf(resp.Node.Nodes); !slices.Equal(got, created) {
		t.Fatalf("in-order keys: want %q, got %q", created, got)
	}

	// A recursive, sorted listing of a directory tree.
	dir := prefix + "/dir"
	for _, kv := range [][2]string{{"/c/z", "4"}, {"/b/x", "1"}, {"/c/y", "3"}, {"/a", "2"}} {
		if _, err := kapi.Set(clCtx(t), dir+kv[0], kv[1], nil); err != nil {
			t.Fatalf("Set %s: %v", dir+kv[0], err)
		}
	}
	resp, err = kapi.Set(clCtx(t), dir+"/e", "", &client.SetOptions{Dir: true})
	if err != nil || !resp.Node.Dir {
		t.Fatalf("Set of a directory: %v %v", err, resp)
	}
	resp, err = kapi.Get(clCtx(t), dir, &client.GetOptions{Recursive: true, Sort: true})
	if err != nil {
		t.Fatalf("recursive Get: %v", err)
	}
	top := resp.Node
	if !top.Dir || !slices.Equal(clKeysOf(top.Nodes), []string{dir + "/a", dir + "/b", dir + "/c", dir + "/e"}) {
		t.Fatalf("recursive sorted listing: dir=%v %q", top.Dir, clKeysOf(top.Nodes))
	}
	if n := top.Nodes[0]; n.Dir || n.Value != "2" {
		t.Fatalf("%s: %+v", n.Key, n)
	}
	if n := top.Nodes[1]; !n.Dir || !slices.Equal(clKeysOf(n.Nodes), []string{dir + "/b/x"}) || n.Nodes[0].Value != "1" {
		t.Fatalf("%s: %+v %q", n.Key, n, clKeysOf(n.Nodes))
	}
	if n := top.Nodes[2]; !n.Dir || !slices.Equal(clKeysOf(n.Nodes), []string{dir + "/c/y", dir + "/c/z"}) {
		t.Fatalf("%s: %+v %q", n.Key, n, clKeysOf(n.Nodes))
	}
	if n := top.Nodes[3]; !n.Dir || len(n.Nodes) != 0 {
		t.Fatalf("%s: %+v", n.Key, n)
	}
	// Without recursion the subdirectories come without their children.
	resp, err = okapi.Get(clCtx(t), dir, &client.GetOptions{Sort: true, Quorum: true})
	if err != nil || len(resp.Node.Nodes) != 4 || !resp.Node.Nodes[1].Dir || len(resp.Node.Nodes[1].Nodes) != 0 {
		t.Fatalf("non-recursive Get: %v %+v", err, resp)
	}
	_, err = kapi.Delete(clCtx(t), dir, &client.DeleteOptions{Dir: true})
	clWantCode(t, "Delete of a non-empty directory", err, client.ErrorCodeDirNotEmpty)
	if _, err := kapi.Delete(clCtx(t), dir, &client.DeleteOptions{Recursive: true}); err != nil {
		t.Fatalf("recursive Delete: %v", err)
	}

	// A watcher on this member sees writes made through another member:
	// the first after the index it was given (AfterIndex), the next one
	// after that first event.
	wk := prefix + "/watched"
	resp, err = kapi.Set(clCtx(t), wk, "before", nil)
	before := clWant(t, "Set before watching", resp, err, "set", "before")
	w := kapi.Watcher(wk, &client.WatcherOptions{AfterIndex: before.Node.ModifiedIndex})
	resp, err = okapi.Set(clCtx(t), wk, "from-other", nil)
	wrote := clWant(t, "Set through another member", resp, err, "set", "from-other")
	resp, err = w.Next(clCtx(t))
	ev := clWant(t, "Watcher.Next", resp, err, "set", "from-other")
	if ev.Node.ModifiedIndex != wrote.Node.ModifiedIndex || ev.PrevNode == nil || ev.PrevNode.Value != "before" {
		t.Fatalf("Watcher.Next: %+v node %v prev %v, written at %d", ev, ev.Node, ev.PrevNode, wrote.Node.ModifiedIndex)
	}
	next := make(chan error, 1)
	var second *client.Response
	go func() {
		var err error
		second, err = w.Next(clCtx(t))
		next <- err
	}()
	resp, err = okapi.Update(clCtx(t), wk, "updated")
	wrote = clWant(t, "Update through another member", resp, err, "update", "updated")
	if err := <-next; err != nil {
		t.Fatalf("second Watcher.Next: %v", err)
	}
	if second.Action != "update" || second.Node.Value != "updated" || second.Node.ModifiedIndex != wrote.Node.ModifiedIndex {
		t.Fatalf("second Watcher.Next: %+v node %v", second, second.Node)
	}

	// The TTL key expires: a watcher sees "expire" and the key is gone.
	resp, err = kapi.Watcher(tk, &client.WatcherOptions{AfterIndex: tr.Node.ModifiedIndex}).Next(clCtx(t))
	if err != nil || resp.Action != "expire" || resp.PrevNode == nil || resp.PrevNode.Value != "temporary" {
		t.Fatalf("watching the TTL key: %v %+v", err, resp)
	}
	_, err = kapi.Get(clCtx(t), tk, nil)
	clWantCode(t, "Get of the expired key", err, client.ErrorCodeKeyNotFound)
	_, err = okapi.Get(clCtx(t), tk, &client.GetOptions{Quorum: true})
	clWantCode(t, "Get of the expired key through another member", err, client.ErrorCodeKeyNotFound)
}

// clEtcdctlPath finds etcdctl on PATH, or skips (fails with
// CAIRN_REQUIRE_ETCD=1).
func clEtcdctlPath(t *testing.T) string { return etcdtest.Require(t, "etcdctl") }

// clCtl prepares etcdctl in v2 mode against the one member at endpoint.
// --no-sync keeps it there: without it etcdctl replaces --endpoints with
// the cluster's advertised client URLs before each command.
func clCtl(ctx context.Context, etcdctl, endpoint string, args ...string) *exec.Cmd {
	all := append([]string{"--no-sync", "--endpoints", endpoint, "--total-timeout", "10s"}, args...)
	cmd := exec.CommandContext(ctx, etcdctl, all...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=2")
	// On timeout the context kills the process by its PID.
	cmd.Cancel = func() error { return syscall.Kill(cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// clRun runs one etcdctl command and returns its exit code, stdout and
// stderr.
func clRun(t *testing.T, etcdctl, endpoint string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clCallTimeout)
	defer cancel()
	cmd := clCtl(ctx, etcdctl, endpoint, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("etcdctl %q timed out: %s%s", args, stdout.String(), stderr.String())
	}
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("etcdctl %q: %v", args, err)
	}
	return code, stdout.String(), stderr.String()
}

// clOK runs an etcdctl command that must succeed and print want.
func clOK(t *testing.T, etcdctl, endpoint, want string, args ...string) {
	t.Helper()
	code, out, errOut := clRun(t, etcdctl, endpoint, args...)
	if code != 0 || out != want {
		t.Fatalf("etcdctl %q at %s: exit %d, want output %q, got %q (stderr %q)", args, endpoint, code, want, out, errOut)
	}
}

// clFails runs an etcdctl command that must fail with etcd's error text.
func clFails(t *testing.T, etcdctl, endpoint, wantErr string, args ...string) {
	t.Helper()
	code, out, errOut := clRun(t, etcdctl, endpoint, args...)
	if code == 0 || !strings.HasPrefix(errOut, "Error:  "+wantErr) {
		t.Fatalf("etcdctl %q at %s: want failure %q, got exit %d stdout %q stderr %q", args, endpoint, wantErr, code, out, errOut)
	}
}

var clModifiedIndex = regexp.MustCompile(`(?m)^Modified-Index: (\d+)$`)

// etcdctl in v2 mode (ETCDCTL_API=2), the one from etcd 3.4, pointed at
// each member of a three-member cluster in turn: set, get, mk and its
// "Key already exists" failure, update, mkdir, ls --recursive (sorted and
// not), rmdir of an empty and a non-empty directory, rm, and watch (from
// an index, and live) seeing a write made through another member.
func TestClientsEtcdctlV2(t *testing.T) {
	etcdctl := clEtcdctlPath(t)
	c := startCluster(t, "a", "b", "c")
	clReady(c)
	for i, p := range c.procs {
		other := c.procs[(i+1)%len(c.procs)]
		t.Run("via-"+p.name, func(t *testing.T) {
			clEtcdctlAgainst(t, etcdctl, p.client, other.client, "/etcdctl/"+p.name)
		})
	}
}

// clEtcdctlAgainst runs the etcdctl scenario under prefix at ep, with oep
// (another member) for the cross-member reads and writes.
func clEtcdctlAgainst(t *testing.T, etcdctl, ep, oep, prefix string) {
	k := prefix + "/k"
	clOK(t, etcdctl, ep, "v1\n", "set", k, "v1")
	clOK(t, etcdctl, ep, "v1\n", "get", k)
	clOK(t, etcdctl, oep, "v1\n", "get", "--quorum", k)
	clFails(t, etcdctl, ep, "105: Key already exists ("+k+")", "mk", k, "other")
	clOK(t, etcdctl, ep, "fresh\n", "mk", prefix+"/new", "fresh")
	clOK(t, etcdctl, ep, "v2\n", "update", k, "v2")
	clFails(t, etcdctl, ep, "100: Key not found ("+prefix+"/missing)", "update", prefix+"/missing", "x")
	clOK(t, etcdctl, oep, "v2\n", "get", "--quorum", k)

	clOK(t, etcdctl, ep, "", "mkdir", prefix+"/dir")
	clFails(t, etcdctl, ep, "105: Key already exists ("+prefix+"/dir)", "mkdir", prefix+"/dir")
	clOK(t, etcdctl, ep, "1\n", "set", prefix+"/dir/sub/y", "1")
	clOK(t, etcdctl, ep, "2\n", "set", prefix+"/dir/x", "2")
	clOK(t, etcdctl, ep, "", "mkdir", prefix+"/empty")
	listing := []string{prefix + "/dir/", prefix + "/dir/sub/", prefix + "/dir/sub/y", prefix + "/dir/x",
		prefix + "/empty/", prefix + "/k", prefix + "/new"}
	clOK(t, etcdctl, ep, strings.Join(listing, "\n")+"\n", "ls", "--recursive", "--sort", "-p", prefix)
	// Unsorted, the order is the server's to choose: compare as a set.
	code, out, errOut := clRun(t, etcdctl, oep, "ls", "--recursive", "--quorum", prefix)
	got := strings.Fields(out)
	slices.Sort(got)
	want := make([]string, len(listing))
	for i, l := range listing {
		want[i] = strings.TrimSuffix(l, "/")
	}
	if code != 0 || !slices.Equal(got, want) {
		t.Fatalf("ls --recursive at %s: exit %d, want %q, got %q (stderr %q)", oep, code, want, got, errOut)
	}

	clFails(t, etcdctl, ep, "108: Directory not empty ("+prefix+"/dir)", "rmdir", prefix+"/dir")
	clOK(t, etcdctl, ep, "", "rmdir", prefix+"/empty")
	clFails(t, etcdctl, ep, "100: Key not found ("+prefix+"/empty)", "get", prefix+"/empty")
	clOK(t, etcdctl, ep, "PrevNode.Value: v2\n", "rm", k)
	clFails(t, etcdctl, ep, "100: Key not found ("+k+")", "get", k)
	clFails(t, etcdctl, oep, "100: Key not found ("+k+")", "get", "--quorum", k)
	clOK(t, etcdctl, ep, "", "rm", "--recursive", prefix+"/dir")
	clOK(t, etcdctl, ep, prefix+"/new\n", "ls", prefix)

	// watch from an index: the write through the other member may land
	// before or after the watch starts; either way it is the next event.
	wk := prefix + "/watched"
	code, out, errOut = clRun(t, etcdctl, ep, "-o", "extended", "set", wk, "before")
	m := clModifiedIndex.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("set -o extended: exit %d %q %q", code, out, errOut)
	}
	after, _ := strconv.ParseUint(m[1], 10, 64)
	watch := clStartWatch(t, etcdctl, ep, "watch", "--after-index", fmt.Sprint(after), wk)
	clOK(t, etcdctl, oep, "from-other\n", "set", wk, "from-other")
	if out, err := watch(); err != nil || out != "from-other\n" {
		t.Fatalf("watch --after-index %d at %s: %v, output %q", after, ep, err, out)
	}

	// A live watch: write through the other member until it reports one
	// of the writes (it may start after the first few).
	watch = clStartWatch(t, etcdctl, ep, "watch", wk)
	done := make(chan struct{})
	var wout string
	var werr error
	go func() {
		wout, werr = watch()
		close(done)
	}()
	deadline := time.After(clCallTimeout)
	var written []string
writes:
	for i := 0; ; i++ {
		v := fmt.Sprintf("live-%d", i)
		clOK(t, etcdctl, oep, v+"\n", "set", wk, v)
		written = append(written, v+"\n")
		select {
		case <-done:
			break writes
		case <-deadline:
			t.Fatalf("live watch at %s saw none of %d writes through %s", ep, len(written), oep)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if werr != nil || !slices.Contains(written, wout) {
		t.Fatalf("live watch at %s: %v, output %q, written %q", ep, werr, wout, written)
	}
}

// clStartWatch starts a one-event etcdctl watch in the background and
// returns a function that waits (bounded) for it and returns its output.
// The process is killed by its PID if the test ends first.
func clStartWatch(t *testing.T, etcdctl, endpoint string, args ...string) func() (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*clCallTimeout)
	cmd := clCtl(ctx, etcdctl, endpoint, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	var err error
	exited := make(chan struct{})
	go func() {
		err = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	return func() (string, error) {
		<-exited // bounded: at the timeout the context kills it
		switch {
		case ctx.Err() == context.DeadlineExceeded:
			return stdout.String(), fmt.Errorf("no event before the timeout (stderr %q)", stderr.String())
		case err != nil:
			return stdout.String(), fmt.Errorf("%v (stderr %q)", err, stderr.String())
		}
		return stdout.String(), nil
	}
}
