package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/wal"
)

// Bounds of the HTTP servers: idle keep-alive connections, the headers
// of a request besides its URL, and a peer request's headers.
const (
	idleTimeout        = 2 * time.Minute
	headerSlack        = 64 << 10
	peerMaxHeaderBytes = 64 << 10
)

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
		id, cid, initial, err = server.JoinInfo(members, cfg.InitialAdvertisePeerURLs, mtls.peerClient(5*time.Second))
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
		id, cid, initial = server.Identities(members, members[cfg.Name], token)
	}
	// Deliberate bugs and failpoints, for proving that the fault-injection
	// checkers catch what they look for (config.Faults). Never in production.
	faults := cfg.Faults
	for _, w := range faults.Warnings() {
		log.Warn().Msg(w)
	}
	var walFS wal.FS
	if faults.WALFsyncDelay > 0 {
		walFS = wal.SlowSync(wal.OS, faults.WALFsyncDelay)
	}
	if faults.WALFsyncDelayFile != "" {
		walFS = wal.SlowSyncFromFile(wal.OS, faults.WALFsyncDelayFile)
	}
	maxWALs := cfg.MaxWALs
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	member, err := server.StartMember(server.MemberConfig{
		Metrics: reg, Name: cfg.Name,
		PeerURLs: []string{cfg.InitialAdvertisePeerURLs}, ClientURLs: config.URLList(cfg.AdvertiseClientURLs), PeerDialTLS: mtls.peerDial(),
		ID: id, ClusterID: cid, InitialMembers: initial, Join: join, DataDir: cfg.DataDir, WALDir: cfg.WALDir,
		UnsafeLocalReads: faults.UnsafeLocalReads, UnsafeSkipProposalCheck: faults.UnsafeSkipProposalCheck, WALFS: walFS,
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
	go trimWhenIdle(tlsCtx)
	// Requests' contexts end when shutdown begins, so open watches return
	// at once (the client sees its 200 end with no event and re-watches)
	// instead of holding shutdown until its deadline.
	base, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	guest := server.GuestFull
	if cfg.AuthGuest == "none" {
		guest = server.GuestNone
	}
	var handler http.Handler = httpapi.NewHandler(httpapi.Config{Backend: member, Logger: log, CORS: cfg.CORSOrigins(), Metrics: reg,
		UnsafeLockGrant: faults.UnsafeLockGrant, Limits: httpapi.Limits{MaxKeyBytes: cfg.MaxKeyBytes, MaxKeyDepth: cfg.MaxKeyDepth,
			MaxValueBytes: cfg.MaxValueBytes, MaxRequestBytes: cfg.MaxRequestBytes, MaxAnswerBytes: cfg.MaxAnswerBytes,
			QuotaBytes: cfg.QuotaBackendBytes, BodyTimeout: cfg.RequestBodyTimeout},
		AuthGuest: guest, ClientCertAuth: cfg.ClientCertAuth})
	if cfg.EnablePprof {
		handler = withPprof(handler)
		log.Warn().Msg("serving the Go profiler under /debug/pprof/ on the client URLs (--enable-pprof)")
	}
	srv := &http.Server{
		Handler:           handler,
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

// withPprof serves Go's profiler under /debug/pprof/ beside api
// (--enable-pprof, etcd's flag).
func withPprof(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", api)
	return mux
}
