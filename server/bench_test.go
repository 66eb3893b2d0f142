package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/cputime"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// BenchmarkMemberSetParallel: writes per second through one member (run
// loop, WAL with group commit, apply, bbolt batches), from many goroutines
// at once (-cpu and b.SetParallelism control how many).
func BenchmarkMemberSetParallel(b *testing.B) {
	cfg := MemberConfig{ID: 1, ClusterID: 9, DataDir: b.TempDir(), HeartbeatInterval: 10 * time.Millisecond}
	m, err := StartMember(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Stop()
	if _, err := m.Do(context.Background(), &store.Request{Op: store.OpSet, Path: "/warm", Value: "x"}); err != nil {
		b.Fatal(err)
	}
	var n atomic.Uint64
	value := string(make([]byte, 256))
	b.SetParallelism(128)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := m.Do(context.Background(), &store.Request{Op: store.OpSet, Path: fmt.Sprintf("/k%d", i%10000), Value: value}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	// CPU time is steadier than wall time on a shared machine.
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkClusterSet: writes through the leader of three members that
// talk over loopback HTTP (the real peer transport), from one client and
// from 64 at once. wal-fsyncs/op counts the WAL fsyncs of all three
// members per write.
func BenchmarkClusterSet(b *testing.B) {
	for _, clients := range []int{1, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			fs := &fsyncCounter{FS: wal.OS}
			m := startBenchCluster(b, 3, fs)
			value := string(make([]byte, 256))
			var n atomic.Uint64
			put := func() error {
				i := n.Add(1)
				_, err := m.Do(context.Background(), &store.Request{Op: store.OpSet, Path: fmt.Sprintf("/k%d", i%10000), Value: value})
				return err
			}
			if err := put(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, syncs0 := cputime.Process(), fs.syncs.Load()
			if clients == 1 {
				for b.Loop() {
					if err := put(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := put(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(fs.syncs.Load()-syncs0)/float64(b.N), "wal-fsyncs/op")
		})
	}
}

// startBenchCluster starts n members on loopback, each with its WAL on fs,
// and returns the leader once there is one.
func startBenchCluster(b *testing.B, n int, fs wal.FS) *Member {
	b.Helper()
	var ids []uint64
	lns := map[uint64]net.Listener{}
	urls := map[uint64]string{}
	for i := range n {
		id := uint64(i + 1)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ids, lns[id], urls[id] = append(ids, id), ln, "http://"+ln.Addr().String()
	}
	var members []*Member
	for _, id := range ids {
		peers := map[uint64]string{}
		for o, u := range urls {
			if o != id {
				peers[o] = u
			}
		}
		m, err := StartMember(MemberConfig{ID: id, ClusterID: 9, DataDir: b.TempDir(), HeartbeatInterval: 10 * time.Millisecond,
			Voters: ids, Peers: peers, PeerURLs: []string{urls[id]}, WALFS: fs})
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: m.PeerHandler()}
		go func() { _ = srv.Serve(lns[id]) }()
		b.Cleanup(func() {
			_ = m.Stop()
			_ = srv.Close()
		})
		members = append(members, m)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, m := range members {
			if m.lead.Load() == m.cfg.ID {
				return m
			}
		}
	}
	b.Fatal("no leader within 15 s")
	return nil
}

// fsyncCounter counts the fsyncs of the files it opens.
type fsyncCounter struct {
	wal.FS
	syncs atomic.Int64
}

func (c *fsyncCounter) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return countedFile{f, c}, nil
}

type countedFile struct {
	wal.File
	c *fsyncCounter
}

func (f countedFile) Sync() error {
	f.c.syncs.Add(1)
	return f.File.Sync()
}
