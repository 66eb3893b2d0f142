package config

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

// Every TLS setting comes from a flag, a CAIRN_* variable or the file;
// the boolean ones also stand alone on the command line, as etcd's do.
func TestTLSSettingsFromEverySource(t *testing.T) {
	want := TLS{
		CertFile: "c.crt", KeyFile: "c.key", TrustedCAFile: "ca.crt", ClientCertAuth: true,
		PeerCertFile: "p.crt", PeerKeyFile: "p.key", PeerTrustedCAFile: "pca.crt", PeerClientCertAuth: true,
		PeerCertAllowedCN: "member", CipherSuites: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", TLSMinVersion: "TLS1.2",
	}
	urls := []string{"--listen-client-urls", "https://127.0.0.1:2379", "--listen-peer-urls", "https://127.0.0.1:2380"}
	flags := append(slices.Clone(urls), "--cert-file", "c.crt", "--key-file", "c.key", "--trusted-ca-file", "ca.crt", "--client-cert-auth",
		"--peer-cert-file", "p.crt", "--peer-key-file", "p.key", "--peer-trusted-ca-file", "pca.crt", "--peer-client-cert-auth",
		"--peer-cert-allowed-cn", "member", "--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "--tls-min-version", "TLS1.2")
	env := []string{"CAIRN_LISTEN_CLIENT_URLS=https://127.0.0.1:2379", "CAIRN_LISTEN_PEER_URLS=https://127.0.0.1:2380",
		"CAIRN_CERT_FILE=c.crt", "CAIRN_KEY_FILE=c.key", "CAIRN_TRUSTED_CA_FILE=ca.crt", "CAIRN_CLIENT_CERT_AUTH=true",
		"CAIRN_PEER_CERT_FILE=p.crt", "CAIRN_PEER_KEY_FILE=p.key", "CAIRN_PEER_TRUSTED_CA_FILE=pca.crt", "CAIRN_PEER_CLIENT_CERT_AUTH=1",
		"CAIRN_PEER_CERT_ALLOWED_CN=member", "CAIRN_CIPHER_SUITES=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "CAIRN_TLS_MIN_VERSION=TLS1.2"}
	file := writeFile(t, `listen-client-urls: https://127.0.0.1:2379
listen-peer-urls: [https://127.0.0.1:2380]
cert-file: c.crt
key-file: c.key
trusted-ca-file: ca.crt
client-cert-auth: true
peer-cert-file: p.crt
peer-key-file: p.key
peer-trusted-ca-file: pca.crt
peer-client-cert-auth: true
peer-cert-allowed-cn: member
cipher-suites: TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
tls-min-version: TLS1.2
`)
	for name, src := range map[string]struct{ args, env []string }{
		"flags": {args: flags}, "environment": {env: env}, "file": {args: []string{"--config-file", file}},
	} {
		c, warn, err := Load(src.args, src.env)
		if err != nil || len(warn) != 0 {
			t.Fatalf("%s: %v %v", name, err, warn)
		}
		if c.TLS != want {
			t.Errorf("%s: %+v\nwant %+v", name, c.TLS, want)
		}
	}
	// Bare, =true, =false; a bare one followed by another flag.
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--auto-tls"}, true}, {[]string{"-auto-tls"}, true}, {[]string{"--auto-tls=true"}, true},
		{[]string{"--auto-tls=false"}, false}, {[]string{"--auto-tls", "--name", "default"}, true},
	} {
		c, _, err := Load(append(tc.args, "--listen-client-urls", "https://127.0.0.1:2379"), nil)
		if tc.want && (err != nil || !c.AutoTLS) {
			t.Errorf("%q: %v %v", tc.args, c.AutoTLS, err)
		}
		if !tc.want && (err == nil || !strings.Contains(err.Error(), "listen-client-urls")) {
			t.Errorf("%q: %v, want the https URL refused without a certificate", tc.args, err)
		}
	}
	if _, _, err := Load([]string{"--client-cert-auth", "true"}, nil); err == nil || !strings.Contains(err.Error(), `unexpected argument "true"`) {
		t.Errorf("a bool flag took a separate value: %v", err)
	}
	if _, _, err := Load(nil, []string{"CAIRN_PEER_AUTO_TLS=yes"}); err == nil || !strings.Contains(err.Error(), "CAIRN_PEER_AUTO_TLS") {
		t.Errorf("CAIRN_PEER_AUTO_TLS=yes: %v", err)
	}
}

// Several URLs, http and https mixed; the listen and advertise settings
// take lists, initial-advertise-peer-urls one URL.
func TestURLLists(t *testing.T) {
	c, _, err := Load([]string{"--listen-client-urls", "http://127.0.0.1:2379, https://127.0.0.1:2381", "--auto-tls",
		"--advertise-client-urls", "http://127.0.0.1:2379,https://127.0.0.1:2381",
		"--listen-peer-urls", "http://127.0.0.1:2380,http://127.0.0.1:2382"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := URLList(c.ListenClientURLs); !slices.Equal(got, []string{"http://127.0.0.1:2379", "https://127.0.0.1:2381"}) {
		t.Fatalf("URLList: %q", got)
	}
	if !c.ServesClientTLS() || c.ServesPeerTLS() {
		t.Fatal("ServesClientTLS / ServesPeerTLS")
	}
	for _, bad := range []string{"", "http://127.0.0.1:1,", "http://a:1,ftp://b:2", "http://a:1/path", "http://u@a:1"} {
		if _, err := URLs("listen-client-urls", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, _, err := Load([]string{"--initial-advertise-peer-urls", "http://127.0.0.1:1,http://127.0.0.1:2"}, nil); err == nil ||
		!strings.Contains(err.Error(), "initial-advertise-peer-urls: want one") {
		t.Fatalf("two initial-advertise-peer-urls: %v", err)
	}
	c, _, err = Load([]string{"--initial-advertise-peer-urls", "https://127.0.0.1:2380", "--initial-cluster", "default=https://127.0.0.1:2380"}, nil)
	if err != nil {
		t.Fatalf("an https peer URL: %v", err)
	}
	if m, _ := c.Members(); m["default"] != "https://127.0.0.1:2380" {
		t.Fatalf("members %v", m)
	}
}

// Wrong TLS settings stop the start with the setting's name.
func TestTLSValidation(t *testing.T) {
	httpsClient := []string{"--listen-client-urls", "https://127.0.0.1:2379"}
	httpsPeer := []string{"--listen-peer-urls", "https://127.0.0.1:2380"}
	peerCert := []string{"--peer-cert-file", "p.crt", "--peer-key-file", "p.key"}
	join := func(parts ...[]string) []string { return slices.Concat(parts...) }
	for _, tc := range []struct {
		args []string
		want string // "" valid
	}{
		{httpsClient, "listen-client-urls: https://127.0.0.1:2379 has an https URL: set cert-file and key-file (or auto-tls)"},
		{httpsPeer, "listen-peer-urls: https://127.0.0.1:2380 has an https URL: set peer-cert-file and peer-key-file (or peer-auto-tls)"},
		{join(httpsClient, []string{"--cert-file", "c.crt"}), "key-file: must be set with cert-file"},
		{join(httpsPeer, []string{"--peer-key-file", "p.key"}), "peer-cert-file: must be set with peer-key-file"},
		{join(httpsClient, []string{"--cert-file", "c", "--key-file", "k"}), ""},
		{join(httpsClient, []string{"--auto-tls"}), ""},
		{join(httpsPeer, []string{"--peer-auto-tls"}), ""},
		{join(httpsClient, []string{"--auto-tls", "--client-cert-auth"}), "client-cert-auth: needs trusted-ca-file"},
		{join(httpsClient, []string{"--auto-tls", "--client-cert-auth", "--trusted-ca-file", "ca"}), ""},
		{[]string{"--client-cert-auth", "--trusted-ca-file", "ca"}, "client-cert-auth: no listen-client-urls is https"},
		{join(httpsPeer, []string{"--peer-auto-tls", "--peer-client-cert-auth", "--peer-trusted-ca-file", "ca"}), "peer-client-cert-auth: needs peer-cert-file"},
		{join(httpsPeer, peerCert, []string{"--peer-auto-tls", "--peer-trusted-ca-file", "ca"}), ""},
		{join(httpsPeer, peerCert, []string{"--peer-client-cert-auth", "--peer-trusted-ca-file", "ca", "--peer-cert-allowed-cn", "m"}), ""},
		{join(httpsPeer, peerCert, []string{"--peer-cert-allowed-cn", "m"}), "peer-cert-allowed-cn: needs peer-trusted-ca-file"},
		{join(httpsPeer, peerCert, []string{"--peer-cert-allowed-cn", "m", "--peer-trusted-ca-file", "ca"}), ""},
		{join(httpsPeer, []string{"--peer-auto-tls", "--peer-trusted-ca-file", "ca"}), "peer-trusted-ca-file: needs peer-cert-file"},
		{[]string{"--tls-min-version", "TLS1.1"}, "tls-min-version: TLS1.1 is not accepted"},
		{[]string{"--tls-min-version", "1.3"}, "tls-min-version"},
		{[]string{"--tls-min-version", "TLS1.3"}, ""},
		{[]string{"--cipher-suites", "TLS_RSA_WITH_RC4_128_SHA"}, "cipher-suites: TLS_RSA_WITH_RC4_128_SHA is insecure"},
		{[]string{"--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "--tls-min-version", "TLS1.3"}, "cipher-suites: cannot be chosen with tls-min-version TLS1.3"},
	} {
		_, _, err := Load(tc.args, nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v\nwant an error containing %q", tc.args, err, tc.want)
		}
	}
	c, _, err := Load([]string{"--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "--tls-min-version", "TLS1.2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, suites, err := c.TLSPolicy(); err != nil || v != tls.VersionTLS12 || !slices.Equal(suites, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}) {
		t.Fatalf("TLSPolicy: %v %v %v", v, suites, err)
	}
}

// As etcd 3.4 does, a trusted CA file makes client certificates required
// on its side even without client-cert-auth.
func TestTrustedCAFileRequiresCertificates(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		client, peer bool
	}{
		{nil, false, false},
		{[]string{"--trusted-ca-file", "ca"}, true, false},
		{[]string{"--peer-trusted-ca-file", "ca"}, false, true},
		{[]string{"--client-cert-auth", "--trusted-ca-file", "ca", "--listen-client-urls", "https://127.0.0.1:1", "--auto-tls"}, true, false},
	} {
		c, _, err := Load(tc.args, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.ClientCertRequired() != tc.client || c.PeerClientCertRequired() != tc.peer {
			t.Errorf("%q: client %v peer %v, want %v %v", tc.args, c.ClientCertRequired(), c.PeerClientCertRequired(), tc.client, tc.peer)
		}
	}
}
