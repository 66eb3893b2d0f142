package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/httpapi"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cairn.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, warn, err := Load(nil, nil)
	if err != nil || len(warn) != 0 {
		t.Fatal(err, warn)
	}
	if c.DataDir != "default.cairn" || c.InitialCluster != "default=http://localhost:2380" || c.ListenClientURLs != "http://127.0.0.1:2379" || c.AuthGuest != "full" {
		t.Fatalf("defaults: %+v", c)
	}
}

// Flags win over the environment, which wins over the file, which wins
// over the defaults.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "name: fromfile\nsnapshot-count: 7\nevent-history: 11\nmax-wals: 3\ninitial-cluster-token: filetoken\n")
	env := []string{"CAIRN_CONFIG_FILE=" + file, "CAIRN_SNAPSHOT_COUNT=8", "CAIRN_EVENT_HISTORY=12", "HOME=/x"}
	args := []string{"--event-history", "13"}
	c, _, err := Load(args, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "fromfile" || c.SnapshotCount != 8 || c.EventHistory != 13 || c.MaxWALs != 3 || c.InitialClusterToken != "filetoken" || c.HeartbeatInterval != 100 {
		t.Fatalf("precedence: %+v", c)
	}
	if c.DataDir != "fromfile.cairn" || c.ConfigFile != file {
		t.Fatalf("derived: %+v", c)
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	cases := []struct {
		args, env []string
		file      string
		want      string
	}{
		{args: []string{"--heartbeat-interval", "x"}, want: "flag --heartbeat-interval"},
		{env: []string{"CAIRN_MAX_WALS=-1"}, want: "max-wals: must not be negative"},
		{env: []string{"CAIRN_EVENT_HISTORY=many"}, want: "environment variable CAIRN_EVENT_HISTORY"},
		{args: []string{"--election-timeout", "300"}, want: "election-timeout: 300 must be at least 5 times"},
		{args: []string{"--listen-client-urls", "localhost:2379"}, want: "listen-client-urls: want http:// or https://host:port URLs"},
		{args: []string{"--initial-cluster", "a=http://127.0.0.1:1"}, want: `initial-cluster: no member named "default"`},
		{args: []string{"--initial-cluster", "default=http://127.0.0.1:1"}, want: "initial-cluster: member \"default\" has peer URL"},
		{args: []string{"--initial-cluster-state", "joined"}, want: "initial-cluster-state"},
		{args: []string{"--log-level", "loud"}, want: "log-level"},
		{args: []string{"--log-format", "xml"}, want: "log-format"},
		{env: []string{"CAIRN_AUTH_GUEST=some"}, want: "auth-guest: want full or none"},
		{args: []string{"--cors", "example.com"}, want: "cors"},
		{args: []string{"--no-such-flag"}, want: "no-such-flag"},
		{file: "snapshot-count: 5\nbogus: 1\n", want: `unknown setting "bogus"`},
		{file: "snapshot-count: -5\n", want: `setting "snapshot-count"`},
		{file: ": :\n  - [", want: "cairn.yaml"},
	}
	for _, tc := range cases {
		args := tc.args
		if tc.file != "" {
			args = append(args, "--config-file", writeFile(t, tc.file))
		}
		_, _, err := Load(args, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v %q: %v, want an error containing %q", tc.args, tc.env, tc.file, err, tc.want)
		}
	}
}

func TestUnknownVariablesWarn(t *testing.T) {
	_, warn, err := Load(nil, []string{"CAIRN_NAEM=x", "CAIRN_NAME=ok"})
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 1 || !strings.Contains(warn[0], "CAIRN_NAEM") {
		t.Fatalf("warnings %v", warn)
	}
}

// The example file documents every setting, with its default.
func TestExampleFileCoversEverySetting(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if s.name == "config-file" || hidden[s.name] {
			continue
		}
		if !strings.Contains(string(data), "\n"+s.name+":") && !strings.Contains(string(data), "# "+s.name+":") {
			t.Errorf("config.example.yaml does not document %s", s.name)
		}
	}
	if _, _, err := Load([]string{"--config-file", "../config.example.yaml"}, nil); err != nil {
		t.Fatalf("the example file does not load: %v", err)
	}
}

// etcd's --enable-v2 is accepted, alone or as true, from every source;
// false is refused, since Cairn cannot serve anything but v2.
func TestEnableV2(t *testing.T) {
	yes := writeFile(t, "enable-v2: true\n")
	no := writeFile(t, "enable-v2: false\n")
	for _, c := range []struct {
		args, env []string
		want      string // "" accepted, else part of the error
	}{
		{args: []string{"--enable-v2"}},
		{args: []string{"-enable-v2"}},
		{args: []string{"--enable-v2=true"}},
		{args: []string{"--enable-v2=1"}},
		{args: []string{"--enable-v2", "--name", "x", "--initial-cluster", "x=http://localhost:2380"}},
		{env: []string{"CAIRN_ENABLE_V2=true"}},
		{env: []string{"CAIRN_CONFIG_FILE=" + yes}},
		{args: []string{"--enable-v2=false"}, want: "flag --enable-v2: cairn serves only the v2 API, which cannot be turned off"},
		{args: []string{"--enable-v2=maybe"}, want: "enable-v2"},
		{env: []string{"CAIRN_ENABLE_V2=false"}, want: "environment variable CAIRN_ENABLE_V2: cairn serves only the v2 API"},
		{env: []string{"CAIRN_ENABLE_V2=yes"}, want: `environment variable CAIRN_ENABLE_V2: "yes" is not a boolean`},
		{env: []string{"CAIRN_CONFIG_FILE=" + no}, want: `setting "enable-v2": cairn serves only the v2 API`},
		// A bool flag takes no separate value: "false" is an argument.
		{args: []string{"--enable-v2", "false"}, want: `unexpected argument "false"`},
	} {
		_, warn, err := Load(c.args, c.env)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q %q: %v", c.args, c.env, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q %q: %v, want an error containing %q", c.args, c.env, err, c.want)
		case len(warn) != 0:
			t.Errorf("%q %q: warnings %q", c.args, c.env, warn)
		}
	}
}

// The limits on client requests: their defaults, each settable as a flag,
// a variable and a YAML key, and each checked against its bounds.
func TestLimits(t *testing.T) {
	limits := func(c Config) httpapi.Limits {
		return httpapi.Limits{MaxKeyBytes: c.MaxKeyBytes, MaxKeyDepth: c.MaxKeyDepth, MaxValueBytes: c.MaxValueBytes,
			MaxRequestBytes: c.MaxRequestBytes, MaxAnswerBytes: c.MaxAnswerBytes, QuotaBytes: c.QuotaBackendBytes,
			BodyTimeout: c.RequestBodyTimeout}
	}
	c, _, err := Load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults are httpapi's, which its zero Limits take.
	want := httpapi.Limits{MaxKeyBytes: httpapi.DefaultMaxKeyBytes, MaxKeyDepth: httpapi.DefaultMaxKeyDepth,
		MaxValueBytes: httpapi.DefaultMaxValueBytes, MaxRequestBytes: httpapi.DefaultMaxRequestBytes,
		MaxAnswerBytes: httpapi.DefaultMaxAnswerBytes, QuotaBytes: httpapi.DefaultQuotaBytes, BodyTimeout: httpapi.DefaultBodyTimeout}
	if limits(c) != want || want != (httpapi.Limits{MaxKeyBytes: 4096, MaxKeyDepth: 128, MaxValueBytes: 1 << 20,
		MaxRequestBytes: 1572864, MaxAnswerBytes: 64 << 20, QuotaBytes: 2 << 30, BodyTimeout: 10 * time.Second}) {
		t.Fatalf("default limits %+v, want %+v (and the documented numbers)", limits(c), want)
	}

	file := writeFile(t, "max-key-bytes: 100\nmax-key-depth: 5\nmax-value-bytes: 1000\nmax-request-bytes: 3000\n"+
		"max-answer-bytes: 5000\nquota-backend-bytes: 8589934592\nrequest-body-timeout: 2s\n")
	c, _, err = Load([]string{"--config-file", file, "--max-key-depth", "7"},
		[]string{"CAIRN_MAX_KEY_BYTES=200", "CAIRN_REQUEST_BODY_TIMEOUT=1m30s"})
	if err != nil {
		t.Fatal(err)
	}
	want = httpapi.Limits{MaxKeyBytes: 200, MaxKeyDepth: 7, MaxValueBytes: 1000, MaxRequestBytes: 3000,
		MaxAnswerBytes: 5000, QuotaBytes: 8 << 30, BodyTimeout: 90 * time.Second}
	if limits(c) != want {
		t.Fatalf("limits %+v, want %+v", limits(c), want)
	}
	// 0 is etcd's way of asking for the default quota.
	if c, _, err = Load([]string{"--quota-backend-bytes", "0"}, nil); err != nil || c.QuotaBackendBytes != 2<<30 {
		t.Fatalf("quota 0: %d, %v; want the default", c.QuotaBackendBytes, err)
	}
	// At the store's hard limits: accepted.
	if _, _, err := Load([]string{"--max-key-bytes", "8192", "--max-key-depth", "1024", "--max-value-bytes", "33554432",
		"--max-request-bytes", "68157440", "--max-answer-bytes", "33554432"}, nil); err != nil {
		t.Fatalf("limits at the hard limits: %v", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-key-bytes", "0"}, "max-key-bytes: must be positive, got 0"},
		{[]string{"--max-key-bytes", "8193"}, "max-key-bytes: 8193 is more than 8192, the store's hard limit"},
		{[]string{"--max-key-depth", "-1"}, "max-key-depth: must be positive, got -1"},
		{[]string{"--max-key-depth", "1025"}, "max-key-depth: 1025 is more than 1024, the store's hard limit"},
		{[]string{"--max-value-bytes", "0"}, "max-value-bytes: must be positive, got 0"},
		{[]string{"--max-value-bytes", "33554433", "--max-request-bytes", "68157440", "--max-answer-bytes", "68157440"}, "max-value-bytes: 33554433 is more than 33554432, the store's hard limit"},
		{[]string{"--max-request-bytes", "0"}, "max-request-bytes: must be positive, got 0"},
		{[]string{"--max-request-bytes", "68157441"}, "max-request-bytes: 68157441 is more than 68157440"},
		{[]string{"--max-request-bytes", "1048575"}, "max-request-bytes: 1048575 is less than max-value-bytes (1048576)"},
		{[]string{"--max-answer-bytes", "0"}, "max-answer-bytes: must be positive, got 0"},
		{[]string{"--max-answer-bytes", "1000"}, "max-answer-bytes: 1000 is less than max-value-bytes (1048576)"},
		{[]string{"--quota-backend-bytes", "-1"}, "quota-backend-bytes: must be positive, got -1"},
		{[]string{"--quota-backend-bytes", "2GiB"}, `flag --quota-backend-bytes: "2GiB" is not a number of bytes`},
		{[]string{"--request-body-timeout", "0s"}, "request-body-timeout: must be positive, got 0s"},
		{[]string{"--request-body-timeout", "10"}, `flag --request-body-timeout: "10" is not a duration`},
	} {
		_, _, err := Load(tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// Proxy and discovery settings: their defaults are etcd's, a proxy or a
// member bootstrapped by discovery need not be in initial-cluster, and an
// explicit initial-cluster beside discovery is refused as etcd does.
func TestProxyAndDiscoverySettings(t *testing.T) {
	c, _, err := Load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Proxy != "off" || c.ProxyFailureWait != 5000 || c.ProxyRefreshInterval != 30000 || c.ProxyDialTimeout != 1000 ||
		c.ProxyWriteTimeout != 5000 || c.ProxyReadTimeout != 0 || c.DiscoveryFallback != "proxy" || c.ProxyMode() || c.Bootstraps() {
		t.Fatalf("defaults: %+v", c)
	}
	c, _, err = Load([]string{"--proxy", "readonly", "--name", "p", "--initial-cluster", "a=http://127.0.0.1:1,b=http://127.0.0.1:2"},
		[]string{"CAIRN_PROXY_REFRESH_INTERVAL=200"})
	if err != nil || !c.ProxyMode() || c.ProxyRefreshInterval != 200 {
		t.Fatalf("a proxy naming the cluster's members: %v %+v", err, c)
	}
	c, _, err = Load([]string{"--discovery", "http://127.0.0.1:2379/v2/keys/_etcd/registry/tok", "--discovery-proxy", "127.0.0.1:3128"}, nil)
	if err != nil || !c.Bootstraps() || c.InitialCluster != "default=http://localhost:2380" {
		t.Fatalf("discovery: %v %+v", err, c)
	}
	if u, err := DiscoveryProxyURL(c.DiscoveryProxy); err != nil || u.String() != "http://127.0.0.1:3128" {
		t.Fatalf("discovery-proxy without a scheme: %v %v", u, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--proxy", "yes"}, "proxy: want off, on or readonly"},
		{[]string{"--proxy-refresh-interval", "0"}, "proxy-refresh-interval: must be positive"},
		{[]string{"--proxy-dial-timeout", "-1"}, "proxy-dial-timeout: must not be negative"},
		{[]string{"--discovery-fallback", "stay"}, "discovery-fallback: want exit or proxy"},
		{[]string{"--discovery", "127.0.0.1:2379/tok"}, "discovery: want an http(s)"},
		{[]string{"--discovery", "http://h/tok", "--initial-cluster", "default=http://localhost:2380"}, "multiple discovery or bootstrap flags are set"},
		{[]string{"--discovery", "http://h/tok", "--discovery-srv", "example.com"}, "multiple discovery or bootstrap flags are set"},
		{[]string{"--discovery-srv", "example.com", "--initial-cluster-state", "existing"}, "initial-cluster-state: existing"},
		{[]string{"--discovery-srv", "example.com", "--discovery-srv-resolver", "127.0.0.1"}, "discovery-srv-resolver: want host:port"},
	} {
		if _, _, err := Load(tc.args, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	var help strings.Builder
	Usage(&help)
	if !strings.Contains(help.String(), "--proxy-failure-wait") || strings.Contains(help.String(), "discovery-srv-resolver") {
		t.Fatalf("--help shows the proxy settings but not the hidden ones:\n%s", help.String())
	}
}
