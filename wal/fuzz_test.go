package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/consensus"
)

// sampleSegment frames a small segment: seed, metadata, hard state,
// snapshot marker, entries, followed by pad zero bytes.
func sampleSegment(seed uint32, entries int, pad int) []byte {
	var s [4]byte
	binary.LittleEndian.PutUint32(s[:], seed)
	b, crc := frame(nil, seed, recCRC, s[:])
	b, crc = frame(b, crc, recMetadata, testMeta)
	b, crc = frame(b, crc, recHardState, encodeHardState(consensus.HardState{Term: 2, Vote: 1, Commit: 3}))
	b, crc = frame(b, crc, recSnapshot, encodeSnapshot(SnapshotMarker{Index: 3, Term: 1, ConfState: consensus.ConfState{Voters: []uint64{1, 2}}}))
	for i := 1; i <= entries; i++ {
		b, crc = frame(b, crc, recEntry, encodeEntry(mkEntry(uint64(i), 2)))
	}
	return append(b, make([]byte, pad)...)
}

func FuzzScan(f *testing.F) {
	seg := sampleSegment(0x1234abcd, 5, 64)
	f.Add(seg, uint32(0x1234abcd), true, true)
	f.Add(seg, uint32(0x1234abcd), true, false)
	f.Add(seg, uint32(7), true, false)
	f.Add(seg[:len(seg)-64-3], uint32(0x1234abcd), true, true)
	f.Add(seg[:41], uint32(0), false, true)
	f.Add(sampleSegment(0, 0, 0), uint32(0), false, false)
	f.Add([]byte{}, uint32(0), false, true)
	f.Add(make([]byte, 64), uint32(0), false, true)
	f.Add([]byte{5, 0, 0, 0, 1, 2, 3, 4, 4, 0, 0, 0, 0}, uint32(0), false, true)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 4}, uint32(0), false, false)
	f.Fuzz(func(t *testing.T, data []byte, seed uint32, checkSeed, isLast bool) {
		in := append([]byte(nil), data...)
		recs, end, crc, err := scanBytes(data, seed, checkSeed, isLast, false)
		if !bytes.Equal(in, data) {
			t.Fatal("scan modified its input")
		}
		// However the segment is read (the reader's chunk decides when
		// it reads more, and through what it checks the zeros), the scan
		// says the same.
		for _, chunk := range []int{1, 7, 64} {
			recs2, end2, crc2, err2 := scan(newSegReader(bytes.NewReader(data), len(data), chunk), seed, checkSeed, isLast, false)
			if fmt.Sprint(err2) != fmt.Sprint(err) || end2 != end || crc2 != crc || !reflect.DeepEqual(recs2, recs) {
				t.Fatalf("read %d bytes at a time: %d records, end %d, crc %08x, %v; whole: %d, %d, %08x, %v",
					chunk, len(recs2), end2, crc2, err2, len(recs), end, crc, err)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset") {
				t.Fatalf("scan error %q: not ErrCorrupt with an offset", err)
			}
			return
		}
		// end is aligned: it may pass the end of data by less than align
		// when the last record's padding was cut off.
		if end < 0 || end > len(data)+align-1 || end%align != 0 {
			t.Fatalf("end %d of %d bytes", end, len(data))
		}
		// Re-frame what scan returned: it must be the bytes it read.
		var (
			b       []byte
			padding []bool // b[i] is padding
			prev    = seed
		)
		for i, r := range recs {
			if i == 0 {
				if r.typ != recCRC || len(r.data) != 4 {
					t.Fatalf("first record is type %d with %d bytes, not a chain seed", r.typ, len(r.data))
				}
				prev = binary.LittleEndian.Uint32(r.data)
				if checkSeed && prev != seed {
					t.Fatalf("seed %08x accepted, want %08x", prev, seed)
				}
			}
			if r.typ == 0 {
				t.Fatalf("record %d has type 0", i)
			}
			start := len(b)
			b, prev = frame(b, prev, r.typ, r.data)
			for j := start; j < len(b); j++ {
				padding = append(padding, j >= start+headerSize+1+len(r.data))
			}
		}
		if crc != prev {
			t.Fatalf("returned crc %08x, re-framed chain ends at %08x", crc, prev)
		}
		// Compare, leaving out padding (TestPaddingIsChecked) and a
		// record's padding cut off by the end of the data
		// (TestTornTailTruncated).
		if end > len(b) {
			t.Fatalf("end %d beyond the %d bytes of the records", end, len(b))
		}
		for i := range min(end, len(data)) {
			if b[i] != data[i] {
				t.Fatalf("byte %d: read %#x, re-framed %#x (padding %v)", i, data[i], b[i], padding[i])
			}
		}
		if end < len(b) && !padding[end] {
			t.Fatalf("end %d inside a record of the %d re-framed bytes", end, len(b))
		}
		if !isLast && !allZero(data[min(end, len(data)):]) {
			t.Fatalf("non-last segment: %d bytes after the end %d are not all zeros", len(data)-end, end)
		}
		// A last segment is read the same way, only more leniently.
		if !isLast {
			recs2, end2, crc2, err := scanBytes(data, seed, checkSeed, true, false)
			if err != nil || end2 != end || crc2 != crc || !reflect.DeepEqual(recs2, recs) {
				t.Fatalf("as a last segment: %d records, end %d, %v; as a non-last one: %d, %d", len(recs2), end2, err, len(recs), end)
			}
		}
		// Appends resume at end: it must be the aligned end of the last
		// record, never inside its padding.
		if end < len(b) {
			t.Fatalf("scan returns end %d inside the padding of its last record (it ends at %d)", end, len(b))
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []consensus.Entry{
		{},
		{Term: 1, Index: 1},
		{Term: 1 << 40, Index: 1<<64 - 1, Type: consensus.EntryConfChange, Data: []byte("conf")},
		mkEntry(12345, 7),
	} {
		f.Add(encodeEntry(e))
	}
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Add([]byte{1, 1, 9})
	f.Add([]byte{0x80, 0x00, 0x01, 0x00, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeEntry error %v is not ErrCorrupt", err)
			}
			return
		}
		if e.Type != consensus.EntryNormal && e.Type != consensus.EntryConfChange {
			t.Fatalf("accepted entry type %d", e.Type)
		}
		if len(e.Data) > 0 && &e.Data[0] == &data[len(data)-len(e.Data)] {
			t.Fatal("entry data aliases the input")
		}
		enc := encodeEntry(e)
		e2, err := decodeEntry(enc)
		if err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip: %+v -> %x -> %+v, %v", e, enc, e2, err)
		}
		if !bytes.Equal(encodeEntry(e2), enc) {
			t.Fatal("encoding is not stable")
		}
		if len(enc) > len(data) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(data), len(enc))
		}
	})
}

func FuzzDecodeHardState(f *testing.F) {
	for _, h := range []consensus.HardState{{}, {Term: 1, Vote: 2, Commit: 3}, {Term: 1<<64 - 1, Vote: 1 << 63, Commit: 127}} {
		f.Add(encodeHardState(h), h.Term, h.Vote, h.Commit)
	}
	f.Add([]byte{}, uint64(0), uint64(0), uint64(0))
	f.Add([]byte{1, 2, 3, 4}, uint64(128), uint64(0), uint64(1))
	f.Add([]byte{0x80, 0x80}, uint64(0), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, term, vote, commit uint64) {
		h := consensus.HardState{Term: term, Vote: vote, Commit: commit}
		if got, err := decodeHardState(encodeHardState(h)); err != nil || got != h {
			t.Fatalf("%+v round trips to %+v, %v", h, got, err)
		}
		h, err := decodeHardState(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeHardState error %v is not ErrCorrupt", err)
			}
			return
		}
		enc := encodeHardState(h)
		if h2, err := decodeHardState(enc); err != nil || h2 != h {
			t.Fatalf("round trip: %+v -> %x -> %+v, %v", h, enc, h2, err)
		}
		if len(enc) > len(data) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(data), len(enc))
		}
	})
}

func FuzzDecodeSnapshotMarker(f *testing.F) {
	for _, m := range []SnapshotMarker{
		{},
		{Index: 10, Term: 2, ConfState: consensus.ConfState{Voters: []uint64{1, 2, 3}}},
		{Index: 1 << 62, Term: 9, ConfState: consensus.ConfState{Voters: []uint64{1}, Learners: []uint64{4, 1 << 60}}},
	} {
		f.Add(encodeSnapshot(m))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 1, 2, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeSnapshotMarker(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeSnapshotMarker error %v is not ErrCorrupt", err)
			}
			return
		}
		enc := encodeSnapshot(m)
		m2, err := DecodeSnapshotMarker(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %+v -> %x -> %+v, %v", m, enc, m2, err)
		}
		if len(enc) > len(data) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(data), len(enc))
		}
	})
}

// FuzzFrameEntry: an entry framed straight from the entry is the record
// framing its encoding would be, chain crc included.
func FuzzFrameEntry(f *testing.F) {
	f.Add(uint64(1), uint64(1), false, []byte("x"), uint32(0))
	f.Add(uint64(1<<63), uint64(1<<64-1), true, []byte{}, uint32(0xdeadbeef))
	f.Add(uint64(7), uint64(300), false, bytes.Repeat([]byte{0}, 300), uint32(5))
	f.Fuzz(func(t *testing.T, term, index uint64, conf bool, data []byte, prev uint32) {
		e := consensus.Entry{Term: term, Index: index, Data: data}
		if conf {
			e.Type = consensus.EntryConfChange
		}
		prefix := []byte("prefix")
		got, gotCRC := frameEntry(bytes.Clone(prefix), prev, e)
		want, wantCRC := frame(bytes.Clone(prefix), prev, recEntry, encodeEntry(e))
		if !bytes.Equal(got, want) || gotCRC != wantCRC {
			t.Fatalf("frameEntry gives %x (crc %08x), frame of encodeEntry %x (crc %08x)", got, gotCRC, want, wantCRC)
		}
	})
}
