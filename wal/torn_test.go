package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/consensus"
)

// tornLog is a closed multi-segment log whose last segment ends with two
// single-entry records, entries last-1 and last.
type tornLog struct {
	builtLog
	seg  string    // path of the last segment
	recs []recInfo // its records
}

func buildTornLog(t *testing.T) tornLog {
	t.Helper()
	l := buildLog(t, 250)
	w, _ := mustOpen(t, l.dir, 0, l.opts)
	// Two more single-entry saves, one of them long enough to cross a
	// 512-byte sector.
	n := uint64(len(l.entries))
	e1 := mkEntry(n+1, 1)
	e2 := consensus.Entry{Term: 1, Index: n + 2, Data: bytes.Repeat([]byte("tail!"), 130)}
	mustSave(t, w, consensus.HardState{}, []consensus.Entry{e1})
	mustSave(t, w, consensus.HardState{}, []consensus.Entry{e2})
	mustClose(t, w)
	l.entries = append(l.entries, e1, e2)
	tl := tornLog{builtLog: l, seg: lastSeg(t, l.dir)}
	if len(segNames(t, l.dir)) < 3 {
		t.Fatalf("only %d segments", len(segNames(t, l.dir)))
	}
	tl.recs = layout(t, readAll(t, tl.seg))
	if len(tl.recs) < 5 {
		t.Fatalf("last segment holds %d records", len(tl.recs))
	}
	for _, r := range tl.recs[len(tl.recs)-2:] {
		if r.typ != recEntry {
			t.Fatalf("last records are not entries")
		}
	}
	if fileSize(t, tl.seg) != smallSeg {
		t.Fatalf("last segment is %d bytes, want preallocated %d", fileSize(t, tl.seg), smallSeg)
	}
	return tl
}

// expectAfterTear is what must survive damage from offset cut on: every
// entry but those of the last two records whose payload reaches cut.
func (tl tornLog) expectAfterTear(cut int) []consensus.Entry {
	want := tl.entries
	rs := tl.recs[len(tl.recs)-2:]
	switch {
	case cut < rs[0].payloadEnd:
		want = want[:len(want)-2]
	case cut < rs[1].payloadEnd:
		want = want[:len(want)-1]
	}
	return want
}

// checkResume opens a damaged copy, expects want, then appends twice
// (reopening in between) and expects the appends to follow want.
func checkResume(t *testing.T, dir string, opts Options, want []consensus.Entry, hs consensus.HardState) {
	t.Helper()
	if err := resume(dir, opts, want, hs); err != nil {
		t.Fatal(err)
	}
}

func resume(dir string, opts Options, want []consensus.Entry, hs consensus.HardState) error {
	want = slices.Clone(want)
	w, c, err := Open(dir, 0, opts)
	if err != nil {
		return fmt.Errorf("Open: %w", err)
	}
	defer func() { w.Close() }()
	if err := sameEntries(c.Entries, want); err != nil {
		return err
	}
	if c.HardState != hs || !bytes.Equal(c.Metadata, testMeta) {
		return fmt.Errorf("hard state %+v metadata %q", c.HardState, c.Metadata)
	}
	next := want[len(want)-1].Index + 1
	for round := range 2 {
		e := mkEntry(next, 2)
		hs2 := consensus.HardState{Term: 2, Vote: 1, Commit: next - 1}
		if err := w.Save(hs2, []consensus.Entry{e}); err != nil {
			return fmt.Errorf("Save: %w", err)
		}
		if err := w.Close(); err != nil {
			return err
		}
		want = append(want, e)
		w, c, err = Open(dir, 0, opts)
		if err != nil {
			w = &WAL{closing: true}
			return fmt.Errorf("Open after the torn tail was cut and %d append(s) made: %w", round+1, err)
		}
		if err := sameEntries(c.Entries, want); err != nil {
			return fmt.Errorf("after %d append(s): %w", round+1, err)
		}
		if c.HardState != hs2 {
			return fmt.Errorf("hard state %+v, want %+v", c.HardState, hs2)
		}
		next++
	}
	return nil
}

func sameEntries(got, want []consensus.Entry) error {
	if len(got) == 0 && len(want) == 0 || reflect.DeepEqual(got, want) {
		return nil
	}
	return fmt.Errorf("entries:\n got %s\nwant %s", describe(got), describe(want))
}

// A crash can cut the file anywhere in the last records (a segment that
// grew past its preallocation, or a file system without fallocate).
func TestTornTailTruncated(t *testing.T) {
	tl := buildTornLog(t)
	rs := tl.recs[len(tl.recs)-2:]
	var padBugs []string
	var padErr error
	for cut := rs[0].off; cut <= rs[1].end; cut++ {
		dir := copyDir(t, tl.dir)
		if err := os.Truncate(lastSeg(t, dir), int64(cut)); err != nil {
			t.Fatal(err)
		}
		err := resume(dir, tl.opts, tl.expectAfterTear(cut), tl.hs)
		if err == nil {
			continue
		}
		inPadding := cut >= rs[0].payloadEnd && cut < rs[0].end || cut >= rs[1].payloadEnd && cut < rs[1].end
		if !inPadding {
			t.Errorf("truncated at %d: %v", cut, err)
			continue
		}
		if len(padBugs) == 0 {
			padErr = err
		}
		padBugs = append(padBugs, fmt.Sprint(cut))
	}
	if len(padBugs) > 0 && !t.Failed() {
		knownBug(t, "truncated after a whole record's payload but before the end of its padding, Open keeps the record but resumes appending at the unaligned file end (scan returns min(off, len(data)) as the end); the next Open looks for the next record at the aligned offset, misreads the appended one as a torn tail and silently drops an acknowledged Save. Cuts %s fail; the first: %v", strings.Join(padBugs, ", "), padErr)
	}
}

// In a preallocated segment a torn write leaves the tail of the last
// record as zeros.
func TestTornTailZeroed(t *testing.T) {
	tl := buildTornLog(t)
	rs := tl.recs[len(tl.recs)-2:]
	for cut := rs[0].off; cut <= rs[1].end; cut++ {
		t.Run(fmt.Sprintf("zero-from=%d", cut), func(t *testing.T) {
			dir := copyDir(t, tl.dir)
			seg := lastSeg(t, dir)
			b := readAll(t, seg)
			clear(b[cut:rs[1].end])
			writeAll(t, seg, b)
			checkResume(t, dir, tl.opts, tl.expectAfterTear(cut), tl.hs)
		})
	}
}

// A torn write may also leave garbage (not zeros) in the part of the
// last record that did reach the disk, e.g. a payload half old, half
// new: the record's CRC fails and only zeros follow.
func TestTornTailGarbage(t *testing.T) {
	tl := buildTornLog(t)
	last := tl.recs[len(tl.recs)-1]
	for at := last.off + 8; at < last.payloadEnd; at += 7 {
		dir := copyDir(t, tl.dir)
		seg := lastSeg(t, dir)
		b := readAll(t, seg)
		b[at] ^= 0x5a
		writeAll(t, seg, b)
		checkResume(t, dir, tl.opts, tl.entries[:len(tl.entries)-1], tl.hs)
	}
}

// A write reaches the disk page by page, in no particular order: a crash
// can persist the second half of the last batch and not its start. The
// WAL refuses such a log rather than guess: bytes after what looks like
// the end could as well be acknowledged records behind a lost sector, and
// dropping them silently is worse than stopping with a clear error (the
// operator removes and re-adds the member). The error must name the file
// and the offset.
func TestTornTailOutOfOrderRefused(t *testing.T) {
	tl := buildTornLog(t)
	last := tl.recs[len(tl.recs)-1]
	if last.payloadEnd-last.off < 600 {
		t.Fatalf("last record is only %d bytes", last.payloadEnd-last.off)
	}
	dir := copyDir(t, tl.dir)
	seg := lastSeg(t, dir)
	b := readAll(t, seg)
	// The sector holding the start of the last record did not reach the
	// disk; the next one did.
	sector := last.off / 512 * 512
	clear(b[last.off : sector+512])
	writeAll(t, seg, b)
	_, _, err := Open(dir, 0, tl.opts)
	checkCorrupt(t, err, seg, last.off)
}

// The header records of a segment (seed, metadata, hard state, marker)
// are fsynced before the segment is renamed into place, so a crash never
// tears them. Damage there is not a torn append: Open must refuse it, or
// at the very least not lose the metadata and still accept appends.
func TestTornHeaderOfLastSegment(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: smallSeg}
	w := mustCreate(t, dir, testMeta, opts)
	mustSave(t, w, consensus.HardState{Term: 1, Vote: 1}, nil)
	mustClose(t, w)
	seg := lastSeg(t, dir)
	rs := layout(t, readAll(t, seg))
	if len(rs) != 4 {
		t.Fatalf("%d records", len(rs))
	}
	var bugs []string
	for cut := 0; cut < rs[2].end; cut++ {
		d := copyDir(t, dir)
		if err := os.Truncate(lastSeg(t, d), int64(cut)); err != nil {
			t.Fatal(err)
		}
		w, c, err := Open(d, 0, opts)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("cut %d: %v", cut, err)
			}
			continue
		}
		problem := ""
		if !bytes.Equal(c.Metadata, testMeta) {
			problem = fmt.Sprintf("Open succeeded with metadata %q", c.Metadata)
		}
		if err := w.Save(consensus.HardState{Term: 2}, mkEntries(1, 1, 2)); err != nil {
			t.Fatalf("cut %d: Save: %v", cut, err)
		}
		w.Close()
		if _, _, err := Open(d, 0, opts); err != nil {
			problem += fmt.Sprintf("; after a Save, Open fails: %v", err)
		}
		if problem != "" {
			bugs = append(bugs, fmt.Sprintf("cut %d: %s", cut, problem))
		}
	}
	if len(bugs) > 0 {
		knownBug(t, "single-segment log truncated inside its header records: %d of %d cuts accepted as a torn tail; e.g. %s; ...; %s", len(bugs), rs[2].end, bugs[0], bugs[len(bugs)-1])
	}
}

// The torn record's own bytes may look like record headers (an entry
// whose data holds small little-endian numbers). Open must zero them
// after cutting, or the records appended next are followed by what
// reads as a damaged record, and the log is refused (or cut) later.
func TestTornTailGarbageLooksLikeRecords(t *testing.T) {
	l := buildLog(t, 100)
	w, _ := mustOpen(t, l.dir, 0, l.opts)
	pattern := []byte{0x10, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}
	n := uint64(len(l.entries))
	// Align the pattern on the 8-byte grid records start on.
	hdr := headerSize + 1 + len(encodeEntry(consensus.Entry{Term: 1, Index: n + 1}))
	data := append(make([]byte, (8-hdr%8)%8), bytes.Repeat(pattern, 80)...)
	for i := range data[:(8-hdr%8)%8] {
		data[i] = 'p'
	}
	e := consensus.Entry{Term: 1, Index: n + 1, Data: data}
	mustSave(t, w, consensus.HardState{}, []consensus.Entry{e})
	mustClose(t, w)
	seg := lastSeg(t, l.dir)
	rs := layout(t, readAll(t, seg))
	last := rs[len(rs)-1]
	if last.typ != recEntry || last.payloadEnd-last.off < 600 {
		t.Fatal("the last record is not the patterned entry")
	}
	for _, at := range []int{last.off + 4, last.off + 12, last.payloadEnd - 1} {
		dir := copyDir(t, l.dir)
		b := readAll(t, lastSeg(t, dir))
		b[at] ^= 0x01
		writeAll(t, lastSeg(t, dir), b)
		checkResume(t, dir, l.opts, l.entries, l.hs)
	}
}

// UnsafeTrustTornTail is a deliberate bug for the whole-cluster simulator
// (server/sim_test.go). Without it, a last record whose unsynced tail
// never reached the disk (a prefix, zeros after it) is cut off; with it,
// Open returns that record as an entry with damaged data, so the switch
// does break the detection it stands for.
func TestUnsafeTrustTornTail(t *testing.T) {
	tl := buildTornLog(t)
	last := tl.recs[len(tl.recs)-1]
	orig := tl.entries[len(tl.entries)-1]
	tear := func() string {
		dir := copyDir(t, tl.dir)
		seg := lastSeg(t, dir)
		b := readAll(t, seg)
		// Keep the header, the entry's term, index and type and a few
		// bytes of its data; the rest of the payload never reached the disk.
		clear(b[last.off+headerSize+1+16 : last.payloadEnd])
		writeAll(t, seg, b)
		return dir
	}

	dir := tear()
	checkResume(t, dir, tl.opts, tl.entries[:len(tl.entries)-1], tl.hs)

	dir = tear()
	opts := tl.opts
	opts.UnsafeTrustTornTail = true
	w, c := mustOpen(t, dir, 0, opts)
	defer mustClose(t, w)
	if len(c.Entries) != len(tl.entries) {
		t.Fatalf("with the switch: %d entries, want the torn one kept too (%d)", len(c.Entries), len(tl.entries))
	}
	got := c.Entries[len(c.Entries)-1]
	if got.Index != orig.Index || got.Term != orig.Term {
		t.Fatalf("with the switch: last entry %d/%d, want %d/%d", got.Index, got.Term, orig.Index, orig.Term)
	}
	if bytes.Equal(got.Data, orig.Data) {
		t.Fatal("with the switch: the torn entry's data is intact; the test did not tear it")
	}
	if !bytes.HasSuffix(got.Data, make([]byte, 64)) {
		t.Fatalf("with the switch: the torn entry's data does not end in the zeros the tear left")
	}
}
