package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// composeMember is one service of the repository's docker-compose.yml and
// the loopback port it publishes the client API on.
type composeMember struct {
	service string
	port    int
}

var composeMembers = []composeMember{{"cairn-a", 12379}, {"cairn-b", 22379}, {"cairn-c", 32379}}

func (m composeMember) url() string { return fmt.Sprintf("http://127.0.0.1:%d", m.port) }

// composeRun runs a command with a deadline (killed by its PID when it
// passes) in dir and returns its combined output.
func composeRun(timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error { return syscall.Kill(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: no result after %v", name, strings.Join(args, " "), timeout)
	}
	return string(out), err
}

// composeTool finds docker and a compose command (docker-compose, or the
// `docker compose` plugin), or skips the test saying why.
func composeTool(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker not on PATH:", err)
	}
	if out, err := composeRun(30*time.Second, "", nil, "docker", "info"); err != nil {
		t.Skipf("docker info fails (%v):\n%s", err, out)
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if _, err := composeRun(30*time.Second, "", nil, "docker", "compose", "version"); err == nil {
		return []string{"docker", "compose"}
	}
	t.Skip("neither docker-compose nor the docker compose plugin is available")
	return nil
}

// composeGet reads a client URL once, with a short timeout.
func composeGet(u string) (int, []byte, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// composeWaitFor polls cond every 250 ms until it returns "" (done) or
// the time is up; then it fails with cond's last explanation.
func composeWaitFor(t *testing.T, limit time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, limit, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// composeHealthy reports why the member's /health is not healthy ("" if
// it is).
func composeHealthy(m composeMember) string {
	code, body, err := composeGet(m.url() + "/health")
	if err != nil {
		return err.Error()
	}
	if code != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
		return fmt.Sprintf("%s: %d %s", m.service, code, body)
	}
	return ""
}

// The repository's docker-compose.yml, run with the repository's
// Dockerfile (FROM scratch around the static binary, running as an
// unprivileged user): three members come up healthy (their /health and
// Docker's HEALTHCHECK), a write through one member is read from all, the
// cluster takes writes through the other two while one member's service
// is stopped, and after it is started again all three hold the same value
// for every key and name the same leader. Skipped where Docker cannot be
// used.
func TestComposeClusterSurvivesAStoppedMember(t *testing.T) {
	compose := composeTool(t)
	for _, m := range composeMembers {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", m.port))
		if err != nil {
			msg := fmt.Sprintf("port %d, which docker-compose.yml publishes for %s, is taken (%v): is another compose cluster running?", m.port, m.service, err)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		ln.Close()
	}
	top, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}

	// The image: the static binary and the repository's Dockerfile and
	// .dockerignore, in a build context of their own (the same files the
	// repository's context admits), so that the working tree's bin/ is
	// left alone.
	ctxDir := t.TempDir()
	if out, err := composeRun(5*time.Minute, top, []string{"CGO_ENABLED=0"},
		"go", "build", "-o", filepath.Join(ctxDir, "bin", "cairn"), "."); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join(top, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctxDir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const image = "cairn:e2e"
	if out, err := composeRun(5*time.Minute, ctxDir, nil, "docker", "build", "-t", image, "."); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}

	// The compose file as it is, with the image overridden.
	var override strings.Builder
	override.WriteString("version: \"2.4\"\nservices:\n")
	for _, m := range composeMembers {
		fmt.Fprintf(&override, "  %s:\n    image: %q\n", m.service, image)
	}
	overrideFile := filepath.Join(t.TempDir(), "docker-compose.e2e.yml")
	if err := os.WriteFile(overrideFile, []byte(override.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	project := "cairne2e" + hex.EncodeToString(rnd[:])
	dc := func(timeout time.Duration, args ...string) (string, error) {
		all := append(append([]string{}, compose[1:]...),
			append([]string{"-p", project, "-f", filepath.Join(top, "docker-compose.yml"), "-f", overrideFile}, args...)...)
		return composeRun(timeout, top, nil, compose[0], all...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := dc(time.Minute, "logs", "--no-color", "--tail", "40")
			t.Logf("docker-compose logs:\n%s", out)
		}
		if out, err := dc(3*time.Minute, "down", "-v", "--remove-orphans"); err != nil {
			t.Errorf("docker-compose down -v: %v\n%s", err, out)
		}
		// The image goes too (it may still be in use elsewhere: no matter).
		_, _ = composeRun(time.Minute, "", nil, "docker", "rmi", image)
	})
	if out, err := dc(3*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up -d: %v\n%s", err, out)
	}

	// Healthy: /health on every member, then Docker's own HEALTHCHECK
	// (cairn health inside the container), with the member running as
	// the unprivileged user and writing its data to the volume.
	for _, m := range composeMembers {
		composeWaitFor(t, 90*time.Second, m.service+" /health", func() string { return composeHealthy(m) })
	}
	containers := map[string]string{}
	for _, m := range composeMembers {
		out, err := dc(time.Minute, "ps", "-q", m.service)
		id := strings.TrimSpace(out)
		if err != nil || id == "" {
			t.Fatalf("docker-compose ps -q %s: %v %q", m.service, err, out)
		}
		containers[m.service] = id
		if out, err := composeRun(time.Minute, "", nil, "docker", "inspect", "--format", "{{.Config.User}}", id); err != nil || strings.TrimSpace(out) != "65534:65534" {
			t.Fatalf("%s runs as user %q (%v), want 65534:65534", m.service, out, err)
		}
	}
	for _, m := range composeMembers {
		composeWaitFor(t, 90*time.Second, m.service+" Docker health status", func() string {
			out, err := composeRun(time.Minute, "", nil, "docker", "inspect", "--format", "{{.State.Health.Status}}", containers[m.service])
			if err != nil || strings.TrimSpace(out) != "healthy" {
				return fmt.Sprintf("%q %v", strings.TrimSpace(out), err)
			}
			return ""
		})
	}

	// Writes through one member, read through every member.
	c := &cluster{t: t}
	procs := map[string]*proc{}
	for _, m := range composeMembers {
		procs[m.service] = &proc{name: m.service, client: m.url()}
	}
	want := map[string]string{}
	put := func(service, key, value string) {
		t.Helper()
		code, body := c.do(procs[service], "PUT", "/v2/keys/compose/"+key, url.Values{"value": {value}})
		if code != http.StatusOK && code != http.StatusCreated {
			t.Fatalf("PUT %s through %s: %d %s", key, service, code, body)
		}
		want[key] = value
	}
	for i := range 5 {
		put("cairn-a", fmt.Sprintf("k%d", i), "a-"+fmt.Sprint(i))
	}
	for _, m := range composeMembers {
		if _, body := c.do(procs[m.service], "GET", "/v2/keys/compose/k4", nil); !strings.Contains(body, `"value":"a-4"`) {
			t.Fatalf("%s reads k4: %s", m.service, body)
		}
	}

	// One member's service stopped: the other two go on taking writes,
	// including new values for keys written before.
	stopped := composeMembers[1]
	if out, err := dc(2*time.Minute, "stop", stopped.service); err != nil {
		t.Fatalf("docker-compose stop %s: %v\n%s", stopped.service, err, out)
	}
	composeWaitFor(t, 30*time.Second, stopped.service+" stops answering", func() string {
		if _, _, err := composeGet(stopped.url() + "/health"); err == nil {
			return "it still answers"
		}
		return ""
	})
	for i := range 10 {
		via := []string{"cairn-a", "cairn-c"}[i%2]
		put(via, fmt.Sprintf("k%d", i+3), via+"-"+fmt.Sprint(i))
	}
	if out, err := dc(2*time.Minute, "start", stopped.service); err != nil {
		t.Fatalf("docker-compose start %s: %v\n%s", stopped.service, err, out)
	}
	composeWaitFor(t, 90*time.Second, stopped.service+" /health after start", func() string { return composeHealthy(stopped) })

	// Convergence: every member, read without quorum and read from its
	// local replica, holds every written value, and all three name the
	// same leader, which is one of them and says it leads.
	composeWaitFor(t, 90*time.Second, "the three members converge", func() string {
		for _, m := range composeMembers {
			for key, value := range want {
				for _, q := range []string{"quorum=false", "serializable=true"} {
					code, body, err := composeGet(m.url() + "/v2/keys/compose/" + key + "?" + q)
					if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"value":"`+value+`"`) {
						return fmt.Sprintf("%s ?%s: %s: %d %s %v, want %q", m.service, q, key, code, body, err, value)
					}
				}
			}
		}
		return composeSameLeader()
	})
}

// composeSameLeader reports why the members do not agree on one leader
// ("" when they do).
func composeSameLeader() string {
	type self struct {
		ID         string `json:"id"`
		State      string `json:"state"`
		LeaderInfo struct {
			Leader string `json:"leader"`
		} `json:"leaderInfo"`
	}
	var stats []self
	for _, m := range composeMembers {
		code, body, err := composeGet(m.url() + "/v2/stats/self")
		var s self
		if err == nil && code == http.StatusOK {
			err = json.Unmarshal(body, &s)
		}
		if err != nil || code != http.StatusOK {
			return fmt.Sprintf("%s /v2/stats/self: %d %s %v", m.service, code, body, err)
		}
		stats = append(stats, s)
	}
	leader := stats[0].LeaderInfo.Leader
	leaders := 0
	for _, s := range stats {
		if leader == "" || s.LeaderInfo.Leader != leader {
			return fmt.Sprintf("leaders named: %+v", stats)
		}
		if s.ID == leader && s.State == "StateLeader" {
			leaders++
		}
	}
	if leaders != 1 {
		return fmt.Sprintf("no member is the leader they name: %+v", stats)
	}
	return ""
}
