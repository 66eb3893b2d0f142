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
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rdStarts is how many times each cluster shape is started.
const rdStarts = 5

// rdBusyLoops is how many busy-loop processes load the machine while the
// members start: more than its cores, so that a member's goroutines wait
// for a CPU, as on a shared CI machine.
const rdBusyLoops = 4

// Healthy means ready: on a loaded machine, the moment a fresh member
// first answers /health 200, GET /v2/members lists it with its client
// URL and etcdctl (v2), which first syncs its endpoints from
// /v2/members, works against it. Checked for a one-member cluster and
// for each member of a three-member cluster, rdStarts times each. A
// member that is healthy before its own publish is applied fails here
// with "etcd cluster has no published client endpoints".
func TestHealthyMeansReady(t *testing.T) {
	etcdctl := clEtcdctlPath(t)
	rdLoad(t, rdBusyLoops)
	var mu sync.Mutex
	checks, failed := 0, 0
	count := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		checks++
		if err != nil {
			failed++
		}
	}
	for _, names := range [][]string{{"a"}, {"a", "b", "c"}} {
		for i := range rdStarts {
			t.Run(fmt.Sprintf("%d-members/start-%d", len(names), i+1), func(t *testing.T) {
				c := startCluster(t, names...)
				var wg sync.WaitGroup
				for _, p := range c.procs {
					wg.Go(func() {
						err := rdFirstHealthy(p, etcdctl)
						count(err)
						if err != nil {
							t.Errorf("%s: %v", p.name, err)
						}
					})
				}
				wg.Wait()
				for _, p := range c.procs {
					c.kill(p, syscall.SIGTERM)
				}
			})
		}
	}
	t.Logf("%d of %d first health checks were followed by a failed readiness check", failed, checks)
}

// rdFirstHealthy polls p's /health until its first 200 and, at once,
// checks that /v2/members lists p with its client URL and that etcdctl
// (v2, syncing its endpoints) can list / and set a key through p.
func rdFirstHealthy(p *proc, etcdctl string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(p.client + "/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy within 60 s (last: %v)", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var errs []error
	if err := rdListed(client, p); err != nil {
		errs = append(errs, err)
	}
	for _, args := range [][]string{{"ls", "/"}, {"set", "/ready/" + p.name, "x"}} {
		if out, err := rdEtcdctl(etcdctl, p.client, args...); err != nil {
			errs = append(errs, fmt.Errorf("etcdctl %s right after the first healthy answer: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}

// rdListed checks that p's /v2/members lists p with its client URL.
func rdListed(client *http.Client, p *proc) error {
	resp, err := client.Get(p.client + "/v2/members")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var list struct {
		Members []struct {
			Name       string   `json:"name"`
			PeerURLs   []string `json:"peerURLs"`
			ClientURLs []string `json:"clientURLs"`
		} `json:"members"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("/v2/members: %d %s", resp.StatusCode, body)
	}
	for _, m := range list.Members {
		if slices.Contains(m.PeerURLs, p.peer) {
			if m.Name != p.name || !slices.Contains(m.ClientURLs, p.client) {
				return fmt.Errorf("healthy, but /v2/members lists it without its name or client URL: %s", body)
			}
			return nil
		}
	}
	return fmt.Errorf("healthy, but /v2/members does not list it: %s", body)
}

// rdEtcdctl runs etcdctl in v2 mode against endpoint, letting it sync
// its endpoints from the cluster as a client does by default.
func rdEtcdctl(etcdctl, endpoint string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clCallTimeout)
	defer cancel()
	all := append([]string{"--endpoints", endpoint, "--total-timeout", "10s"}, args...)
	cmd := exec.CommandContext(ctx, etcdctl, all...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=2")
	cmd.Cancel = func() error { return syscall.Kill(cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// rdLoad starts n busy-loop processes until the test ends; each is
// stopped by its PID.
func rdLoad(t *testing.T, n int) {
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
}
