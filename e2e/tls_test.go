package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	client "go.etcd.io/etcd/client/v2"

	"github.com/cairnkv/cairn/internal/tlsutil/tlstest"
)

// tlPKI is a TLS test's certificates: the cluster's CA, and a stranger's
// CA that nobody trusts, both made by the test with crypto/x509.
type tlPKI struct {
	t            *testing.T
	dir          string
	ca, stranger *tlstest.CA
	caFile       string
}

func tlNewPKI(t *testing.T) *tlPKI {
	k := &tlPKI{t: t, dir: t.TempDir(), ca: tlstest.NewCA(t, "cairn test CA"), stranger: tlstest.NewCA(t, "stranger CA")}
	k.caFile = k.ca.WriteCA(t, k.dir, "ca.crt")
	return k
}

// tlPeerCN is the CommonName of every member's peer certificate, and the
// --peer-cert-allowed-cn of the mutual TLS cluster.
const tlPeerCN = "cairn-peer"

// memberFlags gives member p a server certificate for its client port
// (CommonName its name) and a peer certificate, both for 127.0.0.1.
func (k *tlPKI) memberFlags(p *proc) []string {
	cert, key := k.ca.Issue(k.t, p.name, tlstest.Server, "127.0.0.1").Write(k.t, k.dir, p.name+"-server")
	peerCert, peerKey := k.ca.Issue(k.t, tlPeerCN, tlstest.Peer, "127.0.0.1").Write(k.t, k.dir, p.name+"-peer")
	return []string{"--cert-file", cert, "--key-file", key, "--peer-cert-file", peerCert, "--peer-key-file", peerKey}
}

// tlClient is an HTTP client that trusts pool (nil: the system's roots)
// and presents certs, with fresh connections for every request (so each
// one is a new handshake).
func tlClient(pool *x509.CertPool, certs ...tls.Certificate) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
}

// tlGet is one GET, no retries.
func tlGet(c *http.Client, u string) (int, string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// tlServerSerial is the serial of the certificate the server at u (an
// https URL) presents on a fresh handshake, unverified.
func tlServerSerial(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.DialWithDialer(&netDialer, "tcp", pu.Host, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake with %s: %v", u, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// tlLogHas waits up to d for the member's log to contain every one of
// the texts.
func tlLogHas(p *proc, d time.Duration, texts ...string) bool {
	deadline := time.Now().Add(d)
	for {
		data, _ := os.ReadFile(p.dir + ".log")
		ok := true
		for _, s := range texts {
			ok = ok && strings.Contains(string(data), s)
		}
		if ok || time.Now().After(deadline) {
			return ok
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Three members over mutual TLS on both ports, with client-cert-auth and
// peer-cert-allowed-cn: writes through each member reach the others (by
// messages and streams over TLS); clients without a certificate, with
// one from another CA, or speaking plain HTTP get no data; the peer port
// refuses a handshake without a certificate, with another CA's, or with
// the wrong CommonName. etcdctl v2, the official v2 Go client, cairn
// health, snapshot save and bench all work over TLS with the right
// certificate.
func TestTLSMutualCluster(t *testing.T) {
	k := tlNewPKI(t)
	clientCert := k.ca.Issue(t, "alice", tlstest.Client)
	strangerCert := k.stranger.Issue(t, "mallory", tlstest.Client)
	good := tlClient(k.ca.Pool(), clientCert.TLSCertificate(t))
	c := startClusterSpec(t, clusterSpec{clientScheme: "https", peerScheme: "https",
		extra: []string{"--trusted-ca-file", k.caFile, "--client-cert-auth",
			"--peer-trusted-ca-file", k.caFile, "--peer-client-cert-auth", "--peer-cert-allowed-cn", tlPeerCN},
		memberFlags: k.memberFlags, httpc: good}, "a", "b", "c")

	for i, p := range c.procs {
		if code, body := c.do(p, "PUT", fmt.Sprintf("/v2/keys/tls/k%d", i), url.Values{"value": {"secret-" + p.name}}); code != http.StatusCreated {
			t.Fatalf("PUT at %s: %d %s", p.name, code, body)
		}
	}
	for _, p := range c.procs {
		for i, w := range c.procs {
			if _, body := c.do(p, "GET", fmt.Sprintf("/v2/keys/tls/k%d", i), nil); !strings.Contains(body, `"value":"secret-`+w.name+`"`) {
				t.Fatalf("%s reads k%d: %s", p.name, i, body)
			}
		}
		// Each member streams to the two others over TLS.
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			data, _ := os.ReadFile(p.dir + ".log")
			n := strings.Count(string(data), `"message":"stream connected"`)
			if n >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d streams connected, want 2", p.name, n)
			}
		}
	}
	a := c.procs[0]
	members := func(body string) bool {
		for _, p := range c.procs {
			if !strings.Contains(body, `"clientURLs":["`+p.client+`"]`) || !strings.Contains(body, `"peerURLs":["`+p.peer+`"]`) {
				return false
			}
		}
		return true
	}
	// Members publish their client URLs once they know a leader.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body := c.do(a, "GET", "/v2/members", nil)
		if members(body) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/v2/members: %s", body)
		}
	}

	t.Run("clients-refused", func(t *testing.T) {
		for name, cl := range map[string]*http.Client{
			"no certificate":              tlClient(k.ca.Pool()),
			"a certificate of another CA": tlClient(k.ca.Pool(), strangerCert.TLSCertificate(t)),
		} {
			code, body, err := tlGet(cl, a.client+"/v2/keys/tls/k0")
			if err == nil || strings.Contains(body, "secret") {
				t.Errorf("%s: %d %q %v: want the request refused", name, code, body, err)
			}
		}
		plain := "http://" + strings.TrimPrefix(a.client, "https://")
		code, body, err := tlGet(&http.Client{Timeout: 5 * time.Second}, plain+"/v2/keys/tls/k0")
		if err == nil && (code != http.StatusBadRequest || strings.Contains(body, "secret")) {
			t.Errorf("plain HTTP to the https port: %d %q", code, body)
		}
	})

	t.Run("peer-port-refuses-strangers", func(t *testing.T) {
		for name, cl := range map[string]*http.Client{
			"no certificate":                   tlClient(k.ca.Pool()),
			"a certificate of another CA":      tlClient(k.ca.Pool(), k.stranger.Issue(t, tlPeerCN, tlstest.Peer, "127.0.0.1").TLSCertificate(t)),
			"the right CA, another CommonName": tlClient(k.ca.Pool(), k.ca.Issue(t, "intruder", tlstest.Peer, "127.0.0.1").TLSCertificate(t)),
			"a client's certificate":           tlClient(k.ca.Pool(), clientCert.TLSCertificate(t)),
			"the right CN, not for clients":    tlClient(k.ca.Pool(), k.ca.Issue(t, tlPeerCN, tlstest.Server, "127.0.0.1").TLSCertificate(t)),
		} {
			for _, path := range []string{"/members", "/version", "/raft"} {
				if code, body, err := tlGet(cl, a.peer+path); err == nil {
					t.Errorf("%s: GET %s answered %d %q", name, path, code, body)
				}
			}
		}
		// A member's own kind of certificate gets through the handshake.
		member := tlClient(k.ca.Pool(), k.ca.Issue(t, tlPeerCN, tlstest.Peer, "127.0.0.1").TLSCertificate(t))
		if code, body, err := tlGet(member, a.peer+"/version"); err != nil || code != http.StatusOK {
			t.Fatalf("a peer certificate: %d %q %v", code, body, err)
		}
		if !tlLogHas(a, 5*time.Second, `"listener":"peer"`, "TLS handshake error", `want a certificate with CommonName \"cairn-peer\", got CommonName \"intruder\"`) {
			t.Errorf("%s did not log the refused peer handshakes", a.name)
		}
	})

	t.Run("etcdctl", func(t *testing.T) {
		etcdctl := clEtcdctlPath(t)
		certFile, keyFile := clientCert.Write(t, k.dir, "alice")
		tlsArgs := []string{"--ca-file", k.caFile, "--cert-file", certFile, "--key-file", keyFile}
		b := c.procs[1]
		clOK(t, etcdctl, b.client, "via-etcdctl\n", append(tlsArgs, "set", "/tls/etcdctl", "via-etcdctl")...)
		clOK(t, etcdctl, a.client, "via-etcdctl\n", append(tlsArgs, "get", "--quorum", "/tls/etcdctl")...)
		clOK(t, etcdctl, a.client, "secret-c\n", append(tlsArgs, "get", "/tls/k2")...)
		if code, out, _ := clRun(t, etcdctl, a.client, "--ca-file", k.caFile, "get", "/tls/k2"); code == 0 || strings.Contains(out, "secret") {
			t.Fatalf("etcdctl without a client certificate: exit %d, %q", code, out)
		}
	})

	t.Run("go-v2-client", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: k.ca.Pool(), Certificates: []tls.Certificate{clientCert.TLSCertificate(t)}}}
		cl, err := client.New(client.Config{Endpoints: []string{c.procs[2].client}, Transport: tr, HeaderTimeoutPerRequest: clCallTimeout})
		if err != nil {
			t.Fatal(err)
		}
		kapi := client.NewKeysAPI(cl)
		resp, err := kapi.Set(clCtx(t), "/tls/goclient", "v2-over-tls", nil)
		clWant(t, "Set", resp, err, "set", "v2-over-tls")
		resp, err = kapi.Get(clCtx(t), "/tls/k0", &client.GetOptions{Quorum: true})
		clWant(t, "Get", resp, err, "get", "secret-a")
		ms, err := client.NewMembersAPI(cl).List(clCtx(t))
		if err != nil || len(ms) != 3 {
			t.Fatalf("members: %v %v", ms, err)
		}
		for _, m := range ms {
			if len(m.ClientURLs) != 1 || !strings.HasPrefix(m.ClientURLs[0], "https://") {
				t.Fatalf("member %+v: want its https client URL", m)
			}
		}
		// The same client without a certificate gets an error, no data.
		bare, err := client.New(client.Config{Endpoints: []string{c.procs[2].client}, HeaderTimeoutPerRequest: clCallTimeout,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: k.ca.Pool()}}})
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := client.NewKeysAPI(bare).Get(clCtx(t), "/tls/k0", nil); err == nil {
			t.Fatalf("no certificate: %+v", resp.Node)
		}
	})

	t.Run("tools", func(t *testing.T) {
		certFile, keyFile := clientCert.Write(t, k.dir, "alice")
		tlsArgs := []string{"--cacert", k.caFile, "--cert", certFile, "--key", keyFile}
		var eps []string
		for _, p := range c.procs {
			eps = append(eps, p.client)
		}
		if out, err := exec.Command(binary, append([]string{"health", "--endpoints", strings.Join(eps, ",")}, tlsArgs...)...).CombinedOutput(); err != nil {
			t.Fatalf("cairn health over TLS: %v\n%s", err, out)
		}
		if out, err := exec.Command(binary, "health", "--endpoints", a.client, "--cacert", k.caFile).CombinedOutput(); err == nil {
			t.Fatalf("cairn health without a client certificate succeeded:\n%s", out)
		}
		backup := filepath.Join(t.TempDir(), "backup.db")
		if out, err := exec.Command(binary, append(append([]string{"snapshot", "save", "--endpoints", a.client}, tlsArgs...), backup)...).CombinedOutput(); err != nil {
			t.Fatalf("cairn snapshot save over TLS: %v\n%s", err, out)
		}
		if out, err := exec.Command(binary, "snapshot", "status", backup).CombinedOutput(); err != nil || !strings.Contains(string(out), `"keys":`) {
			t.Fatalf("snapshot status: %v\n%s", err, out)
		}
		out, err := exec.Command(binary, append([]string{"bench", "--endpoints", strings.Join(eps, ","), "--total", "60", "--clients", "3",
			"--prefix", "/tlsbench"}, tlsArgs...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "requests=60 errors=0") {
			t.Fatalf("cairn bench over TLS: %v\n%s", err, out)
		}
	})
}

// A member's client certificate is replaced without a restart: new files
// (the same CA) are served on the next handshake once the poll sees them;
// files changed without a visible change of size or time are served only
// after SIGHUP; files that do not load leave the last good certificate
// in service.
func TestTLSCertificateRotation(t *testing.T) {
	k := tlNewPKI(t)
	files := map[string][2]string{}
	c := startClusterSpec(t, clusterSpec{clientScheme: "https", httpc: tlClient(k.ca.Pool()),
		memberFlags: func(p *proc) []string {
			cert, key := k.ca.Issue(t, p.name, tlstest.Server, "127.0.0.1").Write(t, k.dir, p.name)
			files[p.name] = [2]string{cert, key}
			return []string{"--cert-file", cert, "--key-file", key}
		}}, "a")
	a := c.procs[0]
	certFile, keyFile := files["a"][0], files["a"][1]
	if code, body := c.do(a, "PUT", "/v2/keys/rot", url.Values{"value": {"1"}}); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, body)
	}
	pid := a.cmd.Process.Pid
	waitSerial := func(want string, d time.Duration) bool {
		deadline := time.Now().Add(d)
		for tlServerSerial(t, a.client) != want {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(100 * time.Millisecond)
		}
		return true
	}

	// 1. New files: picked up by the poll (every 3 s).
	first := k.ca.Issue(t, "a", tlstest.Server, "127.0.0.1")
	first.WriteOver(t, certFile, keyFile)
	start := time.Now()
	if !waitSerial(first.Cert.SerialNumber.Text(16), 15*time.Second) {
		t.Fatalf("the new certificate was not served within 15 s (serving %s)", tlServerSerial(t, a.client))
	}
	t.Logf("the rotated certificate was served %v after the files changed", time.Since(start).Round(time.Millisecond))
	if code, body := c.do(a, "GET", "/v2/keys/rot", nil); code != http.StatusOK || a.cmd.Process.Pid != pid {
		t.Fatalf("after rotation: %d %s", code, body)
	}

	// 2. Files the poll cannot tell apart (same sizes, same times): only
	// SIGHUP loads them.
	stat := func(f string) os.FileInfo {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	oldCert, oldKey := stat(certFile), stat(keyFile)
	var second *tlstest.Leaf
	for range 100 {
		if l := k.ca.Issue(t, "a", tlstest.Server, "127.0.0.1"); int64(len(l.CertPEM)) == oldCert.Size() && int64(len(l.KeyPEM)) == oldKey.Size() {
			second = l
			break
		}
	}
	if second == nil {
		t.Fatal("no certificate of the same size in 100 tries")
	}
	for _, f := range []struct {
		path string
		data []byte
		fi   os.FileInfo
	}{{keyFile, second.KeyPEM, oldKey}, {certFile, second.CertPEM, oldCert}} {
		tmp := f.path + ".new"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, f.fi.ModTime(), f.fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(7 * time.Second) // two polls
	if got := tlServerSerial(t, a.client); got != first.Cert.SerialNumber.Text(16) {
		t.Fatalf("the poll loaded files whose size and time did not change (serving %s)", got)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !waitSerial(second.Cert.SerialNumber.Text(16), 10*time.Second) {
		t.Fatalf("SIGHUP did not load the new certificate (serving %s)", tlServerSerial(t, a.client))
	}
	if !tlLogHas(a, 5*time.Second, "SIGHUP: TLS files reloaded") {
		t.Fatal("no log of the SIGHUP reload")
	}

	// 3. A certificate file that does not load: the last good one stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !tlLogHas(a, 15*time.Second, "reloading TLS files failed", certFile) {
		t.Fatal("the failed reload was not logged with the file's name")
	}
	if got := tlServerSerial(t, a.client); got != second.Cert.SerialNumber.Text(16) {
		t.Fatalf("after a failed reload: serving %s, want the last good %s", got, second.Cert.SerialNumber.Text(16))
	}
	if code, body := c.do(a, "GET", "/v2/keys/rot", nil); code != http.StatusOK || a.cmd.Process.Pid != pid {
		t.Fatalf("after the failed reload: %d %s", code, body)
	}
	data, _ := os.ReadFile(a.dir + ".log")
	if strings.Contains(string(data), "PRIVATE KEY") {
		t.Fatal("a private key reached the log")
	}
}

// Three members with --auto-tls and --peer-auto-tls, each serving
// clients on an http and an https listener and peers on an https and an
// http one: writes through http are read through https (verification
// off: auto TLS authenticates nobody), both client URLs are published,
// the second peer listener answers, the certificates are made in the
// data directory with a private key file and kept across a restart.
func TestTLSAutoAndMixedListeners(t *testing.T) {
	https, peerHTTP := map[string]string{}, map[string]string{}
	c := startClusterSpec(t, clusterSpec{peerScheme: "https", extra: []string{"--auto-tls", "--peer-auto-tls"},
		memberFlags: func(p *proc) []string {
			https[p.name] = fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
			peerHTTP[p.name] = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
			both := p.client + "," + https[p.name]
			return []string{"--listen-client-urls", both, "--advertise-client-urls", both,
				"--listen-peer-urls", p.peer + "," + peerHTTP[p.name]}
		}}, "a", "b", "c")
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for i, p := range c.procs {
		if code, body := c.do(p, "PUT", fmt.Sprintf("/v2/keys/mixed/k%d", i), url.Values{"value": {p.name}}); code != http.StatusCreated {
			t.Fatalf("PUT over http at %s: %d %s", p.name, code, body)
		}
	}
	for _, p := range c.procs {
		for i, w := range c.procs {
			code, body, err := tlGet(insecure, https[p.name]+fmt.Sprintf("/v2/keys/mixed/k%d?quorum=true", i))
			if err != nil || code != http.StatusOK || !strings.Contains(body, `"value":"`+w.name+`"`) {
				t.Fatalf("GET over https at %s: %d %s %v", p.name, code, body, err)
			}
		}
		if _, _, err := tlGet(tlClient(nil), https[p.name]+"/version"); err == nil {
			t.Fatalf("%s: a verifying client accepted the auto TLS certificate", p.name)
		}
		for _, u := range []string{p.peer, peerHTTP[p.name]} {
			if code, body, err := tlGet(insecure, u+"/version"); err != nil || code != http.StatusOK || !strings.Contains(body, `"cairn"`) {
				t.Fatalf("%s: peer listener %s: %d %s %v", p.name, u, code, body, err)
			}
		}
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body := c.do(c.procs[0], "GET", "/v2/members", nil)
		missing := ""
		for _, p := range c.procs {
			if want := `"clientURLs":["` + p.client + `","` + https[p.name] + `"]`; !strings.Contains(body, want) {
				missing = want
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/v2/members lacks %s: %s", missing, body)
		}
	}

	a := c.procs[0]
	for _, kind := range []string{"client", "peer"} {
		fi, err := os.Stat(filepath.Join(a.dir, "fixtures", kind, "key.pem"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s key file: %v %v", kind, fi, err)
		}
	}
	clientSerial, peerSerial := tlServerSerial(t, https["a"]), tlServerSerial(t, a.peer)
	made := func() int {
		data, _ := os.ReadFile(a.dir + ".log") // each start writes a new log
		return strings.Count(string(data), "certificate (auto TLS)")
	}
	if n := made(); n != 2 {
		t.Fatalf("%d certificates made at the first start, want 2 (client and peer)", n)
	}
	c.kill(a, syscall.SIGTERM)
	c.start(a)
	if code, body := c.do(a, "PUT", "/v2/keys/mixed/after", url.Values{"value": {"restarted"}}); code != http.StatusCreated {
		t.Fatalf("PUT at the restarted member: %d %s", code, body)
	}
	if got := tlServerSerial(t, https["a"]); got != clientSerial {
		t.Fatalf("client certificate after restart: serial %s, want the same %s", got, clientSerial)
	}
	if got := tlServerSerial(t, a.peer); got != peerSerial {
		t.Fatalf("peer certificate after restart: serial %s, want the same %s", got, peerSerial)
	}
	code, body, err := tlGet(insecure, https["b"]+"/v2/keys/mixed/after?quorum=true")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "restarted") {
		t.Fatalf("GET at b after a's restart: %d %s %v", code, body, err)
	}
	if n := made(); n != 0 {
		t.Fatalf("%d certificates made at the restart, want none", n)
	}
}

var netDialer = net.Dialer{Timeout: 5 * time.Second}
