package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairnkv/cairn/internal/tlsutil"
)

// TLS holds the TLS settings, with etcd's names (docs/security.md). The
// client side serves the https listen-client-urls; the peer side serves
// the https listen-peer-urls and dials other members' https peer URLs.
type TLS struct {
	CertFile, KeyFile, TrustedCAFile             string
	ClientCertAuth, AutoTLS                      bool
	PeerCertFile, PeerKeyFile, PeerTrustedCAFile string
	PeerClientCertAuth, PeerAutoTLS              bool
	PeerCertAllowedCN                            string
	// CipherSuites is comma-separated TLS 1.2 suite names ("": Go's
	// defaults); TLSMinVersion is TLS1.2 ("" too) or TLS1.3.
	CipherSuites, TLSMinVersion string
}

// boolean parses a boolean setting as Go's flag package does.
func boolean(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", v)
		}
		*p(c) = b
		return nil
	}
}

// URLs parses a setting that holds one or more comma-separated
// http(s)://host:port URLs.
func URLs(setting, v string) ([]*url.URL, error) {
	var out []*url.URL
	for _, part := range strings.Split(v, ",") {
		u, err := oneURL(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%s: want http:// or https://host:port URLs separated by commas, got %q", setting, v)
		}
		out = append(out, u)
	}
	return out, nil
}

// URLList is a URL setting's URLs as strings, as given (spaces trimmed).
func URLList(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func oneURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || strings.Contains(v, ",") || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("bad URL")
	}
	return u, nil
}

// anyHTTPS: some URL of the setting is https.
func anyHTTPS(v string) bool {
	for _, u := range URLList(v) {
		if strings.HasPrefix(u, "https://") {
			return true
		}
	}
	return false
}

// ServesClientTLS tells whether some listen-client-url is https.
func (c *Config) ServesClientTLS() bool { return anyHTTPS(c.ListenClientURLs) }

// ServesPeerTLS tells whether some listen-peer-url is https.
func (c *Config) ServesPeerTLS() bool { return anyHTTPS(c.ListenPeerURLs) }

// ClientCertRequired tells whether https clients must present a
// certificate signed by trusted-ca-file: with client-cert-auth, and, as
// etcd 3.4 does, whenever trusted-ca-file is set.
func (c *Config) ClientCertRequired() bool { return c.ClientCertAuth || c.TrustedCAFile != "" }

// PeerClientCertRequired is ClientCertRequired for the peer port.
func (c *Config) PeerClientCertRequired() bool {
	return c.PeerClientCertAuth || c.PeerTrustedCAFile != ""
}

// TLSPolicy is the parsed --tls-min-version and --cipher-suites (checked
// by Validate).
func (c *Config) TLSPolicy() (minVersion uint16, suites []uint16, err error) {
	if minVersion, err = tlsutil.ParseMinVersion(c.TLSMinVersion); err != nil {
		return 0, nil, fmt.Errorf("tls-min-version: %w", err)
	}
	if suites, err = tlsutil.ParseCipherSuites(c.CipherSuites); err != nil {
		return 0, nil, fmt.Errorf("cipher-suites: %w", err)
	}
	return minVersion, suites, nil
}

// validateTLS checks the TLS settings against each other and against
// the URLs; each error names a setting.
func (c *Config) validateTLS() error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", setting, fmt.Sprintf(format, args...)))
	}
	for _, side := range []struct {
		prefix, listen, listenName, cert, key, ca string
		certAuth, auto                            bool
	}{
		{"", c.ListenClientURLs, "listen-client-urls", c.CertFile, c.KeyFile, c.TrustedCAFile, c.ClientCertAuth, c.AutoTLS},
		{"peer-", c.ListenPeerURLs, "listen-peer-urls", c.PeerCertFile, c.PeerKeyFile, c.PeerTrustedCAFile, c.PeerClientCertAuth, c.PeerAutoTLS},
	} {
		p := side.prefix
		if side.cert != "" && side.key == "" {
			bad(p+"key-file", "must be set with %scert-file", p)
		}
		if side.key != "" && side.cert == "" {
			bad(p+"cert-file", "must be set with %skey-file", p)
		}
		https := anyHTTPS(side.listen)
		if https && side.cert == "" && !side.auto {
			bad(side.listenName, "%s has an https URL: set %scert-file and %skey-file (or %sauto-tls)", side.listen, p, p, p)
		}
		if side.certAuth {
			switch {
			case side.ca == "":
				bad(p+"client-cert-auth", "needs %strusted-ca-file, the CA that signs the certificates to accept", p)
			case !https:
				bad(p+"client-cert-auth", "no %s is https, so no certificate can be asked for", side.listenName)
			}
		}
		// A trusted CA file alone makes the certificates required too
		// (etcd's rule), so the peer side cannot do with the one
		// peer-auto-tls makes, which no CA signed.
		if p == "peer-" && side.cert == "" && side.auto && (side.certAuth || side.ca != "") {
			which := "peer-trusted-ca-file"
			if side.certAuth {
				which = "peer-client-cert-auth"
			}
			bad(which, "needs peer-cert-file: members would have to present certificates signed by peer-trusted-ca-file, and the one peer-auto-tls makes is self-signed")
		}
	}
	if c.PeerCertAllowedCN != "" && c.PeerTrustedCAFile == "" {
		bad("peer-cert-allowed-cn", "needs peer-trusted-ca-file (and peer-client-cert-auth): without them a connecting peer's certificate is not verified")
	}
	minVersion, err := tlsutil.ParseMinVersion(c.TLSMinVersion)
	if err != nil {
		bad("tls-min-version", "%v", err)
	}
	if _, err := tlsutil.ParseCipherSuites(c.CipherSuites); err != nil {
		bad("cipher-suites", "%v", err)
	} else if c.CipherSuites != "" && minVersion == tls.VersionTLS13 {
		bad("cipher-suites", "cannot be chosen with tls-min-version TLS1.3 (TLS 1.3 suites are fixed)")
	}
	return errors.Join(errs...)
}
