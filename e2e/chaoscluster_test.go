package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
type chMember struct {
	idx                  int
	name                 string
	id                   uint64
	client               string
	listenPeer, advPeer  string
	dir, log             string
	proxy                *chProxy
	mu                   sync.Mutex
	cmd                  *exec.Cmd
	done                 chan struct{} // closed when the running process exited
	paused, killing      bool
	unexpected           []string // exits the harness did not cause
	starts, kills, stops int
}

// chCluster runs member processes behind fault proxies.
type chCluster struct {
	t       *testing.T
	net     *chNet
	members []*chMember
	initial string
	env     []string // added to every member's environment
	extra   []string // added to every member's command line
}

// chStartCluster starts n members named a, b, c, ... with proxies in
// front of their peer listeners, and learns their IDs. Everything is
// stopped (by PID) when the test ends.
func chStartCluster(t *testing.T, n int, env, extra []string) *chCluster {
	t.Helper()
	c := &chCluster{t: t, net: chNewNet(), env: env, extra: extra}
	base := t.TempDir()
	var parts []string
	for i := range n {
		name := string(rune('a' + i))
		m := &chMember{idx: i, name: name, dir: filepath.Join(base, name),
			client:     fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			listenPeer: fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
		m.log = m.dir + ".log"
		p, err := chStartProxy(c.net, i, m.listenPeer)
		if err != nil {
			t.Fatal(err)
		}
		m.proxy, m.advPeer = p, p.URL()
		c.members = append(c.members, m)
		parts = append(parts, name+"="+m.advPeer)
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
				t.Fatalf("%s did not answer /v2/stats/self: %v\nlog:\n%s", m.name, err, chTail(m.log, 20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// start starts the member's process (again: same data directory and
// flags; a restart ignores --initial-cluster).
func (c *chCluster) start(m *chMember) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	cmd := exec.Command(binary, "--name", m.name, "--data-dir", m.dir,
		"--initial-cluster", c.initial, "--initial-advertise-peer-urls", m.advPeer,
		"--listen-peer-urls", m.listenPeer, "--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--heartbeat-interval", "50", "--election-timeout", "500")
	cmd.Args = append(cmd.Args, c.extra...)
	cmd.Env = append(os.Environ(), c.env...)
	logf, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Errorf("chaos: %v", err)
		return
	}
	defer logf.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Errorf("chaos: starting %s: %v", m.name, err)
		return
	}
	done := make(chan struct{})
	m.cmd, m.done, m.paused, m.killing = cmd, done, false, false
	m.starts++
	go func() {
		err := cmd.Wait()
		m.mu.Lock()
		if !m.killing {
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

// healAll lifts every network block, continues stopped members and
// starts killed (or crashed) ones.
func (c *chCluster) healAll() {
	c.net.heal()
	for _, m := range c.members {
		c.resume(m)
		c.start(m)
	}
}

// stopAll kills every member process and closes the proxies.
func (c *chCluster) stopAll() {
	for _, m := range c.members {
		c.kill(m)
	}
	for _, m := range c.members {
		m.proxy.Close()
	}
}

// unexpectedExits lists the exits the harness did not cause.
func (c *chCluster) unexpectedExits() []string {
	var out []string
	for _, m := range c.members {
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
		for _, m := range c.members {
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

// chTail returns the last n lines of a file.
func chTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
