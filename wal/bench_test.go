package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairnkv/cairn/consensus"
)

// BenchmarkRawFsync is the disk's raw rate for one writer: 64 bytes
// written and fsynced at a time into a preallocated file, as the WAL does
// with a batch of one small record.
func BenchmarkRawFsync(b *testing.B) {
	f, err := OS.OpenFile(filepath.Join(b.TempDir(), "raw"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 20
	if err := f.Preallocate(size); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64)
	for i := range buf {
		buf[i] = byte(i)
	}
	b.SetBytes(64)
	b.ResetTimer()
	off := int64(0)
	for b.Loop() {
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		if off += 64; off >= size {
			off = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}

// BenchmarkSaveWriters: writers goroutines each Save one small entry at a
// time (b.N Saves in all); group commit should make the Saves per second
// grow with the writers far beyond the raw fsync rate.
func BenchmarkSaveWriters(b *testing.B) {
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			cfs := &syncCountFS{FS: OS}
			w, err := Create(b.TempDir(), testMeta, Options{FS: cfs})
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 32)
			var (
				next atomic.Int64
				wg   sync.WaitGroup
			)
			syncs0 := cfs.syncs.Load()
			b.ResetTimer()
			for range writers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						// Indexes may reach the log slightly out of order
						// here; Save does not look at them.
						e := consensus.Entry{Term: 1, Index: uint64(i), Data: data}
						if err := w.Save(consensus.HardState{}, []consensus.Entry{e}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
			b.ReportMetric(float64(b.N)/float64(max(1, cfs.syncs.Load()-syncs0)), "saves/fsync")
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// syncCountFS counts the fsyncs of the files it opens.
type syncCountFS struct {
	FS
	syncs atomic.Int64
}

func (c *syncCountFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return syncCountFile{f, c}, nil
}

type syncCountFile struct {
	File
	c *syncCountFS
}

func (f syncCountFile) Sync() error {
	f.c.syncs.Add(1)
	return f.File.Sync()
}

// BenchmarkOpen: reopening a log whose one segment (preallocated to the
// default 64 MB) holds 1,000 entries of 256 bytes, as a member does on
// every restart.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	w, err := Create(dir, testMeta, Options{})
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 256)
	for i := uint64(1); i <= 1000; i += 100 {
		var ents []consensus.Entry
		for j := range uint64(100) {
			ents = append(ents, consensus.Entry{Term: 1, Index: i + j, Data: data})
		}
		if err := w.Save(consensus.HardState{Term: 1, Commit: i + 99}, ents); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		w, c, err := Open(dir, 0, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(c.Entries) != 1000 {
			b.Fatalf("%d entries", len(c.Entries))
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
