package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/cairnkv/cairn/consensus"
)

// Record framing. Every record is
//
//	length  uint32 LE   low 24 bits: bytes of payload (type + data), never
//	                    0; high 8 bits: a check of those 24 bits, so that a
//	                    damaged length is recognised as damage and never
//	                    taken for a torn write (which it would make the
//	                    rest of the log look like)
//	crc     uint32 LE   CRC-32C of the payload, chained: seeded with the
//	                    previous record's crc (the first record of a
//	                    segment is seeded with the last crc of the one
//	                    before, which its crcSeed record carries)
//	payload type byte, then data
//	padding zeros up to a multiple of 8 bytes
//
// Segments are preallocated, so the bytes after the last record are zeros:
// a length of 0 marks the end.
const (
	headerSize = 8
	align      = 8
	// MaxRecordSize bounds one record's payload (24 bits of length).
	MaxRecordSize = 1<<24 - 1
	// MaxEntryData bounds an entry's data: its record (type, term, index,
	// entry type, data) must fit in MaxRecordSize. Save refuses more.
	MaxEntryData = MaxRecordSize - 1 - entryHeadSize
	// segmentHeaderRecords: every segment starts with the chain seed, the
	// metadata and the hard state, written and fsynced before the segment
	// is renamed into place; damage among them is never a torn write.
	segmentHeaderRecords = 3
)

// lengthWord packs a payload length with its check byte.
func lengthWord(n int) uint32 {
	var b [3]byte
	b[0], b[1], b[2] = byte(n), byte(n>>8), byte(n>>16)
	return uint32(n) | uint32(byte(crc32.Checksum(b[:], crcTable)))<<24
}

// decodeLength unpacks a length word; ok is false when the check fails.
func decodeLength(w uint32) (int, bool) {
	n := int(w & 0xffffff)
	return n, n > 0 && lengthWord(n) == w
}

// Record types. Never renumber.
const (
	recMetadata  byte = 1 // caller's metadata (cluster and member IDs)
	recEntry     byte = 2 // a Raft entry
	recHardState byte = 3 // term, vote, commit
	recCRC       byte = 4 // seed of a segment's chain: the previous crc
	recSnapshot  byte = 5 // a snapshot marker: index, term, membership
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by every error about damaged log contents.
var ErrCorrupt = errors.New("wal: corrupt")

// ErrTooLarge is Save's refusal of an entry whose record would not fit in
// MaxRecordSize. Nothing of that Save is written, and the WAL goes on.
var ErrTooLarge = errors.New("wal: entry too large for a record")

// frame appends a framed record to b and returns the new chain crc.
func frame(b []byte, prev uint32, typ byte, data []byte) ([]byte, uint32) {
	start := len(b)
	b = append(b, make([]byte, headerSize)...)
	b = append(b, typ)
	return finishFrame(append(b, data...), start, prev)
}

// frameEntry frames e's entry record (frame(b, prev, recEntry,
// encodeEntry(e))) without encoding it apart first.
func frameEntry(b []byte, prev uint32, e consensus.Entry) ([]byte, uint32) {
	start := len(b)
	b = append(b, make([]byte, headerSize)...)
	b = appendEntryHead(append(b, recEntry), e)
	return finishFrame(append(b, e.Data...), start, prev)
}

// finishFrame completes the record whose header starts at b[start] and
// whose payload is the rest of b: it fills in the header and pads.
func finishFrame(b []byte, start int, prev uint32) ([]byte, uint32) {
	n := len(b) - start - headerSize
	crc := crc32.Update(prev, crcTable, b[start+headerSize:])
	binary.LittleEndian.PutUint32(b[start:], lengthWord(n))
	binary.LittleEndian.PutUint32(b[start+4:], crc)
	for pad := padding(n); pad > 0; pad-- {
		b = append(b, 0)
	}
	return b, crc
}

func padding(n int) int { return (align - n%align) % align }

// recordSize is the framed size of a payload of n bytes.
func recordSize(n int) int { return headerSize + n + padding(n) }

// SnapshotMarker records that a snapshot at (Index, Term) exists, so that
// replay can start from it.
type SnapshotMarker struct {
	Index     uint64
	Term      uint64
	ConfState consensus.ConfState
}

// entryHeadSize bounds the encoding of an entry's term, index and type.
const entryHeadSize = 2*binary.MaxVarintLen64 + 1

func encodeEntry(e consensus.Entry) []byte {
	return append(appendEntryHead(make([]byte, 0, entryHeadSize+len(e.Data)), e), e.Data...)
}

// appendEntryHead appends what precedes an entry's data in its record:
// uvarint term, uvarint index, type.
func appendEntryHead(b []byte, e consensus.Entry) []byte {
	b = binary.AppendUvarint(b, e.Term)
	b = binary.AppendUvarint(b, e.Index)
	return append(b, byte(e.Type))
}

func decodeEntry(b []byte) (consensus.Entry, error) {
	var e consensus.Entry
	t, n := binary.Uvarint(b)
	if n <= 0 {
		return e, fmt.Errorf("%w: entry term", ErrCorrupt)
	}
	b = b[n:]
	i, n := binary.Uvarint(b)
	if n <= 0 || len(b) < n+1 {
		return e, fmt.Errorf("%w: entry index", ErrCorrupt)
	}
	typ := consensus.EntryType(b[n])
	if typ != consensus.EntryNormal && typ != consensus.EntryConfChange {
		return e, fmt.Errorf("%w: entry type %d", ErrCorrupt, typ)
	}
	e = consensus.Entry{Term: t, Index: i, Type: typ}
	if d := b[n+1:]; len(d) > 0 {
		e.Data = append([]byte(nil), d...)
	}
	return e, nil
}

func encodeHardState(h consensus.HardState) []byte {
	b := binary.AppendUvarint(nil, h.Term)
	b = binary.AppendUvarint(b, h.Vote)
	return binary.AppendUvarint(b, h.Commit)
}

func decodeHardState(b []byte) (consensus.HardState, error) {
	var v [3]uint64
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return consensus.HardState{}, fmt.Errorf("%w: hard state", ErrCorrupt)
		}
		v[i], b = x, b[n:]
	}
	if len(b) != 0 {
		return consensus.HardState{}, fmt.Errorf("%w: hard state has %d trailing bytes", ErrCorrupt, len(b))
	}
	return consensus.HardState{Term: v[0], Vote: v[1], Commit: v[2]}, nil
}

func encodeSnapshot(s SnapshotMarker) []byte {
	b := binary.AppendUvarint(nil, s.Index)
	b = binary.AppendUvarint(b, s.Term)
	return consensus.AppendConfState(b, s.ConfState)
}

// DecodeSnapshotMarker decodes a snapshot marker record's data.
func DecodeSnapshotMarker(b []byte) (SnapshotMarker, error) {
	var s SnapshotMarker
	next := func() (uint64, bool) {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return x, true
	}
	var ok bool
	if s.Index, ok = next(); !ok {
		return s, fmt.Errorf("%w: snapshot index", ErrCorrupt)
	}
	if s.Term, ok = next(); !ok {
		return s, fmt.Errorf("%w: snapshot term", ErrCorrupt)
	}
	cs, rest, err := consensus.DecodeConfState(b)
	if err != nil {
		return s, fmt.Errorf("%w: snapshot membership: %v", ErrCorrupt, err)
	}
	s.ConfState, b = cs, rest
	if len(b) != 0 {
		return s, fmt.Errorf("%w: snapshot marker has %d trailing bytes", ErrCorrupt, len(b))
	}
	return s, nil
}
