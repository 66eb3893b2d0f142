package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/internal/dnstest"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// keysServer is an in-process v2 keys API (Cairn's handler over a Local
// backend) to host discovery directories.
func keysServer(t *testing.T) string {
	t.Helper()
	l := server.NewLocal(store.New(1000), 1, nil)
	t.Cleanup(l.Close)
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Config{Backend: l, Logger: zerolog.Nop()}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func put(t *testing.T, u, value string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader(url.Values{"value": {value}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("PUT %s: %d", u, resp.StatusCode)
	}
}

func cfg(dir string, id uint64, self string) Config {
	return Config{URL: dir, ID: id, Self: self, Logger: zerolog.Nop(), RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
}

// Three members joining at once all get the same cluster of three; a
// fourth gets "cluster is full"; a proxy gets the cluster; a member that
// registered before (restarted mid-bootstrap) gets it again.
func TestJoin(t *testing.T) {
	dir := keysServer(t) + "/v2/keys/_etcd/registry/tok"
	put(t, dir+"/_config/size", "3")
	var wg sync.WaitGroup
	got := make([]string, 3)
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() {
			got[i], errs[i] = Join(context.Background(), cfg(dir, uint64(i+1), fmt.Sprintf("m%d=http://127.0.0.1:%d", i, 1000+i)))
		})
		time.Sleep(20 * time.Millisecond) // the first ones wait for the rest
	}
	wg.Wait()
	for i := range 3 {
		if errs[i] != nil {
			t.Fatalf("member %d: %v", i, errs[i])
		}
		parts := strings.Split(got[i], ",")
		slices.Sort(parts)
		if strings.Join(parts, ",") != "m0=http://127.0.0.1:1000,m1=http://127.0.0.1:1001,m2=http://127.0.0.1:1002" {
			t.Fatalf("member %d got %q", i, got[i])
		}
	}
	_, err := Join(context.Background(), cfg(dir, 9, "m9=http://127.0.0.1:1009"))
	if !errors.Is(err, ErrFullCluster) || err.Error() != "failed to join discovery cluster (discovery: cluster is full)" {
		t.Fatalf("a fourth member: %v", err)
	}
	if s, err := Get(context.Background(), cfg(dir, 0, "")); err != nil || len(strings.Split(s, ",")) != 3 {
		t.Fatalf("a proxy: %q %v", s, err)
	}
	if s, err := Join(context.Background(), cfg(dir, 2, "m1=http://127.0.0.1:1001")); err != nil || len(strings.Split(s, ",")) != 3 {
		t.Fatalf("a member registered before: %q %v", s, err)
	}
	if _, err := Join(context.Background(), cfg(dir, 2, "other=http://127.0.0.1:1001")); !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("the same ID with another value: %v", err)
	}
}

// The errors of a bad token, as etcd words them.
func TestJoinErrors(t *testing.T) {
	base := keysServer(t) + "/v2/keys/reg"
	ctx := context.Background()
	_, err := Join(ctx, cfg(base+"/none", 1, "a=http://127.0.0.1:1"))
	if !errors.Is(err, ErrSizeNotFound) || !strings.HasPrefix(err.Error(), "failed to join discovery cluster (discovery: size key not found: 100: Key not found") {
		t.Fatalf("no size key: %v", err)
	}
	put(t, base+"/bad/_config/size", "three")
	if _, err := Join(ctx, cfg(base+"/bad", 1, "a=http://127.0.0.1:1")); !errors.Is(err, ErrBadSizeKey) {
		t.Fatalf("bad size: %v", err)
	}
	put(t, base+"/dup/_config/size", "2")
	put(t, base+"/dup/77", "a=http://127.0.0.1:7")
	if _, err := Join(ctx, cfg(base+"/dup", 1, "a=http://127.0.0.1:1")); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("a name registered twice: %v", err)
	}
	if _, err := Join(ctx, cfg("127.0.0.1:1/x", 1, "a=http://127.0.0.1:1")); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("invalid URL: %v", err)
	}
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<html>not here</html>"))
	}))
	defer html.Close()
	if _, err := Join(ctx, cfg(html.URL+"/tok", 1, "a=http://127.0.0.1:1")); !errors.Is(err, ErrBadDiscoveryEndpoint) {
		t.Fatalf("not a v2 keys endpoint: %v", err)
	}
}

// While the service is unreachable, Join keeps trying until it answers.
func TestJoinRetriesUntilReachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	done := make(chan error, 1)
	go func() {
		_, err := Join(context.Background(), cfg("http://"+addr+"/v2/keys/tok", 1, "a=http://127.0.0.1:1"))
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	l := server.NewLocal(store.New(100), 1, nil)
	defer l.Close()
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	srv := &http.Server{Handler: httpapi.NewHandler(httpapi.Config{Backend: l, Logger: zerolog.Nop()})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	put(t, "http://"+addr+"/v2/keys/tok/_config/size", "1")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Join did not finish once the service answered")
	}
}

// SRV records from a test DNS server: this member's own record (by its
// advertised peer URL) gets its name, the others 0 and 1; https records
// come from _etcd-server-ssl.
func TestSRVCluster(t *testing.T) {
	dns := dnstest.Start(t)
	for i, host := range []string{"a.cairn.test", "b.cairn.test", "c.cairn.test"} {
		dns.AddA(host, net.IPv4(127, 0, 0, byte(10+i)))
		dns.AddSRV("_etcd-server._tcp.cairn.test", dnstest.SRV{Target: host, Port: 2380})
	}
	dns.AddA("s.cairn.test", net.IPv4(127, 0, 0, 20))
	dns.AddSRV("_etcd-server-ssl-x._tcp.cairn.test", dnstest.SRV{Target: "s.cairn.test", Port: 2380})
	r := NewResolver(dns.Addr)
	s, err := SRVCluster(context.Background(), SRVConfig{Domain: "cairn.test", Name: "bee",
		AdvertisePeerURLs: []string{"http://127.0.0.11:2380"}, Resolver: r})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(s, ",")
	slices.Sort(parts)
	if want := "0=http://a.cairn.test:2380,1=http://c.cairn.test:2380,bee=http://b.cairn.test:2380"; strings.Join(parts, ",") != want &&
		strings.Join(parts, ",") != "0=http://c.cairn.test:2380,1=http://a.cairn.test:2380,bee=http://b.cairn.test:2380" {
		t.Fatalf("cluster %q, want %q (0 and 1 in either order)", s, want)
	}
	s, err = SRVCluster(context.Background(), SRVConfig{Domain: "cairn.test", ServiceName: "x", Name: "s",
		AdvertisePeerURLs: []string{"https://127.0.0.20:2380"}, Resolver: r})
	if err != nil || s != "s=https://s.cairn.test:2380" {
		t.Fatalf("ssl records with a service name: %q %v", s, err)
	}
	if _, err := SRVCluster(context.Background(), SRVConfig{Domain: "none.test", Resolver: r}); err == nil ||
		!strings.Contains(err.Error(), "srv: too many errors querying DNS SRV records") {
		t.Fatalf("no records: %v", err)
	}
	if asked := strings.Join(dns.Asked(), " "); !strings.Contains(asked, "SRV _etcd-server._tcp.cairn.test.") || !strings.Contains(asked, "A b.cairn.test.") {
		t.Fatalf("questions: %s", asked)
	}
}
