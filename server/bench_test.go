package server

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/store"
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
	cpu0 := processCPU()
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
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the process's user and system CPU time so far, in ns.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
