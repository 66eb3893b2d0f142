package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairnkv/cairn/consensus"
)

const smallSeg = 4096

var testMeta = []byte("cluster=7f3a member=2")

// builtLog is a log written by buildLog and what it should read back as.
type builtLog struct {
	dir     string
	opts    Options
	entries []consensus.Entry // entries 1..last, in term 1
	hs      consensus.HardState
	snap    *SnapshotMarker
}

// buildLog writes entries 1..n in batches of 1..3 with a hard state every
// few saves, in segments of smallSeg bytes, and closes the log.
func buildLog(t testing.TB, n uint64) builtLog {
	t.Helper()
	l := builtLog{dir: t.TempDir(), opts: fastOpts}
	w := mustCreate(t, l.dir, testMeta, l.opts)
	for i, k := uint64(1), 0; i <= n; k++ {
		hi := min(n, i+uint64(k%3))
		ents := mkEntries(i, hi, 1)
		var hs consensus.HardState
		if k%4 == 0 {
			hs = consensus.HardState{Term: 1, Vote: 1, Commit: i - 1}
			l.hs = hs
		}
		if k == 5 {
			m := SnapshotMarker{Index: 3, Term: 1, ConfState: consensus.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{9}}}
			if err := w.SaveSnapshot(m); err != nil {
				t.Fatal(err)
			}
			l.snap = &m
		}
		mustSave(t, w, hs, ents)
		l.entries = append(l.entries, ents...)
		i = hi + 1
	}
	mustClose(t, w)
	return l
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if Exist(dir, Options{}) {
		t.Fatal("Exist on an empty directory")
	}
	if _, _, err := Open(dir, 0, Options{}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Open of an empty directory: %v, want ErrNotExist", err)
	}
	w := mustCreate(t, dir, testMeta, Options{SegmentSize: smallSeg})
	if _, err := Create(dir, testMeta, Options{}); !errors.Is(err, ErrExist) {
		t.Fatalf("second Create: %v, want ErrExist", err)
	}
	mustSave(t, w, consensus.HardState{Term: 1, Vote: 1}, mkEntries(1, 3, 1))
	mustSave(t, w, consensus.HardState{Term: 1, Vote: 1, Commit: 2}, nil)
	m := SnapshotMarker{Index: 2, Term: 1, ConfState: consensus.ConfState{Voters: []uint64{1, 2, 3}}}
	if err := w.SaveSnapshot(m); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, consensus.HardState{}, mkEntries(4, 10, 1))
	if err := w.Save(consensus.HardState{}, nil); err != nil {
		t.Fatalf("empty Save: %v", err)
	}
	hs := consensus.HardState{Term: 3, Vote: 2, Commit: 8}
	mustSave(t, w, hs, nil)
	mustClose(t, w)
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	if err := w.Save(hs, mkEntries(11, 11, 3)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close: %v, want ErrClosed", err)
	}
	if !Exist(dir, Options{}) {
		t.Fatal("Exist: false after Create")
	}

	w, c := mustOpen(t, dir, 0, Options{SegmentSize: smallSeg})
	if !bytes.Equal(c.Metadata, testMeta) {
		t.Errorf("metadata %q, want %q", c.Metadata, testMeta)
	}
	if c.HardState != hs {
		t.Errorf("hard state %+v, want %+v", c.HardState, hs)
	}
	if c.Snapshot == nil || !reflect.DeepEqual(*c.Snapshot, m) {
		t.Errorf("snapshot %+v, want %+v", c.Snapshot, m)
	}
	checkEntries(t, c.Entries, mkEntries(1, 10, 1))

	// Appends resume after a reopen, and a second reopen sees both.
	mustSave(t, w, consensus.HardState{Term: 3, Vote: 2, Commit: 10}, mkEntries(11, 12, 3))
	mustClose(t, w)
	w, c = mustOpen(t, dir, 4, Options{SegmentSize: smallSeg})
	defer w.Close()
	checkEntries(t, c.Entries, append(mkEntries(5, 10, 1), mkEntries(11, 12, 3)...))
	if want := (consensus.HardState{Term: 3, Vote: 2, Commit: 10}); c.HardState != want {
		t.Errorf("hard state %+v, want %+v", c.HardState, want)
	}
}

// A log with no entries and no hard state: just the metadata.
func TestRoundTripEmpty(t *testing.T) {
	dir := t.TempDir()
	mustClose(t, mustCreate(t, dir, nil, Options{SegmentSize: smallSeg}))
	w, c := mustOpen(t, dir, 0, Options{SegmentSize: smallSeg})
	defer w.Close()
	if len(c.Metadata) != 0 || !c.HardState.IsEmpty() || c.Snapshot != nil || len(c.Entries) != 0 {
		t.Fatalf("contents of an empty log: %+v", c)
	}
}

var segNameRE = regexp.MustCompile(`^[0-9a-f]{16}-[0-9a-f]{16}\.wal$`)

func TestSegments(t *testing.T) {
	l := buildLog(t, 400)
	names := segNames(t, l.dir)
	if len(names) < 5 {
		t.Fatalf("only %d segments for 400 entries of SegmentSize %d", len(names), smallSeg)
	}
	des, err := os.ReadDir(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != len(names) {
		t.Errorf("directory holds %d files, %d segments", len(des), len(names))
	}
	var (
		chain   uint32
		all     []consensus.Entry
		hs      consensus.HardState
		snap    *SnapshotMarker
		prevEnd int64
	)
	for i, name := range names {
		if !segNameRE.MatchString(name) {
			t.Errorf("segment name %q is not %%016x-%%016x.wal", name)
		}
		var seq, first uint64
		if _, err := fmt.Sscanf(name, "%016x-%016x.wal", &seq, &first); err != nil {
			t.Fatal(err)
		}
		if seq != uint64(i) {
			t.Errorf("segment %d has sequence %d", i, seq)
		}
		if want := uint64(len(all)) + 1; i > 0 && first != want {
			t.Errorf("segment %s: first index %d, want %d (after the last entry of the one before)", name, first, want)
		}
		path := filepath.Join(l.dir, name)
		data := readAll(t, path)
		isLast := i == len(names)-1
		if !isLast {
			// A full segment: cut once at least SegmentSize bytes were written.
			if prevEnd = int64(len(data)); prevEnd < smallSeg {
				t.Errorf("segment %s has %d bytes, was cut before %d", name, prevEnd, smallSeg)
			}
		}
		// Self-describing: decodable alone, headed by seed, metadata,
		// the hard state and snapshot marker current at the cut.
		recs, _, _, err := scanBytes(data, 0, false, isLast, false)
		if err != nil {
			t.Fatalf("%s alone: %v", name, err)
		}
		if len(recs) < 3 || recs[0].typ != recCRC || recs[1].typ != recMetadata || recs[2].typ != recHardState {
			t.Fatalf("%s does not start with seed, metadata, hard state", name)
		}
		if !bytes.Equal(recs[1].data, testMeta) {
			t.Errorf("%s: metadata %q", name, recs[1].data)
		}
		h, err := decodeHardState(recs[2].data)
		if err != nil || h != hs {
			t.Errorf("%s: header hard state %+v (%v), want %+v", name, h, err, hs)
		}
		k := 3
		if snap != nil {
			if recs[3].typ != recSnapshot {
				t.Fatalf("%s: no snapshot marker in the header", name)
			}
			m, err := DecodeSnapshotMarker(recs[3].data)
			if err != nil || !reflect.DeepEqual(m, *snap) {
				t.Errorf("%s: header snapshot %+v (%v), want %+v", name, m, err, *snap)
			}
			k = 4
		}
		for _, r := range recs[k:] {
			switch r.typ {
			case recEntry:
				e, err := decodeEntry(r.data)
				if err != nil {
					t.Fatal(err)
				}
				if e.Index < first {
					t.Errorf("%s (first %d) holds entry %d", name, first, e.Index)
				}
				all = append(all, e)
			case recHardState:
				hs, _ = decodeHardState(r.data)
			case recSnapshot:
				m, _ := DecodeSnapshotMarker(r.data)
				snap = &m
			default:
				t.Errorf("%s: record type %d after the header", name, r.typ)
			}
		}
		// The chain links the segments.
		if _, _, crc, err := scanBytes(data, chain, i > 0, isLast, false); err != nil {
			t.Fatalf("%s in the chain: %v", name, err)
		} else {
			chain = crc
		}
	}
	checkEntries(t, all, l.entries)
	if hs != l.hs {
		t.Errorf("last hard state %+v, want %+v", hs, l.hs)
	}

	w, c := mustOpen(t, l.dir, 0, l.opts)
	defer w.Close()
	checkEntries(t, c.Entries, l.entries)
	if c.HardState != l.hs || !reflect.DeepEqual(c.Snapshot, l.snap) || !bytes.Equal(c.Metadata, testMeta) {
		t.Errorf("Open: hs %+v snap %+v meta %q; want %+v %+v %q", c.HardState, c.Snapshot, c.Metadata, l.hs, l.snap, testMeta)
	}
}

// A record larger than a whole segment goes in one piece, and the next
// record starts a new segment.
func TestRecordLargerThanSegment(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: smallSeg}
	w := mustCreate(t, dir, testMeta, opts)
	big := consensus.Entry{Term: 1, Index: 1, Data: bytes.Repeat([]byte("B"), 3*smallSeg)}
	mustSave(t, w, consensus.HardState{}, []consensus.Entry{big})
	mustSave(t, w, consensus.HardState{}, mkEntries(2, 5, 1))
	mustClose(t, w)
	if n := len(segNames(t, dir)); n != 2 {
		t.Errorf("%d segments, want 2", n)
	}
	w, c := mustOpen(t, dir, 0, opts)
	defer w.Close()
	checkEntries(t, c.Entries, append([]consensus.Entry{big}, mkEntries(2, 5, 1)...))
}

// recordingFS notes the files opened.
type recordingFS struct {
	FS
	mu     sync.Mutex
	opened []string
}

func (r *recordingFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	r.mu.Lock()
	r.opened = append(r.opened, filepath.Base(name))
	r.mu.Unlock()
	return r.FS.OpenFile(name, flag, perm)
}

func TestOpenAfter(t *testing.T) {
	l := buildLog(t, 300)
	names := segNames(t, l.dir)
	segs := rawRecords(t, l.dir)
	// holder[i] is the segment holding entry i.
	holder := map[uint64]int{}
	for s, recs := range segs {
		for _, e := range entriesOf(t, recs) {
			holder[e.Index] = s
		}
	}
	last := uint64(len(l.entries))
	for after := uint64(0); after <= last; after++ {
		rfs := &recordingFS{FS: OS}
		opts := l.opts
		opts.FS = rfs
		w, c := mustOpen(t, l.dir, after, opts)
		checkEntries(t, c.Entries, l.entries[after:])
		if c.HardState != l.hs || !reflect.DeepEqual(c.Snapshot, l.snap) || !bytes.Equal(c.Metadata, testMeta) {
			t.Fatalf("Open(%d): hs %+v snap %+v meta %q", after, c.HardState, c.Snapshot, c.Metadata)
		}
		mustClose(t, w)
		start := len(names) - 1
		if s, ok := holder[after+1]; ok {
			start = s
		}
		var read []string
		for _, n := range rfs.opened {
			if strings.HasSuffix(n, ".wal") && !slices.Contains(read, n) {
				read = append(read, n)
			}
		}
		if !slices.Equal(read, names[start:]) {
			t.Fatalf("Open(%d) read %v, want %v (from the segment holding entry %d)", after, read, names[start:], after+1)
		}
	}
}

// A rewritten index (Raft overwriting a conflicting suffix) replaces the
// earlier entry and everything after it, also across segments.
func TestRewriteReplacesSuffix(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: smallSeg}
	w := mustCreate(t, dir, testMeta, opts)
	for i := uint64(1); i <= 400; i++ {
		mustSave(t, w, consensus.HardState{}, mkEntries(i, i, 1))
	}
	// Conflict at 390 within the last segment: the log is 1..389 t1, 390..391 t2.
	mustSave(t, w, consensus.HardState{Term: 2}, mkEntries(390, 391, 2))
	// Conflict at 60, segments back: the log is 1..59 t1, 60..70 t3.
	mustSave(t, w, consensus.HardState{Term: 3}, mkEntries(60, 65, 3))
	mustSave(t, w, consensus.HardState{}, mkEntries(66, 70, 3))
	mustClose(t, w)
	if n := len(segNames(t, dir)); n < 3 {
		t.Fatalf("only %d segments", n)
	}
	want := append(mkEntries(1, 59, 1), mkEntries(60, 70, 3)...)
	// (after = 70, the whole new suffix: TestRewriteBelowAfterDropsOldSuffix.)
	for _, after := range []uint64{0, 1, 30, 58, 59, 60, 64, 69} {
		w, c := mustOpen(t, dir, after, opts)
		checkEntries(t, c.Entries, want[after:])
		if c.HardState.Term != 3 {
			t.Errorf("hard state %+v", c.HardState)
		}
		mustClose(t, w)
	}
	// Appending after the rewrite continues the new suffix.
	w, _ = mustOpen(t, dir, 0, opts)
	mustSave(t, w, consensus.HardState{}, mkEntries(71, 72, 3))
	mustClose(t, w)
	w, c := mustOpen(t, dir, 0, opts)
	defer w.Close()
	checkEntries(t, c.Entries, append(want, mkEntries(71, 72, 3)...))
}

// A rewrite at an index the caller's state already covers (after) still
// discards the old suffix beyond it. Raft allows this: the conflict at 3
// happened while commit was 2, commit then reached 4 and the caller
// applied (or snapshotted) up to 4.
func TestRewriteBelowAfterDropsOldSuffix(t *testing.T) {
	opts := Options{SegmentSize: smallSeg}
	t.Run("one segment", func(t *testing.T) {
		dir := t.TempDir()
		w := mustCreate(t, dir, testMeta, opts)
		mustSave(t, w, consensus.HardState{Term: 1, Commit: 2}, mkEntries(1, 5, 1))
		mustSave(t, w, consensus.HardState{Term: 2, Commit: 2}, mkEntries(3, 4, 2)) // the log is now 1..2 t1, 3..4 t2
		mustSave(t, w, consensus.HardState{Term: 2, Commit: 4}, nil)
		mustClose(t, w)

		w, c := mustOpen(t, dir, 0, opts)
		checkEntries(t, c.Entries, append(mkEntries(1, 2, 1), mkEntries(3, 4, 2)...))
		mustClose(t, w)

		w, c = mustOpen(t, dir, 4, opts)
		defer w.Close()
		if len(c.Entries) != 0 {
			knownBug(t, "Open(after=4) of the log 1..2(t1) 3..4(t2), where 3..4 overwrote 3..5(t1), returns %s: the overwritten entry 5 of term 1 comes back because a rewrite at an index <= after does not truncate the entries collected so far (wal.go Open, case recEntry: `if e.Index <= after { continue }` comes before the truncation)", describe(c.Entries))
		}
	})
	t.Run("segments", func(t *testing.T) {
		dir := t.TempDir()
		w := mustCreate(t, dir, testMeta, opts)
		for i := uint64(1); i <= 300; i++ {
			mustSave(t, w, consensus.HardState{Term: 1, Commit: 50}, mkEntries(i, i, 1))
		}
		mustSave(t, w, consensus.HardState{Term: 3, Commit: 59}, mkEntries(60, 70, 3)) // the log is 1..59 t1, 60..70 t3
		mustSave(t, w, consensus.HardState{Term: 3, Commit: 70}, nil)
		mustClose(t, w)
		if n := len(segNames(t, dir)); n < 3 {
			t.Fatalf("only %d segments", n)
		}
		w, c := mustOpen(t, dir, 70, opts)
		defer w.Close()
		if len(c.Entries) != 0 {
			knownBug(t, "Open(after=70) of the log 1..59(t1) 60..70(t3), where 60..70 overwrote 60..300(t1) in a later segment, returns %s: the overwritten term-1 entries 71..300 come back (a rewrite at an index <= after does not truncate)", describe(c.Entries))
		}
	})
}

// A follower that installs a snapshot past the end of its log continues
// the log after the snapshot: entries 1..5, marker at 10, entries 11...
// Open from the snapshot must return 11.. and not call the gap
// corruption.
func TestEntriesAfterSnapshotGap(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: smallSeg}
	w := mustCreate(t, dir, testMeta, opts)
	mustSave(t, w, consensus.HardState{Term: 1, Commit: 3}, mkEntries(1, 5, 1))
	m := SnapshotMarker{Index: 10, Term: 2, ConfState: consensus.ConfState{Voters: []uint64{1, 2, 3}}}
	if err := w.SaveSnapshot(m); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, consensus.HardState{Term: 2, Commit: 10}, mkEntries(11, 12, 2))
	mustClose(t, w)

	w, c, err := Open(dir, 10, opts)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			knownBug(t, "entries 1..5, snapshot marker at 10, entries 11..12: Open(after=10) fails with %q; the gap check (wal.go Open: entry %%d follows %%d) does not account for a snapshot marker, so a follower that installed a snapshot past its log can never restart", err)
		}
		t.Fatalf("Open(10): %v", err)
	}
	defer w.Close()
	checkEntries(t, c.Entries, mkEntries(11, 12, 2))
	if c.Snapshot == nil || c.Snapshot.Index != 10 {
		t.Errorf("snapshot %+v", c.Snapshot)
	}
}

func TestPurge(t *testing.T) {
	l := buildLog(t, 600)
	names := segNames(t, l.dir)
	if len(names) < 5 {
		t.Fatalf("only %d segments", len(names))
	}
	segs := rawRecords(t, l.dir)
	maxIdx := make([]uint64, len(segs))
	for s, recs := range segs {
		es := entriesOf(t, recs)
		if len(es) == 0 {
			t.Fatalf("segment %d holds no entries", s)
		}
		maxIdx[s] = es[len(es)-1].Index
	}
	last := uint64(len(l.entries))
	for _, keep := range []int{0, 1, 2, 3, len(names), len(names) + 1} {
		for _, index := range []uint64{0, 1, maxIdx[0] - 1, maxIdx[0], maxIdx[0] + 1, maxIdx[1], maxIdx[2] + 1, maxIdx[len(names)-2], last - 1, last, last + 100} {
			t.Run(fmt.Sprintf("keep=%d/index=%d", keep, index), func(t *testing.T) {
				dir := copyDir(t, l.dir)
				w, _ := mustOpen(t, dir, 0, l.opts)
				defer w.Close()
				// Wanted: the oldest segments whose entries are all at or
				// below index, never the last, leaving at least keep.
				n := 0
				if keep > 0 {
					for n < len(names)-1 && maxIdx[n] <= index && len(names)-n > keep {
						n++
					}
				}
				removed, err := w.Purge(index, keep)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(removed, names[:n]) && !(n == 0 && len(removed) == 0) {
					t.Fatalf("Purge(%d, %d) removed %v, want %v", index, keep, removed, names[:n])
				}
				if got := segNames(t, dir); !slices.Equal(got, names[n:]) {
					t.Fatalf("left %v, want %v", got, names[n:])
				}
				// The log still works: appends go on, and replay from the
				// purge point returns everything after it.
				mustSave(t, w, consensus.HardState{Term: 1, Commit: last}, mkEntries(last+1, last+1, 1))
				mustClose(t, w)
				after := min(index, last)
				w2, c := mustOpen(t, dir, after, l.opts)
				defer w2.Close()
				checkEntries(t, c.Entries, append(slices.Clone(l.entries[after:]), mkEntry(last+1, 1)))
			})
		}
	}
}

// Leftover temp files of an unfinished cut are removed on Open.
func TestOpenRemovesTemp(t *testing.T) {
	l := buildLog(t, 50)
	for _, n := range []string{"0000000000000099.tmp", "junk.tmp"} {
		writeAll(t, filepath.Join(l.dir, n), []byte("half a segment"))
	}
	keep := filepath.Join(l.dir, "notes.txt")
	writeAll(t, keep, []byte("not ours"))
	w, c := mustOpen(t, l.dir, 0, l.opts)
	defer w.Close()
	checkEntries(t, c.Entries, l.entries)
	des, _ := os.ReadDir(l.dir)
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".tmp") {
			t.Errorf("%s left after Open", de.Name())
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("Open removed a file that is not a temp segment: %v", err)
	}
}

func TestMissingSegmentRefused(t *testing.T) {
	l := buildLog(t, 300)
	names := segNames(t, l.dir)
	for _, k := range []int{1, len(names) / 2, len(names) - 2} {
		dir := copyDir(t, l.dir)
		if err := os.Remove(filepath.Join(dir, names[k])); err != nil {
			t.Fatal(err)
		}
		for _, after := range []uint64{0, uint64(len(l.entries))} {
			_, _, err := Open(dir, after, l.opts)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open(%d) with %s missing: %v, want ErrCorrupt", after, names[k], err)
			}
			if !strings.Contains(err.Error(), names[k-1]) || !strings.Contains(err.Error(), names[k+1]) {
				t.Errorf("error %q does not name the segments around the gap", err)
			}
		}
	}
}

// Concurrent Saves are all durable and each batch stays whole.
func TestConcurrentSaves(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: smallSeg}
	w := mustCreate(t, dir, testMeta, opts)
	const writers, each = 16, 40
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for k := 1; k <= each; k++ {
				hs := consensus.HardState{Term: 1, Vote: uint64(g + 1), Commit: uint64(k)}
				if err := w.Save(hs, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// One goroutine appends entries, as Raft does.
	for i := uint64(1); i <= 100; i++ {
		mustSave(t, w, consensus.HardState{}, mkEntries(i, i, 1))
	}
	wg.Wait()
	mustClose(t, w)
	seen := map[uint64][]uint64{}
	for _, recs := range rawRecords(t, dir) {
		for _, r := range recs {
			if r.typ == recHardState {
				h, _ := decodeHardState(r.data)
				if h.Vote != 0 {
					if s := seen[h.Vote]; len(s) == 0 || s[len(s)-1] != h.Commit {
						seen[h.Vote] = append(s, h.Commit)
					}
				}
			}
		}
	}
	for g := uint64(1); g <= writers; g++ {
		if len(seen[g]) != each || !slices.IsSorted(seen[g]) {
			t.Errorf("writer %d: hard states %v", g, seen[g])
		}
	}
	w, c := mustOpen(t, dir, 0, opts)
	defer w.Close()
	checkEntries(t, c.Entries, mkEntries(1, 100, 1))
}

// Saves racing Close either succeed (and are then on disk) or fail with
// ErrClosed.
func TestCloseWhileSaving(t *testing.T) {
	dir := t.TempDir()
	w := mustCreate(t, dir, testMeta, fastOpts)
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok = map[uint64]uint64{}
	)
	for g := uint64(1); g <= 8; g++ {
		wg.Go(func() {
			for c := uint64(1); ; c++ {
				err := w.Save(consensus.HardState{Term: 1, Vote: g, Commit: c}, nil)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ok[g] = c
				mu.Unlock()
			}
		})
	}
	for {
		mu.Lock()
		n := len(ok)
		mu.Unlock()
		if n == 8 {
			break
		}
		runtime.Gosched()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	last := map[uint64]uint64{}
	for _, recs := range rawRecords(t, dir) {
		for _, r := range recs {
			if r.typ == recHardState {
				h, _ := decodeHardState(r.data)
				last[h.Vote] = max(last[h.Vote], h.Commit)
			}
		}
	}
	for g, c := range ok {
		if last[g] < c {
			t.Errorf("writer %d: commit %d acknowledged, %d on disk", g, c, last[g])
		}
	}
}

// Reopened at its last entry (the caller applied everything), a log whose
// last segment holds no entry yet must still name the segments it cuts
// after that entry, and keep every entry readable.
func TestSegmentNameAfterReopenWithoutEntries(t *testing.T) {
	dir := t.TempDir()
	w := mustCreate(t, dir, testMeta, fastOpts)
	var last uint64
	for len(segNames(t, dir)) < 2 {
		last++
		mustSave(t, w, consensus.HardState{Term: 1, Commit: last}, mkEntries(last, last, 1))
	}
	mustClose(t, w)
	// The new segment holds only its header.
	if es := entriesOf(t, rawRecords(t, dir)[1]); len(es) != 0 {
		t.Fatalf("second segment holds %d entries", len(es))
	}
	w, _ = mustOpen(t, dir, last, fastOpts)
	for v := uint64(1); len(segNames(t, dir)) < 3; v++ {
		mustSave(t, w, consensus.HardState{Term: 1 + v, Vote: 1, Commit: last}, nil)
	}
	mustClose(t, w)
	names := segNames(t, dir)
	want := segName(2, last+1)
	w, c, err := Open(dir, 0, fastOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if names[2] != want || len(c.Entries) != int(last) {
		knownBug(t, "log with entries 1..%d, reopened with after=%d while its last segment held no entry, then a segment of hard states only: the cut names the new segment %s, not %s (Open leaves lastIndex at 0 when the replayed segments hold no entry), and Open(0) now starts replay there and returns %d of %d entries", last, last, names[2], want, len(c.Entries), last)
	}
	checkEntries(t, c.Entries, mkEntries(1, last, 1))
}
