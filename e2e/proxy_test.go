package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pxProc is a cairn process started with any arguments (a proxy, or a
// member bootstrapped by discovery), stopped by PID when the test ends.
type pxProc struct {
	name, client, peer, dir, log string
	cmd                          *exec.Cmd
	exited                       chan struct{}
	err                          error
}

func pxStart(t *testing.T, name, dir string, args ...string) *pxProc {
	t.Helper()
	return pxStartEnv(t, name, dir, nil, args...)
}

// pxStartEnv is pxStart with variables added to the environment.
func pxStartEnv(t *testing.T, name, dir string, env []string, args ...string) *pxProc {
	t.Helper()
	p := &pxProc{name: name, dir: dir, log: dir + ".log", exited: make(chan struct{})}
	for i, a := range args {
		switch {
		case a == "--listen-client-urls" && i+1 < len(args):
			p.client = args[i+1]
		case a == "--initial-advertise-peer-urls" && i+1 < len(args):
			p.peer = args[i+1]
		}
	}
	cmd := exec.Command(binary, append([]string{"--name", name, "--data-dir", dir}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("log of %s:\n%s", name, pxTail(string(b), 30))
		}
	})
	return p
}

func pxTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// stop signals the process by its PID and waits for it.
func (p *pxProc) stop(sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(p.cmd.Process.Pid, sig)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// waitExit waits for the process to end on its own and returns its log.
func (p *pxProc) waitExit(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(within):
		t.Fatalf("%s still runs after %v", p.name, within)
	}
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// pxURL is a fresh loopback URL.
func pxURL(t *testing.T) string { return fmt.Sprintf("http://127.0.0.1:%d", freePort(t)) }

// pxDo sends one request (no retries) with a form body.
func pxDo(hc *http.Client, method, u string, form url.Values) (int, string, http.Header, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

// pxEndpoints asks a proxy which client URLs it forwards to.
func pxEndpoints(proxyURL string) []string {
	_, body, _, err := pxDo(&http.Client{Timeout: 2 * time.Second}, "GET", proxyURL+"/v2/config/local/proxy", nil)
	if err != nil {
		return nil
	}
	var c struct{ Endpoints []string }
	_ = json.Unmarshal([]byte(body), &c)
	slices.Sort(c.Endpoints)
	return c.Endpoints
}

// pxFirstEndpoint is the client URL the proxy tries first now.
func pxFirstEndpoint(proxyURL string) string {
	_, body, _, err := pxDo(&http.Client{Timeout: 2 * time.Second}, "GET", proxyURL+"/v2/config/local/proxy", nil)
	if err != nil {
		return ""
	}
	var c struct{ Endpoints []string }
	if json.Unmarshal([]byte(body), &c) != nil || len(c.Endpoints) == 0 {
		return ""
	}
	return c.Endpoints[0]
}

// pxWaitEndpoints waits until the proxy forwards to exactly want.
func pxWaitEndpoints(t *testing.T, proxyURL string, want []string, within time.Duration) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	deadline := time.Now().Add(within)
	for {
		got := pxEndpoints(proxyURL)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy forwards to %v, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func pxStartProxy(t *testing.T, c *cluster, mode string, extra ...string) *pxProc {
	t.Helper()
	args := append([]string{"--proxy", mode, "--initial-cluster", c.initial, "--listen-client-urls", pxURL(t),
		"--proxy-refresh-interval", "300", "--proxy-failure-wait", "1000"}, extra...)
	p := pxStart(t, "proxy", filepath.Join(t.TempDir(), "proxy"), args...)
	var clients []string
	for _, m := range c.procs {
		clients = append(clients, m.client)
	}
	pxWaitEndpoints(t, p.client, clients, 20*time.Second)
	return p
}

// A proxy in front of three members serves every group of the client
// API: keys (get, set, long-poll and stream watches), locks, queues,
// members, machines, stats and version, with the members' status codes
// and headers; /health and /metrics are its own.
func TestProxyServesEveryEndpoint(t *testing.T) {
	c := startCluster(t, "a", "b", "c")
	clReady(c)
	p := pxStartProxy(t, c, "on")
	hc := &http.Client{Timeout: 10 * time.Second}
	base := p.client
	code, body, hdr, err := pxDo(hc, "PUT", base+"/v2/keys/px/k", url.Values{"value": {"v1"}})
	if err != nil || code != http.StatusCreated || !strings.Contains(body, `"action":"set"`) || hdr.Get("X-Etcd-Index") == "" || hdr.Get("X-Etcd-Cluster-Id") == "" {
		t.Fatalf("PUT: %d %s %v %v", code, body, hdr, err)
	}
	if code, body, _, err := pxDo(hc, "GET", base+"/v2/keys/px/k", nil); err != nil || code != http.StatusOK || !strings.Contains(body, `"value":"v1"`) {
		t.Fatalf("GET: %d %s %v", code, body, err)
	}
	if code, body, _, _ := pxDo(hc, "GET", base+"/v2/keys/px/missing", nil); code != http.StatusNotFound || !strings.Contains(body, `"errorCode":100`) {
		t.Fatalf("GET missing: %d %s", code, body)
	}
	if code, body, _, _ := pxDo(hc, "PUT", base+"/v2/keys/px/k?prevExist=false", url.Values{"value": {"x"}}); code != http.StatusPreconditionFailed || !strings.Contains(body, `"errorCode":105`) {
		t.Fatalf("PUT prevExist=false: %d %s", code, body)
	}

	// Long-poll watch: answered by the next change.
	type res struct {
		code int
		body string
		err  error
	}
	lp := make(chan res, 1)
	go func() {
		code, body, _, err := pxDo(&http.Client{Timeout: 20 * time.Second}, "GET", base+"/v2/keys/px/k?wait=true", nil)
		lp <- res{code, body, err}
	}()
	// Stream watch: every change, as it happens.
	sresp, err := http.Get(base + "/v2/keys/px?wait=true&recursive=true&stream=true")
	if err != nil || sresp.StatusCode != http.StatusOK {
		t.Fatalf("stream watch: %v %v", sresp, err)
	}
	defer sresp.Body.Close()
	lines := make(chan string, 10)
	go func() {
		r := bufio.NewReader(sresp.Body)
		for {
			l, err := r.ReadString('\n')
			if strings.TrimSpace(l) != "" {
				lines <- l
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // both watches registered
	for i := 2; i <= 3; i++ {
		if code, body, _, _ := pxDo(hc, "PUT", base+"/v2/keys/px/k", url.Values{"value": {fmt.Sprint("v", i)}}); code != http.StatusOK {
			t.Fatalf("PUT v%d: %d %s", i, code, body)
		}
		select {
		case l := <-lines:
			if !strings.Contains(l, fmt.Sprintf(`"value":"v%d"`, i)) {
				t.Fatalf("stream event %d: %s", i, l)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stream watch: no event for v%d (buffered by the proxy?)", i)
		}
	}
	select {
	case r := <-lp:
		if r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, `"value":"v2"`) {
			t.Fatalf("long-poll watch: %d %s %v", r.code, r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll watch not answered")
	}

	// Locks and queues.
	if code, body, _, _ := pxDo(hc, "POST", base+"/v2/locks/pxjob?ttl=30", url.Values{"value": {"alice"}}); code != http.StatusCreated || !strings.Contains(body, `"action":"acquire"`) {
		t.Fatalf("lock: %d %s", code, body)
	}
	if code, body, _, _ := pxDo(hc, "POST", base+"/v2/locks/pxjob?ttl=30", url.Values{"value": {"bob"}}); code != http.StatusPreconditionFailed || !strings.Contains(body, `"errorCode":120`) {
		t.Fatalf("lock held: %d %s", code, body)
	}
	if code, body, _, _ := pxDo(hc, "GET", base+"/v2/locks/pxjob", nil); code != http.StatusOK || !strings.Contains(body, `"value":"alice"`) {
		t.Fatalf("lock status: %d %s", code, body)
	}
	if code, body, _, _ := pxDo(hc, "POST", base+"/v2/queues/pxq", url.Values{"value": {"one"}}); code != http.StatusCreated {
		t.Fatalf("enqueue: %d %s", code, body)
	}
	if code, body, _, _ := pxDo(hc, "DELETE", base+"/v2/queues/pxq", nil); code != http.StatusOK || !strings.Contains(body, `"action":"dequeue"`) || !strings.Contains(body, `"value":"one"`) {
		t.Fatalf("dequeue: %d %s", code, body)
	}
	if code, body, _, _ := pxDo(hc, "DELETE", base+"/v2/queues/pxq", nil); code != http.StatusNotFound || !strings.Contains(body, `"errorCode":122`) {
		t.Fatalf("dequeue empty: %d %s", code, body)
	}

	// Members, machines, stats, version.
	code, body, _, _ = pxDo(hc, "GET", base+"/v2/members", nil)
	for _, m := range c.procs {
		if code != http.StatusOK || !strings.Contains(body, `"name":"`+m.name+`"`) {
			t.Fatalf("/v2/members: %d %s", code, body)
		}
	}
	if code, body, _, _ := pxDo(hc, "GET", base+"/v2/machines", nil); code != http.StatusOK || !strings.Contains(body, c.procs[0].client) {
		t.Fatalf("/v2/machines: %d %s", code, body)
	}
	if code, body, _, _ := pxDo(hc, "GET", base+"/v2/stats/self", nil); code != http.StatusOK || !strings.Contains(body, `"leaderInfo"`) {
		t.Fatalf("/v2/stats/self: %d %s", code, body)
	}
	if code, body, _, _ := pxDo(hc, "GET", base+"/v2/stats/store", nil); code != http.StatusOK || !strings.Contains(body, `"setsSuccess"`) {
		t.Fatalf("/v2/stats/store: %d %s", code, body)
	}
	if code, body, _, _ := pxDo(hc, "GET", base+"/v2/stats/leader", nil); code != http.StatusOK && code != http.StatusForbidden {
		t.Fatalf("/v2/stats/leader: %d %s", code, body)
	}
	if code, body, _, _ := pxDo(hc, "GET", base+"/version", nil); code != http.StatusOK || !strings.Contains(body, `"etcdserver"`) {
		t.Fatalf("/version: %d %s", code, body)
	}
	// A path the members do not serve answers as they do.
	if code, _, _, _ := pxDo(hc, "GET", base+"/v2/nothing", nil); code != http.StatusNotFound {
		t.Fatalf("/v2/nothing: %d", code)
	}
	if code, body, _, _ := pxDo(hc, "GET", base+"/health", nil); code != http.StatusOK || body != `{"health":"true"}` {
		t.Fatalf("/health: %d %s", code, body)
	}
	_, metrics, _, _ := pxDo(hc, "GET", base+"/metrics", nil)
	for _, want := range []string{`cairn_proxy_requests_total{method="PUT"}`, `cairn_proxy_endpoints_available 3`, "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Its own state is the cluster file alone.
	b, err := os.ReadFile(filepath.Join(p.dir, "proxy", "cluster"))
	if err != nil || !strings.Contains(string(b), c.procs[0].peer) {
		t.Fatalf("cluster file: %s %v", b, err)
	}
	if ents, _ := os.ReadDir(p.dir); len(ents) != 1 {
		t.Fatalf("the proxy's data directory holds %v", ents)
	}
}

// A writer going through the proxy while the leader is killed sees at
// most one failed request (the one the leader had taken when it died:
// its outcome is unknown, so the proxy does not resend it); every other
// write succeeds, and every acknowledged write is there afterwards.
func TestProxySurvivesLeaderKill(t *testing.T) {
	c := startCluster(t, "a", "b", "c")
	clReady(c)
	p := pxStartProxy(t, c, "on", "--proxy-failure-wait", "5000")
	lead := mbLeader(t, c, c.procs)
	hc := &http.Client{Timeout: 15 * time.Second}
	var errs []string
	acked := map[int]bool{}
	killAt := 40
	var first string
	for i := range 120 {
		if i == killAt {
			// Kill the leader when it is the member the proxy sends to
			// first (the order is reshuffled at every refresh), so that
			// the proxy has to fail over as well as the cluster.
			for deadline := time.Now().Add(10 * time.Second); pxFirstEndpoint(p.client) != lead.client && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			first = pxFirstEndpoint(p.client)
			c.kill(lead, syscall.SIGKILL)
			t.Logf("killed the leader %s at write %d; the proxy's first endpoint was %s", lead.name, i, first)
		}
		for try := 0; ; try++ {
			code, body, _, err := pxDo(hc, "PUT", p.client+fmt.Sprintf("/v2/keys/pxw/%d", i), url.Values{"value": {fmt.Sprint(i)}})
			if err == nil && (code == http.StatusCreated || code == http.StatusOK) {
				acked[i] = true
				break
			}
			errs = append(errs, fmt.Sprintf("write %d try %d: %d %s %v", i, try, code, strings.TrimSpace(body), err))
			if try == 5 {
				t.Fatalf("write %d keeps failing: %v", i, errs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("%d client-visible errors: %v", len(errs), errs)
	if len(errs) > 1 {
		t.Fatalf("%d failed requests through the proxy, want at most 1: %v", len(errs), errs)
	}
	for i := range 120 {
		code, body, _, err := pxDo(hc, "GET", p.client+fmt.Sprintf("/v2/keys/pxw/%d", i), nil)
		if err != nil || code != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"value":"%d"`, i)) {
			t.Fatalf("acknowledged write %d: %d %s %v", i, code, body, err)
		}
	}
	// Whether the proxy ever tried the dead member depends on the order
	// it tries them in; if it did, the failure is counted.
	_, metrics, _, _ := pxDo(hc, "GET", p.client+"/metrics", nil)
	t.Logf("failures counted: %q", regexp.MustCompile(`cairn_proxy_endpoint_failures_total\{[^\n]*`).FindAllString(metrics, -1))
	if first == lead.client && !strings.Contains(metrics, `cairn_proxy_endpoint_failures_total{endpoint="`+lead.client+`"}`) {
		t.Errorf("the proxy sent to the killed leader first, but counted no failure for it")
	}
}

// The proxy follows membership changes made at runtime (through it): a
// member added and started appears among its endpoints after a refresh,
// a member removed disappears, and the cluster file follows.
func TestProxyFollowsMembership(t *testing.T) {
	c := startCluster(t, "a", "b", "c")
	clReady(c)
	p := pxStartProxy(t, c, "on")
	hc := &http.Client{Timeout: 10 * time.Second}
	d := &proc{name: "d", dir: filepath.Join(t.TempDir(), "d"), client: pxURL(t), peer: pxURL(t)}
	req, _ := http.NewRequest("POST", p.client+"/v2/members", strings.NewReader(`{"peerURLs":["`+d.peer+`"]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("add d through the proxy: %d %s", resp.StatusCode, b)
	}
	c.join(d, c.initial+",d="+d.peer)
	// The proxy may send the removal below to d; until d knows its
	// leader it would answer 500 "no leader known", as etcd's members do.
	fltWaitHealthy(t, d, 30*time.Second)
	all := []string{c.procs[0].client, c.procs[1].client, c.procs[2].client, d.client}
	pxWaitEndpoints(t, p.client, all, 30*time.Second)
	t.Logf("after adding d: %v", pxEndpoints(p.client))

	ids := mbMemberIDs(t, c, c.procs[0])
	victim := c.procs[2]
	req, _ = http.NewRequest("DELETE", p.client+"/v2/members/"+ids[victim.name], nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatalf("remove %s through the proxy: %v", victim.name, err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remove %s through the proxy: %d %s\nits log:\n%s", victim.name, resp.StatusCode, b, fltTail(victim.dir+".log", 30))
	}
	mbWaitExit(t, victim, 15*time.Second)
	pxWaitEndpoints(t, p.client, []string{c.procs[0].client, c.procs[1].client, d.client}, 30*time.Second)
	fb, _ := os.ReadFile(filepath.Join(p.dir, "proxy", "cluster"))
	if !strings.Contains(string(fb), d.peer) || strings.Contains(string(fb), victim.peer) {
		t.Fatalf("cluster file after the changes: %s", fb)
	}
	if code, body, _, _ := pxDo(hc, "PUT", p.client+"/v2/keys/after", url.Values{"value": {"x"}}); code != http.StatusCreated {
		t.Fatalf("write after the changes: %d %s", code, body)
	}
}

// A readonly proxy refuses every write with 501 and an empty body, as
// etcd's does, and serves reads.
func TestProxyReadonly(t *testing.T) {
	c := startCluster(t, "a", "b", "c")
	clReady(c)
	if code, body := c.do(c.procs[0], "PUT", "/v2/keys/ro", url.Values{"value": {"x"}}); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, body)
	}
	p := pxStartProxy(t, c, "readonly")
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, m := range []string{"PUT", "POST", "DELETE"} {
		code, body, _, err := pxDo(hc, m, p.client+"/v2/keys/ro", url.Values{"value": {"y"}})
		if err != nil || code != http.StatusNotImplemented || body != "" {
			t.Fatalf("%s through a readonly proxy: %d %q %v", m, code, body, err)
		}
	}
	if code, body, _, _ := pxDo(hc, "GET", p.client+"/v2/keys/ro", nil); code != http.StatusOK || !strings.Contains(body, `"value":"x"`) {
		t.Fatalf("GET through a readonly proxy: %d %s", code, body)
	}
}
