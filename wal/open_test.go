package wal

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/cairnkv/cairn/consensus"
)

// bigLog is a closed log of one segment preallocated to the default 64 MB
// whose records (3 MiB of entries) fill more than one read chunk.
func bigLog(t *testing.T) (dir string, entries []consensus.Entry, written int) {
	t.Helper()
	dir = t.TempDir()
	w := mustCreate(t, dir, testMeta, Options{})
	data := bytes.Repeat([]byte("v"), 1024)
	for i := uint64(1); i <= 3072; i += 128 {
		var ents []consensus.Entry
		for j := range uint64(128) {
			ents = append(ents, consensus.Entry{Term: 1, Index: i + j, Data: data})
		}
		mustSave(t, w, consensus.HardState{}, ents)
		entries = append(entries, ents...)
	}
	written = int(w.off)
	mustClose(t, w)
	if written <= segmentChunk {
		t.Fatalf("the records take %d bytes, not more than a chunk", written)
	}
	if size := fileSize(t, lastSeg(t, dir)); size != DefaultSegmentSize {
		t.Fatalf("the segment is %d bytes, want %d", size, DefaultSegmentSize)
	}
	return dir, entries, written
}

// Open reads every record of a segment larger than its read chunk, and
// holds in memory about what the records take, not the preallocated
// zeros after them.
func TestOpenHoldsTheRecordsNotTheZeros(t *testing.T) {
	dir, entries, written := bigLog(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w, c, err := Open(dir, 0, Options{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := sameEntries(c.Entries, entries); err != nil {
		t.Fatal(err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	// The records read in growing chunks (at most 2 × written in all),
	// the entries' copies, the buffer the zeros are checked through.
	limit := uint64(4*written + 2*segmentChunk)
	if allocated > limit {
		t.Errorf("Open of %d bytes of records in a %d-byte segment allocated %d bytes, want at most %d",
			written, DefaultSegmentSize, allocated, limit)
	}
}

// The zeros after the records are still all checked: a non-zero byte far
// past the end of the records (beyond any chunk read for the records) is
// refused as before, after a clean end and after a torn record alike.
func TestDataFarAfterTheEndRefused(t *testing.T) {
	dir, _, _ := bigLog(t)
	seg := lastSeg(t, dir)
	orig := readAll(t, seg)
	recs := layout(t, orig)
	last := recs[len(recs)-1]
	far := DefaultSegmentSize - 100
	if far-last.end < 8*segmentChunk {
		t.Fatalf("the stray byte is only %d bytes after the records", far-last.end)
	}
	t.Run("after the end", func(t *testing.T) {
		d := copyDir(t, dir)
		b := bytes.Clone(orig)
		b[far] = 1
		writeAll(t, lastSeg(t, d), b)
		_, _, err := Open(d, 0, Options{})
		checkCorrupt(t, err, seg, last.end)
	})
	t.Run("after a torn record", func(t *testing.T) {
		d := copyDir(t, dir)
		b := bytes.Clone(orig)
		clear(b[last.off+headerSize+16 : last.payloadEnd])
		b[far] = 1
		writeAll(t, lastSeg(t, d), b)
		_, _, err := Open(d, 0, Options{})
		checkCorrupt(t, err, seg, last.off)
		// Without the stray byte the record is a torn write, cut off.
		b[far] = 0
		writeAll(t, lastSeg(t, d), b)
		w, _, err := Open(d, 0, Options{})
		if err != nil {
			t.Fatalf("a torn last record alone: %v", err)
		}
		mustClose(t, w)
	})
}
