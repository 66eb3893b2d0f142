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
		{args: []string{"--listen-client-urls", "localhost:2379"}, want: "listen-client-urls: want one http://host:port URL"},
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
		if s.name == "config-file" {
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
