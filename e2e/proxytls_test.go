package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	client "go.etcd.io/etcd/client/v2"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/internal/tlsutil/tlstest"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// ptlsMutualFlags are the mutual TLS cluster's flags (TestTLSMutualCluster's).
func ptlsMutualFlags(k *tlPKI) []string {
	return []string{"--trusted-ca-file", k.caFile, "--client-cert-auth",
		"--peer-trusted-ca-file", k.caFile, "--peer-client-cert-auth", "--peer-cert-allowed-cn", tlPeerCN}
}

// ptlsProxyFlags are a proxy's TLS flags in front of that cluster: its
// own certificate (served to clients and presented to the members, so
// for both usages), client certificates required on its https
// listeners, and a peer certificate to read the member list with.
func ptlsProxyFlags(t *testing.T, k *tlPKI, name string) []string {
	cert, key := k.ca.Issue(t, "cairn-proxy", tlstest.Peer, "127.0.0.1").Write(t, k.dir, name)
	peerCert, peerKey := k.ca.Issue(t, tlPeerCN, tlstest.Peer, "127.0.0.1").Write(t, k.dir, name+"-peer")
	return []string{"--cert-file", cert, "--key-file", key, "--trusted-ca-file", k.caFile, "--client-cert-auth",
		"--peer-cert-file", peerCert, "--peer-key-file", peerKey, "--peer-trusted-ca-file", k.caFile,
		"--peer-cert-allowed-cn", tlPeerCN, "--proxy-refresh-interval", "300", "--proxy-failure-wait", "1000"}
}

// A proxy over TLS in front of three members with mutual TLS on both
// ports: it serves two https listeners that require a client certificate
// and an http one beside them; it reaches the members' https client URLs
// presenting its own certificate and their peer URLs with its peer
// certificate. A client with a good certificate writes, reads and
// watches through it (raw HTTP and the official v2 Go client); one
// without a certificate, or with another CA's, is refused. A new server
// certificate is served after SIGHUP. When the member it sends to first
// is killed, every request still succeeds through the others.
func TestProxyMutualTLS(t *testing.T) {
	k := tlNewPKI(t)
	alice := k.ca.Issue(t, "alice", tlstest.Client)
	good := tlClient(k.ca.Pool(), alice.TLSCertificate(t))
	c := startClusterSpec(t, clusterSpec{clientScheme: "https", peerScheme: "https", extra: ptlsMutualFlags(k),
		memberFlags: k.memberFlags, httpc: good}, "a", "b", "c")
	clReady(c)

	https1 := fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
	https2 := fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
	plain := pxURL(t)
	args := append([]string{"--proxy", "on", "--initial-cluster", c.initial,
		"--listen-client-urls", https1 + "," + https2 + "," + plain}, ptlsProxyFlags(t, k, "proxy")...)
	p := pxStart(t, "proxy", filepath.Join(t.TempDir(), "proxy"), args...)
	var clients []string
	for _, m := range c.procs {
		clients = append(clients, m.client)
	}
	pxWaitEndpoints(t, plain, clients, 20*time.Second) // the member list, read over https peer URLs

	hc := tlClient(k.ca.Pool(), alice.TLSCertificate(t))
	hc.Timeout = 15 * time.Second
	for i, base := range []string{https1, https2, plain} {
		code, body, _, err := pxDo(hc, "PUT", base+fmt.Sprintf("/v2/keys/ptls/k%d", i), url.Values{"value": {fmt.Sprint("v", i)}})
		if err != nil || code != http.StatusCreated {
			t.Fatalf("PUT through %s: %d %s %v", base, code, body, err)
		}
	}
	for i := range 3 {
		code, body, _, err := pxDo(hc, "GET", https1+fmt.Sprintf("/v2/keys/ptls/k%d?quorum=true", i), nil)
		if err != nil || code != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"value":"v%d"`, i)) {
			t.Fatalf("GET k%d through the proxy: %d %s %v", i, code, body, err)
		}
	}

	t.Run("watch", func(t *testing.T) {
		type res struct {
			code int
			body string
			err  error
		}
		lp := make(chan res, 1)
		go func() {
			code, body, _, err := pxDo(hc, "GET", https2+"/v2/keys/ptls/watched?wait=true", nil)
			lp <- res{code, body, err}
		}()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: k.ca.Pool(), Certificates: []tls.Certificate{alice.TLSCertificate(t)}}}
		cl, err := client.New(client.Config{Endpoints: []string{https1}, Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		kapi := client.NewKeysAPI(cl)
		wctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		w := kapi.Watcher("/ptls/watched", nil)
		got := make(chan *client.Response, 1)
		go func() {
			resp, err := w.Next(wctx)
			if err != nil {
				t.Errorf("v2 client watch: %v", err)
			}
			got <- resp
		}()
		time.Sleep(300 * time.Millisecond) // both watches registered
		resp, err := kapi.Set(clCtx(t), "/ptls/watched", "seen", nil)
		clWant(t, "Set", resp, err, "set", "seen")
		if r := <-got; r == nil || r.Node.Value != "seen" {
			t.Fatalf("v2 client watch: %+v", r)
		}
		select {
		case r := <-lp:
			if r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, `"value":"seen"`) {
				t.Fatalf("long-poll watch: %d %s %v", r.code, r.body, r.err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("long-poll watch through the proxy not answered")
		}
	})

	t.Run("refused", func(t *testing.T) {
		for name, cl := range map[string]*http.Client{
			"no certificate":              tlClient(k.ca.Pool()),
			"a certificate of another CA": tlClient(k.ca.Pool(), k.stranger.Issue(t, "mallory", tlstest.Client).TLSCertificate(t)),
		} {
			for _, base := range []string{https1, https2} {
				if code, body, err := tlGet(cl, base+"/v2/keys/ptls/k0"); err == nil || strings.Contains(body, "v0") {
					t.Errorf("%s at %s: %d %q %v: want the handshake refused", name, base, code, body, err)
				}
			}
		}
		if !tlLogHas(&proc{dir: p.dir}, 5*time.Second, `"listener":"client"`, "TLS handshake error") {
			t.Error("the proxy did not log the refused handshakes")
		}
	})

	t.Run("reload", func(t *testing.T) {
		var certFile, keyFile string
		for i, a := range args {
			switch a {
			case "--cert-file":
				certFile = args[i+1]
			case "--key-file":
				keyFile = args[i+1]
			}
		}
		next := k.ca.Issue(t, "cairn-proxy", tlstest.Peer, "127.0.0.1")
		next.WriteOver(t, certFile, keyFile)
		if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		want := next.Cert.SerialNumber.Text(16)
		for deadline := time.Now().Add(10 * time.Second); tlServerSerial(t, https1) != want; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the proxy still serves %s after SIGHUP, want %s", tlServerSerial(t, https1), want)
			}
		}
		if !tlLogHas(&proc{dir: p.dir}, 5*time.Second, "SIGHUP: TLS files reloaded") {
			t.Error("no log of the SIGHUP reload")
		}
		// The new certificate is presented to the members too.
		if code, body, _, err := pxDo(hc, "GET", https1+"/v2/keys/ptls/k0", nil); err != nil || code != http.StatusOK {
			t.Fatalf("GET after the reload: %d %s %v", code, body, err)
		}
	})

	t.Run("failover", func(t *testing.T) {
		first := ""
		for deadline := time.Now().Add(5 * time.Second); first == "" && time.Now().Before(deadline); {
			first = pxFirstEndpoint(plain)
		}
		var victim *proc
		for _, m := range c.procs {
			if m.client == first {
				victim = m
			}
		}
		if victim == nil {
			t.Fatalf("the proxy's first endpoint %q is no member", first)
		}
		c.kill(victim, syscall.SIGKILL)
		t.Logf("killed %s, the proxy's first endpoint", victim.name)
		var errs []string
		for i := range 30 {
			for try := 0; ; try++ {
				code, body, _, err := pxDo(hc, "PUT", https1+fmt.Sprintf("/v2/keys/ptls/after/%d", i), url.Values{"value": {fmt.Sprint(i)}})
				if err == nil && code == http.StatusCreated {
					break
				}
				errs = append(errs, fmt.Sprintf("write %d try %d: %d %s %v", i, try, code, strings.TrimSpace(body), err))
				if try == 5 {
					t.Fatalf("write %d keeps failing: %v", i, errs)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		// A kill of the leader may cost the one write it had taken (its
		// outcome unknown); a follower's, nothing.
		if len(errs) > 1 {
			t.Fatalf("%d failed requests through the proxy, want at most 1: %v", len(errs), errs)
		}
		if code, body, _, err := pxDo(hc, "GET", https2+"/v2/keys/ptls/after/29?quorum=true", nil); err != nil || code != http.StatusOK || !strings.Contains(body, `"value":"29"`) {
			t.Fatalf("read after the kill: %d %s %v", code, body, err)
		}
		_, metrics, _, _ := pxDo(hc, "GET", plain+"/metrics", nil)
		if !strings.Contains(metrics, `cairn_proxy_endpoint_failures_total{endpoint="`+victim.client+`"}`) {
			t.Errorf("no failure counted for the killed member %s", victim.client)
		}
	})
}

// A proxy finds the cluster through an https discovery URL. As etcd's,
// the discovery client verifies the service with the system's roots and
// presents no certificate: given the test CA through SSL_CERT_FILE, it
// reads the registrations and then the member list over the peers' TLS;
// without it, it keeps retrying and logs why.
func TestProxyDiscoveryOverHTTPS(t *testing.T) {
	k := tlNewPKI(t)
	alice := k.ca.Issue(t, "alice", tlstest.Client)
	c := startClusterSpec(t, clusterSpec{clientScheme: "https", peerScheme: "https", extra: ptlsMutualFlags(k),
		memberFlags: k.memberFlags, httpc: tlClient(k.ca.Pool(), alice.TLSCertificate(t))}, "a", "b", "c")
	clReady(c)

	// The discovery service: a v2 keys API over https (no client
	// certificates), holding the three members' registrations.
	l := server.NewLocal(store.New(1000), 1, nil)
	t.Cleanup(l.Close)
	svc := httptest.NewUnstartedServer(httpapi.NewHandler(httpapi.Config{Backend: l, Logger: zerolog.Nop()}))
	svc.TLS = &tls.Config{Certificates: []tls.Certificate{k.ca.Issue(t, "discovery", tlstest.Server, "127.0.0.1").TLSCertificate(t)}}
	svc.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes of the second proxy below
	svc.StartTLS()
	t.Cleanup(svc.Close)
	durl := svc.URL + "/v2/keys/_etcd/registry/ptls"
	svcClient := tlClient(k.ca.Pool())
	put := func(key, value string) {
		t.Helper()
		if code, body, _, err := pxDo(svcClient, "PUT", durl+key, url.Values{"value": {value}}); err != nil || code >= 300 {
			t.Fatalf("PUT %s: %d %s %v", key, code, body, err)
		}
	}
	put("/_config/size", "3")
	for i, m := range c.procs {
		put(fmt.Sprintf("/%x", i+1), m.name+"="+m.peer)
	}

	// An http listener: the client settings serve only to reach the
	// members (client-cert-auth would have nothing to ask on).
	flags := slices.DeleteFunc(ptlsProxyFlags(t, k, "proxy"), func(f string) bool { return f == "--client-cert-auth" })
	listen := pxURL(t)
	p := pxStartEnv(t, "proxy", filepath.Join(t.TempDir(), "proxy"), []string{"SSL_CERT_FILE=" + k.caFile},
		append([]string{"--proxy", "on", "--discovery", durl, "--listen-client-urls", listen}, flags...)...)
	var clients []string
	for _, m := range c.procs {
		clients = append(clients, m.client)
	}
	pxWaitEndpoints(t, p.client, clients, 20*time.Second)
	if code, body, _, err := pxDo(&http.Client{Timeout: 10 * time.Second}, "PUT", listen+"/v2/keys/ptls/disc", url.Values{"value": {"found"}}); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT through the proxy: %d %s %v", code, body, err)
	}

	// Without the CA among its roots, the proxy does not trust the service.
	// (A variable of the machine's own could already point elsewhere:
	// both are set, to a bundle without the test CA.)
	other := filepath.Join(t.TempDir(), "other.crt")
	if err := os.WriteFile(other, k.stranger.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	q := pxStartEnv(t, "proxy2", filepath.Join(t.TempDir(), "proxy2"), []string{"SSL_CERT_FILE=" + other, "SSL_CERT_DIR=" + t.TempDir()},
		append([]string{"--proxy", "on", "--discovery", durl, "--listen-client-urls", pxURL(t)}, flags...)...)
	if !tlLogHas(&proc{dir: q.dir}, 15*time.Second, "certificate signed by unknown authority") {
		b, _ := os.ReadFile(q.log)
		t.Fatalf("the proxy without the CA did not log the refused certificate:\n%s", pxTail(string(b), 10))
	}
}
