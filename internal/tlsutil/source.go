package tlsutil

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// DefaultPollInterval is how often Watch looks at the files by default.
const DefaultPollInterval = 3 * time.Second

// Files names what a Source loads. CertFile and KeyFile go together; a
// client may have neither. TrustedCAFile, if set, is the bundle the other
// side's certificate is verified against (else a client uses the system's
// roots, and a server verifies no client certificate).
type Files struct {
	CertFile, KeyFile, TrustedCAFile string
}

// Options is the policy of the configs a Source builds.
type Options struct {
	// MinVersion is the lowest TLS version spoken (0: TLS 1.2).
	MinVersion uint16
	// CipherSuites are the TLS 1.2 suites allowed (nil: Go's defaults).
	CipherSuites []uint16
	// ClientCertAuth: a server requires a client certificate signed by
	// the trusted CA (tls.RequireAndVerifyClientCert).
	ClientCertAuth bool
	// AllowedCN: the other side's verified certificate must have this
	// CommonName (both as server and as client).
	AllowedCN string
	// InsecureSkipVerify: a client does not verify the server's
	// certificate (auto TLS: encryption without authentication).
	InsecureSkipVerify bool
}

// Source holds a certificate and a CA pool loaded from Files and hands
// out TLS configs that always use the current ones. It is safe for
// concurrent use.
type Source struct {
	name  string // "client" or "peer": the logs' word for it
	files Files
	opts  Options
	log   zerolog.Logger

	cert   atomic.Pointer[tls.Certificate] // nil: no certificate
	pool   atomic.Pointer[x509.CertPool]   // nil: no trusted CA file
	server atomic.Pointer[tls.Config]      // the config GetConfigForClient returns

	mu     sync.Mutex // one reload at a time
	stamps []stamp    // of the files at the last reload attempt
}

// stamp is what Watch compares: a file's size and modification time (or
// that it could not be looked at).
type stamp struct {
	size    int64
	mtime   time.Time
	missing bool
}

// New loads files and returns a Source, or an error naming the file that
// could not be loaded. name labels its log lines ("client", "peer").
func New(name string, files Files, opts Options, log zerolog.Logger) (*Source, error) {
	if (files.CertFile == "") != (files.KeyFile == "") {
		return nil, fmt.Errorf("tlsutil: %s certificate: a certificate file and a key file go together (got %q and %q)", name, files.CertFile, files.KeyFile)
	}
	if opts.MinVersion == 0 {
		opts.MinVersion = tls.VersionTLS12
	}
	s := &Source{name: name, files: files, opts: opts, log: log.With().Str("tls", name).Logger()}
	s.stamps = s.stat()
	cert, pool, err := load(files)
	if err != nil {
		return nil, err
	}
	s.install(cert, pool)
	return s, nil
}

// Certificate is the current certificate (nil without one).
func (s *Source) Certificate() *tls.Certificate { return s.cert.Load() }

// Reload reads the files again and, if everything loads, makes them
// current. On failure the old certificate and pool stay, and the error
// (naming the file) is logged and returned.
func (s *Source) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *Source) reloadLocked() error {
	s.stamps = s.stat()
	cert, pool, err := load(s.files)
	if err != nil {
		s.log.Error().Err(err).Msg("reloading TLS files failed; keeping the certificate and CA bundle loaded before")
		return err
	}
	s.install(cert, pool)
	ev := s.log.Info()
	if cert != nil && cert.Leaf != nil {
		ev = ev.Str("serial", cert.Leaf.SerialNumber.Text(16)).Str("subject", cert.Leaf.Subject.CommonName).
			Time("not-after", cert.Leaf.NotAfter)
	}
	ev.Str("cert-file", s.files.CertFile).Str("trusted-ca-file", s.files.TrustedCAFile).Msg("reloaded TLS files")
	return nil
}

// Check reloads if any file's size or modification time changed since
// the last attempt; it reports whether it tried. A failed attempt is not
// repeated until a file changes again.
func (s *Source) Check() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stat()
	same := len(now) == len(s.stamps)
	for i := 0; same && i < len(now); i++ {
		same = now[i] == s.stamps[i]
	}
	if same {
		return false, nil
	}
	return true, s.reloadLocked()
}

// Watch calls Check every interval (DefaultPollInterval when 0) until ctx
// ends.
func (s *Source) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_, _ = s.Check() // a failure is logged
		}
	}
}

func (s *Source) stat() []stamp {
	var out []stamp
	for _, f := range []string{s.files.CertFile, s.files.KeyFile, s.files.TrustedCAFile} {
		if f == "" {
			continue
		}
		fi, err := os.Stat(f)
		if err != nil {
			out = append(out, stamp{missing: true})
			continue
		}
		out = append(out, stamp{size: fi.Size(), mtime: fi.ModTime()})
	}
	return out
}

// install makes cert and pool current, with a server config around them.
func (s *Source) install(cert *tls.Certificate, pool *x509.CertPool) {
	s.cert.Store(cert)
	s.pool.Store(pool)
	cfg := &tls.Config{
		MinVersion:     s.opts.MinVersion,
		CipherSuites:   s.opts.CipherSuites,
		GetCertificate: s.getCertificate,
		ClientCAs:      pool,
		NextProtos:     []string{"http/1.1"},
	}
	if s.opts.ClientCertAuth {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if s.opts.AllowedCN != "" {
		cfg.VerifyConnection = s.checkCN
	}
	// Fresh ticket keys: no session made before this reload resumes
	// after it, so every client was verified against this pool.
	var key [32]byte
	if _, err := rand.Read(key[:]); err == nil {
		cfg.SetSessionTicketKeys([][32]byte{key})
	} else {
		cfg.SessionTicketsDisabled = true
	}
	s.server.Store(cfg)
}

func (s *Source) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.cert.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("tlsutil: no certificate to serve")
}

func (s *Source) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if c := s.cert.Load(); c != nil {
		return c, nil
	}
	return &tls.Certificate{}, nil // none: the server decides
}

// checkCN refuses a connection whose other side's verified certificate
// lacks the allowed CommonName.
func (s *Source) checkCN(cs tls.ConnectionState) error {
	for _, chain := range cs.VerifiedChains {
		if len(chain) > 0 && chain[0].Subject.CommonName == s.opts.AllowedCN {
			return nil
		}
	}
	got := "no verified certificate"
	if len(cs.PeerCertificates) > 0 {
		got = fmt.Sprintf("CommonName %q", cs.PeerCertificates[0].Subject.CommonName)
	}
	return fmt.Errorf("tlsutil: %s: want a certificate with CommonName %q, got %s", s.name, s.opts.AllowedCN, got)
}

// ServerConfig is the config of a listener: every handshake gets the
// config of the latest reload (GetConfigForClient), which serves the
// current certificate and verifies client certificates against the
// current pool.
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         s.opts.MinVersion,
		CipherSuites:       s.opts.CipherSuites,
		GetCertificate:     s.getCertificate,
		NextProtos:         []string{"http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.server.Load(), nil },
	}
}

// clientConfig is a config for connections to serverName, with the
// current pool; the certificate is fetched at each handshake.
func (s *Source) clientConfig(serverName string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:           s.opts.MinVersion,
		CipherSuites:         s.opts.CipherSuites,
		ServerName:           serverName,
		RootCAs:              s.pool.Load(),
		GetClientCertificate: s.getClientCertificate,
		InsecureSkipVerify:   s.opts.InsecureSkipVerify,
		NextProtos:           []string{"http/1.1"},
	}
	if s.opts.AllowedCN != "" && !s.opts.InsecureSkipVerify {
		cfg.VerifyConnection = s.checkCN
	}
	return cfg
}

// ClientConfig is a client config with the pool as it is now (the
// certificate is fetched at each handshake), for http.Transport's
// TLSClientConfig in short-lived tools; the transport fills in the server
// name. Long-lived clients use DialTLSContext, which follows reloads.
func (s *Source) ClientConfig() *tls.Config { return s.clientConfig("") }

// ClientConfigFor is a client config for a connection to serverName made
// now, with the pool as it is now and the certificate fetched at the
// handshake. A long-lived client that dials by itself (the proxy, whose
// connections carry deadlines) asks for one at every connection, and so
// follows reloads.
func (s *Source) ClientConfigFor(serverName string) *tls.Config { return s.clientConfig(serverName) }

// DialTLSContext is an http.Transport's DialTLSContext: it connects to
// addr within timeout (the handshake included) and verifies the server as
// addr's host, with the certificate and pool current at the moment.
func (s *Source) DialTLSContext(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}, Config: s.clientConfig(host)}
		return d.DialContext(ctx, network, addr)
	}
}

// load reads the certificate, its key and the CA bundle. Errors name the
// file, never its content.
func load(f Files) (*tls.Certificate, *x509.CertPool, error) {
	var cert *tls.Certificate
	if f.CertFile != "" {
		certPEM, err := os.ReadFile(f.CertFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tlsutil: certificate: %w", err)
		}
		keyPEM, err := os.ReadFile(f.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tlsutil: key: %w", err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		clear(keyPEM)
		if err != nil {
			return nil, nil, fmt.Errorf("tlsutil: certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)
		}
		cert = &c
	}
	var pool *x509.CertPool
	if f.TrustedCAFile != "" {
		var err error
		if pool, err = loadPool(f.TrustedCAFile); err != nil {
			return nil, nil, err
		}
	}
	return cert, pool, nil
}

// loadPool reads a bundle of PEM certificates; a file with none, or with
// one that does not parse, is an error.
func loadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: trusted CA: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlsutil: trusted CA %s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("tlsutil: trusted CA %s: no PEM certificate in it", file)
	}
	return pool, nil
}
