package e2e

import (
	"bufio"
	"context"
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

// qsBlock returns the lines of the first ```sh block after the heading in
// the README.
func qsBlock(t *testing.T, readme, heading string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", heading)
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatalf("README.md: no ```sh block under %q", heading)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("README.md: unterminated ```sh block under %q", heading)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		// Drop the trailing "# comment".
		line, _, _ := strings.Cut(sc.Text(), " #")
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// qsCurl is the HTTP request a README curl line makes.
type qsCurl struct {
	method, url string
	form        url.Values
}

// qsParseCurl understands the curl options the README uses (-s, -X, -d
// and a URL, possibly in single quotes) and fails on any other.
func qsParseCurl(t *testing.T, line string) qsCurl {
	t.Helper()
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "curl" {
		t.Fatalf("README: not a curl command: %q", line)
	}
	var c qsCurl
	for i := 1; i < len(f); i++ {
		switch a := f[i]; {
		case a == "-s":
		case a == "-X" && i+1 < len(f):
			i++
			c.method = f[i]
		case a == "-d" && i+1 < len(f):
			i++
			k, v, _ := strings.Cut(f[i], "=")
			if c.form == nil {
				c.form = url.Values{}
			}
			c.form.Add(k, v)
		case strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "'http://"):
			c.url = strings.Trim(a, "'")
		default:
			t.Fatalf("README: curl option %q in %q is not understood by this test", a, line)
		}
	}
	if c.method == "" {
		c.method = http.MethodGet
		if c.form != nil {
			c.method = http.MethodPost
		}
	}
	if c.url == "" {
		t.Fatalf("README: no URL in %q", line)
	}
	return c
}

// do sends the request as curl would (a -d body is form-encoded).
func (c qsCurl) do(ctx context.Context) (int, string, error) {
	var body io.Reader
	if c.form != nil {
		body = strings.NewReader(c.form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, body)
	if err != nil {
		return 0, "", err
	}
	if c.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// The README's quick start, as written, in a clean clone of this
// repository: its first command (`go run .`) builds and starts a member
// that serves the v2 keys API on http://127.0.0.1:2379 and keeps its data
// in ./default.cairn; the README's "Try it" curl requests (set, get, and
// a watch that returns on the next change) work against it; SIGTERM stops
// it.
func TestQuickstartGoRun(t *testing.T) {
	for _, port := range []string{"2379", "2380"} {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			msg := fmt.Sprintf("127.0.0.1:%s, the quick start's default port, is taken (%v): another etcd or cairn is running", port, err)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		ln.Close()
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not on PATH:", err)
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not a git checkout (git rev-parse --show-toplevel: %v)", err)
	}
	clone := filepath.Join(t.TempDir(), "cairn")
	if out, err := exec.Command("git", "clone", "--quiet", strings.TrimSpace(string(top)), clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	readme, err := os.ReadFile(filepath.Join(clone, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	start := qsBlock(t, string(readme), "## Quick start")[0]
	if start != "go run ." {
		t.Fatalf("README's quick start now begins with %q: update this test", start)
	}
	var tries []qsCurl
	for _, l := range qsBlock(t, string(readme), "## Try it") {
		tries = append(tries, qsParseCurl(t, l))
	}
	if len(tries) != 3 {
		t.Fatalf("README's Try it has %d commands, this test knows set, get and watch: update it", len(tries))
	}
	set, get, watch := tries[0], tries[1], tries[2]
	base, _, _ := strings.Cut(set.url, "/v2/")

	// Run the command as written, in the clone, with none of the
	// CAIRN_* settings of this environment, in its own process group:
	// `go run` starts the built member as its child.
	args := strings.Fields(start)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = clone
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	logPath := filepath.Join(t.TempDir(), "go-run.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	logs := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	stopped := false
	stop := func() {
		// SIGTERM to the group reaches both `go run` and the member;
		// wait (bounded) until every process of the group is gone.
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("go run did not exit within 30 s of SIGTERM")
		}
		deadline := time.Now().Add(30 * time.Second)
		for syscall.Kill(-pgid, 0) == nil {
			if time.Now().After(deadline) {
				t.Errorf("processes of the group are left 30 s after SIGTERM: killing them\n%s", logs())
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-exited
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Cleanup(stop)

	// The build and start-up, bounded: /health answers healthy.
	client := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(120 * time.Second)
	for {
		resp, err := client.Get(base + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"health":"true"`) {
				break
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		select {
		case <-exited:
			t.Fatalf("go run exited (%v) before the member was healthy:\n%s", exitErr, logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/health not healthy 120 s after go run (last: %v):\n%s", base, err, logs())
		}
		time.Sleep(250 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	value := set.form.Get("value")
	code, body, err := set.do(ctx)
	if err != nil || code != http.StatusCreated || !strings.Contains(body, `"action":"set"`) || !strings.Contains(body, `"value":"`+value+`"`) {
		t.Fatalf("%s %s: %d %s %v", set.method, set.url, code, body, err)
	}
	code, body, err = get.do(ctx)
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"action":"get"`) || !strings.Contains(body, `"value":"`+value+`"`) {
		t.Fatalf("GET %s: %d %s %v", get.url, code, body, err)
	}

	// The watch returns on the next change: change the key until it
	// does (the first changes may come before it is registered).
	type answer struct {
		code int
		body string
		err  error
	}
	watched := make(chan answer, 1)
	go func() {
		code, body, err := watch.do(ctx)
		watched <- answer{code, body, err}
	}()
	change := set
	var w answer
changes:
	for i := 0; ; i++ {
		change.form = url.Values{"value": {fmt.Sprintf("%s-%d", value, i)}}
		if code, body, err := change.do(ctx); err != nil || code != http.StatusOK {
			t.Fatalf("%s %s: %d %s %v", change.method, change.url, code, body, err)
		}
		select {
		case w = <-watched:
			break changes
		case <-ctx.Done():
			t.Fatalf("GET %s did not return on any of %d changes", watch.url, i+1)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if w.err != nil || w.code != http.StatusOK || !strings.Contains(w.body, `"action":"set"`) || !strings.Contains(w.body, `"value":"`+value+`-`) {
		t.Fatalf("GET %s: %d %s %v", watch.url, w.code, w.body, w.err)
	}

	if fi, err := os.Stat(filepath.Join(clone, "default.cairn")); err != nil || !fi.IsDir() {
		t.Fatalf("./default.cairn in the clone: %v", err)
	}
	stop()
}
