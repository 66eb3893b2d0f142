package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// promDeploy is the directory of the shipped Prometheus files, relative to
// this package.
const promDeploy = "../deploy/prometheus"

// promRequire returns the path of a Prometheus program (prometheus or
// promtool). When it is not installed the test is skipped, saying so, or
// fails if CAIRN_REQUIRE_PROMETHEUS=1.
func promRequire(t *testing.T, program string) string {
	t.Helper()
	bin, err := exec.LookPath(program)
	if err != nil {
		if os.Getenv("CAIRN_REQUIRE_PROMETHEUS") == "1" {
			t.Fatalf("%s is not on PATH and CAIRN_REQUIRE_PROMETHEUS=1: %v", program, err)
		}
		t.Skipf("%s is not on PATH (%v); install Prometheus (Debian: apt-get install prometheus) or set CAIRN_REQUIRE_PROMETHEUS=1 to fail instead", program, err)
	}
	return bin
}

// The shipped configuration, rules and rule unit tests pass promtool's
// checks, the ones docs/operations.md tells operators to run.
func TestPromtoolChecksDeploy(t *testing.T) {
	promtool := promRequire(t, "promtool")
	for _, args := range [][]string{
		{"check", "config", filepath.Join(promDeploy, "prometheus.yml")},
		{"check", "rules", filepath.Join(promDeploy, "cairn-rules.yml")},
		{"test", "rules", filepath.Join(promDeploy, "cairn-rules.test.yml")},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	}
}

// A real Prometheus, configured from deploy/prometheus (its scrape job
// pointed at three real members, intervals of a second) scrapes the
// cluster: the key series are there with the values the cluster's state
// implies, every shipped rule evaluates without error, and when a member
// is stopped the member-down rule fires (a copy of it with a 2 s `for:`)
// while the shipped one, which waits a minute, is pending.
func TestPrometheusScrapesACluster(t *testing.T) {
	promBin := promRequire(t, "prometheus")
	c := startCluster(t, "a", "b", "c")
	fltWaitLeader(t, c.procs, 30*time.Second)
	var targets []string
	for _, p := range c.procs {
		targets = append(targets, strings.TrimPrefix(p.client, "http://"))
	}

	dir := t.TempDir()
	promWriteConfig(t, dir, targets)
	prom := promStart(t, promBin, dir)

	up := func(v []promSample) (bool, string) {
		return len(v) == 3 && promAll(v, func(f float64) bool { return f == 1 }), promShow(v)
	}
	prom.waitFor(t, `up{job="cairn"}`, 60*time.Second, up)
	prom.waitFor(t, "cairn_server_has_leader", 30*time.Second, up)
	prom.waitFor(t, "sum(cairn_server_is_leader)", 30*time.Second, func(v []promSample) (bool, string) {
		return len(v) == 1 && v[0].Value == 1, promShow(v)
	})
	prom.waitFor(t, "count(count by (server_id) (cairn_server_id))", 30*time.Second, func(v []promSample) (bool, string) {
		return len(v) == 1 && v[0].Value == 3, promShow(v)
	})

	// Writes through every member move the commit and applied indexes of
	// all three; Prometheus sees them rise.
	const writes = 60
	for i := range writes {
		p := c.procs[i%len(c.procs)]
		if code, body := c.do(p, "PUT", fmt.Sprintf("/v2/keys/prom/k%d", i), url.Values{"value": {"v"}}); code != http.StatusCreated {
			t.Fatalf("PUT at %s: %d %s", p.name, code, body)
		}
	}
	rising := func(v []promSample) (bool, string) {
		return len(v) == 3 && promAll(v, func(f float64) bool { return f > 0 }), promShow(v)
	}
	prom.waitFor(t, "rate(cairn_server_proposals_committed_total[15s])", 30*time.Second, rising)
	prom.waitFor(t, "rate(cairn_server_proposals_applied_total[15s])", 30*time.Second, rising)
	prom.waitFor(t, "cairn_server_proposals_applied_total", 30*time.Second, func(v []promSample) (bool, string) {
		return len(v) == 3 && promAll(v, func(f float64) bool { return f >= writes }), promShow(v)
	})
	// The fsync histogram: 14 buckets and +Inf per member, each member's
	// +Inf bucket counting its saves (one or more per write).
	prom.waitFor(t, "count by (instance) (cairn_disk_wal_fsync_duration_seconds_bucket)", 30*time.Second, func(v []promSample) (bool, string) {
		return len(v) == 3 && promAll(v, func(f float64) bool { return f == 15 }), promShow(v)
	})
	prom.waitFor(t, `cairn_disk_wal_fsync_duration_seconds_bucket{le="+Inf"}`, 30*time.Second, func(v []promSample) (bool, string) {
		return len(v) == 3 && promAll(v, func(f float64) bool { return f > 0 }), promShow(v)
	})

	// Every shipped rule (and the test copy) has been evaluated against
	// the cluster's series without an error.
	prom.waitRulesHealthy(t, 30*time.Second)

	// Stop a member: the fast copy of CairnMemberDown fires for it alone,
	// and the shipped rule is pending for it.
	victim := c.procs[2]
	victimTarget := strings.TrimPrefix(victim.client, "http://")
	c.kill(victim, syscall.SIGTERM)
	deadline := time.Now().Add(60 * time.Second)
	for {
		alerts := prom.alerts(t)
		fast := promAlertStates(alerts, promFastMemberDown)
		shipped := promAlertStates(alerts, "CairnMemberDown")
		if fast[victimTarget] == "firing" {
			if len(fast) != 1 {
				t.Fatalf("%s active for members other than the stopped one: %v", promFastMemberDown, fast)
			}
			if st := shipped[victimTarget]; (st != "pending" && st != "firing") || len(shipped) != 1 {
				t.Fatalf("CairnMemberDown states %v, want pending for %s alone", shipped, victimTarget)
			}
			t.Logf("%s firing for %s; CairnMemberDown %s", promFastMemberDown, victimTarget, shipped[victimTarget])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not firing for %s within a minute; alerts: %+v\nprometheus log:\n%s",
				promFastMemberDown, victimTarget, alerts, fltTail(prom.log, 20))
		}
		time.Sleep(250 * time.Millisecond)
	}
	prom.waitFor(t, `up{job="cairn"} == 0`, 10*time.Second, func(v []promSample) (bool, string) {
		return len(v) == 1 && v[0].Metric["instance"] == victimTarget, promShow(v)
	})
}

// promFastMemberDown is the name of the test's copy of CairnMemberDown.
const promFastMemberDown = "CairnMemberDownFast"

// promWriteConfig writes into dir a prometheus.yml made from the shipped
// one, with its cairn job scraping targets every second and no
// Alertmanager, the shipped rules, and a copy of CairnMemberDown that
// fires after 2 s instead of a minute.
func promWriteConfig(t *testing.T, dir string, targets []string) {
	t.Helper()
	var cfg map[string]any
	promReadYAML(t, filepath.Join(promDeploy, "prometheus.yml"), &cfg)
	cfg["global"] = map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
	delete(cfg, "alerting")
	cfg["rule_files"] = []string{"cairn-rules.yml", "fast-rules.yml"}
	jobs, _ := cfg["scrape_configs"].([]any)
	found := false
	for _, j := range jobs {
		job, _ := j.(map[string]any)
		if job["job_name"] == "cairn" {
			job["static_configs"] = []any{map[string]any{"targets": targets}}
			found = true
		}
	}
	if !found {
		t.Fatalf("%s/prometheus.yml has no job named cairn", promDeploy)
	}
	promWriteYAML(t, filepath.Join(dir, "prometheus.yml"), cfg)

	rules, err := os.ReadFile(filepath.Join(promDeploy, "cairn-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cairn-rules.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	var shipped promRuleFile
	promReadYAML(t, filepath.Join(promDeploy, "cairn-rules.yml"), &shipped)
	down, ok := shipped.rule("CairnMemberDown")
	if !ok {
		t.Fatalf("%s/cairn-rules.yml has no CairnMemberDown", promDeploy)
	}
	fast := promRuleFile{Groups: []promRuleGroup{{Name: "cairn-e2e", Rules: []promRule{{
		Alert: promFastMemberDown, Expr: down.Expr, For: "2s", Labels: down.Labels,
	}}}}}
	promWriteYAML(t, filepath.Join(dir, "fast-rules.yml"), fast)
}

// promRuleFile is a Prometheus rule file, as much of it as the tests read.
type promRuleFile struct {
	Groups []promRuleGroup `yaml:"groups"`
}

type promRuleGroup struct {
	Name  string     `yaml:"name"`
	Rules []promRule `yaml:"rules"`
}

type promRule struct {
	Alert       string            `yaml:"alert,omitempty"`
	Record      string            `yaml:"record,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

func (f promRuleFile) rule(alert string) (promRule, bool) {
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == alert {
				return r, true
			}
		}
	}
	return promRule{}, false
}

func promReadYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func promWriteYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// promServer is a running Prometheus.
type promServer struct {
	url, log string
}

// promStart starts Prometheus on a free loopback port with the
// configuration in dir and its database under dir, waits until it is
// ready, and stops it by its PID when the test ends.
func promStart(t *testing.T, bin, dir string) *promServer {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := &promServer{url: "http://" + addr, log: filepath.Join(dir, "prometheus.log")}
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logf.Close()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", fltTail(s.log, 40))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _, err := fltGet(s.url + "/-/ready")
		if err == nil && code == http.StatusOK {
			return s
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", fltTail(s.log, 20))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready within a minute: %d %v\n%s", code, err, fltTail(s.log, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string
	Value  float64
}

// api GETs an /api/v1 path and decodes its data field into v.
func (s *promServer) api(t *testing.T, path string, v any) error {
	t.Helper()
	code, body, err := fltGet(s.url + "/api/v1/" + path)
	if err != nil {
		return err
	}
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("%d %s: %v", code, body, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%d: %s", code, r.Error)
	}
	return json.Unmarshal(r.Data, v)
}

// query evaluates an instant query now.
func (s *promServer) query(t *testing.T, expr string) ([]promSample, error) {
	t.Helper()
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := s.api(t, "query?query="+url.QueryEscape(expr), &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: a %s, not a vector", expr, data.ResultType)
	}
	var out []promSample
	for _, r := range data.Result {
		str, _ := r.Value[1].(string)
		f, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %v", expr, r.Value)
		}
		out = append(out, promSample{Metric: r.Metric, Value: f})
	}
	return out, nil
}

// waitFor evaluates expr until ok accepts the result.
func (s *promServer) waitFor(t *testing.T, expr string, within time.Duration, ok func([]promSample) (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for {
		v, err := s.query(t, expr)
		if err != nil {
			last = err.Error()
		} else {
			var good bool
			good, last = ok(v)
			if good {
				t.Logf("%s: %s", expr, last)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not as expected within %v; last: %s", expr, within, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitRulesHealthy waits until every loaded rule has been evaluated and
// none failed.
func (s *promServer) waitRulesHealthy(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		}
		var bad []string
		n := 0
		if err := s.api(t, "rules", &data); err != nil {
			bad = append(bad, err.Error())
		}
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health != "ok" {
					bad = append(bad, fmt.Sprintf("%s/%s: %s %s", g.Name, r.Name, r.Health, r.LastError))
				}
			}
		}
		if len(bad) == 0 && n > 1 {
			t.Logf("%d rules evaluated, all healthy", n)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rules not all healthy within %v (%d loaded): %v", within, n, bad)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (s *promServer) alerts(t *testing.T) []promAlert {
	t.Helper()
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	if err := s.api(t, "alerts", &data); err != nil {
		t.Logf("alerts: %v", err)
	}
	return data.Alerts
}

// promAlertStates maps the instance of each active alert called name to
// its state (pending or firing).
func promAlertStates(alerts []promAlert, name string) map[string]string {
	m := map[string]string{}
	for _, a := range alerts {
		if a.Labels["alertname"] == name {
			m[a.Labels["instance"]] = a.State
		}
	}
	return m
}

func promAll(v []promSample, ok func(float64) bool) bool {
	for _, s := range v {
		if !ok(s.Value) {
			return false
		}
	}
	return true
}

// promShow prints a vector compactly, sorted: {instance} value.
func promShow(v []promSample) string {
	var parts []string
	for _, s := range v {
		var labels []string
		for k, l := range s.Metric {
			if k != "job" && k != "__name__" {
				labels = append(labels, k+"="+l)
			}
		}
		slices.Sort(labels)
		parts = append(parts, fmt.Sprintf("{%s} %g", strings.Join(labels, ","), s.Value))
	}
	slices.Sort(parts)
	return fmt.Sprintf("%d series: %s", len(v), strings.Join(parts, " "))
}
