package etcdtest

import (
	"errors"
	"fmt"
	"io"
	"net"
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

// Require returns the path of program (etcd or etcdctl). When it is not
// installed the test is skipped, or fails if CAIRN_REQUIRE_ETCD=1.
func Require(t testing.TB, program string) string {
	t.Helper()
	bin, err := exec.LookPath(program)
	if err != nil {
		if os.Getenv("CAIRN_REQUIRE_ETCD") == "1" {
			t.Fatalf("%s is not on PATH and CAIRN_REQUIRE_ETCD=1: %v", program, err)
		}
		t.Skipf("%s is not on PATH (%v); install etcd 3.4.23 (Debian: etcd-server etcd-client) or set CAIRN_REQUIRE_ETCD=1 to fail instead", program, err)
	}
	return bin
}

// Log collects a process's output while it runs.
type Log struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start starts a fresh single-member etcd (the binary bin) with the v2 API
// on loopback and returns its client URL and its store index once it is
// usable: it has published itself and set the cluster version, so the
// index is 3 and the next write is the first a test makes. It is stopped
// by its PID when the test ends; its output is logged if the test failed.
func Start(t testing.TB, bin string) (string, uint64) {
	t.Helper()
	var errs []error
	for range 3 {
		url, index, err := tryStart(t, bin)
		if err == nil {
			return url, index
		}
		errs = append(errs, err) // most likely a port taken between probe and bind
	}
	t.Fatalf("etcd did not start: %v", errors.Join(errs...))
	return "", 0
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("probe for a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tryStart(t testing.TB, bin string) (string, uint64, error) {
	client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	// 3.4.23 has no --unsafe-no-fsync (3.5 added it); a test writes little.
	cmd := exec.Command(bin,
		"--enable-v2",
		"--name", "d",
		// A directory etcd creates itself gets the 0700 it wants.
		"--data-dir", filepath.Join(t.TempDir(), "data"),
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "d="+peer,
		"--initial-cluster-state", "new",
		"--logger", "zap",
		"--log-outputs", "stderr",
		"--log-level", "error",
		// A lone member elects itself after one election timeout.
		"--heartbeat-interval", "25",
		"--election-timeout", "250",
	)
	out := &Log{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exited
	}
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	var index uint64
	for {
		select {
		case <-exited:
			return "", 0, fmt.Errorf("etcd exited during start-up: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", 0, fmt.Errorf("etcd not ready after 30s: %s", out.String())
		}
		if resp, err := hc.Get(client + "/v2/keys/"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if idx, err := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64); err == nil && resp.StatusCode == http.StatusOK && idx >= 3 {
				index = idx
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			if s := out.String(); s != "" {
				t.Logf("etcd output:\n%s", s)
			}
		}
	})
	return client, index, nil
}
