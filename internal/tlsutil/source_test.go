package tlsutil

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/internal/tlsutil/tlstest"
)

// syncBuffer is a log sink the server goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serve accepts TLS connections with cfg on loopback; each one that
// completes its handshake is answered "ok" and the client certificate's
// serial (if any) is sent on the channel.
func serve(t *testing.T, cfg *tls.Config) (addr string, clientSerials <-chan string) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	serials := make(chan string, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() != nil {
					return
				}
				serial := ""
				if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
					serial = pc[0].SerialNumber.Text(16)
				}
				if _, err := tc.Write([]byte("ok")); err == nil {
					serials <- serial
				}
			}()
		}
	}()
	return ln.Addr().String(), serials
}

// talk connects with cfg and reads the server's "ok": it returns the
// server certificate's serial, or the error of the handshake or of the
// read (under TLS 1.3 a client learns that its certificate was refused
// only when it reads).
func talk(addr string, cfg *tls.Config) (string, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return "", err
	}
	return readOK(c.(*tls.Conn))
}

func readOK(c *tls.Conn) (string, error) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

func serialOf(l *tlstest.Leaf) string { return l.Cert.SerialNumber.Text(16) }

func clientTo(pool *x509.CertPool, certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: pool, Certificates: certs, ServerName: "127.0.0.1"}
}

// A server's certificate is replaced when the files change (Check), and
// the next handshake presents the new one; the connection made before is
// not disturbed.
func TestServerCertificateReload(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	first := ca.Issue(t, "server", tlstest.Server, "127.0.0.1")
	certFile, keyFile := first.Write(t, dir, "server")
	s, err := New("client", Files{CertFile: certFile, KeyFile: keyFile}, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, s.ServerConfig())
	if got, err := talk(addr, clientTo(ca.Pool())); err != nil || got != serialOf(first) {
		t.Fatalf("first handshake: serial %s, %v; want %s", got, err, serialOf(first))
	}
	if tried, err := s.Check(); tried || err != nil {
		t.Fatalf("Check with nothing changed: %v %v", tried, err)
	}
	second := ca.Issue(t, "server", tlstest.Server, "127.0.0.1")
	second.WriteOver(t, certFile, keyFile)
	if tried, err := s.Check(); !tried || err != nil {
		t.Fatalf("Check after the files changed: tried %v, %v", tried, err)
	}
	if got, err := talk(addr, clientTo(ca.Pool())); err != nil || got != serialOf(second) {
		t.Fatalf("after reload: serial %s, %v; want %s", got, err, serialOf(second))
	}
	// Reload reads the files whether or not they changed.
	third := ca.Issue(t, "server", tlstest.Server, "127.0.0.1")
	third.WriteOver(t, certFile, keyFile)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, err := talk(addr, clientTo(ca.Pool())); err != nil || got != serialOf(third) {
		t.Fatalf("after Reload: serial %s, %v; want %s", got, err, serialOf(third))
	}
}

// Watch notices a change by itself.
func TestWatchReloads(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	certFile, keyFile := ca.Issue(t, "server", tlstest.Server, "127.0.0.1").Write(t, dir, "server")
	s, err := New("client", Files{CertFile: certFile, KeyFile: keyFile}, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Watch(ctx, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	next := ca.Issue(t, "server", tlstest.Server, "127.0.0.1")
	next.WriteOver(t, certFile, keyFile)
	deadline := time.Now().Add(10 * time.Second)
	for s.Certificate().Leaf.SerialNumber.Cmp(next.Cert.SerialNumber) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not load the new certificate")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A reload that fails (a file that does not parse, a key that does not
// match, a file gone) keeps serving the old certificate, logs the error
// naming the file and never the key, and is not retried until a file
// changes again.
func TestFailedReloadKeepsTheOldCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	first := ca.Issue(t, "server", tlstest.Server, "127.0.0.1")
	certFile, keyFile := first.Write(t, dir, "server")
	var logs syncBuffer
	s, err := New("client", Files{CertFile: certFile, KeyFile: keyFile}, Options{}, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, s.ServerConfig())
	other := ca.Issue(t, "server", tlstest.Server, "127.0.0.1")
	for _, tc := range []struct {
		name  string
		spoil func()
		want  string
	}{
		{"garbage certificate", func() {
			if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, certFile},
		{"key of another certificate", func() {
			if os.WriteFile(certFile, first.CertPEM, 0o600) != nil || os.WriteFile(keyFile, other.KeyPEM, 0o600) != nil {
				t.Fatal("writing")
			}
		}, keyFile},
		{"certificate removed", func() { os.Remove(certFile) }, certFile},
	} {
		tc.spoil()
		tried, err := s.Check()
		if !tried || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: Check: tried %v, %v; want an error naming %s", tc.name, tried, err, tc.want)
		}
		if got, err := talk(addr, clientTo(ca.Pool())); err != nil || got != serialOf(first) {
			t.Fatalf("%s: serving serial %s, %v; want the old %s", tc.name, got, err, serialOf(first))
		}
		if tried, err := s.Check(); tried || err != nil {
			t.Fatalf("%s: Check again with nothing changed: tried %v, %v", tc.name, tried, err)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "reloading TLS files failed") || strings.Contains(out, "PRIVATE KEY") ||
		strings.Contains(out, string(first.KeyPEM[30:60])) {
		t.Fatalf("logs:\n%s", out)
	}
	// Fixed: the next change loads.
	other.WriteOver(t, certFile, keyFile)
	if tried, err := s.Check(); !tried || err != nil {
		t.Fatalf("Check after the fix: %v %v", tried, err)
	}
	if got, err := talk(addr, clientTo(ca.Pool())); err != nil || got != serialOf(other) {
		t.Fatalf("after the fix: serial %s, %v", got, err)
	}
}

// New refuses files it cannot load, naming them.
func TestNewNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	certFile, keyFile := ca.Issue(t, "s", tlstest.Server).Write(t, dir, "s")
	_, otherKey := ca.Issue(t, "s", tlstest.Server).Write(t, dir, "other")
	caFile := ca.WriteCA(t, dir, "ca.crt")
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("-----BEGIN NOTHING-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		files Files
		want  string
	}{
		{Files{CertFile: missing, KeyFile: keyFile}, missing},
		{Files{CertFile: certFile, KeyFile: missing}, missing},
		{Files{CertFile: certFile, KeyFile: otherKey}, otherKey},
		{Files{CertFile: empty, KeyFile: keyFile}, empty},
		{Files{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: missing}, missing},
		{Files{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: empty}, empty},
		{Files{CertFile: certFile}, "go together"},
	} {
		if _, err := New("client", tc.files, Options{}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.files, err, tc.want)
		}
	}
	if _, err := New("client", Files{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile}, Options{}, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
}

// With ClientCertAuth, a client needs a certificate from the trusted CA;
// replacing the trusted CA file swaps the pool for new handshakes.
func TestClientCertAuthAndPoolSwap(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := tlstest.NewCA(t, "ca1"), tlstest.NewCA(t, "ca2")
	certFile, keyFile := ca1.Issue(t, "server", tlstest.Server, "127.0.0.1").Write(t, dir, "server")
	caFile := ca1.WriteCA(t, dir, "ca.crt")
	s, err := New("client", Files{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile}, Options{ClientCertAuth: true}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, s.ServerConfig())
	fromCA1 := ca1.Issue(t, "alice", tlstest.Client).TLSCertificate(t)
	fromCA2 := ca2.Issue(t, "mallory", tlstest.Client).TLSCertificate(t)
	check := func(what string, cfg *tls.Config, ok bool) {
		t.Helper()
		_, err := talk(addr, cfg)
		if (err == nil) != ok {
			t.Fatalf("%s: %v, want success %v", what, err, ok)
		}
	}
	check("no client certificate", clientTo(ca1.Pool()), false)
	check("certificate of another CA", clientTo(ca1.Pool(), fromCA2), false)
	check("certificate of the trusted CA", clientTo(ca1.Pool(), fromCA1), true)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := clientTo(ca1.Pool())
		cfg.MaxVersion = v
		check("no certificate, version "+tls.VersionName(v), cfg, false)
	}

	ca2.WriteCA(t, dir, "ca.crt")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	check("the old CA's certificate after the swap", clientTo(ca1.Pool(), fromCA1), false)
	check("the new CA's certificate after the swap", clientTo(ca1.Pool(), fromCA2), true)
}

// AllowedCN: the server refuses a verified client certificate with
// another CommonName, and a client refuses such a server.
func TestAllowedCN(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	caFile := ca.WriteCA(t, dir, "ca.crt")
	certFile, keyFile := ca.Issue(t, "member", tlstest.Peer, "127.0.0.1").Write(t, dir, "member")
	opts := Options{ClientCertAuth: true, AllowedCN: "member"}
	s, err := New("peer", Files{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile}, opts, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, s.ServerConfig())
	if _, err := talk(addr, clientTo(ca.Pool(), ca.Issue(t, "member", tlstest.Client).TLSCertificate(t))); err != nil {
		t.Fatalf("the allowed CN: %v", err)
	}
	if _, err := talk(addr, clientTo(ca.Pool(), ca.Issue(t, "intruder", tlstest.Client).TLSCertificate(t))); err == nil {
		t.Fatal("another CN from the same CA was accepted")
	}

	// The client side: a server whose certificate has another CN.
	wrongCert, wrongKey := ca.Issue(t, "impostor", tlstest.Server, "127.0.0.1").Write(t, dir, "impostor")
	impostor, err := New("peer", Files{CertFile: wrongCert, KeyFile: wrongKey, TrustedCAFile: caFile}, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := serve(t, impostor.ServerConfig())
	dial := s.DialTLSContext(5 * time.Second)
	c, err := dial(context.Background(), "tcp", bad)
	if err == nil {
		c.Close()
		t.Fatal("dialled a server whose certificate has another CommonName")
	}
	if !strings.Contains(err.Error(), `want a certificate with CommonName "member", got CommonName "impostor"`) {
		t.Fatalf("error: %v", err)
	}
	c, err = dial(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial the allowed CN: %v", err)
	}
	if _, err := readOK(c.(*tls.Conn)); err != nil {
		t.Fatal(err)
	}
}

// DialTLSContext verifies the server against the current pool and by the
// address's host, and presents the current certificate; both follow a
// reload without a new dialer.
func TestDialFollowsReload(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := tlstest.NewCA(t, "ca1"), tlstest.NewCA(t, "ca2")
	server := ca1.Issue(t, "server", tlstest.Server, "127.0.0.1")
	srvCfg := &tls.Config{Certificates: []tls.Certificate{server.TLSCertificate(t)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca1.Pool()}
	addr, serials := serve(t, srvCfg)

	first := ca1.Issue(t, "me", tlstest.Client)
	certFile, keyFile := first.Write(t, dir, "me")
	caFile := ca2.WriteCA(t, dir, "ca.crt") // not the server's CA yet
	s, err := New("peer", Files{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile}, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	dial := s.DialTLSContext(5 * time.Second)
	if c, err := dial(context.Background(), "tcp", addr); err == nil {
		c.Close()
		t.Fatal("verified a server of a CA not trusted")
	}
	ca1.WriteCA(t, dir, "ca.crt")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	get := func() string {
		t.Helper()
		c, err := dial(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readOK(c.(*tls.Conn)); err != nil {
			t.Fatal(err)
		}
		return <-serials
	}
	if got := get(); got != serialOf(first) {
		t.Fatalf("client serial %s, want %s", got, serialOf(first))
	}
	second := ca1.Issue(t, "me", tlstest.Client)
	second.WriteOver(t, certFile, keyFile)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != serialOf(second) {
		t.Fatalf("client serial after reload %s, want %s", got, serialOf(second))
	}
	// The name checked is the address's host: the certificate names
	// 127.0.0.1, not localhost.
	_, port, _ := net.SplitHostPort(addr)
	if c, err := dial(context.Background(), "tcp", net.JoinHostPort("localhost", port)); err == nil {
		c.Close()
		t.Fatal("a certificate for 127.0.0.1 was accepted for localhost")
	} else if !errors.As(err, new(*tls.CertificateVerificationError)) {
		t.Logf("dial localhost: %v", err) // e.g. localhost resolving to ::1 only
	}
}

// InsecureSkipVerify (auto TLS) connects to a self-signed server.
func TestSelfCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fixtures", "client")
	files, made, err := SelfCert(dir, []string{"127.0.0.1", "localhost", "127.0.0.1"})
	if err != nil || !made {
		t.Fatal(made, err)
	}
	fi, err := os.Stat(files.KeyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	s, err := New("client", files, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	leaf := s.Certificate().Leaf
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" {
		t.Fatalf("SANs: %v %v", leaf.IPAddresses, leaf.DNSNames)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("key algorithm %v", leaf.PublicKeyAlgorithm)
	}
	again, made, err := SelfCert(dir, []string{"10.0.0.1"})
	if err != nil || made || again != files {
		t.Fatalf("second call: %+v %v %v", again, made, err)
	}
	s2, err := New("client", again, Options{}, zerolog.Nop())
	if err != nil || s2.Certificate().Leaf.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("the certificate was not kept: %v", err)
	}
	addr, _ := serve(t, s.ServerConfig())
	client, err := New("client", Files{}, Options{InsecureSkipVerify: true}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := talk(addr, client.ClientConfig()); err != nil {
		t.Fatalf("auto TLS client: %v", err)
	}
	if _, err := talk(addr, &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("a verifying client accepted the self-signed certificate")
	}
}

// The policy reaches both sides: a client that offers only TLS 1.2
// cannot talk to a TLS1.3 minimum, and a server limited to one suite
// negotiates it.
func TestPolicy(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	certFile, keyFile := ca.Issue(t, "server", tlstest.Server, "127.0.0.1").Write(t, dir, "server")
	s13, err := New("client", Files{CertFile: certFile, KeyFile: keyFile}, Options{MinVersion: tls.VersionTLS13}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, s13.ServerConfig())
	cfg := clientTo(ca.Pool())
	cfg.MaxVersion = tls.VersionTLS12
	if _, err := talk(addr, cfg); err == nil {
		t.Fatal("TLS 1.2 accepted by a TLS1.3 minimum")
	}
	suites, err := ParseCipherSuites("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305")
	if err != nil {
		t.Fatal(err)
	}
	s12, err := New("client", Files{CertFile: certFile, KeyFile: keyFile}, Options{CipherSuites: suites}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	addr, _ = serve(t, s12.ServerConfig())
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.ConnectionState().CipherSuite; got != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Fatalf("negotiated %s", tls.CipherSuiteName(got))
	}
}

func TestParseCipherSuites(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []uint16
		err  string
	}{
		{in: "", want: nil},
		{in: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
		{in: " TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 , TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
			want: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}},
		{in: "TLS_RSA_WITH_RC4_128_SHA", err: "insecure"},
		{in: "TLS_AES_128_GCM_SHA256", err: "TLS 1.3 suite"},
		{in: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,bogus", err: `unknown cipher suite "bogus"; want some of TLS_`},
		{in: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,", err: `unknown cipher suite ""`},
	} {
		got, err := ParseCipherSuites(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || !equal(got, tc.want)):
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
	for _, name := range CipherSuiteNames() {
		if _, err := ParseCipherSuites(name); err != nil {
			t.Errorf("listed name %s refused: %v", name, err)
		}
	}
}

func equal(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseMinVersion(t *testing.T) {
	for in, want := range map[string]uint16{"": tls.VersionTLS12, "TLS1.2": tls.VersionTLS12, "TLS1.3": tls.VersionTLS13} {
		if got, err := ParseMinVersion(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"TLS1.0", "TLS1.1", "tls1.2", "1.3"} {
		if _, err := ParseMinVersion(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// The tools' flags: nothing given is Go's defaults; --cert without --key
// is refused; the files are loaded.
func TestClientFlags(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	certFile, keyFile := ca.Issue(t, "me", tlstest.Client).Write(t, dir, "me")
	caFile := ca.WriteCA(t, dir, "ca.crt")
	if cfg, err := (&ClientFlags{}).Config(); cfg != nil || err != nil {
		t.Fatalf("no flags: %v %v", cfg, err)
	}
	if _, err := (&ClientFlags{Cert: certFile}).Config(); err == nil || !strings.Contains(err.Error(), "--cert and --key") {
		t.Fatalf("--cert alone: %v", err)
	}
	if _, err := (&ClientFlags{CACert: filepath.Join(dir, "nope")}).Config(); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("missing --cacert: %v", err)
	}
	cfg, err := (&ClientFlags{CACert: caFile, Cert: certFile, Key: keyFile}).Config()
	if err != nil || cfg.RootCAs == nil || cfg.GetClientCertificate == nil {
		t.Fatalf("%+v %v", cfg, err)
	}
}
