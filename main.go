// Command cairn runs a Cairn member.
//
// With no flags it starts a single-member cluster serving the etcd v2 keys
// API on http://127.0.0.1:2379, keeping its state in ./default.cairn.
// --initial-cluster (etcd's flag) starts a member of a larger cluster.
package main

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/bench"
	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/internal/progress"
	"github.com/cairnkv/cairn/internal/tlsutil"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// Bounds of the HTTP servers: idle keep-alive connections, the headers
// of a request besides its URL, and a peer request's headers.
const (
	idleTimeout        = 2 * time.Minute
	headerSlack        = 64 << 10
	peerMaxHeaderBytes = 64 << 10
)

// Version is Cairn's own version (/version reports the etcd API version
// it answers as).
const Version = server.Version

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) > 0 && args[0] == "version":
		printVersion()
	case len(args) > 0 && args[0] == "bench":
		os.Exit(bench.Main(args[1:], os.Stdout))
	case len(args) > 0 && args[0] == "health":
		err = healthCmd(args[1:])
	case len(args) > 0 && args[0] == "snapshot":
		err = snapshotCmd(args[1:])
	case versionFlag(args):
		printVersion()
	default:
		err = run(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cairn:", err)
		os.Exit(1)
	}
}

func printVersion() {
	fmt.Printf("cairn %s (etcd v2 API %s)\n", Version, httpapi.EtcdServerVersion)
}

// versionFlag reports whether the serve flags ask for the version, as
// etcd's --version does (scripts check etcd that way): then nothing is
// started, whatever else is given.
func versionFlag(args []string) bool {
	for _, a := range args {
		switch a {
		case "--version", "-version", "--version=true", "-version=true":
			return true
		}
	}
	return false
}

// healthCmd checks /health on each endpoint; it fails unless all are
// healthy (ready: see server.Member.Ready), so it serves as a container
// healthcheck. An unhealthy member's reason is printed when it gives one.
func healthCmd(args []string) error {
	fs := flag.NewFlagSet("cairn health", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs to check")
	timeout := fs.Duration("timeout", 3*time.Second, "time allowed per endpoint")
	var tlsFlags tlsutil.ClientFlags
	tlsFlags.Register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := toolClient(&tlsFlags, *timeout)
	if err != nil {
		return err
	}
	var failed []string
	for _, ep := range strings.Split(*endpoints, ",") {
		ep = strings.TrimRight(strings.TrimSpace(ep), "/")
		resp, err := client.Get(ep + "/health")
		status := "unhealthy"
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`) {
				status = "healthy"
			} else {
				err = fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
				if reason := resp.Header.Get(httpapi.HeaderHealthReason); reason != "" {
					err = fmt.Errorf("%w (%s)", err, reason)
				}
			}
		}
		if err != nil {
			fmt.Printf("%s is unhealthy: %v\n", ep, err)
			failed = append(failed, ep)
			continue
		}
		fmt.Printf("%s is %s\n", ep, status)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of the endpoints unhealthy", len(failed))
	}
	return nil
}

// memberID is derived as etcd derives it: SHA-1 over the member's peer
// URLs and the cluster token, first 8 bytes.
func memberID(peerURLs []string, token string) uint64 {
	h := sha1.Sum([]byte(strings.Join(peerURLs, "") + token))
	return binary.BigEndian.Uint64(h[:8])
}

// clusterID is SHA-1 over the member IDs (8 bytes each, big-endian).
func clusterID(ids ...uint64) uint64 {
	var b []byte
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// identities derives this member's ID, the cluster ID and the member
// list of a new cluster from the initial cluster.
func identities(members map[string]string, selfURL, token string) (id, cid uint64, initial []server.MemberInfo) {
	id = memberID([]string{selfURL}, token)
	var voters []uint64
	for name, u := range members {
		mid := memberID([]string{u}, token)
		voters = append(voters, mid)
		initial = append(initial, server.MemberInfo{ID: mid, Name: name, PeerURLs: []string{u}, ClientURLs: []string{}})
	}
	slices.Sort(voters)
	slices.SortFunc(initial, func(a, b server.MemberInfo) int { return cmp.Compare(a.ID, b.ID) })
	return id, clusterID(voters...), initial
}

// joinInfo asks the running members (the initial cluster's peer URLs,
// other than selfURL) for the cluster: its ID, its members, and the ID
// this member was given when it was added (found by its peer URL).
func joinInfo(members map[string]string, selfURL string, client *http.Client) (id, cid uint64, list []server.MemberInfo, err error) {
	var errs []error
	urls := make([]string, 0, len(members))
	for _, u := range members {
		if u != selfURL {
			urls = append(urls, u)
		}
	}
	slices.Sort(urls)
	for _, u := range urls {
		resp, err := client.Get(strings.TrimRight(u, "/") + server.PeerMembersPath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s%s: %d %s", u, server.PeerMembersPath, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		if err == nil {
			cid, list, err = server.UnmarshalMembers(body)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := checkPeerVersion(client, u); err != nil {
			return 0, 0, nil, err
		}
		for _, mi := range list {
			if slices.Contains(mi.PeerURLs, selfURL) {
				return mi.ID, cid, list, nil
			}
		}
		return 0, 0, nil, fmt.Errorf("the cluster has no member with peer URL %s: add it first (POST /v2/members, or etcdctl member add)", selfURL)
	}
	return 0, 0, nil, fmt.Errorf("no member of the initial cluster answered: %w", errors.Join(errs...))
}

// checkPeerVersion asks a running member's peer endpoint /version which
// Cairn it runs and refuses to join one whose major.minor differs (their
// log and snapshot encodings may not be understood).
func checkPeerVersion(client *http.Client, peerURL string) error {
	resp, err := client.Get(strings.TrimRight(peerURL, "/") + server.PeerVersionPath)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var v struct {
		Cairn string `json:"cairn"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s: %d, %v", peerURL, server.PeerVersionPath, resp.StatusCode, err)
	}
	majorMinor := func(s string) string {
		parts := strings.SplitN(s, ".", 3)
		return strings.Join(parts[:min(2, len(parts))], ".")
	}
	if majorMinor(v.Cairn) != majorMinor(Version) {
		return fmt.Errorf("the member at %s runs cairn %s; this is %s: join with a matching release", peerURL, v.Cairn, Version)
	}
	return nil
}

// snapshotCmd: cairn snapshot save|status|restore.
func snapshotCmd(args []string) error {
	if len(args) == 0 {
		return errors.New("snapshot: want save, status or restore")
	}
	fs := flag.NewFlagSet("cairn snapshot "+args[0], flag.ContinueOnError)
	// The file may come first (cairn snapshot restore FILE --name ...) or
	// after the flags.
	cmd, rest := args[0], args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		rest = append(rest[1:], rest[0]) // move the file after the flags
	}
	args = append([]string{cmd}, rest...)
	switch args[0] {
	case "save":
		endpoint := fs.String("endpoints", "http://127.0.0.1:2379", "the member to back up (one client URL)")
		var tlsFlags tlsutil.ClientFlags
		tlsFlags.Register(fs)
		user := fs.String("user", "", "name:password of a user with the root role, when v2 auth is enabled")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("snapshot save: want one file name")
		}
		client, err := toolClient(&tlsFlags, 0)
		if err != nil {
			return err
		}
		return snapshotSave(client, strings.TrimRight(*endpoint, "/"), fs.Arg(0), *user)
	case "status":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("snapshot status: want one file name")
		}
		st, err := store.StatusOf(fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Printf("{\"storeIndex\":%d,\"raftIndex\":%d,\"keys\":%d,\"size\":%d,\"hash\":\"%016x\"}\n", st.StoreIndex, st.RaftIndex, st.Keys, st.Size, st.Hash)
		return nil
	case "restore":
		name := fs.String("name", "default", "the restored member's name")
		dataDir := fs.String("data-dir", "", "the new data directory (default ${name}.cairn)")
		peerURL := fs.String("initial-advertise-peer-urls", "http://localhost:2380", "the restored member's peer URL")
		initialCluster := fs.String("initial-cluster", "", "the new cluster: name=peerURL,... (default ${name}=${initial-advertise-peer-urls})")
		token := fs.String("initial-cluster-token", "cairn-cluster", "the new cluster's token")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("snapshot restore: want one file name")
		}
		if *dataDir == "" {
			*dataDir = *name + ".cairn"
		}
		if *initialCluster == "" {
			*initialCluster = *name + "=" + *peerURL
		}
		rc := config.Config{InitialCluster: *initialCluster}
		members, err := rc.Members()
		if err != nil {
			return err
		}
		self, ok := members[*name]
		if !ok {
			return fmt.Errorf("--initial-cluster %q has no member named %q", *initialCluster, *name)
		}
		id, cid, initial := identities(members, self, *token)
		meter := progress.New(os.Stderr, progress.IsTerminal(os.Stderr), fs.Arg(0), nil)
		defer meter.End()
		st, err := server.Restore(fs.Arg(0), server.MemberConfig{ID: id, ClusterID: cid, InitialMembers: initial, DataDir: *dataDir}, meter)
		if err != nil {
			return err
		}
		meter.Done("copied")
		fmt.Printf("restored %d keys (store index %d, raft index %d) into %s\n", st.Keys, st.StoreIndex, st.RaftIndex, *dataDir)
		return nil
	}
	return fmt.Errorf("snapshot: unknown command %q (want save, status or restore)", args[0])
}

// snapshotSave fetches a backup from the member at endpoint into file,
// atomically, and checks it before keeping it. On a terminal, standard
// error shows how far it is (internal/progress).
func snapshotSave(client *http.Client, endpoint, file, user string) error {
	req, err := http.NewRequest(http.MethodGet, endpoint+"/snapshot", nil)
	if err != nil {
		return err
	}
	if name, password, ok := strings.Cut(user, ":"); ok {
		req.SetBasicAuth(name, password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %d %s", endpoint, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	meter := progress.New(os.Stderr, progress.IsTerminal(os.Stderr), file, nil)
	defer meter.End()
	tmp := file + ".part"
	n, err := store.InstallSnapshot(meter.Reader("saving", max(resp.ContentLength, 0), resp.Body), tmp)
	if err != nil {
		return err
	}
	meter.Step("checking", n)
	st, err := store.StatusOf(tmp)
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("the backup received is not valid: %w", err)
	}
	meter.Keys(st.Keys)
	if err := os.Rename(tmp, file); err != nil {
		return err
	}
	meter.Done("received")
	fmt.Printf("saved %s: %d keys, store index %d, raft index %d, %d bytes\n", file, st.Keys, st.StoreIndex, st.RaftIndex, st.Size)
	return nil
}

func run(args []string) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			config.Usage(os.Stdout)
			return nil
		}
	}
	cfg, warnings, err := config.Load(args, os.Environ())
	if err != nil {
		return err
	}
	level, _ := zerolog.ParseLevel(cfg.LogLevel)
	var out io.Writer = os.Stderr
	if cfg.LogFormat == "console" {
		out = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339}
	}
	log := zerolog.New(out).Level(level).With().Timestamp().Str("member", cfg.Name).Logger()
	for _, w := range warnings {
		log.Warn().Msg(w)
	}
	hup, stopHUP := notifyHUP() // before anything slow: SIGHUP must not end a starting member
	defer stopHUP()
	// A proxy keeps no Raft state; a data directory that holds a proxy's
	// starts one again (docs/operations.md, "Proxy mode").
	if proxyDir, err := isProxyDir(cfg); err != nil {
		return err
	} else if proxyDir && !cfg.ProxyMode() {
		cfg.Proxy = "on"
	}
	mtls, err := setupTLS(cfg, log)
	if err != nil {
		return err
	}
	if cfg.ProxyMode() {
		return runProxy(cfg, mtls, hup, log)
	}
	members, _ := cfg.Members() // validated by Load
	var id, cid uint64
	var initial []server.MemberInfo
	join := false
	switch {
	case server.Initialized(cfg.DataDir, cfg.WALDir):
		// A member that has run before is who its data directory says;
		// the initial-cluster settings only matter the first time.
		log.Info().Str("data-dir", cfg.DataDir).Msg("restarting the member recorded in the data directory")
	case cfg.InitialClusterState == "existing":
		id, cid, initial, err = joinInfo(members, cfg.InitialAdvertisePeerURLs, mtls.peerClient(5*time.Second))
		if err != nil {
			return fmt.Errorf("joining the cluster: %w", err)
		}
		join = true
	default:
		token := cfg.InitialClusterToken
		if cfg.Bootstraps() { // --discovery or --discovery-srv (docs/operations.md, "Discovery")
			members, token, err = discoverCluster(cfg, log)
			if errors.Is(err, errFallBackToProxy) {
				cfg.Proxy = "on"
				if mtls, err = setupTLS(cfg, log); err != nil { // a proxy's TLS: it also dials members
					return err
				}
				return runProxy(cfg, mtls, hup, log)
			}
			if err != nil {
				return err
			}
		}
		id, cid, initial = identities(members, members[cfg.Name], token)
	}
	// Deliberate bugs, for proving that the fault-injection checkers catch
	// what they look for (e2e/chaos*). Never in production.
	unsafeReads := os.Getenv("CAIRN_UNSAFE_LOCAL_READS") == "1"
	unsafeGrant := os.Getenv("CAIRN_UNSAFE_LOCK_GRANT") == "1"
	if unsafeReads {
		log.Warn().Msg("CAIRN_UNSAFE_LOCAL_READS=1: linearizable reads skip ReadIndex and may be stale (a test-only bug)")
	}
	var walFS wal.FS
	if v := os.Getenv("CAIRN_FAILPOINT_WAL_FSYNC_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("CAIRN_FAILPOINT_WAL_FSYNC_DELAY: %w", err)
		}
		walFS = wal.SlowSync(wal.OS, d)
		log.Warn().Dur("delay", d).Msg("CAIRN_FAILPOINT_WAL_FSYNC_DELAY: every WAL fsync is delayed (a test failpoint)")
	}
	if f := os.Getenv("CAIRN_FAILPOINT_WAL_FSYNC_DELAY_FILE"); f != "" {
		walFS = wal.SlowSyncFromFile(wal.OS, f)
		log.Warn().Str("file", f).Msg("CAIRN_FAILPOINT_WAL_FSYNC_DELAY_FILE: WAL fsyncs are delayed by the duration in this file (a test failpoint)")
	}
	skipCheck := os.Getenv("CAIRN_UNSAFE_SKIP_PROPOSAL_CHECK") == "1"
	if skipCheck {
		log.Warn().Msg("CAIRN_UNSAFE_SKIP_PROPOSAL_CHECK=1: the leader appends proposals apply cannot take (a test-only bug)")
	}
	if unsafeGrant {
		log.Warn().Msg("CAIRN_UNSAFE_LOCK_GRANT=1: lock waiters are granted without waiting for the head (a test-only bug)")
	}
	maxWALs := cfg.MaxWALs
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	member, err := server.StartMember(server.MemberConfig{
		Metrics: reg, Name: cfg.Name,
		PeerURLs: []string{cfg.InitialAdvertisePeerURLs}, ClientURLs: config.URLList(cfg.AdvertiseClientURLs), PeerDialTLS: mtls.peerDial(),
		ID: id, ClusterID: cid, InitialMembers: initial, Join: join, DataDir: cfg.DataDir, WALDir: cfg.WALDir,
		UnsafeLocalReads: unsafeReads, UnsafeSkipProposalCheck: skipCheck, WALFS: walFS,
		HeartbeatInterval: time.Duration(cfg.HeartbeatInterval) * time.Millisecond,
		ElectionTicks:     cfg.ElectionTimeout / cfg.HeartbeatInterval,
		SnapshotCount:     cfg.SnapshotCount, MaxWALs: &maxWALs, EventHistory: cfg.EventHistory, Logger: log,
	})
	if err != nil {
		return err
	}
	lns, err := listen("listen-client-urls", cfg.ListenClientURLs, mtls.client)
	if err != nil {
		_ = member.Stop()
		return err
	}
	// Every member listens for peers, a cluster of one too: members can
	// be added to it.
	plns, err := listen("listen-peer-urls", cfg.ListenPeerURLs, mtls.peer)
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		_ = member.Stop()
		return err
	}
	// Header reads are bounded in time on both listeners; so are idle
	// keep-alive connections. Bodies are bounded by their handlers (the
	// client API's --request-body-timeout; Raft streams are long-lived by
	// design).
	psrv := &http.Server{Handler: member.PeerHandler(), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: idleTimeout, MaxHeaderBytes: peerMaxHeaderBytes}
	psrv.ErrorLog = httpErrorLog(log, "peer")
	for _, pln := range plns {
		go func() { _ = psrv.Serve(pln) }()
	}
	defer psrv.Close()
	tlsCtx, stopTLS := context.WithCancel(context.Background())
	defer stopTLS()
	go watchTLS(tlsCtx, hup, log, mtls.sources())
	// Requests' contexts end when shutdown begins, so open watches return
	// at once (the client sees its 200 end with no event and re-watches)
	// instead of holding shutdown until its deadline.
	base, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	guest := server.GuestFull
	if cfg.AuthGuest == "none" {
		guest = server.GuestNone
	}
	srv := &http.Server{
		Handler: httpapi.NewHandler(httpapi.Config{Backend: member, Logger: log, CORS: cfg.CORSOrigins(), Metrics: reg,
			UnsafeLockGrant: unsafeGrant, Limits: httpapi.Limits{MaxKeyBytes: cfg.MaxKeyBytes, MaxKeyDepth: cfg.MaxKeyDepth,
				MaxValueBytes: cfg.MaxValueBytes, MaxRequestBytes: cfg.MaxRequestBytes, MaxAnswerBytes: cfg.MaxAnswerBytes,
				QuotaBytes: cfg.QuotaBackendBytes, BodyTimeout: cfg.RequestBodyTimeout},
			AuthGuest: guest, ClientCertAuth: cfg.ClientCertAuth}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       idleTimeout,
		// The request line (the URL: path and query string) is bounded
		// by --max-request-bytes, which the handler checks with a v2
		// error; past it and headerSlack more, Go's server refuses the
		// request itself (431) without reading further.
		MaxHeaderBytes: cfg.MaxRequestBytes + headerSlack,
		BaseContext:    func(net.Listener) context.Context { return base },
	}
	srv.RegisterOnShutdown(endRequests)
	srv.ErrorLog = httpErrorLog(log, "client")
	log.Info().Str("client-url", cfg.ListenClientURLs).Str("data-dir", cfg.DataDir).
		Str("member-id", fmt.Sprintf("%x", member.ID())).Str("cluster-id", fmt.Sprintf("%x", member.ClusterID())).Msg("serving the v2 keys API")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case err = <-errc:
	case <-member.Done():
		err = member.Err()
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, context.DeadlineExceeded) && err == nil {
		err = serr
	}
	if serr := member.Stop(); serr != nil && !errors.Is(err, serr) {
		err = errors.Join(err, serr)
	}
	return err
}
