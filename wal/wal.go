package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cairnkv/cairn/consensus"
)

// DefaultSegmentSize is the preallocated size of a segment: etcd's "64MB".
const DefaultSegmentSize = 64 * 1000 * 1000

var (
	// ErrExist: Create found an existing log.
	ErrExist = errors.New("wal: log already exists")
	// ErrNotExist: Open found no log.
	ErrNotExist = errors.New("wal: no log")
	// ErrFailed is wrapped by every error after a write or fsync failed:
	// the WAL acknowledges nothing more and the member must stop.
	ErrFailed = errors.New("wal: failed")
	// ErrClosed: the WAL was closed.
	ErrClosed = errors.New("wal: closed")
)

// Options tune a WAL. The zero value is the production configuration.
type Options struct {
	// SegmentSize is the size segments are preallocated to and cut at.
	SegmentSize int64
	// FS is the file system; OS when nil.
	FS FS
	// UnsafeTrustTornTail is a deliberate bug, a test-only failpoint:
	// Open takes a record at the end of the last segment whose crc fails
	// (a torn write: a prefix of unsynced data that reached the disk,
	// zeros after it) as whole instead of cutting it off, provided it is
	// an entry record, so a replica replays garbage. It lets a simulator
	// show that its checkers catch a lost-unsynced-data crash the WAL
	// does not detect. Never set it in production; nothing outside tests
	// does.
	UnsafeTrustTornTail bool
}

func (o Options) withDefaults() Options {
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.FS == nil {
		o.FS = OS
	}
	return o
}

// Contents is what Open read back.
type Contents struct {
	Metadata  []byte
	HardState consensus.HardState
	// Snapshot is the latest snapshot marker, if any.
	Snapshot *SnapshotMarker
	// Entries are the entries after the index given to Open, with later
	// writes of an index replacing earlier ones (a conflicting suffix that
	// Raft overwrote).
	Entries []consensus.Entry
	// LastIndex is the index of the last entry, or of the latest
	// snapshot marker if no entry follows it: where the log ends. An
	// applied state beyond it was written by a member whose WAL then lost
	// its tail, or that stopped between installing a snapshot and
	// recording it here; the caller must record it (SaveSnapshot) before
	// appending, or the next Open finds a gap.
	LastIndex uint64
}

// WAL is the Raft log on disk: an append-only sequence of segments.
// Save may be called from many goroutines; concurrent calls share one
// write and one fsync (group commit).
type WAL struct {
	dir  string
	opts Options

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*batch
	err     error // sticky: once set, every call fails
	closing bool
	done    chan struct{}
	savedHS consensus.HardState // the last hard state queued (SaveCommit's check)

	// Owned by the flusher goroutine (and by Open/Create before it runs).
	f         File
	seq       uint64
	off       int64
	crc       uint32
	lastIndex uint64 // index of the last entry written
	meta      []byte
	hs        consensus.HardState
	snap      *SnapshotMarker
	buf       []byte
}

type rec struct {
	typ  byte
	data []byte
	off  int // where it was read (0 for records being written)
}

type batch struct {
	ents []consensus.Entry // framed first, as entry records
	recs []rec             // then these
	hs   *consensus.HardState
	snap *SnapshotMarker
	last uint64 // last entry index in recs, 0 if none
	sync bool   // fsync before answering (all but SaveCommit)
	done chan error
}

// segName is "%016x-%016x.wal": sequence, first index it may hold.
func segName(seq, first uint64) string { return fmt.Sprintf("%016x-%016x.wal", seq, first) }

type segment struct {
	name       string
	seq, first uint64
}

func parseSegName(name string) (segment, bool) {
	var s segment
	if !strings.HasSuffix(name, ".wal") || len(name) != 16+1+16+4 {
		return s, false
	}
	if _, err := fmt.Sscanf(name, "%016x-%016x.wal", &s.seq, &s.first); err != nil {
		return s, false
	}
	s.name = name
	return s, true
}

// listSegments returns the segments in sequence order, checking that no
// sequence number is missing.
func listSegments(fs FS, dir string) ([]segment, error) {
	des, err := fs.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var segs []segment
	for _, de := range des {
		if s, ok := parseSegName(de.Name()); ok {
			segs = append(segs, s)
		}
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, fmt.Errorf("%w: segment %d missing (have %s then %s)", ErrCorrupt, segs[i-1].seq+1, segs[i-1].name, segs[i].name)
		}
	}
	return segs, nil
}

// Exist reports whether dir holds a log.
func Exist(dir string, opts Options) bool {
	segs, err := listSegments(opts.withDefaults().FS, dir)
	return err == nil && len(segs) > 0
}

// Create makes a new log in dir with the caller's metadata.
func Create(dir string, metadata []byte, opts Options) (*WAL, error) {
	return CreateWith(dir, metadata, consensus.HardState{}, nil, opts)
}

// CreateWith makes a new log in dir with the caller's metadata that holds
// ents and hs from the start: they are written into the first segment
// before it is renamed into place, so a crash or a failure leaves either
// no log or one with all of them, never a log without them (a new
// cluster's member starts so with its bootstrap entries: a log without
// them is a member that knows no one).
func CreateWith(dir string, metadata []byte, hs consensus.HardState, ents []consensus.Entry, opts Options) (*WAL, error) {
	opts = opts.withDefaults()
	if err := opts.FS.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	segs, err := listSegments(opts.FS, dir)
	if err != nil {
		return nil, err
	}
	if len(segs) > 0 {
		return nil, ErrExist
	}
	w := newWAL(dir, opts)
	w.meta = append([]byte(nil), metadata...)
	var initial []rec
	for _, e := range ents {
		initial = append(initial, rec{typ: recEntry, data: encodeEntry(e)})
	}
	if !hs.IsEmpty() {
		initial = append(initial, rec{typ: recHardState, data: encodeHardState(hs)})
	}
	if err := w.cut(0, 0, initial...); err != nil {
		return nil, err
	}
	if len(ents) > 0 {
		w.lastIndex = ents[len(ents)-1].Index
	}
	if !hs.IsEmpty() {
		w.hs = hs
	}
	w.start()
	return w, nil
}

func newWAL(dir string, opts Options) *WAL {
	w := &WAL{dir: dir, opts: opts, done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	return w
}

func (w *WAL) start() { go w.flusher() }

// cut starts segment seq, whose first entry will be first. The segment is
// built as a temp file (preallocated, headed by the chain seed, metadata,
// hard state and snapshot marker, then the records after, if any: a new
// log's first ones), fsynced, renamed into place, and the directory
// fsynced: a crash leaves either no segment or a whole one.
func (w *WAL) cut(seq, first uint64, after ...rec) error {
	fs := w.opts.FS
	tmp := filepath.Join(w.dir, fmt.Sprintf("%016x.tmp", seq))
	f, err := fs.OpenFile(tmp, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		_ = f.Close()
		_ = fs.Remove(tmp)
		return err
	}
	if err := f.Preallocate(w.opts.SegmentSize); err != nil {
		return fail(err)
	}
	var seed [4]byte
	binary.LittleEndian.PutUint32(seed[:], w.crc)
	b, crc := frame(nil, w.crc, recCRC, seed[:])
	b, crc = frame(b, crc, recMetadata, w.meta)
	b, crc = frame(b, crc, recHardState, encodeHardState(w.hs))
	if w.snap != nil {
		b, crc = frame(b, crc, recSnapshot, encodeSnapshot(*w.snap))
	}
	for _, r := range after {
		b, crc = frame(b, crc, r.typ, r.data)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	final := filepath.Join(w.dir, segName(seq, first))
	if err := fs.Rename(tmp, final); err != nil {
		return fail(err)
	}
	if err := fs.SyncDir(w.dir); err != nil {
		_ = f.Close()
		return err
	}
	if w.f != nil {
		// The old segment is complete: drop its preallocated tail. A
		// failure here is as fatal as any other.
		if err := w.f.Truncate(w.off); err != nil {
			_ = f.Close()
			return err
		}
		if err := w.f.Sync(); err != nil {
			_ = f.Close()
			return err
		}
		_ = w.f.Close()
	}
	w.f, w.seq, w.off, w.crc = f, seq, int64(len(b)), crc
	return nil
}

// Open reads the log in dir and readies it for appends. Entries with index
// <= after are not returned (the caller's applied state covers them). A
// torn final record (a crash mid-write) is cut off; damage anywhere else
// is refused with an error naming the file and offset.
func Open(dir string, after uint64, opts Options) (*WAL, *Contents, error) {
	opts = opts.withDefaults()
	fs := opts.FS
	segs, err := listSegments(fs, dir)
	if err != nil {
		return nil, nil, err
	}
	if len(segs) == 0 {
		return nil, nil, ErrNotExist
	}
	// Leftover temp segments are from a cut that did not finish.
	if des, err := fs.ReadDir(dir); err == nil {
		for _, de := range des {
			if strings.HasSuffix(de.Name(), ".tmp") {
				_ = fs.Remove(filepath.Join(dir, de.Name()))
			}
		}
	}
	// The segments' names may not be durable yet: a Create or a cut whose
	// directory fsync failed renamed a segment into place all the same.
	// What is appended from now on must not vanish with such a name.
	if err := fs.SyncDir(dir); err != nil {
		return nil, nil, err
	}
	// Replay from the last segment that may hold entry after+1.
	start := 0
	for i, s := range segs {
		if s.first <= after+1 {
			start = i
		}
	}
	w := newWAL(dir, opts)
	c := &Contents{}
	var (
		chain     uint32
		haveChain bool
		lastSeen  uint64
		all       []consensus.Entry
	)
	// First check every segment's framing and the chain across them, so
	// that damage is reported where it is, then interpret the records.
	type scanned struct {
		path      string
		recs      []rec
		end       int
		crc       uint32
		dirtyTail bool // bytes after end are not all zeros
	}
	var segsRead []scanned
	for i := start; i < len(segs); i++ {
		path := filepath.Join(dir, segs[i].name)
		sr, err := openSegment(fs, path)
		if err != nil {
			return nil, nil, err
		}
		isLast := i == len(segs)-1
		recs, end, crc, err := scan(sr, chain, haveChain, isLast, opts.UnsafeTrustTornTail)
		var zero bool
		if err == nil && isLast {
			zero, err = sr.zeroFrom(end)
		}
		_ = sr.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		chain, haveChain = crc, true
		segsRead = append(segsRead, scanned{path: path, recs: recs, end: end, crc: crc, dirtyTail: !zero})
	}
	// Entries in the start segment begin at its first index.
	lastSeen = segs[start].first - min(segs[start].first, 1)
	for k, sr := range segsRead {
		s := segs[start+k]
		isLast := start+k == len(segs)-1
		path, recs, end, crc := sr.path, sr.recs, sr.end, sr.crc
		for _, r := range recs {
			at := func(err error) error { return fmt.Errorf("%s: offset %d: %w", path, r.off, err) }
			switch r.typ {
			case recMetadata:
				c.Metadata = append([]byte(nil), r.data...)
			case recHardState:
				hs, err := decodeHardState(r.data)
				if err != nil {
					return nil, nil, at(err)
				}
				c.HardState = hs
			case recSnapshot:
				m, err := DecodeSnapshotMarker(r.data)
				if err != nil {
					return nil, nil, at(err)
				}
				c.Snapshot = &m
				// Entries may resume after the snapshot (a follower that
				// installed one).
				lastSeen = max(lastSeen, m.Index)
			case recEntry:
				e, err := decodeEntry(r.data)
				if err != nil {
					return nil, nil, at(err)
				}
				if lastSeen != 0 && e.Index > lastSeen+1 {
					return nil, nil, at(fmt.Errorf("%w: entry %d follows %d", ErrCorrupt, e.Index, lastSeen))
				}
				lastSeen = e.Index
				// A rewrite of an index replaces it and everything after
				// (applied before filtering by after, so that a rewrite
				// below after still drops the old suffix).
				for n := len(all); n > 0 && all[n-1].Index >= e.Index; n = len(all) {
					all = all[:n-1]
				}
				all = append(all, e)
			default:
				if r.typ != recCRC {
					return nil, nil, at(fmt.Errorf("%w: unknown record type %d", ErrCorrupt, r.typ))
				}
			}
		}
		if isLast {
			f, err := fs.OpenFile(path, os.O_RDWR, 0o600)
			if err != nil {
				return nil, nil, err
			}
			// Zero whatever a torn write left after the last whole record,
			// so that new records are followed by zeros again.
			if sr.dirtyTail {
				if err := f.Truncate(int64(end)); err != nil {
					_ = f.Close()
					return nil, nil, err
				}
			}
			if err := f.Preallocate(opts.SegmentSize); err != nil {
				_ = f.Close()
				return nil, nil, err
			}
			if err := f.Sync(); err != nil {
				_ = f.Close()
				return nil, nil, err
			}
			w.f, w.seq, w.off, w.crc = f, s.seq, int64(end), crc
		}
	}
	for _, e := range all {
		if e.Index > after {
			c.Entries = append(c.Entries, e)
		}
	}
	if n := len(c.Entries); n > 0 && after > 0 && c.Entries[0].Index != after+1 {
		return nil, nil, fmt.Errorf("%w: entries after %d start at %d", ErrCorrupt, after, c.Entries[0].Index)
	}
	w.meta, w.hs, w.snap, w.savedHS = c.Metadata, c.HardState, c.Snapshot, c.HardState
	// The last segment may hold no entry yet: it was named after the
	// index it expected next.
	w.lastIndex = max(lastSeen, segs[len(segs)-1].first-min(segs[len(segs)-1].first, 1))
	c.LastIndex = w.lastIndex
	w.start()
	return w, c, nil
}

// segReader reads a segment as the scan asks for its bytes, so that Open
// holds in memory the records and not the preallocated zeros after them
// (a segment is preallocated to 64 MB). Those zeros are still read and
// checked, through a small buffer, whenever the scan asks whether
// everything after an offset is zero: how strict the scan is does not
// depend on how the file is read.
type segReader struct {
	r     io.ReaderAt
	c     io.Closer // nil when there is nothing to close
	size  int
	data  []byte // the file's first len(data) bytes
	chunk int    // the least it reads at a time
	// zeroTail: the bytes from here to the end of the file are known to
	// be zeros.
	zeroTail int
	zbuf     []byte
}

// segmentChunk is how much a segReader reads at least at a time, and the
// size of the buffer it checks the zeros after the records through.
const segmentChunk = 1 << 20

func openSegment(fs FS, path string) (*segReader, error) {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	size, err := f.Size()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	sr := newSegReader(f, int(size), segmentChunk)
	sr.c = f
	return sr, nil
}

func newSegReader(r io.ReaderAt, size, chunk int) *segReader {
	return &segReader{r: r, size: size, chunk: chunk, zeroTail: size}
}

// Close closes the file.
func (s *segReader) Close() error {
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}

// upTo returns the file's first n bytes, or all of them if it is shorter.
// What it returned before stays valid (a record keeps pointing into it).
func (s *segReader) upTo(n int) ([]byte, error) {
	n = min(n, s.size)
	if n <= len(s.data) {
		return s.data[:n], nil
	}
	want := min(s.size, max(n, 2*len(s.data), s.chunk))
	buf := make([]byte, want)
	copy(buf, s.data)
	if err := readFull(s.r, buf[len(s.data):], int64(len(s.data))); err != nil {
		return nil, err
	}
	s.data = buf
	return s.data[:n], nil
}

// zeroFrom reports whether every byte from off to the end of the file is
// zero. The part not read yet is read through a buffer of one chunk and
// not kept.
func (s *segReader) zeroFrom(off int) (bool, error) {
	if off >= s.zeroTail {
		return true, nil
	}
	if off < len(s.data) && !allZero(s.data[off:min(len(s.data), s.zeroTail)]) {
		return false, nil
	}
	if s.zbuf == nil && len(s.data) < s.zeroTail {
		s.zbuf = make([]byte, min(s.chunk, s.zeroTail-len(s.data)))
	}
	for at := max(off, len(s.data)); at < s.zeroTail; {
		b := s.zbuf[:min(len(s.zbuf), s.zeroTail-at)]
		if err := readFull(s.r, b, int64(at)); err != nil {
			return false, err
		}
		if !allZero(b) {
			return false, nil
		}
		at += len(b)
	}
	s.zeroTail = off
	return true, nil
}

// readFull reads len(b) bytes at off; the file holds them.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// zeros is what allZero compares with.
var zeros [4096]byte

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// scan decodes a segment's records. It returns them, the (aligned) offset
// after the last whole record and the chain crc there. In the last
// segment, a record cut short by the end of the file, or a damaged record
// followed only by zeros, is a torn write: the scan stops before it.
// Anything else damaged is corruption, reported with its offset: a record
// length that fails its check, non-zero padding, data after the end
// marker (an out-of-order partial write is refused rather than guessed
// at), and any damage among the segment's header records.
//
// trustTail is Options.UnsafeTrustTornTail: a torn record whose crc fails
// is kept as if it were whole.
func scan(sr *segReader, seed uint32, checkSeed, isLast, trustTail bool) ([]rec, int, uint32, error) {
	var recs []rec
	off := 0
	crc := seed
	corrupt := func(at int, why string) ([]rec, int, uint32, error) {
		return nil, 0, 0, fmt.Errorf("%w: %s at offset %d", ErrCorrupt, why, at)
	}
	torn := func(at int) ([]rec, int, uint32, error) {
		if isLast && len(recs) >= segmentHeaderRecords {
			return recs, at, crc, nil
		}
		return corrupt(at, "damaged record")
	}
	failed := func(err error) ([]rec, int, uint32, error) { return nil, 0, 0, err }
	for {
		data, err := sr.upTo(off + headerSize)
		if err != nil {
			return failed(err)
		}
		if off >= len(data) {
			break
		}
		if off+headerSize > len(data) {
			if allZero(data[off:]) {
				break
			}
			return torn(off) // header cut short by the end of the file
		}
		word := binary.LittleEndian.Uint32(data[off:])
		want := binary.LittleEndian.Uint32(data[off+4:])
		if word == 0 && want == 0 {
			zero, err := sr.zeroFrom(off)
			if err != nil {
				return failed(err)
			}
			if zero {
				break // the end
			}
			return corrupt(off, "data after the end of the records")
		}
		n, ok := decodeLength(word)
		if !ok {
			zero, err := sr.zeroFrom(off + headerSize)
			if err != nil {
				return failed(err)
			}
			if zero {
				return torn(off) // a partly written header, nothing after it
			}
			return corrupt(off, "damaged record length")
		}
		end := off + recordSize(n)
		if data, err = sr.upTo(end); err != nil {
			return failed(err)
		}
		if off+headerSize+n > len(data) {
			return torn(off) // payload cut short by the end of the file
		}
		payload := data[off+headerSize : off+headerSize+n]
		if !allZero(data[off+headerSize+n : min(end, len(data))]) {
			return corrupt(off, "non-zero padding")
		}
		prev := crc
		if len(recs) == 0 {
			// The first record seeds the chain with the previous segment's
			// last crc, which it carries.
			if payload[0] != recCRC || n != 5 {
				return corrupt(off, "segment does not start with its chain seed")
			}
			prev = binary.LittleEndian.Uint32(payload[1:])
			if checkSeed && prev != seed {
				return nil, 0, 0, fmt.Errorf("%w: chain broken at offset %d: segment seeded with %08x, previous segment ended at %08x", ErrCorrupt, off, prev, seed)
			}
		}
		got := crc32Update(prev, payload)
		if got != want {
			zero, err := sr.zeroFrom(end)
			if err != nil {
				return failed(err)
			}
			if zero {
				if trustTail && isLast && len(recs) >= segmentHeaderRecords && payload[0] == recEntry {
					// The deliberate bug: a torn entry record
					// is taken as is.
					recs = append(recs, rec{typ: payload[0], data: payload[1:], off: off})
					return recs, end, got, nil
				}
				return torn(off)
			}
			return corrupt(off, "bad crc")
		}
		crc = got
		recs = append(recs, rec{typ: payload[0], data: payload[1:], off: off})
		off = end
	}
	if len(recs) < segmentHeaderRecords {
		return corrupt(off, "segment header incomplete")
	}
	return recs, off, crc, nil
}

func crc32Update(prev uint32, payload []byte) uint32 {
	return crc32.Update(prev, crcTable, payload)
}
