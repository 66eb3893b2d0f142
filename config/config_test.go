package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if c.DataDir != "default.cairn" || c.InitialCluster != "default=http://localhost:2380" || c.ListenClientURLs != "http://127.0.0.1:2379" {
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
		{args: []string{"--listen-client-urls", "localhost:2379"}, want: "listen-client-urls: want one http://host:port URL"},
		{args: []string{"--initial-cluster", "a=http://127.0.0.1:1"}, want: `initial-cluster: no member named "default"`},
		{args: []string{"--initial-cluster", "default=http://127.0.0.1:1"}, want: "initial-cluster: member \"default\" has peer URL"},
		{args: []string{"--initial-cluster-state", "joined"}, want: "initial-cluster-state"},
		{args: []string{"--log-level", "loud"}, want: "log-level"},
		{args: []string{"--log-format", "xml"}, want: "log-format"},
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
