package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chMember is one member process of a chaos cluster. Its peer listener is
// on listenPeer; it advertises (and every member's --initial-cluster
// names) the proxy's URL, so every peer request to it passes the proxy.
// idx is unique in the cluster's life (members added later get new ones):
// the proxies and the network blocks know members by it.
type chMember struct {
	idx                 int
	name                string
	id                  uint64
	client              string
	listenPeer, advPeer string
	dir, log            string
	// delayFile is the WAL fsync failpoint's file
	// (CAIRN_FAILPOINT_WAL_FSYNC_DELAY_FILE): a Go duration, or absent.
	delayFile string
	// initial and state are its --initial-cluster and
	// --initial-cluster-state ("": the cluster's and "new").
	initial, state  string
	proxy           *chProxy
	mu              sync.Mutex
	cmd             *exec.Cmd
	done            chan struct{} // closed when the running process exited
	paused, killing bool
	// removing: its removal was asked for (it may apply at any time
	// after), so an exit because it was removed is expected; removedExit:
	// it did exit so. joinFailed: its last start ended before it joined
	// (a member it asked did not list it yet): the harness retries.
	removing, removedExit, joinFailed bool
	unexpected                        []string // exits the harness did not cause
	starts, kills, stops              int
}

// chCluster runs member processes behind fault proxies. members is the
// current membership as the harness knows it (changed by member-change
// faults, read by the workload: use current()); all holds every member
// the run ever had, for cleanup and evidence.
type chCluster struct {
	t       *testing.T
	net     *chNet
	base    string // the members' directories are in here
	mu      sync.Mutex
	members []*chMember
	all     []*chMember
	nextIdx int
	pending *chMember // a member being added, not yet started (see chaosmember_test.go)
	initial string
	env     []string // added to every member's environment
	extra   []string // added to every member's command line
	auth    chAuth   // set before the workload starts, when auth is on (chaosauth_test.go)
}

// chAuth is a chaos cluster's v2 auth: root's credentials and the
// workload's user's (zero: auth is off).
type chAuth struct {
	root, user coCreds
}

// asUser is a context whose requests are sent as the workload's user
// (without credentials when auth is off).
func (c *chCluster) asUser() context.Context { return coAs(context.Background(), c.auth.user) }

// asRoot is a context whose requests are sent as root (without
// credentials when auth is off).
func (c *chCluster) asRoot() context.Context { return coAs(context.Background(), c.auth.root) }

// chStartCluster starts n members named a, b, c, ... with proxies in
// front of their peer listeners, and learns their IDs. Everything is
// stopped (by PID) when the test ends.
func chStartCluster(t *testing.T, n int, env, extra []string) *chCluster {
	t.Helper()
	c := &chCluster{t: t, net: chNewNet(), env: env, extra: extra, base: t.TempDir()}
	var parts []string
	for range n {
		m, err := c.newMember()
		if err != nil {
			t.Fatal(err)
		}
		c.members = append(c.members, m)
		parts = append(parts, m.name+"="+m.advPeer)
	}
	c.initial = strings.Join(parts, ",")
	t.Cleanup(c.stopAll)
	for _, m := range c.members {
		c.start(m)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range c.members {
		for {
			s, err := chStats(m, 2*time.Second)
			if err == nil {
				id, perr := strconv.ParseUint(s.ID, 16, 64)
				if perr == nil && id != 0 {
					m.id = id
					c.net.setID(id, m.idx)
					break
				}
				err = fmt.Errorf("id %q: %v", s.ID, perr)
			}
			if time.Now().After(deadline) {
				if strings.Contains(chTail(m.log, 20), "address already in use") && *chSoakFlag > 0 {
					t.Skipf("%s could not bind a port picked as free (another process took it): the machine's fault, not the product's; the soak goes on with another seed\nlog:\n%s", m.name, chTail(m.log, 20))
				}
				t.Fatalf("%s did not answer /v2/stats/self: %v\nlog:\n%s", m.name, err, chTail(m.log, 20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// newMember makes a member with a new idx, name, directory, ports and a
// proxy in front of its peer listener (not started, not yet a member of
// anything: the caller adds it to members).
func (c *chCluster) newMember() (*chMember, error) {
	idx := c.nextIdx
	c.nextIdx++
	name := chMemberName(idx)
	m := &chMember{idx: idx, name: name, dir: filepath.Join(c.base, name),
		client:     fmt.Sprintf("http://127.0.0.1:%d", freePort(c.t)),
		listenPeer: fmt.Sprintf("http://127.0.0.1:%d", freePort(c.t))}
	m.log = m.dir + ".log"
	m.delayFile = m.dir + ".fsync-delay"
	p, err := chStartProxy(c.net, idx, m.listenPeer)
	if err != nil {
		return nil, err
	}
	m.proxy, m.advPeer = p, p.URL()
	c.mu.Lock()
	c.all = append(c.all, m)
	c.mu.Unlock()
	return m, nil
}

// chMemberName names member idx: a, b, ... z, then m26, m27, ...
func chMemberName(idx int) string {
	if idx < 26 {
		return string(rune('a' + idx))
	}
	return fmt.Sprintf("m%d", idx)
}

// current returns the current members (a copy; safe from any goroutine).
func (c *chCluster) current() []*chMember {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.members)
}

// everyMember returns every member the run ever had.
func (c *chCluster) everyMember() []*chMember {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.all)
}

// start starts the member's process (again: same data directory and
// flags; a restart ignores --initial-cluster).
func (c *chCluster) start(m *chMember) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	initial, state := m.initial, m.state
	if initial == "" {
		initial, state = c.initial, "new"
	}
	cmd := exec.Command(binary, "--name", m.name, "--data-dir", m.dir,
		"--initial-cluster", initial, "--initial-cluster-state", state, "--initial-advertise-peer-urls", m.advPeer,
		"--listen-peer-urls", m.listenPeer, "--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--heartbeat-interval", "50", "--election-timeout", "500")
	cmd.Args = append(cmd.Args, c.extra...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Env = append(cmd.Env, "CAIRN_FAILPOINT_WAL_FSYNC_DELAY_FILE="+m.delayFile)
	logf, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Errorf("chaos: %v", err)
		return
	}
	defer logf.Close() // the child has its own descriptor
	var logStart int64
	if fi, err := logf.Stat(); err == nil {
		logStart = fi.Size()
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Errorf("chaos: starting %s: %v", m.name, err)
		return
	}
	done := make(chan struct{})
	m.cmd, m.done, m.paused, m.killing, m.joinFailed = cmd, done, false, false, false
	m.starts++
	go func() {
		err := cmd.Wait()
		out := chReadFrom(m.log, logStart) // what this run of the process logged
		var ee *exec.ExitError
		status1 := errors.As(err, &ee) && ee.ExitCode() == 1
		m.mu.Lock()
		switch {
		case m.killing:
		case m.removing && status1 && strings.Contains(out, "removed"):
			// Removed from the cluster: it stops by itself, as it should.
			m.removedExit = true
		case m.state == "existing" && status1 && strings.Contains(out, "cairn: joining the cluster:"):
			// It asked a member that had not applied its addition yet
			// (or none answered): the harness starts it again.
			m.joinFailed = true
		default:
			m.unexpected = append(m.unexpected, fmt.Sprintf("pid %d exited by itself: %v", cmd.Process.Pid, err))
		}
		if m.cmd == cmd {
			m.cmd = nil
		}
		m.mu.Unlock()
		close(done)
	}()
}

// running tells whether the member's process is up and not stopped.
func (m *chMember) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil && !m.paused
}

// kill sends SIGKILL to the member's process (SIGCONT first if it is
// stopped) and waits for it to exit.
func (c *chCluster) kill(m *chMember) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	if cmd == nil {
		m.mu.Unlock()
		return
	}
	m.killing = true
	pid := cmd.Process.Pid
	if m.paused {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		m.paused = false
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	m.kills++
	m.mu.Unlock()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		c.t.Errorf("chaos: %s (pid %d) did not exit within 20 s of SIGKILL", m.name, pid)
	}
}

// pause stops the member's process with SIGSTOP.
func (c *chCluster) pause(m *chMember) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.paused {
		return false
	}
	if err := syscall.Kill(m.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		return false
	}
	m.paused = true
	m.stops++
	return true
}

// resume continues a stopped member with SIGCONT.
func (c *chCluster) resume(m *chMember) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && m.paused {
		_ = syscall.Kill(m.cmd.Process.Pid, syscall.SIGCONT)
	}
	m.paused = false
}

// exited tells whether the member's process has ended (or never ran).
func (m *chMember) exited() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd == nil
}

// healAll lifts every network block, removes every fsync delay,
// continues stopped members (removed ones too: they must see that they
// were removed, and stop) and starts the current members that were
// killed (or crashed).
func (c *chCluster) healAll() {
	c.net.heal()
	for _, m := range c.everyMember() {
		_ = os.Remove(m.delayFile)
		c.resume(m)
	}
	for _, m := range c.current() {
		m.mu.Lock()
		removed := m.removedExit
		m.mu.Unlock()
		if !removed { // (a removal that applied late: reap drops it)
			c.start(m)
		}
	}
}

// stopAll kills every member process and closes the proxies.
func (c *chCluster) stopAll() {
	all := c.everyMember()
	for _, m := range all {
		c.kill(m)
	}
	for _, m := range all {
		m.proxy.Close()
	}
}

// unexpectedExits lists the exits the harness did not cause.
func (c *chCluster) unexpectedExits() []string {
	var out []string
	for _, m := range c.everyMember() {
		m.mu.Lock()
		for _, u := range m.unexpected {
			out = append(out, m.name+": "+u)
		}
		m.mu.Unlock()
	}
	return out
}

type chSelf struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	State      string `json:"state"`
	LeaderInfo struct {
		Leader string `json:"leader"`
	} `json:"leaderInfo"`
}

func chStats(m *chMember, timeout time.Duration) (chSelf, error) {
	var s chSelf
	client := &http.Client{Timeout: timeout}
	defer client.CloseIdleConnections()
	resp, err := client.Get(m.client + "/v2/stats/self")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%d %s", resp.StatusCode, body)
	}
	if err == nil {
		err = json.Unmarshal(body, &s)
	}
	return s, err
}

// leader returns the running member that says it leads (nil if none
// says so within the wait).
func (c *chCluster) leader(within time.Duration) *chMember {
	deadline := time.Now().Add(within)
	for {
		for _, m := range c.current() {
			if !m.running() {
				continue
			}
			if s, err := chStats(m, 300*time.Millisecond); err == nil && s.State == "StateLeader" {
				return m
			}
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chReadFrom returns a file's contents from offset on ("" if unreadable).
func chReadFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}

// chTail returns the last n lines of a file.
func chTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
