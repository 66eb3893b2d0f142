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
	"regexp"
	"slices"
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

// composeProject is a set of the repository's compose files brought up
// under a project name of its own, with an image built for the test;
// its containers, network, volumes and image are removed when the test
// ends.
type composeProject struct {
	tool  []string // docker-compose, or docker compose
	top   string   // the repository
	files []string // the compose files, then the override naming the image
	name  string
}

// dc runs the compose command on the project.
func (p *composeProject) dc(timeout time.Duration, args ...string) (string, error) {
	all := append([]string{}, p.tool[1:]...)
	all = append(all, "-p", p.name)
	for _, f := range p.files {
		all = append(all, "-f", f)
	}
	return composeRun(timeout, p.top, nil, p.tool[0], append(all, args...)...)
}

// composeUp builds the image from the static binary and the repository's
// Dockerfile, and runs `up -d` on the repository's files (names relative
// to the repository) with the image set for services. The loopback ports
// the files publish must be free: the test is skipped (failed in CI)
// otherwise.
func composeUp(t *testing.T, tool []string, files []string, services []string, ports []int) *composeProject {
	t.Helper()
	for _, port := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			msg := fmt.Sprintf("port %d, which %s publish, is taken (%v): is another compose cluster running?", port, strings.Join(files, " and "), err)
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
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	p := &composeProject{tool: tool, top: top, name: "cairne2e" + hex.EncodeToString(rnd[:])}

	// The image: the static binary and the repository's Dockerfile and
	// .dockerignore, in a build context of their own (the same files the
	// repository's context admits), so that the working tree's bin/ is
	// left alone. Its tag is the project's, so that no other run's image
	// is replaced or removed.
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
	image := "cairn:" + p.name
	if out, err := composeRun(5*time.Minute, ctxDir, nil, "docker", "build", "-t", image, "."); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}

	// The compose files as they are, with the image overridden.
	var override strings.Builder
	override.WriteString("version: \"2.4\"\nservices:\n")
	for _, s := range services {
		fmt.Fprintf(&override, "  %s:\n    image: %q\n", s, image)
	}
	overrideFile := filepath.Join(t.TempDir(), "docker-compose.e2e.yml")
	if err := os.WriteFile(overrideFile, []byte(override.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		p.files = append(p.files, filepath.Join(top, f))
	}
	p.files = append(p.files, overrideFile)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := p.dc(time.Minute, "logs", "--no-color", "--tail", "40")
			t.Logf("docker-compose logs:\n%s", out)
		}
		if out, err := p.dc(3*time.Minute, "down", "-v", "--remove-orphans"); err != nil {
			t.Errorf("docker-compose down -v: %v\n%s", err, out)
		}
		out, err := composeRun(time.Minute, "", nil, "docker", "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+p.name)
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("volumes left after down -v: %q %v", out, err)
		}
		_, _ = composeRun(time.Minute, "", nil, "docker", "rmi", image)
	})
	if out, err := p.dc(3*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up -d: %v\n%s", err, out)
	}
	return p
}

// composeServices lists the members' services.
func composeServices(ms []composeMember) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.service)
	}
	return out
}

// composePorts lists the ports the members publish.
func composePorts(ms []composeMember) []int {
	var out []int
	for _, m := range ms {
		out = append(out, m.port)
	}
	return out
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
	dc := composeUp(t, compose, []string{"docker-compose.yml"}, composeServices(composeMembers), composePorts(composeMembers)).dc

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

// composeDockerHealthy waits for Docker's HEALTHCHECK to call the
// service's container healthy, and returns the container's ID.
func composeDockerHealthy(t *testing.T, p *composeProject, service string) string {
	t.Helper()
	out, err := p.dc(time.Minute, "ps", "-q", service)
	id := strings.TrimSpace(out)
	if err != nil || id == "" {
		t.Fatalf("docker-compose ps -q %s: %v %q", service, err, out)
	}
	composeWaitFor(t, 90*time.Second, service+" Docker health status", func() string {
		out, err := composeRun(time.Minute, "", nil, "docker", "inspect", "--format", "{{.State.Health.Status}}", id)
		if err != nil || strings.TrimSpace(out) != "healthy" {
			return fmt.Sprintf("%q %v", strings.TrimSpace(out), err)
		}
		return ""
	})
	return id
}

// docker-compose.proxy.yml over docker-compose.yml: the proxy comes up
// healthy on 127.0.0.1:2379, finds the three members by their compose
// names, and serves writes and reads; when the member it sends to first
// is stopped, writes and reads through it go on without an error. The
// project is torn down with its volumes.
func TestComposeProxy(t *testing.T) {
	compose := composeTool(t)
	proxy := composeMember{"cairn-proxy", 2379}
	all := append(slices.Clone(composeMembers), proxy)
	p := composeUp(t, compose, []string{"docker-compose.yml", "docker-compose.proxy.yml"}, composeServices(all), composePorts(all))
	for _, m := range all {
		composeWaitFor(t, 90*time.Second, m.service+" /health", func() string { return composeHealthy(m) })
	}
	var want []string
	for _, m := range composeMembers {
		want = append(want, "http://"+m.service+":2379") // the client URLs the members advertise
	}
	composeWaitFor(t, 60*time.Second, "the proxy's endpoints", func() string {
		if got := pxEndpoints(proxy.url()); !slices.Equal(got, want) {
			return fmt.Sprintf("%v, want %v", got, want)
		}
		return ""
	})
	composeDockerHealthy(t, p, proxy.service)

	hc := &http.Client{Timeout: 10 * time.Second}
	put := func(key, value string) error {
		code, body, _, err := pxDo(hc, "PUT", proxy.url()+"/v2/keys/composeproxy/"+key, url.Values{"value": {value}})
		if err == nil && code != http.StatusCreated && code != http.StatusOK {
			err = fmt.Errorf("%d %s", code, strings.TrimSpace(body))
		}
		return err
	}
	get := func(base, key string) string {
		_, body, _, err := pxDo(hc, "GET", base+"/v2/keys/composeproxy/"+key+"?quorum=true", nil)
		if err != nil {
			return err.Error()
		}
		return body
	}
	for i := range 5 {
		if err := put(fmt.Sprint("k", i), fmt.Sprint("before-", i)); err != nil {
			t.Fatalf("PUT k%d through the proxy: %v", i, err)
		}
	}
	if body := get(proxy.url(), "k4"); !strings.Contains(body, `"value":"before-4"`) {
		t.Fatalf("GET k4 through the proxy: %s", body)
	}
	if body := get(composeMembers[2].url(), "k4"); !strings.Contains(body, `"value":"before-4"`) {
		t.Fatalf("GET k4 from %s: %s", composeMembers[2].service, body)
	}

	// Stop the member the proxy sends to first.
	first := pxFirstEndpoint(proxy.url())
	var stopped composeMember
	for _, m := range composeMembers {
		if first == "http://"+m.service+":2379" {
			stopped = m
		}
	}
	if stopped.service == "" {
		t.Fatalf("the proxy's first endpoint %q is no member", first)
	}
	if out, err := p.dc(2*time.Minute, "stop", stopped.service); err != nil {
		t.Fatalf("docker-compose stop %s: %v\n%s", stopped.service, err, out)
	}
	t.Logf("stopped %s, the proxy's first endpoint", stopped.service)
	var errs []string
	for i := range 10 {
		for try := 0; ; try++ {
			err := put(fmt.Sprint("after", i), fmt.Sprint("after-", i))
			if err == nil {
				break
			}
			errs = append(errs, fmt.Sprintf("write %d try %d: %v", i, try, err))
			if try == 5 {
				t.Fatalf("write %d keeps failing: %v", i, errs)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// A stop hands leadership over first; at most the write in flight
	// during the hand-over may fail.
	if len(errs) > 1 {
		t.Fatalf("%d failed writes through the proxy, want at most 1: %v", len(errs), errs)
	}
	for i := range 10 {
		if body := get(proxy.url(), fmt.Sprint("after", i)); !strings.Contains(body, fmt.Sprintf(`"value":"after-%d"`, i)) {
			t.Fatalf("GET after%d through the proxy: %s", i, body)
		}
	}
	if body := get(proxy.url(), "k0"); !strings.Contains(body, `"value":"before-0"`) {
		t.Fatalf("GET k0 through the proxy: %s", body)
	}
	_, metrics, _, _ := pxDo(hc, "GET", proxy.url()+"/metrics", nil)
	t.Logf("failures counted: %q", regexp.MustCompile(`cairn_proxy_endpoint_failures_total\{[^\n]*`).FindAllString(metrics, -1))
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
