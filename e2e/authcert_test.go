package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/tlsutil/tlstest"
)

// acDo sends one request with c, optionally with basic auth, and returns
// the status and body (0 on a transport error).
func acDo(t *testing.T, c *http.Client, method, u, body, user string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	} else if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if name, pw, ok := strings.Cut(user, ":"); ok {
		req.SetBasicAuth(name, pw)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// With --client-cert-auth, a TLS client that sends no Authorization header
// is the user its certificate's CommonName names (etcd's
// TestCtlV2AuthWithCommonName): over a real https listener, alice's
// certificate reads what alice may read and writes nothing else, a
// certificate naming no user is a guest (closed here with --auth-guest
// none), and basic auth still works beside certificates.
func TestAuthByCertificateCommonName(t *testing.T) {
	k := tlNewPKI(t)
	rootCert := k.ca.Issue(t, "root", tlstest.Client)
	alice := tlClient(k.ca.Pool(), k.ca.Issue(t, "alice", tlstest.Client).TLSCertificate(t))
	nobody := tlClient(k.ca.Pool(), k.ca.Issue(t, "nobody", tlstest.Client).TLSCertificate(t))
	root := tlClient(k.ca.Pool(), rootCert.TLSCertificate(t))
	c := startClusterSpec(t, clusterSpec{clientScheme: "https",
		extra:       []string{"--trusted-ca-file", k.caFile, "--client-cert-auth", "--auth-guest", "none"},
		memberFlags: k.memberFlags, httpc: root}, "a")
	u := c.procs[0].client
	c.waitFor(c.procs[0], "/", `"action":"get"`, 20*time.Second)

	steps := []struct{ method, path, body string }{
		{"PUT", "/v2/auth/users/root", `{"user":"root","password":"rootpw"}`},
		{"PUT", "/v2/auth/roles/reader", `{"role":"reader","permissions":{"kv":{"read":["/pub/*"],"write":[]}}}`},
		{"PUT", "/v2/auth/users/alice", `{"user":"alice","password":"alicepw","roles":["reader"]}`},
		{"PUT", "/v2/keys/pub/x", "value=public"},
		{"PUT", "/v2/keys/secret", "value=hidden"},
		{"PUT", "/v2/auth/enable", ""},
	}
	for _, s := range steps {
		if code, body := acDo(t, root, s.method, u+s.path, s.body, ""); code >= 300 {
			t.Fatalf("%s %s: %d %s", s.method, s.path, code, body)
		}
	}
	for _, tc := range []struct {
		name         string
		c            *http.Client
		method, path string
		user         string
		want         int
	}{
		{"alice's certificate reads her glob", alice, "GET", "/v2/keys/pub/x", "", http.StatusOK},
		{"alice's certificate reads nothing else", alice, "GET", "/v2/keys/secret", "", http.StatusUnauthorized},
		{"alice's certificate writes nothing", alice, "PUT", "/v2/keys/pub/y", "", http.StatusUnauthorized},
		{"a certificate naming no user is a guest", nobody, "GET", "/v2/keys/pub/x", "", http.StatusUnauthorized},
		{"root's certificate does everything", root, "PUT", "/v2/keys/secret", "", http.StatusOK},
		{"basic auth beside a certificate", nobody, "GET", "/v2/keys/secret", "root:rootpw", http.StatusOK},
		{"a wrong password is refused, whatever the certificate", root, "GET", "/v2/keys/secret", "root:wrong", http.StatusUnauthorized},
	} {
		body := ""
		if tc.method == "PUT" {
			body = "value=v"
		}
		code, got := acDo(t, tc.c, tc.method, u+tc.path, body, tc.user)
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, got, tc.want)
		}
		if tc.want == http.StatusUnauthorized && !strings.Contains(got, `"errorCode":110`) {
			t.Errorf("%s: %s, want errorCode 110", tc.name, got)
		}
	}
}
