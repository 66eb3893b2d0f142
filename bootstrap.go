package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/proxy"
	"github.com/cairnkv/cairn/server"
)

// errFallBackToProxy: discovery found the cluster full and
// --discovery-fallback is proxy.
var errFallBackToProxy = errors.New("discovery: cluster is full; falling back to proxy")

// isProxyDir reports whether the data directory belongs to a proxy (it
// holds proxy/, as etcd's does); such a directory starts a proxy again
// whatever --proxy says, as etcd's does.
func isProxyDir(cfg config.Config) (bool, error) {
	_, err := os.Stat(filepath.Join(cfg.DataDir, "proxy"))
	proxyDir := err == nil
	member := server.Initialized(cfg.DataDir, cfg.WALDir)
	if proxyDir && member {
		return false, fmt.Errorf("invalid data directory %s: it holds both a member's state and proxy/", cfg.DataDir)
	}
	if member && cfg.ProxyMode() {
		return false, fmt.Errorf("--proxy %s: the data directory %s holds a member's state; give the proxy its own", cfg.Proxy, cfg.DataDir)
	}
	return proxyDir, nil
}

// discoverCluster finds the initial cluster of a new member by discovery
// (a discovery URL or DNS SRV records) and the token its IDs derive from
// (the discovery URL, or --initial-cluster-token for SRV, as etcd).
func discoverCluster(cfg config.Config, log zerolog.Logger) (members map[string]string, token string, err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	self := cfg.InitialAdvertisePeerURLs
	var cluster string
	if cfg.Discovery != "" {
		token = cfg.Discovery
		dcfg, err := discoveryConfig(cfg, log)
		if err != nil {
			return nil, "", err
		}
		dcfg.ID = server.MemberIDOf([]string{self}, token)
		dcfg.Self = cfg.Name + "=" + self
		log.Info().Str("discovery-url", cfg.Discovery).Str("member-id", fmt.Sprintf("%x", dcfg.ID)).Msg("bootstrapping through discovery")
		cluster, err = discovery.Join(ctx, dcfg)
		if errors.Is(err, discovery.ErrFullCluster) && cfg.DiscoveryFallback == "proxy" {
			log.Warn().Err(err).Msg("discovery cluster is full, falling back to proxy")
			return nil, "", errFallBackToProxy
		}
		if err != nil {
			if errors.Is(err, discovery.ErrDuplicateID) {
				err = fmt.Errorf("%w: this member's ID is registered with another value (name and peer URL); use a new discovery token if the previous bootstrap failed", err)
			} else {
				err = fmt.Errorf("%w; discovery token %s was used, but failed to bootstrap the cluster: generate a new one and try again", err, cfg.Discovery)
			}
			return nil, "", err
		}
	} else {
		token = cfg.InitialClusterToken
		cluster, err = discovery.SRVCluster(ctx, srvConfig(cfg, true))
		if err != nil {
			return nil, "", fmt.Errorf("discovery-srv: %w", err)
		}
	}
	log.Info().Str("initial-cluster", cluster).Msg("found the initial cluster by discovery")
	members, err = (&config.Config{InitialCluster: cluster}).Members()
	if err != nil {
		return nil, "", fmt.Errorf("the cluster found by discovery, %q: %w", cluster, err)
	}
	if got, ok := members[cfg.Name]; !ok {
		return nil, "", fmt.Errorf("the cluster found by discovery, %q, has no member named %q whose peer URL is %s", cluster, cfg.Name, self)
	} else if got != self {
		return nil, "", fmt.Errorf("discovery-srv: the SRV record of this member names %s, but initial-advertise-peer-urls is %s: advertise the URL the record names", got, self)
	}
	return members, token, nil
}

func discoveryConfig(cfg config.Config, log zerolog.Logger) (discovery.Config, error) {
	dcfg := discovery.Config{URL: cfg.Discovery, Logger: log}
	if cfg.DiscoveryProxy != "" {
		u, err := config.DiscoveryProxyURL(cfg.DiscoveryProxy)
		if err != nil {
			return dcfg, err
		}
		dcfg.Proxy = u
	}
	return dcfg, nil
}

func srvConfig(cfg config.Config, member bool) discovery.SRVConfig {
	s := discovery.SRVConfig{Domain: cfg.DiscoverySRV, ServiceName: cfg.DiscoverySRVName}
	if member {
		s.Name, s.AdvertisePeerURLs = cfg.Name, []string{cfg.InitialAdvertisePeerURLs}
	}
	if cfg.DiscoverySRVResolver != "" {
		s.Resolver = discovery.NewResolver(cfg.DiscoverySRVResolver)
	}
	return s
}

// proxyPeerURLs: the peer URLs a new proxy asks for the member list:
// from discovery, DNS SRV records or initial-cluster, in etcd's order.
// A proxy that has run before uses its cluster file instead.
func proxyPeerURLs(ctx context.Context, cfg config.Config, log zerolog.Logger) ([]string, error) {
	if _, err := os.Stat(filepath.Join(cfg.DataDir, filepath.FromSlash(proxy.ClusterFile))); err == nil {
		return nil, nil
	}
	var cluster string
	var err error
	switch {
	case cfg.Discovery != "":
		dcfg, derr := discoveryConfig(cfg, log)
		if derr != nil {
			return nil, derr
		}
		cluster, err = discovery.Get(ctx, dcfg)
	case cfg.DiscoverySRV != "":
		cluster, err = discovery.SRVCluster(ctx, srvConfig(cfg, false))
	default:
		cluster = cfg.InitialCluster
	}
	if err != nil {
		return nil, err
	}
	members, err := (&config.Config{InitialCluster: cluster}).Members()
	if err != nil {
		return nil, err
	}
	var urls []string
	for _, u := range members {
		urls = append(urls, u)
	}
	slices.Sort(urls)
	return urls, nil
}

// runProxy serves as a proxy (--proxy on|readonly, a proxy data
// directory, or a member that discovery found surplus) until SIGTERM: on
// every listen-client-url, https ones with the member's TLS (mtls, whose
// files are reloaded on change and on SIGHUP, as a member's).
func runProxy(cfg config.Config, mtls memberTLS, hup <-chan os.Signal, log zerolog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log = log.With().Str("mode", "proxy").Logger()
	peerURLs, err := proxyPeerURLs(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("proxy: finding the cluster: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	p, err := proxy.New(proxy.Config{
		ReadOnly: cfg.Proxy == "readonly", PeerURLs: peerURLs, DataDir: cfg.DataDir,
		RefreshInterval: ms(cfg.ProxyRefreshInterval), FailureWait: ms(cfg.ProxyFailureWait),
		DialTimeout: ms(cfg.ProxyDialTimeout), ReadTimeout: ms(cfg.ProxyReadTimeout), WriteTimeout: ms(cfg.ProxyWriteTimeout),
		ClientTLS: mtls.toMembers, PeerTLS: mtls.toPeers(),
		Logger: log, Metrics: reg,
	})
	if err != nil {
		return err
	}
	defer p.Close()
	lns, err := listen("listen-client-urls", cfg.ListenClientURLs, mtls.client)
	if err != nil {
		return err
	}
	tlsCtx, stopTLS := context.WithCancel(context.Background())
	defer stopTLS()
	go watchTLS(tlsCtx, hup, log, mtls.sources())
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idleTimeout,
		BaseContext: func(net.Listener) context.Context { return ctx }, ErrorLog: httpErrorLog(log, "client")}
	log.Info().Str("client-url", cfg.ListenClientURLs).Str("data-dir", cfg.DataDir).Str("proxy", cfg.Proxy).
		Strs("endpoints", p.Endpoints()).Msg("serving the client API as a proxy")
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil && !errors.Is(serr, context.DeadlineExceeded) {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
