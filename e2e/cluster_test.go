package e2e

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", binary, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cairn:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago.
//
// It picks below Linux's ephemeral range (32768 and up), where no
// client connection's local port can take it between now and the moment
// the member binds it (a port from the kernel's :0 could be), and never
// hands out the same port twice in one test run.
func freePort(t *testing.T) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range portHigh - portLow {
		p := portNext
		if portNext++; portNext >= portHigh {
			portNext = portLow
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatalf("no free loopback port in [%d, %d)", portLow, portHigh)
	return 0
}

// The ports freePort hands out, and the next one to try (the run's PID
// spreads concurrent test runs apart).
const portLow, portHigh = 20000, 32000

var (
	portMu   sync.Mutex
	portNext = portLow + os.Getpid()*7919%(portHigh-portLow)
)

type proc struct {
	name, client, peer, dir string
	cmd                     *exec.Cmd
	extra                   []string // flags appended to this member's command line, after the cluster's
}

type cluster struct {
	t       *testing.T
	initial string
	procs   []*proc
	extra   []string     // flags appended to every member's command line
	httpc   *http.Client // what do sends with (nil: a plain client)
}

func startCluster(t *testing.T, names ...string) *cluster {
	return startClusterWith(t, nil, names...)
}

// startClusterWith is startCluster with extra flags for every member.
func startClusterWith(t *testing.T, extra []string, names ...string) *cluster {
	return startClusterSpec(t, clusterSpec{extra: extra}, names...)
}

// clusterSpec says how startClusterSpec starts a cluster.
type clusterSpec struct {
	extra []string // flags for every member
	// clientScheme and peerScheme are the members' URL schemes ("" is
	// http).
	clientScheme, peerScheme string
	// memberFlags, if set, gives a member flags of its own (its
	// certificates, more listeners); they come after extra.
	memberFlags func(p *proc) []string
	// httpc is the client do uses (nil: a plain one).
	httpc *http.Client
}

// startClusterSpec starts a cluster as spec says.
func startClusterSpec(t *testing.T, spec clusterSpec, names ...string) *cluster {
	c := &cluster{t: t, extra: spec.extra, httpc: spec.httpc}
	scheme := func(s string) string { return cmp.Or(s, "http") }
	var parts []string
	for _, n := range names {
		p := &proc{name: n, dir: filepath.Join(t.TempDir(), n),
			client: fmt.Sprintf("%s://127.0.0.1:%d", scheme(spec.clientScheme), freePort(t)),
			peer:   fmt.Sprintf("%s://127.0.0.1:%d", scheme(spec.peerScheme), freePort(t))}
		if spec.memberFlags != nil {
			p.extra = spec.memberFlags(p)
		}
		c.procs = append(c.procs, p)
		parts = append(parts, n+"="+p.peer)
	}
	c.initial = strings.Join(parts, ",")
	for _, p := range c.procs {
		c.start(p)
	}
	t.Cleanup(func() {
		for _, p := range c.procs {
			c.kill(p, syscall.SIGTERM)
		}
	})
	return c
}

func (c *cluster) start(p *proc) { c.startWith(p, c.initial) }

// join starts p as a new member of the running cluster (added already,
// with POST /v2/members), naming initial as its initial cluster; the
// cluster's cleanup stops it.
func (c *cluster) join(p *proc, initial string) {
	c.startWith(p, initial, "--initial-cluster-state", "existing")
	c.procs = append(c.procs, p)
}

// startWith starts p with initial as its initial cluster and more flags.
func (c *cluster) startWith(p *proc, initial string, more ...string) {
	cmd := exec.Command(binary, "--name", p.name, "--data-dir", p.dir,
		"--initial-cluster", initial, "--initial-advertise-peer-urls", p.peer,
		"--listen-peer-urls", p.peer, "--listen-client-urls", p.client, "--advertise-client-urls", p.client,
		"--heartbeat-interval", "50", "--election-timeout", "500")
	cmd.Args = append(cmd.Args, c.extra...)
	cmd.Args = append(cmd.Args, p.extra...)
	cmd.Args = append(cmd.Args, more...)
	log, err := os.Create(p.dir + ".log")
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p.cmd = cmd
}

// kill signals the process by its PID and waits for it.
func (c *cluster) kill(p *proc, sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(p.cmd.Process.Pid, sig)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// do sends a request, retrying while the member is unreachable or has no
// leader yet, for up to 20 s.
func (c *cluster) do(p *proc, method, path string, form url.Values) (int, string) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(method, p.client+path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		client := c.httpc
		if client == nil {
			client = &http.Client{Timeout: 5 * time.Second}
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError {
				return resp.StatusCode, string(body)
			}
			err = fmt.Errorf("500: %s", body)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s %s%s: %v", method, p.client, path, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Three member processes: a write to any member is read from every
// member; with one member killed (SIGKILL) the others go on; the killed
// member, restarted from its data directory, catches up.
func TestThreeMembersSurviveAKill(t *testing.T) {
	c := startCluster(t, "a", "b", "c")
	for i, p := range c.procs {
		code, body := c.do(p, "PUT", fmt.Sprintf("/v2/keys/k%d", i), url.Values{"value": {p.name}})
		if code != http.StatusCreated {
			t.Fatalf("PUT at %s: %d %s", p.name, code, body)
		}
	}
	for _, p := range c.procs {
		for i, w := range c.procs {
			_, body := c.do(p, "GET", fmt.Sprintf("/v2/keys/k%d", i), nil)
			if !strings.Contains(body, `"value":"`+w.name+`"`) {
				t.Fatalf("%s reads k%d: %s", p.name, i, body)
			}
		}
	}
	// /v2/stats/self names each member; one of them leads (asked again
	// if an election happens to run while we ask).
	for try := 0; ; try++ {
		leaders := 0
		for _, p := range c.procs {
			_, body := c.do(p, "GET", "/v2/stats/self", nil)
			if !strings.Contains(body, `"name":"`+p.name+`"`) {
				t.Fatalf("%s: /v2/stats/self: %s", p.name, body)
			}
			if strings.Contains(body, `"state":"StateLeader"`) {
				leaders++
			}
		}
		if leaders == 1 {
			break
		}
		if try == 20 {
			t.Fatalf("%d members say they lead", leaders)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// cairn health: every member healthy, then the killed one not.
	var eps []string
	for _, p := range c.procs {
		eps = append(eps, p.client)
	}
	if out, err := exec.Command(binary, "health", "--endpoints", strings.Join(eps, ",")).CombinedOutput(); err != nil {
		t.Fatalf("cairn health on a healthy cluster: %v\n%s", err, out)
	}
	victim := c.procs[0]
	c.kill(victim, syscall.SIGKILL)
	if out, err := exec.Command(binary, "health", "--endpoints", victim.client).CombinedOutput(); err == nil {
		t.Fatalf("cairn health succeeded for a killed member:\n%s", out)
	}
	for _, p := range c.procs[1:] {
		if code, body := c.do(p, "PUT", "/v2/keys/after", url.Values{"value": {p.name}}); code != http.StatusOK && code != http.StatusCreated {
			t.Fatalf("PUT at %s with %s down: %d %s", p.name, victim.name, code, body)
		}
	}
	c.start(victim)
	c.waitFor(victim, "/after", `"value":"`+c.procs[2].name+`"`, 20*time.Second)
}

// waitFor reads key through p until the answer is a 200 holding want,
// failing the test after within.
func (c *cluster) waitFor(p *proc, key, want string, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := c.do(p, "GET", "/v2/keys"+key, nil)
		if code == http.StatusOK && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: GET %s did not answer %s within %v: %d %s", p.name, key, want, within, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
