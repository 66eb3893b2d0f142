package main

import (
	"crypto/tls"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/internal/tlsutil/tlstest"
)

// How a proxy reaches the members' https client URLs, from its
// settings: with the client ones when given (even beside an http
// listener), else the peer ones (etcd's fallback), else without
// verification under auto TLS alone, else Go's defaults; a member
// never dials client URLs.
func TestProxyTLSChoice(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	caFile := ca.WriteCA(t, dir, "ca.crt")
	cert, key := ca.Issue(t, "proxy", tlstest.Peer, "127.0.0.1").Write(t, dir, "proxy")
	peerCert, peerKey := ca.Issue(t, "peer", tlstest.Peer, "127.0.0.1").Write(t, dir, "peer")
	for _, tc := range []struct {
		name string
		args []string
		// want: "" for no config, else the CommonName presented, and
		// whether the members are verified against the CA file.
		want     string
		verified bool
		insecure bool
	}{
		{"client settings, https listener", []string{"--proxy", "on", "--listen-client-urls", "https://127.0.0.1:2379",
			"--cert-file", cert, "--key-file", key, "--trusted-ca-file", caFile,
			"--peer-cert-file", peerCert, "--peer-key-file", peerKey}, "proxy", true, false},
		{"client settings, http listener", []string{"--proxy", "on", "--cert-file", cert, "--key-file", key, "--trusted-ca-file", caFile}, "proxy", true, false},
		{"a CA file alone", []string{"--proxy", "on", "--trusted-ca-file", caFile}, "-", true, false},
		{"peer settings alone", []string{"--proxy", "on", "--peer-cert-file", peerCert, "--peer-key-file", peerKey, "--peer-trusted-ca-file", caFile}, "peer", true, false},
		{"auto TLS alone", []string{"--proxy", "on", "--listen-client-urls", "https://127.0.0.1:2379", "--auto-tls"}, "-", false, true},
		{"auto TLS and a CA file", []string{"--proxy", "on", "--listen-client-urls", "https://127.0.0.1:2379", "--auto-tls", "--trusted-ca-file", caFile}, "cairn auto TLS", true, false},
		{"nothing", []string{"--proxy", "on"}, "", false, false},
		{"a member", []string{"--listen-client-urls", "https://127.0.0.1:2379", "--cert-file", cert, "--key-file", key}, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := config.Load(append([]string{"--data-dir", t.TempDir()}, tc.args...), nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := setupTLS(cfg, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if m.toMembers != nil {
					t.Fatal("a config for the members, want none (Go's defaults)")
				}
				return
			}
			if m.toMembers == nil {
				t.Fatal("no config for the members")
			}
			c := m.toMembers("127.0.0.1")
			if c.InsecureSkipVerify != tc.insecure || (c.RootCAs != nil) != tc.verified {
				t.Fatalf("InsecureSkipVerify %v, RootCAs set %v; want %v, %v", c.InsecureSkipVerify, c.RootCAs != nil, tc.insecure, tc.verified)
			}
			got := "-"
			if c.GetClientCertificate != nil {
				crt, err := c.GetClientCertificate(&tls.CertificateRequestInfo{})
				if err != nil {
					t.Fatal(err)
				}
				if crt.Leaf != nil {
					got = crt.Leaf.Subject.CommonName
				}
			}
			if got != tc.want {
				t.Fatalf("presents %q, want %q", got, tc.want)
			}
		})
	}
}
