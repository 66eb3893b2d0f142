package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cairnkv/cairn/internal/tlsutil"
)

// The workloads, as --workload names them.
const (
	workloadPut             = "put"
	workloadGet             = "get"
	workloadGetSerializable = "get-serializable"
	workloadCAS             = "cas"
	workloadPost            = "post"
	workloadWatch           = "watch"
	workloadMixed           = "mixed"
	workloadLock            = "lock"
	workloadQueue           = "queue"
)

var workloads = []string{workloadPut, workloadGet, workloadGetSerializable, workloadCAS, workloadPost, workloadWatch, workloadMixed, workloadLock, workloadQueue}

// config is a run's settings, from the flags.
type config struct {
	endpoints   []string
	clients     int
	total       int
	duration    time.Duration
	keySpace    int
	keySize     int
	valueSize   int
	workload    string
	watchers    int
	readRatio   float64
	consistency string
	rate        float64
	prefix      string
	timeout     time.Duration
	locks       int
	queues      int
	tls         *tls.Config // https endpoints; nil: Go's defaults
	user        string      // "name:password" for HTTP basic auth ("": none)
}

// Main runs `cairn bench` with args (the arguments after "bench") and
// writes its report to out. It returns the process exit code: 0 when the
// run completed (even with request errors, which the report counts), 1
// when it could not run, 2 for bad flags.
func Main(args []string, out io.Writer) int {
	cfg, err := parseFlags(args, out)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(out, "cairn bench:", err)
		return 2
	}
	res, err := run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(out, "cairn bench:", err)
		return 1
	}
	res.write(out)
	return 0
}

// parseFlags reads and checks the flags. --help prints the usage to out
// and returns flag.ErrHelp.
func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("cairn bench", flag.ContinueOnError)
	fs.SetOutput(out)
	var cfg config
	endpoints := fs.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs of the members; clients are spread over them round-robin")
	fs.IntVar(&cfg.clients, "clients", 16, "concurrent clients, each with its own keep-alive connection (the watch workload has one writer)")
	fs.IntVar(&cfg.total, "total", 10000, "requests to send in all (watch: writes of the watched key); ignored when --duration is set")
	fs.DurationVar(&cfg.duration, "duration", 0, "run for this long instead of --total requests (e.g. 10s)")
	fs.IntVar(&cfg.keySpace, "key-space", 1000, "distinct keys the put, get, get-serializable and mixed workloads choose from at random")
	fs.IntVar(&cfg.keySize, "key-size", 8, "length of a key's last path segment in bytes (longer if the key space needs more digits)")
	fs.IntVar(&cfg.valueSize, "value-size", 256, "bytes per value written")
	fs.StringVar(&cfg.workload, "workload", workloadPut, "one of "+strings.Join(workloads, ", "))
	fs.IntVar(&cfg.watchers, "watchers", 100, "watch workload: long-poll watchers on the watched key")
	fs.Float64Var(&cfg.readRatio, "read-ratio", 0.9, "mixed workload: fraction of requests that are gets (0 to 1)")
	fs.StringVar(&cfg.consistency, "consistency", "s", `mixed workload: its gets are "l" (linearizable, quorum=true) or "s" (serializable)`)
	fs.Float64Var(&cfg.rate, "rate", 0, "pace the run at this many requests per second over all clients (0: as fast as the server answers)")
	fs.StringVar(&cfg.prefix, "prefix", "/bench", "directory under /v2/keys that holds the keys written (lock and queue workloads: the start of the lock and queue names, e.g. bench-lock-0)")
	fs.IntVar(&cfg.locks, "locks", 1, "lock workload: distinct locks; client i uses lock i mod --locks")
	fs.IntVar(&cfg.queues, "queues", 1, "queue workload: distinct queues; client i uses queue i mod --queues")
	fs.StringVar(&cfg.user, "user", "", "send HTTP basic auth as name:password on every request (a server with v2 auth enabled)")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "time allowed per request (watch: also for watchers to arm and to receive the last events)")
	var tlsFlags tlsutil.ClientFlags
	tlsFlags.Register(fs)
	fs.Usage = func() {
		fmt.Fprint(out, `Usage: cairn bench [flags]

Load generator for the etcd v2 keys API (Cairn, or etcd with --enable-v2),
and for Cairn's own locks and queues (the lock and queue workloads).
Workloads:
  put, get, get-serializable, mixed   PUT / GET keys of --key-space (mixed: --read-ratio of GETs)
  cas                                  compare-and-swap loops, one key per client
  post                                 in-order keys (POST) in one directory
  watch                                one writer, --watchers long-poll watchers of its key
  lock                                 acquire (POST /v2/locks/NAME?ttl=10&wait=true) and release
                                       (DELETE ?token=) cycles on --locks locks; one request = one cycle
  queue                                enqueue (POST /v2/queues/NAME) then dequeue (DELETE) on
                                       --queues queues; one request = one pair
Prints a line for people and a line of key=value pairs:
  workload=put clients=64 requests=20000 errors=0 duration=3.21s throughput=6230.1/s mean=... p50=... p90=... p99=... p999=... max=...

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	tlsCfg, err := tlsFlags.Config()
	if err != nil {
		return cfg, err
	}
	cfg.tls = tlsCfg
	for _, ep := range strings.Split(*endpoints, ",") {
		ep = strings.TrimRight(strings.TrimSpace(ep), "/")
		if ep == "" {
			continue
		}
		if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
			return cfg, fmt.Errorf("--endpoints: %q is not an http:// or https:// URL", ep)
		}
		cfg.endpoints = append(cfg.endpoints, ep)
	}
	cfg.prefix = "/" + strings.Trim(cfg.prefix, "/")
	switch {
	case len(cfg.endpoints) == 0:
		return cfg, errors.New("--endpoints: no endpoint given")
	case !slices.Contains(workloads, cfg.workload):
		return cfg, fmt.Errorf("--workload %q: want one of %s", cfg.workload, strings.Join(workloads, ", "))
	case cfg.clients < 1:
		return cfg, errors.New("--clients must be at least 1")
	case cfg.duration < 0:
		return cfg, errors.New("--duration must not be negative")
	case cfg.duration == 0 && cfg.total < 1:
		return cfg, errors.New("--total must be at least 1 (or give --duration)")
	case cfg.keySpace < 1:
		return cfg, errors.New("--key-space must be at least 1")
	case cfg.keySize < 1:
		return cfg, errors.New("--key-size must be at least 1")
	case cfg.valueSize < 1:
		return cfg, errors.New("--value-size must be at least 1")
	case cfg.workload == workloadWatch && cfg.watchers < 1:
		return cfg, errors.New("--watchers must be at least 1")
	case cfg.readRatio < 0 || cfg.readRatio > 1 || math.IsNaN(cfg.readRatio):
		return cfg, errors.New("--read-ratio must be between 0 and 1")
	case cfg.consistency != "l" && cfg.consistency != "s":
		return cfg, fmt.Errorf(`--consistency %q: want "l" or "s"`, cfg.consistency)
	case cfg.rate < 0 || math.IsNaN(cfg.rate) || math.IsInf(cfg.rate, 0):
		return cfg, errors.New("--rate must be a non-negative number")
	case cfg.timeout <= 0:
		return cfg, errors.New("--timeout must be positive")
	case cfg.prefix == "/":
		return cfg, errors.New("--prefix must name a directory below the root")
	case cfg.locks < 1:
		return cfg, errors.New("--locks must be at least 1")
	case cfg.queues < 1:
		return cfg, errors.New("--queues must be at least 1")
	}
	if cfg.user != "" && !strings.Contains(cfg.user, ":") {
		return cfg, errors.New("--user: want name:password")
	}
	return cfg, nil
}
