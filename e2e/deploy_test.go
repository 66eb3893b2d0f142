package e2e

import (
	"encoding/json"
	"fmt"
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

	"github.com/cairnkv/cairn/config"
)

// deployDashboard is the shipped Grafana dashboard, relative to this
// package.
const deployDashboard = "../deploy/grafana/cairn-dashboard.json"

// deployOtherBranches lists the metrics the dashboard and the alert rules
// use that a member of this branch does not serve yet, and the work that
// adds each. The check below accepts them without seeing them; once that
// work is merged and a member serves one, the test logs that it can leave
// this list.
var deployOtherBranches = map[string]string{
	"cairn_requests_refused_total":                   "request limits: client requests refused, by limit",
	"cairn_data_bytes":                               "request limits: bytes of data in the member's state",
	"cairn_quota_bytes":                              "request limits: the data quota (--quota-backend-bytes)",
	"cairn_tls_certificate_expiry_timestamp_seconds": "TLS: when each configured certificate expires, by file",
	"cairn_auth_failures_total":                      "v2 auth: requests refused for their credentials",
}

// deployPrometheusSeries are series Prometheus makes itself for every
// target, not served on /metrics.
var deployPrometheusSeries = []string{"up"}

// Every metric name in the dashboard's expressions (panels and template
// variables) and in the alert rules is one a running member serves, or
// one listed in deployOtherBranches: renaming or dropping a metric cannot
// leave a panel or an alert silently empty. A three-member cluster is
// made to produce every labelled series those expressions use (requests,
// a failure, a refused peer request, then a stopped member for the send
// failures) before its /metrics are read.
func TestDeployDashboardMetricsExist(t *testing.T) {
	dash := deployReadDashboard(t)
	exprs := deployDashboardExprs(t, dash)
	var rules promRuleFile
	promReadYAML(t, filepath.Join(promDeploy, "cairn-rules.yml"), &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, deployExpr{"rule " + r.Alert + r.Record, r.Expr})
		}
	}

	c := startCluster(t, "a", "b", "c")
	fltWaitLeader(t, c.procs, 30*time.Second)
	for i, p := range c.procs {
		if code, body := c.do(p, "PUT", fmt.Sprintf("/v2/keys/deploy/k%d", i), url.Values{"value": {"v"}}); code != http.StatusCreated {
			t.Fatalf("PUT at %s: %d %s", p.name, code, body)
		}
		if code, body := c.do(p, "GET", "/v2/keys/deploy/missing", nil); code != http.StatusNotFound {
			t.Fatalf("GET of a missing key at %s: %d %s", p.name, code, body)
		}
		// A peer request with no cluster ID: refused, and counted.
		resp, err := http.Post(p.peer+"/raft", "application/octet-stream", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPreconditionFailed {
			t.Fatalf("%s: a peer request without a cluster ID answered %d", p.name, resp.StatusCode)
		}
	}
	served := map[string]bool{}
	for _, p := range c.procs {
		deployServedNames(t, p, served)
	}
	// Stop a member: the others count the messages they fail to send it.
	c.kill(c.procs[2], syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for !served["cairn_network_peer_sent_failures_total"] {
		if time.Now().After(deadline) {
			t.Fatal("no member counts failed sends to a stopped member within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
		for _, p := range c.procs[:2] {
			deployServedNames(t, p, served)
		}
	}
	for _, n := range deployPrometheusSeries {
		served[n] = true
	}

	used := map[string]bool{}
	for _, e := range exprs {
		names, err := deployMetricNames(e.expr)
		if err != nil {
			t.Errorf("%s: %v: %s", e.where, err, e.expr)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: no metric name in %s", e.where, e.expr)
		}
		for _, n := range names {
			used[n] = true
			if !served[n] && deployOtherBranches[n] == "" {
				t.Errorf("%s uses %s, which no member serves and no other branch is listed as adding: %s", e.where, n, e.expr)
			}
		}
	}
	for n := range deployOtherBranches {
		if served[n] {
			t.Logf("%s is served now: it can leave deployOtherBranches", n)
		}
		if !used[n] {
			t.Errorf("deployOtherBranches lists %s, which neither the dashboard nor the rules use", n)
		}
	}
	t.Logf("%d expressions checked, using %d metric names", len(exprs), len(used))
}

// The dashboard is one Grafana can import: schema version, the data source
// variable every query goes through, the job and instance variables, and
// panels with unique IDs laid out on the 24-column grid.
func TestDeployDashboardShape(t *testing.T) {
	dash := deployReadDashboard(t)
	if v, _ := dash["schemaVersion"].(float64); v < 36 {
		t.Errorf("schemaVersion %v, want 36 or later", dash["schemaVersion"])
	}
	if dash["uid"] == "" || dash["title"] == "" {
		t.Errorf("uid %v, title %v", dash["uid"], dash["title"])
	}
	vars := map[string]map[string]any{}
	for _, v := range deployList(dash["templating"], "list") {
		vars[fmt.Sprint(v["name"])] = v
	}
	if ds := vars["DS_PROMETHEUS"]; ds == nil || ds["type"] != "datasource" || ds["query"] != "prometheus" {
		t.Errorf("no datasource variable DS_PROMETHEUS for prometheus: %v", ds)
	}
	for _, name := range []string{"job", "instance"} {
		if v := vars[name]; v == nil || v["type"] != "query" {
			t.Errorf("no query variable %s: %v", name, v)
		}
	}
	ids := map[float64]string{}
	panels := deployPanels(dash)
	for _, p := range panels {
		title := fmt.Sprint(p["title"])
		id, _ := p["id"].(float64)
		if other, dup := ids[id]; dup {
			t.Errorf("panels %q and %q share id %v", other, title, id)
		}
		ids[id] = title
		g, _ := p["gridPos"].(map[string]any)
		x, _ := g["x"].(float64)
		w, _ := g["w"].(float64)
		if h, _ := g["h"].(float64); w <= 0 || h <= 0 || x < 0 || x+w > 24 {
			t.Errorf("panel %q: gridPos %v off the 24-column grid", title, g)
		}
		if p["type"] == "row" {
			continue
		}
		if !deployUsesDS(p["datasource"]) {
			t.Errorf("panel %q: datasource %v, want ${DS_PROMETHEUS}", title, p["datasource"])
		}
		targets := deployList(p, "targets")
		if len(targets) == 0 {
			t.Errorf("panel %q has no queries", title)
		}
		for _, tg := range targets {
			if !deployUsesDS(tg["datasource"]) {
				t.Errorf("panel %q, query %v: datasource %v, want ${DS_PROMETHEUS}", title, tg["refId"], tg["datasource"])
			}
			if expr := fmt.Sprint(tg["expr"]); !strings.Contains(expr, `instance=~"$instance"`) {
				t.Errorf("panel %q, query %v does not follow the instance variable: %s", title, tg["refId"], expr)
			}
		}
	}
	if len(panels) < 20 {
		t.Errorf("only %d panels", len(panels))
	}
}

// Every expression of the dashboard is valid PromQL: with Grafana's
// variables replaced by values, promtool accepts them all as recording
// rules.
func TestDeployDashboardPromQLParses(t *testing.T) {
	promtool := promRequire(t, "promtool")
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__range", "6h", "$job", ".+", "$instance", ".+")
	var rules []promRule
	for i, e := range deployDashboardExprs(t, deployReadDashboard(t)) {
		if strings.HasPrefix(e.expr, "label_values(") {
			continue // Grafana's, not PromQL; its selector is checked by TestDeployDashboardMetricsExist
		}
		rules = append(rules, promRule{Record: fmt.Sprintf("dashboard:expr_%d", i), Expr: vars.Replace(e.expr)})
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	promWriteYAML(t, path, promRuleFile{Groups: []promRuleGroup{{Name: "dashboard", Rules: rules}}})
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard's %d expressions: %v\n%s", len(rules), err, out)
	}
	t.Logf("promtool accepts the dashboard's %d expressions", len(rules))
}

// The extraction of metric names from PromQL, on the shapes the dashboard
// and the rules use.
func TestDeployMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="cairn"} == 0`, []string{"up"}},
		{`sum by (job, instance, le) (rate(a_bucket{x="{y}",z=~"$instance"}[$__rate_interval]))`, []string{"a_bucket"}},
		{`max by (job) (a) - on (job) group_right b > 1000`, []string{"a", "b"}},
		{`a / b > 0.8 and b > 0`, []string{"a", "b"}},
		{`count(a == 0) or vector(0)`, []string{"a"}},
		{`c - time() < 14 * 86400`, []string{"c"}},
		{`sum without (instance) (x offset 5m) unless ignoring (le) group_left (foo) y`, []string{"x", "y"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m:1m])))`, []string{"h_bucket"}},
		{`label_values(cairn_server_has_leader{job=~"$job"}, instance)`, []string{"cairn_server_has_leader"}},
		{`rate(x{a='b'}[1h]) * 1e3 + y:recorded`, []string{"x", "y:recorded"}},
		{`{__name__="z"}`, nil},
	} {
		got, err := deployMetricNames(tc.expr)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("deployMetricNames(%s) = %q, %v; want %q", tc.expr, got, err, tc.want)
		}
	}
	for _, bad := range []string{`a{b="c"`, `rate(a[5m)`, `"unterminated`} {
		if got, err := deployMetricNames(bad); err == nil {
			t.Errorf("deployMetricNames(%s) = %q, want an error", bad, got)
		}
	}
}

// deployExpr is one PromQL expression and where it comes from.
type deployExpr struct{ where, expr string }

func deployReadDashboard(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(deployDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s is not valid JSON: %v", deployDashboard, err)
	}
	return dash
}

// deployPanels returns every panel, those inside collapsed rows included.
func deployPanels(dash map[string]any) []map[string]any {
	var out []map[string]any
	for _, p := range deployList(dash, "panels") {
		out = append(out, p)
		out = append(out, deployList(p, "panels")...)
	}
	return out
}

// deployDashboardExprs returns the expressions of every panel query and
// of every query variable.
func deployDashboardExprs(t *testing.T, dash map[string]any) []deployExpr {
	t.Helper()
	var out []deployExpr
	for _, p := range deployPanels(dash) {
		for _, tg := range deployList(p, "targets") {
			expr, _ := tg["expr"].(string)
			if expr == "" {
				t.Errorf("panel %q, query %v: no expr", p["title"], tg["refId"])
				continue
			}
			out = append(out, deployExpr{fmt.Sprintf("panel %q", p["title"]), expr})
		}
	}
	for _, v := range deployList(dash["templating"], "list") {
		if v["type"] != "query" {
			continue
		}
		q := v["query"]
		if m, ok := q.(map[string]any); ok {
			q = m["query"]
		}
		s, _ := q.(string)
		if s == "" {
			t.Errorf("variable %v: no query", v["name"])
			continue
		}
		out = append(out, deployExpr{fmt.Sprintf("variable %v", v["name"]), s})
	}
	if len(out) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	return out
}

// deployList returns the objects of the array field key of v.
func deployList(v any, key string) []map[string]any {
	m, _ := v.(map[string]any)
	arr, _ := m[key].([]any)
	var out []map[string]any
	for _, e := range arr {
		if o, ok := e.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

func deployUsesDS(v any) bool {
	m, _ := v.(map[string]any)
	return m["type"] == "prometheus" && m["uid"] == "${DS_PROMETHEUS}"
}

// deployServedNames adds to names every metric name p serves on /metrics:
// those of its samples and, for families with no sample yet, of its HELP
// and TYPE lines (with _bucket, _sum and _count for a histogram).
func deployServedNames(t *testing.T, p *proc, names map[string]bool) {
	t.Helper()
	code, body, err := fltGet(p.client + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s /metrics: %d %v", p.name, code, err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) == 2 {
				names[f[0]] = true
				if f[1] == "histogram" || f[1] == "summary" {
					names[f[0]+"_sum"], names[f[0]+"_count"] = true, true
				}
				if f[1] == "histogram" {
					names[f[0]+"_bucket"] = true
				}
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
}

var (
	deployIdent = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// deployWords are PromQL's keywords and aggregation operators: words
	// that may stand without a "(" after them and are not metric names.
	deployWords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "atan2": true,
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
		"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
		"inf": true, "nan": true,
	}
	// deployLabelLists are the words followed by a list of label names.
	deployLabelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
)

// deployMetricNames returns the metric names a PromQL expression (or a
// Grafana label_values(selector, label) query) selects, in order of first
// use: every identifier that is not a function, a keyword, a label name
// or inside a label matcher, a range, a string or a Grafana variable.
// It is a scanner, not a parser; it errs on unbalanced brackets and
// unterminated strings.
func deployMetricNames(expr string) ([]string, error) {
	if inner, ok := strings.CutPrefix(expr, "label_values("); ok {
		i := strings.LastIndex(inner, ",")
		if i < 0 || !strings.HasSuffix(inner, ")") {
			return nil, fmt.Errorf("label_values without a selector and a label")
		}
		expr = inner[:i]
	}
	var names []string
	var closers []byte // the brackets to close, innermost last
	for i := 0; i < len(expr); {
		ch := expr[i]
		switch {
		case ch == '"' || ch == '\'' || ch == '`':
			j := i + 1
			for ; j < len(expr) && expr[j] != ch; j++ {
				if expr[j] == '\\' && ch != '`' {
					j++
				}
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			i = j + 1
		case ch == '$': // a Grafana variable: $name or ${name}
			i++
			if i < len(expr) && expr[i] == '{' {
				j := strings.IndexByte(expr[i:], '}')
				if j < 0 {
					return nil, fmt.Errorf("unterminated ${ at %d", i-1)
				}
				i += j + 1
			} else {
				i += len(deployIdent.FindString(expr[i:]))
			}
		case ch == '(' || ch == '{' || ch == '[':
			closers = append(closers, map[byte]byte{'(': ')', '{': '}', '[': ']'}[ch])
			i++
		case ch == ')' || ch == '}' || ch == ']':
			if len(closers) == 0 || closers[len(closers)-1] != ch {
				return nil, fmt.Errorf("unbalanced %c at %d", ch, i)
			}
			closers = closers[:len(closers)-1]
			i++
		case ch >= '0' && ch <= '9' || ch == '.': // a number or a duration
			for i < len(expr) && (isAlnum(expr[i]) || expr[i] == '.') {
				i++
			}
		case deployIdent.MatchString(expr[i:]):
			id := deployIdent.FindString(expr[i:])
			i += len(id)
			if slices.Contains(closers, '}') || slices.Contains(closers, ']') {
				continue // a label name in a matcher, or inside a range
			}
			rest := strings.TrimLeft(expr[i:], " \t\n")
			if deployLabelLists[strings.ToLower(id)] && strings.HasPrefix(rest, "(") {
				j := strings.IndexByte(rest, ')')
				if j < 0 {
					return nil, fmt.Errorf("unterminated label list after %s", id)
				}
				i = len(expr) - len(rest) + j + 1
				continue
			}
			if deployWords[strings.ToLower(id)] || strings.HasPrefix(rest, "(") {
				continue // a keyword, an aggregation or a function
			}
			if !slices.Contains(names, id) {
				names = append(names, id)
			}
		default:
			i++
		}
	}
	if len(closers) > 0 {
		return nil, fmt.Errorf("%d brackets left open", len(closers))
	}
	return names, nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// deploySystemd is the directory of the systemd unit and its example
// configuration, relative to this package.
const deploySystemd = "../deploy/systemd"

// The systemd unit starts cairn with the example configuration, which
// loads, keeps its data in the unit's state directory and sits in its
// configuration directory; and systemd-analyze verify accepts the unit
// without a warning (pointed at the cairn just built: verify checks that
// the program exists). The verify step is skipped when systemd-analyze
// is not installed.
func TestDeploySystemdUnit(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join(deploySystemd, "cairn.service"))
	if err != nil {
		t.Fatal(err)
	}
	keys := deployUnitKeys(string(unit))
	one := func(key string) string {
		if v := keys[key]; len(v) == 1 {
			return v[0]
		}
		t.Errorf("cairn.service: want one %s, have %q", key, keys[key])
		return ""
	}
	for key, want := range map[string]string{"Type": "simple", "User": "cairn", "Restart": "on-failure",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes"} {
		if got := one(key); got != want {
			t.Errorf("cairn.service: %s=%s, want %s", key, got, want)
		}
	}
	if one("LimitNOFILE") == "" {
		t.Error("cairn.service: no LimitNOFILE")
	}
	const program = "/usr/local/bin/cairn"
	args, ok := strings.CutPrefix(one("ExecStart"), program+" ")
	cfgPath, ok2 := strings.CutPrefix(args, "--config-file ")
	if !ok || !ok2 || strings.Contains(cfgPath, " ") {
		t.Fatalf("cairn.service: ExecStart=%s, want %s --config-file <file>", one("ExecStart"), program)
	}
	if dir := "/etc/" + one("ConfigurationDirectory"); filepath.Dir(cfgPath) != dir || filepath.Base(cfgPath) != "cairn.yaml" {
		t.Errorf("cairn.service: --config-file %s, want %s/cairn.yaml (ConfigurationDirectory, and the name of the example)", cfgPath, dir)
	}
	cfg, warnings, err := config.Load([]string{"--config-file", filepath.Join(deploySystemd, "cairn.yaml")}, nil)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("deploy/systemd/cairn.yaml does not load: %v %v", err, warnings)
	}
	if dir := "/var/lib/" + one("StateDirectory"); cfg.DataDir != dir {
		t.Errorf("cairn.yaml: data-dir %s, want the unit's StateDirectory %s", cfg.DataDir, dir)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skipf("systemd-analyze is not on PATH (%v): the unit is not verified", err)
	}
	path := filepath.Join(t.TempDir(), "cairn.service")
	if err := os.WriteFile(path, []byte(strings.Replace(string(unit), "ExecStart="+program+" ", "ExecStart="+binary+" ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify cairn.service: %v\n%s", err, out)
	}
	t.Logf("systemd-analyze verify accepts cairn.service (ExecStart=%s ...)", binary)
}

// deployUnitKeys returns the values of each key of a systemd unit file,
// in order, all sections together.
func deployUnitKeys(unit string) map[string][]string {
	keys := map[string][]string{}
	for line := range strings.SplitSeq(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			keys[strings.TrimSpace(k)] = append(keys[strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return keys
}

// Every alert rule has a severity, a summary, a description and a runbook
// that points at a section of docs/operations.md, and a promtool unit test
// in which it fires.
func TestDeployRulesHaveRunbooks(t *testing.T) {
	var rules promRuleFile
	promReadYAML(t, filepath.Join(promDeploy, "cairn-rules.yml"), &rules)
	docs, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for line := range strings.SplitSeq(string(docs), "\n") {
		if title, ok := strings.CutPrefix(line, "#"); ok {
			anchors[deployAnchor(strings.TrimLeft(title, "#"))] = true
		}
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	promReadYAML(t, filepath.Join(promDeploy, "cairn-rules.test.yml"), &tests)
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s", r.Alert, a)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook"], "docs/operations.md#")
			if !ok || !anchors[anchor] {
				t.Errorf("%s: runbook %q is not a section of docs/operations.md", r.Alert, r.Annotations["runbook"])
			}
			if !fires[r.Alert] {
				t.Errorf("%s: no test in cairn-rules.test.yml where it fires", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alert rules")
	}
}

// deployAnchor is the anchor GitHub gives a Markdown heading: lower case,
// punctuation dropped, spaces as hyphens.
func deployAnchor(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(title)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}
