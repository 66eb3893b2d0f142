package proxy

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/internal/tlsutil"
	"github.com/cairnkv/cairn/internal/tlsutil/tlstest"
)

// tlsMember is an https server that requires a client certificate from
// pool's CA and answers with the CommonName it was shown.
func tlsMember(t *testing.T, cert *atomic.Pointer[tls.Certificate], ca *atomic.Pointer[tlstest.CA], h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{Certificates: []tls.Certificate{*cert.Load()}, ClientCAs: ca.Load().Pool(),
				ClientAuth: tls.RequireAndVerifyClientCert}, nil
		},
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// Members and peers on https that require client certificates: the
// proxy reaches both with the configs it is given, presenting its
// certificate; a proxy without them gets nothing through; a CA bundle
// replaced and reloaded in the Source is used by the next connection
// without a new proxy.
func TestTLSMembersAndPeers(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := tlstest.NewCA(t, "ca one"), tlstest.NewCA(t, "ca two")
	var memberCA atomic.Pointer[tlstest.CA]
	memberCA.Store(ca1)
	var memberCert atomic.Pointer[tls.Certificate]
	c := ca1.Issue(t, "member", tlstest.Server, "127.0.0.1").TLSCertificate(t)
	memberCert.Store(&c)
	member := tlsMember(t, &memberCert, &memberCA, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "seen %s", r.TLS.PeerCertificates[0].Subject.CommonName)
	})
	var peer *httptest.Server
	peer = tlsMember(t, &memberCert, &memberCA, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"members": []map[string]any{
			{"peerURLs": []string{peer.URL}, "clientURLs": []string{member.URL}}}})
	})

	// The proxy's certificate serves its listener and is presented to
	// members, as a client: both usages.
	caFile := ca1.WriteCA(t, dir, "ca.crt")
	certFile, keyFile := ca1.Issue(t, "proxy", tlstest.Peer, "127.0.0.1").Write(t, dir, "proxy")
	src, err := tlsutil.New("client", tlsutil.Files{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile}, tlsutil.Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	p, srv := newTestProxy(t, Config{PeerURLs: []string{peer.URL}, ClientTLS: src.ClientConfigFor, PeerTLS: src.ClientConfigFor,
		RefreshInterval: time.Minute})
	if eps := p.Endpoints(); len(eps) != 1 || eps[0] != member.URL {
		t.Fatalf("endpoints %v: the member list was not read over TLS", eps)
	}
	if resp, body := do(t, "GET", srv.URL+"/v2/keys/x", "", nil); resp.StatusCode != http.StatusOK || body != "seen proxy" {
		t.Fatalf("through the proxy: %d %q", resp.StatusCode, body)
	}

	// Without TLS configs: Go's defaults, which neither trust the test CA
	// nor present a certificate.
	_, bare := newTestProxy(t, Config{PeerURLs: []string{peer.URL}})
	if resp, body := do(t, "GET", bare.URL+"/v2/keys/x", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a proxy without TLS configs: %d %q, want 503 (no member list)", resp.StatusCode, body)
	}

	// The members move to a new CA; the proxy's files follow, and a
	// reload of the Source is all the proxy needs.
	c2 := ca2.Issue(t, "member", tlstest.Server, "127.0.0.1").TLSCertificate(t)
	memberCert.Store(&c2)
	memberCA.Store(ca2)
	p.tr.CloseIdleConnections()
	if resp, _ := do(t, "GET", srv.URL+"/v2/keys/x", "", nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("before the reload: %d, want 502 (the old CA does not verify the member)", resp.StatusCode)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca2.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ca2.Issue(t, "proxy-2", tlstest.Peer, "127.0.0.1").WriteOver(t, certFile, keyFile)
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	p.eps.mu.Lock()
	clear(p.eps.failed)
	p.eps.mu.Unlock()
	if resp, body := do(t, "GET", srv.URL+"/v2/keys/x", "", nil); resp.StatusCode != http.StatusOK || body != "seen proxy-2" {
		t.Fatalf("after the reload: %d %q", resp.StatusCode, body)
	}
}
