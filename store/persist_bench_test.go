package store

import (
	"fmt"
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
