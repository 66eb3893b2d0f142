package tlsutil

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// ParseMinVersion reads --tls-min-version: TLS1.2 (also the default, for
// "") or TLS1.3. Older versions are refused.
func ParseMinVersion(v string) (uint16, error) {
	switch strings.TrimSpace(v) {
	case "", "TLS1.2":
		return tls.VersionTLS12, nil
	case "TLS1.3":
		return tls.VersionTLS13, nil
	case "TLS1.0", "TLS1.1":
		return 0, fmt.Errorf("%s is not accepted: TLS 1.0 and 1.1 are deprecated (RFC 8996); want TLS1.2 or TLS1.3", v)
	}
	return 0, fmt.Errorf("%q: want TLS1.2 or TLS1.3", v)
}

// cipherAliases are the names Go's constants gave the ChaCha20 suites
// before Go 1.14, which etcd's documentation still uses.
var cipherAliases = map[string]string{
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
}

// CipherSuiteNames lists the names ParseCipherSuites accepts: the TLS 1.2
// suites Go considers secure, in its order of preference.
func CipherSuiteNames() []string {
	var names []string
	for _, s := range tls.CipherSuites() {
		if slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			names = append(names, s.Name)
		}
	}
	return names
}

// ParseCipherSuites reads --cipher-suites: comma-separated IANA names of
// TLS 1.2 cipher suites (as Go's tls.CipherSuites names them, or Go's
// older ChaCha20 names). Empty is nil: Go's defaults. Suites Go marks
// insecure are refused, and so are TLS 1.3 suites, which Go does not let
// anyone choose (all three are always on under TLS 1.3).
func ParseCipherSuites(v string) ([]uint16, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var ids []uint16
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if alias, ok := cipherAliases[name]; ok {
			name = alias
		}
		id, err := cipherSuite(name)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func cipherSuite(name string) (uint16, error) {
	for _, s := range tls.CipherSuites() {
		if s.Name != name {
			continue
		}
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			return 0, fmt.Errorf("%s is a TLS 1.3 suite: those cannot be chosen (Go enables all three under TLS 1.3)", name)
		}
		return s.ID, nil
	}
	for _, s := range tls.InsecureCipherSuites() {
		if s.Name == name {
			return 0, fmt.Errorf("%s is insecure and not accepted", name)
		}
	}
	return 0, fmt.Errorf("unknown cipher suite %q; want some of %s", name, strings.Join(CipherSuiteNames(), ", "))
}
