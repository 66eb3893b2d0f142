package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/internal/cputime"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// BenchmarkMemberRoundTrip is a whole request: a client's PUT or GET over
// a keep-alive loopback connection, net/http's server, the client API
// handler wired as cairn serves it (metrics, limits, auth check), and a
// real member (its run loop, WAL fsync, apply, bbolt mirror; with three
// members, the peer transport over loopback too). 64 clients send at once
// (b.SetParallelism), spread over the members as the shared load
// generator spreads them, on 1,000 keys of 256-byte values.
//
// The client writes pre-formatted requests and reads answers without
// net/http's client, so that allocs/op and cpu-ns/op are the server side's
// (every member of the cluster, as they share this process), plus a few
// bytes of the client's. GET is linearizable (Cairn's default). The
// members keep their production timings (100 ms heartbeat), so starting
// a cluster takes a second or two, once per topology.
func BenchmarkMemberRoundTrip(b *testing.B) {
	for _, n := range []int{1, 3} {
		c := startBenchCluster(b, n)
		b.Run(fmt.Sprintf("members=%d/put", n), func(b *testing.B) { c.run(b, c.puts) })
		b.Run(fmt.Sprintf("members=%d/get", n), func(b *testing.B) { c.run(b, c.gets) })
		c.stop()
	}
}

// benchCluster is n members in this process, each serving the client
// API and the peer API on loopback.
type benchCluster struct {
	members    []*server.Member
	srvs       []*http.Server
	clientAddr []string
	puts, gets [][]byte // pre-formatted requests, one per key
}

const roundTripKeys = 1000

func startBenchCluster(b *testing.B, n int) *benchCluster {
	b.Helper()
	c := &benchCluster{}
	peerLns := make([]net.Listener, n)
	peers := map[uint64]string{}
	var ids []uint64
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		peerLns[i] = ln
		id := uint64(i + 1)
		ids = append(ids, id)
		peers[id] = "http://" + ln.Addr().String()
	}
	for i := range n {
		id := uint64(i + 1)
		others := map[uint64]string{}
		for o, u := range peers {
			if o != id {
				others[o] = u
			}
		}
		reg := prometheus.NewRegistry()
		m, err := server.StartMember(server.MemberConfig{ID: id, ClusterID: 0xbe1c, DataDir: b.TempDir(),
			Voters: ids, Peers: others, PeerURLs: []string{peers[id]}, Metrics: reg, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		c.members = append(c.members, m)
		psrv := &http.Server{Handler: m.PeerHandler()}
		go func() { _ = psrv.Serve(peerLns[i]) }()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		csrv := &http.Server{Handler: NewHandler(Config{Backend: m, Metrics: reg, Logger: zerolog.Nop()})}
		go func() { _ = csrv.Serve(ln) }()
		c.srvs = append(c.srvs, psrv, csrv)
		c.clientAddr = append(c.clientAddr, ln.Addr().String())
	}
	// Wait for a leader that every member knows, then write the keys.
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range c.members {
		for {
			if _, ok := m.Leader(); ok {
				break
			}
			if time.Now().After(deadline) {
				c.stop()
				b.Fatal("no leader within 30 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	value := strings.Repeat("v", 256)
	for i := range roundTripKeys {
		key := fmt.Sprintf("/bench/k%07d", i)
		if _, err := c.members[0].Do(context.Background(), &store.Request{Op: store.OpSet, Path: key, Value: value}); err != nil {
			c.stop()
			b.Fatal(err)
		}
		body := "value=" + value
		c.puts = append(c.puts, fmt.Appendf(nil, "PUT /v2/keys%s HTTP/1.1\r\nHost: cairn\r\n"+
			"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", key, len(body), body))
		c.gets = append(c.gets, fmt.Appendf(nil, "GET /v2/keys%s HTTP/1.1\r\nHost: cairn\r\n\r\n", key))
	}
	return c
}

func (c *benchCluster) stop() {
	for _, s := range c.srvs {
		_ = s.Close()
	}
	for _, m := range c.members {
		_ = m.Stop()
	}
}

// run sends reqs (a random one each time) from 64 clients, client i to
// member i mod n, and reports the process's CPU time per request.
func (c *benchCluster) run(b *testing.B, reqs [][]byte) {
	var next atomic.Uint64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1)
		conn, err := net.Dial("tcp", c.clientAddr[int(i)%len(c.clientAddr)])
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		br := bufio.NewReaderSize(conn, 4096)
		k := int(i * 7919)
		for pb.Next() {
			k = (k + 1) % len(reqs)
			if _, err := conn.Write(reqs[k]); err != nil {
				b.Error(err)
				return
			}
			if err := readAnswer(br); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
}

// readAnswer reads one HTTP/1.1 answer and checks it is a 200 or 201,
// allocating nothing for a Content-Length answer.
func readAnswer(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) && !bytes.HasPrefix(line, []byte("HTTP/1.1 201 ")) {
		return fmt.Errorf("answer %q", bytes.TrimSpace(line))
	}
	length, chunked := -1, false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, v, _ := bytes.Cut(h, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return err
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		}
	}
	switch {
	case chunked:
		_, err = io.Copy(io.Discard, httputil.NewChunkedReader(br))
		if err == nil {
			_, err = br.ReadSlice('\n') // the empty trailer
		}
		return err
	case length >= 0:
		_, err = br.Discard(length)
		return err
	}
	return fmt.Errorf("answer without a length")
}
