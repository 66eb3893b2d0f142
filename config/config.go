package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cairnkv/cairn/store"
)

// Config is everything a member is started with.
type Config struct {
	// Faults are test-only switches, from CAIRN_UNSAFE_* and
	// CAIRN_FAILPOINT_* variables only (faults.go).
	Faults Faults

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
	TLS                      // certificates and TLS policy (tls.go)
	EventHistory             int
	LogLevel                 string
	LogFormat                string
	ConfigFile               string
	// EnablePprof serves Go's profiler under /debug/pprof/ on the client
	// URLs, as etcd's flag does.
	EnablePprof bool
	// The limits on client requests (httpapi.Limits, docs/api.md
	// "Limits"). QuotaBackendBytes 0 asks for the default, as in etcd;
	// Load resolves it.
	MaxKeyBytes        int
	MaxKeyDepth        int
	MaxValueBytes      int
	MaxRequestBytes    int
	MaxAnswerBytes     int64
	QuotaBackendBytes  int64
	RequestBodyTimeout time.Duration

	// Discovery and proxy mode (docs/operations.md, "Discovery" and
	// "Proxy mode"); the proxy durations are in ms, as etcd's flags.
	Discovery            string
	DiscoveryFallback    string
	DiscoveryProxy       string
	DiscoverySRV         string
	DiscoverySRVName     string
	DiscoverySRVResolver string // hidden: a DNS server (host:port) for the SRV lookups, for tests
	Proxy                string
	ProxyFailureWait     int
	ProxyRefreshInterval int
	ProxyDialTimeout     int
	ProxyWriteTimeout    int
	ProxyReadTimeout     int

	// AuthGuest is what the guest role gets when enabling v2 auth creates
	// it: full or none.
	AuthGuest string
}

// maxRequestBytes bounds max-request-bytes: no request needs more than a
// value of store.MaxValueBytes and a prevValue as long, and the server
// reads request lines up to it.
const maxRequestBytes = 2*store.MaxValueBytes + 1<<20

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
		DiscoveryFallback:        "proxy",
		Proxy:                    "off",
		ProxyFailureWait:         5000,
		ProxyRefreshInterval:     30000,
		ProxyDialTimeout:         1000,
		ProxyWriteTimeout:        5000,
		SnapshotCount:            100000,
		MaxSnapshots:             5,
		MaxWALs:                  5,
		HeartbeatInterval:        100,
		ElectionTimeout:          1000,
		CORS:                     "*",
		EventHistory:             10000,
		LogLevel:                 "info",
		LogFormat:                "json",
		// httpapi's defaults (config_test checks that they agree).
		MaxKeyBytes:        4096,
		MaxKeyDepth:        128,
		MaxValueBytes:      1 << 20,
		MaxRequestBytes:    1572864,
		MaxAnswerBytes:     64 << 20,
		QuotaBackendBytes:  2 << 30,
		RequestBodyTimeout: 10 * time.Second,
		AuthGuest:          "full",
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

// enableV2 takes etcd's --enable-v2, so that unit files and scripts
// written for etcd start Cairn unchanged. Cairn serves only the v2 API:
// true (a bare --enable-v2) changes nothing, and false, which cannot be
// honoured, is refused rather than ignored.
func enableV2(_ *Config, v string) error {
	on, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not a boolean", v)
	}
	if !on {
		return errors.New("cairn serves only the v2 API, which cannot be turned off: drop the setting or set it to true")
	}
	return nil
}

// boolFlags are the settings that may stand alone on the command line, as
// Go's boolean flags: --enable-v2 is --enable-v2=true, --client-cert-auth
// is --client-cert-auth=true.
var boolFlags = map[string]bool{"enable-v2": true, "client-cert-auth": true, "auto-tls": true, "peer-client-cert-auth": true, "peer-auto-tls": true, "enable-pprof": true}

func int64Bytes(p func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number of bytes", v)
		}
		*p(c) = n
		return nil
	}
}

func duration(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 10s or 500ms)", v)
		}
		*p(c) = d
		return nil
	}
}

// settings lists every setting; its name is the flag, the YAML key and,
// upper-cased with "_" for "-" and CAIRN_ before it, the variable.
var settings = []setting{
	{"name", "human-readable name of this member", str(func(c *Config) *string { return &c.Name })},
	{"data-dir", "path to the data directory (default ${name}.cairn)", str(func(c *Config) *string { return &c.DataDir })},
	{"wal-dir", "path to a dedicated WAL directory (default inside the data directory)", str(func(c *Config) *string { return &c.WALDir })},
	{"listen-client-urls", "comma-separated http(s) URLs to serve clients on", str(func(c *Config) *string { return &c.ListenClientURLs })},
	{"listen-peer-urls", "comma-separated http(s) URLs to serve peers on", str(func(c *Config) *string { return &c.ListenPeerURLs })},
	{"advertise-client-urls", "this member's client URLs as others should use them (comma-separated)", str(func(c *Config) *string { return &c.AdvertiseClientURLs })},
	{"initial-advertise-peer-urls", "this member's peer URL (it identifies the member)", str(func(c *Config) *string { return &c.InitialAdvertisePeerURLs })},
	{"initial-cluster", "initial cluster: name=peerURL,... (default ${name}=${initial-advertise-peer-urls})", str(func(c *Config) *string { return &c.InitialCluster })},
	{"initial-cluster-state", "new: bootstrap a cluster with the initial-cluster members; existing: join a running cluster (after POST /v2/members)", str(func(c *Config) *string { return &c.InitialClusterState })},
	{"initial-cluster-token", "initial cluster token (it identifies the cluster)", str(func(c *Config) *string { return &c.InitialClusterToken })},
	// TLS (tls.go, docs/security.md).
	{"cert-file", "certificate (PEM) served on the https listen-client-urls", str(func(c *Config) *string { return &c.CertFile })},
	{"key-file", "private key (PEM) of cert-file", str(func(c *Config) *string { return &c.KeyFile })},
	{"trusted-ca-file", "CA bundle (PEM) that signs client certificates; https clients must then present one (as with etcd)", str(func(c *Config) *string { return &c.TrustedCAFile })},
	{"client-cert-auth", "https clients must present a certificate signed by trusted-ca-file", boolean(func(c *Config) *bool { return &c.ClientCertAuth })},
	{"auto-tls", "without cert-file, serve https clients a self-signed certificate made in ${data-dir}/fixtures/client (encryption, not authentication)", boolean(func(c *Config) *bool { return &c.AutoTLS })},
	{"peer-cert-file", "certificate (PEM) served on the https listen-peer-urls and presented to other members", str(func(c *Config) *string { return &c.PeerCertFile })},
	{"peer-key-file", "private key (PEM) of peer-cert-file", str(func(c *Config) *string { return &c.PeerKeyFile })},
	{"peer-trusted-ca-file", "CA bundle (PEM) other members' peer certificates are verified against; members must then present one (as with etcd)", str(func(c *Config) *string { return &c.PeerTrustedCAFile })},
	{"peer-client-cert-auth", "members connecting to the https peer URLs must present a certificate signed by peer-trusted-ca-file", boolean(func(c *Config) *bool { return &c.PeerClientCertAuth })},
	{"peer-auto-tls", "without peer-cert-file, use a self-signed peer certificate made in ${data-dir}/fixtures/peer; peers' certificates are not verified (encryption, not authentication)", boolean(func(c *Config) *bool { return &c.PeerAutoTLS })},
	{"peer-cert-allowed-cn", "other members' peer certificates must have this CommonName (with peer-trusted-ca-file)", str(func(c *Config) *string { return &c.PeerCertAllowedCN })},
	{"cipher-suites", "comma-separated TLS 1.2 cipher suites (IANA names; default: Go's)", str(func(c *Config) *string { return &c.CipherSuites })},
	{"tls-min-version", "lowest TLS version: TLS1.2 (default) or TLS1.3", str(func(c *Config) *string { return &c.TLSMinVersion })},
	{"discovery", "discovery URL (a v2 keys directory holding _config/size) to bootstrap the cluster with", str(func(c *Config) *string { return &c.Discovery })},
	{"discovery-fallback", "when discovery finds the cluster full: exit, or proxy (serve as a proxy to it)", str(func(c *Config) *string { return &c.DiscoveryFallback })},
	{"discovery-proxy", "HTTP proxy URL for reaching the discovery service", str(func(c *Config) *string { return &c.DiscoveryProxy })},
	{"discovery-srv", "DNS domain whose _etcd-server._tcp SRV records bootstrap the cluster", str(func(c *Config) *string { return &c.DiscoverySRV })},
	{"discovery-srv-name", "suffix of the SRV service names (_etcd-server-<name>._tcp)", str(func(c *Config) *string { return &c.DiscoverySRVName })},
	{"discovery-srv-resolver", "DNS server host:port for the SRV lookups (for tests)", str(func(c *Config) *string { return &c.DiscoverySRVResolver })},
	{"proxy", "off, on (forward the client API to the cluster, keeping no Raft state) or readonly (on, refusing writes)", str(func(c *Config) *string { return &c.Proxy })},
	{"proxy-failure-wait", "time (in milliseconds) a member that failed a proxied request is left out", integer(func(c *Config) *int { return &c.ProxyFailureWait })},
	{"proxy-refresh-interval", "time (in milliseconds) between refreshes of the proxy's member list", integer(func(c *Config) *int { return &c.ProxyRefreshInterval })},
	{"proxy-dial-timeout", "time (in milliseconds) for the proxy to connect to a member (0: no limit)", integer(func(c *Config) *int { return &c.ProxyDialTimeout })},
	{"proxy-write-timeout", "time (in milliseconds) for each write of the proxy to a member (0: no limit)", integer(func(c *Config) *int { return &c.ProxyWriteTimeout })},
	{"proxy-read-timeout", "time (in milliseconds) for each read of the proxy from a member (0: no limit; keep 0 for watches)", integer(func(c *Config) *int { return &c.ProxyReadTimeout })},
	{"snapshot-count", "applied entries between Raft snapshots", func(c *Config, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a count", v)
		}
		c.SnapshotCount = n
		return nil
	}},
	{"max-snapshots", "accepted for etcd compatibility (a member keeps one snapshot)", integer(func(c *Config) *int { return &c.MaxSnapshots })},
	{"enable-v2", "accepted for etcd compatibility: Cairn always serves the v2 API (false is refused)", enableV2},
	{"max-wals", "WAL segments to keep (0 is unlimited)", integer(func(c *Config) *int { return &c.MaxWALs })},
	{"heartbeat-interval", "time (in milliseconds) of a heartbeat interval", integer(func(c *Config) *int { return &c.HeartbeatInterval })},
	{"election-timeout", "time (in milliseconds) for an election to timeout", integer(func(c *Config) *int { return &c.ElectionTimeout })},
	{"cors", "comma-separated origins allowed cross-origin access (* for any)", str(func(c *Config) *string { return &c.CORS })},
	{"event-history", "events kept for waitIndex watches", integer(func(c *Config) *int { return &c.EventHistory })},
	{"max-key-bytes", "longest key a client may write, in bytes (an in-order POST's with its 21-byte name)", integer(func(c *Config) *int { return &c.MaxKeyBytes })},
	{"max-key-depth", "most path elements in a key a client may write", integer(func(c *Config) *int { return &c.MaxKeyDepth })},
	{"max-value-bytes", "longest value (and prevValue) a client may send, in bytes", integer(func(c *Config) *int { return &c.MaxValueBytes })},
	{"max-request-bytes", "largest client request: its URL and body together, in bytes", integer(func(c *Config) *int { return &c.MaxRequestBytes })},
	{"max-answer-bytes", "largest answer to a read (a recursive GET, a queue listing), in bytes", int64Bytes(func(c *Config) *int64 { return &c.MaxAnswerBytes })},
	{"quota-backend-bytes", "size of the data (key paths and values) past which writes are refused; 0 is the default, 2 GiB", int64Bytes(func(c *Config) *int64 { return &c.QuotaBackendBytes })},
	{"request-body-timeout", "time a client request's body may take to arrive (a Go duration: 10s, 1m)", duration(func(c *Config) *time.Duration { return &c.RequestBodyTimeout })},
	{"log-level", "log level: debug, info, warn, error", str(func(c *Config) *string { return &c.LogLevel })},
	{"enable-pprof", "serve Go's runtime profiler under /debug/pprof/ on the client URLs (for diagnosis; do not expose it to untrusted clients)", boolean(func(c *Config) *bool { return &c.EnablePprof })},
	{"log-format", "log format: json, or console for people", str(func(c *Config) *string { return &c.LogFormat })},
	{"auth-guest", "access of the guest role that enabling v2 auth creates: full (etcd's) or none (recommended)", str(func(c *Config) *string { return &c.AuthGuest })},
	{"config-file", "YAML file with any of these settings (flags and CAIRN_* variables win over it)", str(func(c *Config) *string { return &c.ConfigFile })},
}

// hidden settings work like the others but are left out of --help and
// the example file: they exist for tests.
var hidden = map[string]bool{"discovery-srv-resolver": true}

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
		set := func(v string) error { flags[name] = v; return nil }
		if boolFlags[name] {
			fs.BoolFunc(name, s.usage, set)
		} else {
			fs.Func(name, s.usage, set)
		}
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
		if !known && !isFaultVar(k) {
			warnings = append(warnings, fmt.Sprintf("unknown environment variable %s ignored", k))
		}
	}
	slices.Sort(warnings)

	c := Default()
	faults, err := loadFaults(env)
	if err != nil {
		return Config{}, warnings, err
	}
	c.Faults = faults
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
	// As etcd: an initial cluster given beside discovery is a conflict;
	// the default one stands for this member alone.
	var conflict error
	if n := countSet(c.InitialCluster, c.Discovery, c.DiscoverySRV); n > 1 {
		conflict = errors.New(`initial-cluster, discovery, discovery-srv: multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"`)
	}
	if c.InitialCluster == "" {
		c.InitialCluster = c.Name + "=" + c.InitialAdvertisePeerURLs
	}
	if c.QuotaBackendBytes == 0 {
		c.QuotaBackendBytes = Default().QuotaBackendBytes
	}
	return c, warnings, errors.Join(conflict, c.Validate())
}

func countSet(vs ...string) int {
	n := 0
	for _, v := range vs {
		if v != "" {
			n++
		}
	}
	return n
}

// Bootstraps reports whether the member finds its initial cluster by
// discovery (a discovery URL or DNS SRV records) rather than from
// initial-cluster.
func (c *Config) Bootstraps() bool { return c.Discovery != "" || c.DiscoverySRV != "" }

// ProxyMode reports whether the process is a proxy (proxy on or readonly).
func (c *Config) ProxyMode() bool { return c.Proxy == "on" || c.Proxy == "readonly" }

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

// DiscoveryProxyURL parses the discovery-proxy setting; as etcd, a value
// without a scheme is taken as http://value.
func DiscoveryProxyURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || !strings.HasPrefix(u.Scheme, "http") || u.Host == "" {
		u, err = url.Parse("http://" + v)
	}
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("discovery-proxy: want an http://host:port URL, got %q", v)
	}
	return u, nil
}

// OneURL parses a setting that must hold one http(s)://host:port URL.
func OneURL(setting, v string) (*url.URL, error) {
	u, err := oneURL(v)
	if err != nil {
		return nil, fmt.Errorf("%s: want one http:// or https://host:port URL, got %q", setting, v)
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
		{"advertise-client-urls", c.AdvertiseClientURLs},
	} {
		if _, err := URLs(u.name, u.v); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := OneURL("initial-advertise-peer-urls", c.InitialAdvertisePeerURLs); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateTLS(); err != nil {
		errs = append(errs, err)
	}
	// A proxy is not in the cluster it names, and discovery replaces
	// the initial cluster: only a plain member must find itself in it.
	if members, err := c.Members(); err != nil {
		errs = append(errs, err)
	} else if c.ProxyMode() || c.Bootstraps() {
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
	if !slices.Contains([]string{"off", "on", "readonly"}, c.Proxy) {
		bad("proxy", "want off, on or readonly, got %q", c.Proxy)
	}
	for _, d := range []struct {
		name string
		v    int
	}{{"proxy-failure-wait", c.ProxyFailureWait}, {"proxy-dial-timeout", c.ProxyDialTimeout},
		{"proxy-write-timeout", c.ProxyWriteTimeout}, {"proxy-read-timeout", c.ProxyReadTimeout}} {
		if d.v < 0 {
			bad(d.name, "must not be negative, got %d", d.v)
		}
	}
	if c.ProxyRefreshInterval <= 0 {
		bad("proxy-refresh-interval", "must be positive, got %d", c.ProxyRefreshInterval)
	}
	if c.DiscoveryFallback != "exit" && c.DiscoveryFallback != "proxy" {
		bad("discovery-fallback", "want exit or proxy, got %q", c.DiscoveryFallback)
	}
	if c.Discovery != "" {
		if u, err := url.Parse(c.Discovery); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("discovery", "want an http(s)://host[:port]/path URL, got %q", c.Discovery)
		}
	}
	if c.DiscoveryProxy != "" {
		if _, err := DiscoveryProxyURL(c.DiscoveryProxy); err != nil {
			errs = append(errs, err)
		}
	}
	if c.DiscoverySRVResolver != "" {
		if _, _, err := net.SplitHostPort(c.DiscoverySRVResolver); err != nil {
			bad("discovery-srv-resolver", "want host:port, got %q", c.DiscoverySRVResolver)
		}
	}
	if c.Bootstraps() && c.InitialClusterState == "existing" {
		bad("initial-cluster-state", "existing: discovery bootstraps a new cluster; to join a running one, use initial-cluster")
	}
	if c.EventHistory < 1 {
		bad("event-history", "must be at least 1, got %d", c.EventHistory)
	}
	for _, l := range []struct {
		name     string
		v, most  int64
		mostWhat string
	}{
		{"max-key-bytes", int64(c.MaxKeyBytes), store.MaxKeyBytes, "the store's hard limit"},
		{"max-key-depth", int64(c.MaxKeyDepth), store.MaxKeyDepth, "the store's hard limit"},
		{"max-value-bytes", int64(c.MaxValueBytes), store.MaxValueBytes, "the store's hard limit"},
		{"max-request-bytes", int64(c.MaxRequestBytes), maxRequestBytes, "twice the store's hard value limit and 1 MiB"},
		{"max-answer-bytes", c.MaxAnswerBytes, math.MaxInt64, ""},
		{"quota-backend-bytes", c.QuotaBackendBytes, math.MaxInt64, ""}, // 0, the default, is resolved by Load
	} {
		switch {
		case l.v <= 0:
			bad(l.name, "must be positive, got %d", l.v)
		case l.v > l.most:
			bad(l.name, "%d is more than %d, %s", l.v, l.most, l.mostWhat)
		}
	}
	if c.RequestBodyTimeout <= 0 {
		bad("request-body-timeout", "must be positive, got %v", c.RequestBodyTimeout)
	}
	if c.MaxValueBytes > 0 {
		for _, l := range []struct {
			name string
			v    int64
		}{{"max-request-bytes", int64(c.MaxRequestBytes)}, {"max-answer-bytes", c.MaxAnswerBytes}} {
			if l.v > 0 && l.v < int64(c.MaxValueBytes) {
				bad(l.name, "%d is less than max-value-bytes (%d): a value it allows could not be written or read", l.v, c.MaxValueBytes)
			}
		}
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
	fmt.Fprintln(w, "Usage: cairn [flags]   (or cairn version | --version | health | snapshot save|status|restore)")
	fmt.Fprintln(w, "Every flag is also a CAIRN_* environment variable and a key of the --config-file YAML.")
	for _, s := range settings {
		if hidden[s.name] {
			continue
		}
		fmt.Fprintf(w, "  --%-28s %s (%s)\n", s.name, s.usage, EnvName(s.name))
	}
}
