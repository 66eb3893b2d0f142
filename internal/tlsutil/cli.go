package tlsutil

import (
	"crypto/tls"
	"errors"
	"flag"

	"github.com/rs/zerolog"
)

// ClientFlags are the TLS flags of the tools that talk to members'
// client URLs (`cairn health`, `cairn snapshot save`, `cairn bench`),
// with etcdctl v3's names.
type ClientFlags struct {
	CACert, Cert, Key  string
	InsecureSkipVerify bool
}

// Register adds --cacert, --cert, --key and --insecure-skip-tls-verify
// to fs.
func (f *ClientFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.CACert, "cacert", "", "verify https endpoints with this CA bundle (PEM; default: the system's roots)")
	fs.StringVar(&f.Cert, "cert", "", "client certificate (PEM) for https endpoints that require one (--client-cert-auth)")
	fs.StringVar(&f.Key, "key", "", "private key (PEM) of --cert")
	fs.BoolVar(&f.InsecureSkipVerify, "insecure-skip-tls-verify", false, "do not verify https endpoints' certificates (members with --auto-tls): encrypted, not authenticated")
}

// Config is the client TLS config the flags ask for, or nil when none
// was given (Go's defaults: the system's roots, no client certificate).
func (f *ClientFlags) Config() (*tls.Config, error) {
	if f.CACert == "" && f.Cert == "" && f.Key == "" && !f.InsecureSkipVerify {
		return nil, nil
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("--cert and --key go together")
	}
	s, err := New("client", Files{CertFile: f.Cert, KeyFile: f.Key, TrustedCAFile: f.CACert},
		Options{InsecureSkipVerify: f.InsecureSkipVerify}, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	return s.ClientConfig(), nil
}
