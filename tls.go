package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/internal/tlsutil"
)

// peerDialTimeout bounds connecting to a peer, the TLS handshake included.
const peerDialTimeout = 5 * time.Second

// memberTLS is a member's TLS: the certificates of its client side and of
// its peer side (nil where none is used). A proxy has the same two and
// dials the members' client URLs with toMembers.
type memberTLS struct {
	client, peer *tlsutil.Source
	// toMembers gives the config of a proxy's connection to a member's
	// https client URL (nil: Go's defaults).
	toMembers func(serverName string) *tls.Config
}

// setupTLS loads the certificates the configuration names, or makes the
// auto TLS ones in the data directory. A file that cannot be loaded stops
// the start, named in the error.
func setupTLS(cfg config.Config, log zerolog.Logger) (memberTLS, error) {
	var m memberTLS
	minVersion, suites, err := cfg.TLSPolicy()
	if err != nil {
		return m, err
	}
	// A proxy also dials the members' client URLs with the client
	// settings, as etcd's does: they count without an https listener.
	dialsMembers := cfg.ProxyMode() && (cfg.CertFile != "" || cfg.TrustedCAFile != "")
	autoClient := false
	if cfg.ServesClientTLS() || dialsMembers {
		files := tlsutil.Files{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.TrustedCAFile}
		if files.CertFile == "" && cfg.ServesClientTLS() { // auto-tls (Validate made sure)
			autoClient = true
			if files, err = autoCert(cfg, "client", cfg.ListenClientURLs, log); err != nil {
				return m, err
			}
			files.TrustedCAFile = cfg.TrustedCAFile
		} else if cfg.AutoTLS {
			log.Warn().Msg("auto-tls ignored: cert-file is set")
		}
		m.client, err = tlsutil.New("client", files, tlsutil.Options{MinVersion: minVersion, CipherSuites: suites,
			ClientCertAuth: cfg.ClientCertRequired()}, log)
		if err != nil {
			return m, fmt.Errorf("client TLS: %w", err)
		}
		if cfg.ClientCertRequired() && strings.Contains(cfg.ListenClientURLs, "http://") {
			log.Warn().Msg("client-cert-auth does not protect the http listen-client-urls: anyone who reaches them is served")
		}
	} else if cfg.CertFile != "" || cfg.AutoTLS || cfg.TrustedCAFile != "" {
		log.Warn().Msg("no listen-client-urls is https: cert-file, key-file, trusted-ca-file and auto-tls are ignored")
	}
	// The peer side also dials: a member with an http peer port may
	// still reach members with https ones, with its certificate.
	if cfg.ServesPeerTLS() || cfg.PeerCertFile != "" || cfg.PeerAutoTLS || cfg.PeerTrustedCAFile != "" {
		files := tlsutil.Files{CertFile: cfg.PeerCertFile, KeyFile: cfg.PeerKeyFile, TrustedCAFile: cfg.PeerTrustedCAFile}
		auto := files.CertFile == "" && cfg.PeerAutoTLS
		if auto {
			if files, err = autoCert(cfg, "peer", cfg.ListenPeerURLs, log); err != nil {
				return m, err
			}
			files.TrustedCAFile = cfg.PeerTrustedCAFile
		} else if cfg.PeerAutoTLS {
			log.Warn().Msg("peer-auto-tls ignored: peer-cert-file is set")
		}
		m.peer, err = tlsutil.New("peer", files, tlsutil.Options{MinVersion: minVersion, CipherSuites: suites,
			ClientCertAuth: cfg.PeerClientCertRequired(), AllowedCN: cfg.PeerCertAllowedCN, InsecureSkipVerify: auto}, log)
		if err != nil {
			return m, fmt.Errorf("peer TLS: %w", err)
		}
		if auto {
			log.Warn().Msg("peer-auto-tls: members do not verify each other's certificates; the peer traffic is encrypted, not authenticated")
		}
	}
	if cfg.ProxyMode() {
		m.toMembers = m.proxyToMembers(cfg, autoClient, minVersion, suites, log)
	}
	return m, nil
}

// proxyToMembers chooses how a proxy reaches https client URLs, as etcd's
// proxy does: with the client settings (cert-file presented, members
// verified against trusted-ca-file, else the system's roots); with none
// of them, with the peer settings; with auto TLS alone, without
// verifying the members (they may be auto TLS members too).
func (m memberTLS) proxyToMembers(cfg config.Config, autoClient bool, minVersion uint16, suites []uint16, log zerolog.Logger) func(string) *tls.Config {
	switch {
	case m.client != nil && !autoClient:
		return m.client.ClientConfigFor
	case m.client != nil && cfg.TrustedCAFile != "":
		// The auto TLS certificate is presented; members are verified.
		return m.client.ClientConfigFor
	case m.peer != nil:
		log.Info().Msg("proxy: no cert-file or trusted-ca-file; reaching https client URLs with the peer TLS settings, as etcd's proxy does")
		return m.peer.ClientConfigFor
	case autoClient:
		log.Warn().Msg("auto-tls: the proxy does not verify the members' certificates on https client URLs; set trusted-ca-file to verify them")
		return func(serverName string) *tls.Config {
			return &tls.Config{MinVersion: minVersion, CipherSuites: suites, ServerName: serverName,
				InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
		}
	}
	return nil
}

// toPeers gives the config of a proxy's connection to an https peer URL
// (the member list): the peer settings, else Go's defaults.
func (m memberTLS) toPeers() func(string) *tls.Config {
	if m.peer == nil {
		return nil
	}
	return m.peer.ClientConfigFor
}

// autoCert makes (or finds, from an earlier start) the self-signed
// certificate of --auto-tls or --peer-auto-tls, for the listen hosts.
func autoCert(cfg config.Config, kind, listenURLs string, log zerolog.Logger) (tlsutil.Files, error) {
	var hosts []string
	urls, _ := config.URLs("", listenURLs) // validated by Load
	for _, u := range urls {
		if !slices.Contains(hosts, u.Hostname()) {
			hosts = append(hosts, u.Hostname())
		}
	}
	dir := filepath.Join(cfg.DataDir, "fixtures", kind)
	files, made, err := tlsutil.SelfCert(dir, hosts)
	if err != nil {
		return files, fmt.Errorf("%s auto TLS: %w", kind, err)
	}
	if made {
		log.Info().Str("cert-file", files.CertFile).Strs("hosts", hosts).Msgf("made a self-signed %s certificate (auto TLS)", kind)
	}
	return files, nil
}

// sources lists the certificates in use.
func (m memberTLS) sources() []*tlsutil.Source {
	var out []*tlsutil.Source
	for _, s := range []*tlsutil.Source{m.client, m.peer} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// peerDial dials https peers with the peer certificate; nil: Go's
// defaults.
func (m memberTLS) peerDial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if m.peer == nil {
		return nil
	}
	return m.peer.DialTLSContext(peerDialTimeout)
}

// peerClient is an HTTP client for peer URLs (joining a cluster).
func (m memberTLS) peerClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialTLSContext: m.peerDial()}}
}

// toolClient is the HTTP client of `cairn health` and `snapshot save`:
// with the TLS the flags ask for (--cacert, --cert, --key,
// --insecure-skip-tls-verify), and timeout per request (0: none).
func toolClient(f *tlsutil.ClientFlags, timeout time.Duration) (*http.Client, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg != nil {
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// listen opens one listener per URL of the setting; https ones speak TLS
// with src's certificate.
func listen(setting, urls string, src *tlsutil.Source) ([]net.Listener, error) {
	parsed, err := config.URLs(setting, urls)
	if err != nil {
		return nil, err
	}
	var lns []net.Listener
	for _, u := range parsed {
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("%s: %w", setting, err)
		}
		if u.Scheme == "https" {
			if src == nil { // Validate and setupTLS make sure it is there
				ln.Close()
				for _, l := range lns {
					l.Close()
				}
				return nil, fmt.Errorf("%s: %s is https but no certificate is configured", setting, u)
			}
			ln = tls.NewListener(ln, src.ServerConfig())
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// watchTLS reloads the certificates when their files change and on
// SIGHUP, until ctx ends.
func watchTLS(ctx context.Context, hup <-chan os.Signal, log zerolog.Logger, srcs []*tlsutil.Source) {
	for _, s := range srcs {
		go s.Watch(ctx, tlsutil.DefaultPollInterval)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if len(srcs) == 0 {
				log.Info().Msg("SIGHUP: no TLS files to reload")
			}
			var errs []error
			for _, s := range srcs {
				errs = append(errs, s.Reload()) // each failure is logged
			}
			if errors.Join(errs...) == nil {
				log.Info().Int("sources", len(srcs)).Msg("SIGHUP: TLS files reloaded")
			}
		}
	}
}

// notifyHUP starts catching SIGHUP (which would otherwise end the
// process): it asks for the certificates to be reloaded.
func notifyHUP() (<-chan os.Signal, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// httpErrorLog sends what net/http logs (TLS handshakes refused,
// connections that failed) to the member's log as JSON lines.
func httpErrorLog(log zerolog.Logger, listener string) *stdlog.Logger {
	return stdlog.New(httpLogWriter{log.With().Str("listener", listener).Logger()}, "", 0)
}

type httpLogWriter struct{ log zerolog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	w.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
