package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkRestart measures a member's restart from its applied-state
// file: opening bbolt and rebuilding the tree, TTL heap and history, for
// 100k and 1M keys of 256 B spread over 1000 directories.
func BenchmarkRestart(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "state.db")
			db, err := OpenDB(path)
			if err != nil {
				b.Fatal(err)
			}
			s, err := Open(db, DefaultEventHistory)
			if err != nil {
				b.Fatal(err)
			}
			value := strings.Repeat("v", 256)
			start := time.Now()
			for i := range n {
				r := Request{Op: OpSet, Path: fmt.Sprintf("/dir%03d/key%07d", i%1000, i), Value: value, Time: 1}
				if _, err := s.Apply(uint64(i+1), &r); err != nil {
					b.Fatal(err)
				}
				if (i+1)%100_000 == 0 {
					if err := s.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			b.Logf("built %d keys in %v", n, time.Since(start))
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				db, err := OpenDB(path)
				if err != nil {
					b.Fatal(err)
				}
				s, err := Open(db, DefaultEventHistory)
				if err != nil {
					b.Fatal(err)
				}
				if s.Index() != uint64(n) {
					b.Fatalf("index %d after restart, want %d", s.Index(), n)
				}
				b.StopTimer()
				db.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkMirrorPerPut measures what the bbolt mirror costs a put: a
// store of 10,000 keys of 256 B takes puts to random keys, written in
// batches of the given size (100 ms of puts at 1k, 7k and 70k puts a
// second), on a file system in memory when /dev/shm exists, so that
// the figure is CPU, not fsync. One op is one put, applied and written.
func BenchmarkMirrorPerPut(b *testing.B) {
	for _, batch := range []int{100, 700, 7000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			dir := b.TempDir()
			if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
				d, err := os.MkdirTemp("/dev/shm", "cairn-bench-")
				if err == nil {
					dir = d
					defer os.RemoveAll(d)
				}
			}
			s, err := OpenFile(filepath.Join(dir, "state.db"), DefaultEventHistory)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			value := strings.Repeat("v", 256)
			idx := uint64(0)
			put := func(k int) {
				idx++
				r := Request{Op: OpSet, Path: fmt.Sprintf("/bench/k%05d", k), Value: value, Time: 1}
				if _, err := s.Apply(idx, &r); err != nil {
					b.Fatal(err)
				}
			}
			for k := range 10_000 {
				put(k)
			}
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				put(rng.IntN(10_000))
				if (i+1)%batch == 0 || i == b.N-1 {
					if err := s.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
