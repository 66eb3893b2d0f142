package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is everything a member is started with.
type Config struct {
	Name                     string
	DataDir                  string
	WALDir                   string
	ListenClientURLs         string
	ListenPeerURLs           string
	AdvertiseClientURLs      string
	InitialAdvertisePeerURLs string
	InitialCluster           string
	InitialClusterState      string
	InitialClusterToken      string
	SnapshotCount            uint64
	MaxSnapshots             int
	MaxWALs                  int
	HeartbeatInterval        int // ms
	ElectionTimeout          int // ms
	CORS                     string
	EventHistory             int
	LogLevel                 string
	LogFormat                string
	ConfigFile               string
	AuthGuest                string // full or none
}

// Default is the configuration of `cairn` with nothing set.
func Default() Config {
	return Config{
		Name:                     "default",
		ListenClientURLs:         "http://127.0.0.1:2379",
		ListenPeerURLs:           "http://127.0.0.1:2380",
		AdvertiseClientURLs:      "http://127.0.0.1:2379",
		InitialAdvertisePeerURLs: "http://localhost:2380",
		InitialClusterState:      "new",
		InitialClusterToken:      "cairn-cluster",
		SnapshotCount:            100000,
		MaxSnapshots:             5,
		MaxWALs:                  5,
		HeartbeatInterval:        100,
		ElectionTimeout:          1000,
		CORS:                     "*",
		EventHistory:             10000,
		LogLevel:                 "info",
		LogFormat:                "json",
		AuthGuest:                "full",
	}
}

type setting struct {
	name, usage string
	set         func(c *Config, v string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func integer(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p(c) = n
		return nil
	}
}

// settings lists every setting; its name is the flag, the YAML key and,
// upper-cased with "_" for "-" and CAIRN_ before it, the variable.
var settings = []setting{
	{"name", "human-readable name of this member", str(func(c *Config) *string { return &c.Name })},
	{"data-dir", "path to the data directory (default ${name}.cairn)", str(func(c *Config) *string { return &c.DataDir })},
	{"wal-dir", "path to a dedicated WAL directory (default inside the data directory)", str(func(c *Config) *string { return &c.WALDir })},
	{"listen-client-urls", "URL to serve clients on", str(func(c *Config) *string { return &c.ListenClientURLs })},
	{"listen-peer-urls", "URL to serve peers on", str(func(c *Config) *string { return &c.ListenPeerURLs })},
	{"advertise-client-urls", "this member's client URL as others should use it", str(func(c *Config) *string { return &c.AdvertiseClientURLs })},
	{"initial-advertise-peer-urls", "this member's peer URL (it identifies the member)", str(func(c *Config) *string { return &c.InitialAdvertisePeerURLs })},
	{"initial-cluster", "initial cluster: name=peerURL,... (default ${name}=${initial-advertise-peer-urls})", str(func(c *Config) *string { return &c.InitialCluster })},
	{"initial-cluster-state", "new: bootstrap a cluster with the initial-cluster members; existing: join a running cluster (after POST /v2/members)", str(func(c *Config) *string { return &c.InitialClusterState })},
	{"initial-cluster-token", "initial cluster token (it identifies the cluster)", str(func(c *Config) *string { return &c.InitialClusterToken })},
	{"snapshot-count", "applied entries between Raft snapshots", func(c *Config, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a count", v)
		}
		c.SnapshotCount = n
		return nil
	}},
	{"max-snapshots", "accepted for etcd compatibility (a member keeps one snapshot)", integer(func(c *Config) *int { return &c.MaxSnapshots })},
	{"max-wals", "WAL segments to keep (0 is unlimited)", integer(func(c *Config) *int { return &c.MaxWALs })},
	{"heartbeat-interval", "time (in milliseconds) of a heartbeat interval", integer(func(c *Config) *int { return &c.HeartbeatInterval })},
	{"election-timeout", "time (in milliseconds) for an election to timeout", integer(func(c *Config) *int { return &c.ElectionTimeout })},
	{"cors", "comma-separated origins allowed cross-origin access (* for any)", str(func(c *Config) *string { return &c.CORS })},
	{"event-history", "events kept for waitIndex watches", integer(func(c *Config) *int { return &c.EventHistory })},
	{"log-level", "log level: debug, info, warn, error", str(func(c *Config) *string { return &c.LogLevel })},
	{"log-format", "log format: json, or console for people", str(func(c *Config) *string { return &c.LogFormat })},
	{"auth-guest", "access of the guest role that enabling v2 auth creates: full (etcd's) or none (recommended)", str(func(c *Config) *string { return &c.AuthGuest })},
	{"config-file", "YAML file with any of these settings (flags and CAIRN_* variables win over it)", str(func(c *Config) *string { return &c.ConfigFile })},
}

func lookup(name string) *setting {
	for i := range settings {
		if settings[i].name == name {
			return &settings[i]
		}
	}
	return nil
}

// EnvName is the environment variable of a setting.
func EnvName(setting string) string {
	return "CAIRN_" + strings.ToUpper(strings.ReplaceAll(setting, "-", "_"))
}

// Load builds the configuration from command-line args (without the
// program name), the environment (os.Environ's form) and the file named
// by --config-file or CAIRN_CONFIG_FILE. It returns warnings for CAIRN_*
// variables it does not know.
func Load(args, env []string) (Config, []string, error) {
	fs := flag.NewFlagSet("cairn", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := map[string]string{}
	for _, s := range settings {
		name := s.name
		fs.Func(name, s.usage, func(v string) error { flags[name] = v; return nil })
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, err
	}
	if fs.NArg() > 0 {
		return Config{}, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	vars := map[string]string{}
	var warnings []string
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "CAIRN_") {
			continue
		}
		known := false
		for _, s := range settings {
			if EnvName(s.name) == k {
				vars[s.name], known = v, true
			}
		}
		if !known {
			warnings = append(warnings, fmt.Sprintf("unknown environment variable %s ignored", k))
		}
	}
	slices.Sort(warnings)

	c := Default()
	file := vars["config-file"]
	if f, ok := flags["config-file"]; ok {
		file = f
	}
	if file != "" {
		if err := c.loadFile(file); err != nil {
			return Config{}, warnings, err
		}
		c.ConfigFile = file
	}
	for _, layer := range []struct {
		vals map[string]string
		how  func(string) string
	}{
		{vars, func(n string) string { return "environment variable " + EnvName(n) }},
		{flags, func(n string) string { return "flag --" + n }},
	} {
		for _, s := range settings {
			if v, ok := layer.vals[s.name]; ok {
				if err := s.set(&c, v); err != nil {
					return Config{}, warnings, fmt.Errorf("%s: %w", layer.how(s.name), err)
				}
			}
		}
	}
	if c.DataDir == "" {
		c.DataDir = c.Name + ".cairn"
	}
	if c.InitialCluster == "" {
		c.InitialCluster = c.Name + "=" + c.InitialAdvertisePeerURLs
	}
	return c, warnings, c.Validate()
}

func (c *Config) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config-file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s := lookup(k)
		if s == nil || k == "config-file" {
			return fmt.Errorf("%s: unknown setting %q", path, k)
		}
		var v string
		switch x := doc[k].(type) {
		case string:
			v = x
		case int, uint64, float64, bool:
			v = fmt.Sprint(x)
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			v = strings.Join(parts, ",")
		case nil:
			continue
		default:
			return fmt.Errorf("%s: setting %q: unsupported value %v", path, k, x)
		}
		if err := s.set(c, v); err != nil {
			return fmt.Errorf("%s: setting %q: %w", path, k, err)
		}
	}
	return nil
}

// OneURL parses a setting that must hold one http://host:port URL.
func OneURL(setting, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "http" || u.Host == "" || strings.Contains(v, ",") || u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("%s: want one http://host:port URL, got %q", setting, v)
	}
	return u, nil
}

// Members parses InitialCluster ("name=url,name=url").
func (c *Config) Members() (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(c.InitialCluster, ",") {
		name, u, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("initial-cluster: %q is not name=URL", part)
		}
		if _, err := OneURL("initial-cluster", u); err != nil {
			return nil, err
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("initial-cluster: %q appears twice", name)
		}
		out[name] = u
	}
	return out, nil
}

// CORSOrigins splits the cors setting.
func (c *Config) CORSOrigins() []string {
	var out []string
	for _, o := range strings.Split(c.CORS, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// Validate checks the configuration; each error names the setting.
func (c *Config) Validate() error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", setting, fmt.Sprintf(format, args...)))
	}
	if c.Name == "" {
		bad("name", "must not be empty")
	}
	for _, u := range []struct{ name, v string }{
		{"listen-client-urls", c.ListenClientURLs}, {"listen-peer-urls", c.ListenPeerURLs},
		{"advertise-client-urls", c.AdvertiseClientURLs}, {"initial-advertise-peer-urls", c.InitialAdvertisePeerURLs},
	} {
		if _, err := OneURL(u.name, u.v); err != nil {
			errs = append(errs, err)
		}
	}
	if members, err := c.Members(); err != nil {
		errs = append(errs, err)
	} else if self, ok := members[c.Name]; !ok {
		bad("initial-cluster", "no member named %q (the name setting)", c.Name)
	} else if self != c.InitialAdvertisePeerURLs {
		bad("initial-cluster", "member %q has peer URL %s, but initial-advertise-peer-urls is %s", c.Name, self, c.InitialAdvertisePeerURLs)
	}
	if c.InitialClusterState != "new" && c.InitialClusterState != "existing" {
		bad("initial-cluster-state", "%q: want new or existing", c.InitialClusterState)
	}
	if c.InitialClusterToken == "" {
		bad("initial-cluster-token", "must not be empty")
	}
	if c.SnapshotCount == 0 {
		bad("snapshot-count", "must be at least 1")
	}
	if c.MaxSnapshots < 0 {
		bad("max-snapshots", "must not be negative, got %d", c.MaxSnapshots)
	}
	if c.MaxWALs < 0 {
		bad("max-wals", "must not be negative, got %d", c.MaxWALs)
	}
	if c.HeartbeatInterval <= 0 {
		bad("heartbeat-interval", "must be positive, got %d", c.HeartbeatInterval)
	} else if c.ElectionTimeout < 5*c.HeartbeatInterval {
		bad("election-timeout", "%d must be at least 5 times heartbeat-interval (%d)", c.ElectionTimeout, c.HeartbeatInterval)
	}
	if c.EventHistory < 1 {
		bad("event-history", "must be at least 1, got %d", c.EventHistory)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("log-level", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.AuthGuest != "full" && c.AuthGuest != "none" {
		bad("auth-guest", "want full or none, got %q", c.AuthGuest)
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		bad("log-format", "want json or console, got %q", c.LogFormat)
	}
	for _, o := range c.CORSOrigins() {
		if o != "*" {
			if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" {
				bad("cors", "%q is not * or scheme://host[:port]", o)
			}
		}
	}
	return errors.Join(errs...)
}

// Usage describes every setting, for --help.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: cairn [flags]   (or cairn version | health | snapshot save|status|restore)")
	fmt.Fprintln(w, "Every flag is also a CAIRN_* environment variable and a key of the --config-file YAML.")
	for _, s := range settings {
		fmt.Fprintf(w, "  --%-28s %s (%s)\n", s.name, s.usage, EnvName(s.name))
	}
}
