package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/dnstest"
	"github.com/cairnkv/cairn/internal/etcdtest"
)

// dcMember starts a member that finds its cluster by discovery (args add
// --discovery or --discovery-srv).
func dcMember(t *testing.T, name string, args ...string) *pxProc {
	t.Helper()
	client, peer := pxURL(t), pxURL(t)
	return dcMemberAt(t, name, client, peer, peer, args...)
}

func dcMemberAt(t *testing.T, name, client, advertisePeer, listenPeer string, args ...string) *pxProc {
	t.Helper()
	all := append([]string{"--initial-advertise-peer-urls", advertisePeer, "--listen-peer-urls", listenPeer,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--heartbeat-interval", "50", "--election-timeout", "500"}, args...)
	return pxStart(t, name, filepath.Join(t.TempDir(), name), all...)
}

// dcSetSize creates <dir>/_config/size through a v2 keys API.
func dcSetSize(t *testing.T, dir string, size int) {
	t.Helper()
	code, body, _, err := pxDo(&http.Client{Timeout: 10 * time.Second}, "PUT", dir+"/_config/size", url.Values{"value": {strconv.Itoa(size)}})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("PUT %s/_config/size: %d %s %v", dir, code, body, err)
	}
}

// dcWaitCluster waits until the members form one cluster: a write to
// the first is read from every one, and /v2/members lists them all by
// name with their client URLs.
func dcWaitCluster(t *testing.T, ms []*pxProc) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(40 * time.Second)
	key := fmt.Sprintf("/v2/keys/dc-%d", time.Now().UnixNano())
	for {
		code, _, _, err := pxDo(hc, "PUT", ms[0].client+key, url.Values{"value": {"x"}})
		if err == nil && code == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write through %s: %d %v", ms[0].name, code, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		ok := true
		var last string
		for _, m := range ms {
			code, body, _, err := pxDo(hc, "GET", m.client+key, nil)
			if err != nil || code != http.StatusOK {
				ok, last = false, fmt.Sprintf("%s: %d %s %v", m.name, code, body, err)
			}
			_, body, _, _ = pxDo(hc, "GET", m.client+"/v2/members", nil)
			var list struct {
				Members []struct {
					Name       string   `json:"name"`
					ClientURLs []string `json:"clientURLs"`
				} `json:"members"`
			}
			_ = json.Unmarshal([]byte(body), &list)
			if len(list.Members) != len(ms) {
				ok, last = false, m.name+": "+body
			}
			for _, o := range ms {
				if !slices.ContainsFunc(list.Members, func(x struct {
					Name       string   `json:"name"`
					ClientURLs []string `json:"clientURLs"`
				}) bool {
					return x.Name == o.name && slices.Contains(x.ClientURLs, o.client)
				}) {
					ok, last = false, m.name+": "+body
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the members did not form one cluster: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dcBootstrap runs the discovery scenario on a discovery URL: three
// members bootstrap; a fourth with --discovery-fallback exit exits with
// etcd's "cluster is full"; a fifth, with the default fallback, serves
// as a proxy to the three.
func dcBootstrap(t *testing.T, durl string) {
	ms := make([]*pxProc, 3)
	for i, n := range []string{"d1", "d2", "d3"} {
		ms[i] = dcMember(t, n, "--discovery", durl)
		time.Sleep(100 * time.Millisecond) // the first ones wait for the others
	}
	dcWaitCluster(t, ms)

	full := dcMember(t, "d4", "--discovery", durl, "--discovery-fallback", "exit")
	log := full.waitExit(t, 20*time.Second)
	if full.err == nil || !strings.Contains(log, "failed to join discovery cluster (discovery: cluster is full)") {
		t.Fatalf("a fourth member: exit %v, log:\n%s", full.err, pxTail(log, 10))
	}
	t.Logf("a fourth member: %s", strings.TrimSpace(pxTail(log, 1)))

	px := dcMember(t, "d5", "--discovery", durl)
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.client)
	}
	pxWaitEndpoints(t, px.client, eps, 30*time.Second)
	hc := &http.Client{Timeout: 10 * time.Second}
	if code, body, _, err := pxDo(hc, "PUT", px.client+"/v2/keys/via-fallback", url.Values{"value": {"p"}}); err != nil || code != http.StatusCreated {
		t.Fatalf("a write through the fallback proxy: %d %s %v", code, body, err)
	}
	if _, err := os.Stat(filepath.Join(px.dir, "proxy", "cluster")); err != nil {
		t.Fatalf("the fallback proxy kept no cluster file: %v", err)
	}
	// Restarted, it is a proxy again (its data directory says so).
	px.stop(syscall.SIGTERM)
	px2 := pxStart(t, "d5", px.dir, "--listen-client-urls", px.client)
	pxWaitEndpoints(t, px2.client, eps, 30*time.Second)
}

// Three members bootstrap through a v2 key prefix on a Cairn member.
func TestDiscoveryOnCairn(t *testing.T) {
	host := startCluster(t, "host")
	clReady(host)
	durl := host.procs[0].client + "/v2/keys/_etcd/registry/0123456789abcdef"
	dcSetSize(t, durl, 3)
	dcBootstrap(t, durl)

	// A token without a size key fails as etcd does.
	bad := dcMember(t, "x", "--discovery", host.procs[0].client+"/v2/keys/_etcd/registry/nosuchtoken")
	log := bad.waitExit(t, 20*time.Second)
	if bad.err == nil || !strings.Contains(log, "failed to join discovery cluster (discovery: size key not found: 100: Key not found") {
		t.Fatalf("a token without a size: exit %v, log:\n%s", bad.err, pxTail(log, 5))
	}
}

// Three members bootstrap through a real etcd 3.4's v2 keys API.
func TestDiscoveryOnEtcd(t *testing.T) {
	bin := etcdtest.Require(t, "etcd")
	etcdURL, _ := etcdtest.Start(t, bin)
	durl := etcdURL + "/v2/keys/_etcd/registry/fedcba9876543210"
	dcSetSize(t, durl, 3)
	ms := make([]*pxProc, 3)
	for i, n := range []string{"e1", "e2", "e3"} {
		ms[i] = dcMember(t, n, "--discovery", durl)
	}
	dcWaitCluster(t, ms)
}

// Three members bootstrap through the etcd discovery service (Debian's
// etcd-discovery, discovery.etcd.io's server) backed by a Cairn member:
// the service creates the token (GET /new?size=3) and maps the token
// URL onto the backend's /v2/keys/_etcd/registry/<token>.
func TestDiscoveryService(t *testing.T) {
	bin, err := exec.LookPath("discovery.etcd.io")
	if err != nil {
		if os.Getenv("CAIRN_REQUIRE_ETCD_DISCOVERY") == "1" {
			t.Fatalf("discovery.etcd.io is not on PATH and CAIRN_REQUIRE_ETCD_DISCOVERY=1: %v", err)
		}
		t.Skipf("discovery.etcd.io is not on PATH (%v); install Debian's etcd-discovery or set CAIRN_REQUIRE_ETCD_DISCOVERY=1 to fail instead", err)
	}
	host := startCluster(t, "host")
	clReady(host)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	svc := exec.Command(bin, "--etcd", host.procs[0].client, "--host", "http://"+addr, "--addr", addr)
	out := &etcdtest.Log{}
	svc.Stdout, svc.Stderr = out, out
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = svc.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(svc.Process.Pid, syscall.SIGTERM)
		<-exited
		if t.Failed() {
			t.Logf("discovery.etcd.io output:\n%s", out.String())
		}
	})
	var durl string
	hc := &http.Client{Timeout: 5 * time.Second}
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := hc.Get("http://" + addr + "/new?size=3")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				durl = strings.TrimSpace(string(b))
				break
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /new?size=3: %v\n%s", err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("token URL %s", durl)
	if !strings.HasPrefix(durl, "http://"+addr+"/") {
		t.Fatalf("unexpected token URL %q", durl)
	}
	dcBootstrap(t, durl)
	// The registrations are in the backend, where the service put them.
	token := strings.TrimPrefix(durl, "http://"+addr+"/")
	_, body, _, _ := pxDo(hc, "GET", host.procs[0].client+"/v2/keys/_etcd/registry/"+token, nil)
	if strings.Count(body, `"value":"d`) != 3 {
		t.Fatalf("registrations in the backend: %s", body)
	}
}

// Three members bootstrap from DNS SRV records served by a test DNS
// server: _etcd-server._tcp.cairn.test names each member's peer address
// (target localhost, so that the URLs the records give also work for the
// peer transport); each member finds its own record by its advertised
// peer URL.
func TestDiscoverySRV(t *testing.T) {
	dns := dnstest.Start(t)
	type spec struct{ name, client, advertise, listen string }
	var specs []spec
	for _, n := range []string{"s1", "s2", "s3"} {
		port := freePort(t)
		specs = append(specs, spec{n, pxURL(t), fmt.Sprintf("http://localhost:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port)})
		dns.AddSRV("_etcd-server._tcp.cairn.test", dnstest.SRV{Target: "localhost", Port: uint16(port)})
	}
	dns.AddA("localhost", net.IPv4(127, 0, 0, 1)) // in case the hosts file does not say
	ms := make([]*pxProc, 3)
	for i, s := range specs {
		ms[i] = dcMemberAt(t, s.name, s.client, s.advertise, s.listen,
			"--discovery-srv", "cairn.test", "--discovery-srv-resolver", dns.Addr, "--initial-cluster-token", "srv-test")
	}
	dcWaitCluster(t, ms)
	if asked := strings.Join(dns.Asked(), " "); !strings.Contains(asked, "SRV _etcd-server._tcp.cairn.test.") {
		t.Fatalf("the test DNS server was not asked for the SRV records: %s", asked)
	}
	// A proxy finds the same cluster from the records.
	px := pxStart(t, "sp", filepath.Join(t.TempDir(), "sp"), "--proxy", "on", "--listen-client-urls", pxURL(t),
		"--discovery-srv", "cairn.test", "--discovery-srv-resolver", dns.Addr)
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.client)
	}
	pxWaitEndpoints(t, px.client, eps, 30*time.Second)
}
