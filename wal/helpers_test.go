package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/consensus"
)

// knownBug fails the test: a defect found in the WAL and fixed came back.
// (Each caller sets up the scenario of one such defect.)
func knownBug(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("regression: %s", fmt.Sprintf(format, args...))
}

// entryData is what the test writers store at index i in term term: of
// varying length (so records straddle sectors and padding varies), never
// ending in a zero byte, and different for each (index, term).
func entryData(i, term uint64) []byte {
	n := 3 + int((i*7+term*3)%45)
	b := make([]byte, n)
	for j := range b {
		b[j] = byte('a' + (i+uint64(j)+term)%26)
	}
	return append(b, fmt.Sprintf("|%d.%d", i, term)...)
}

func mkEntry(i, term uint64) consensus.Entry {
	typ := consensus.EntryNormal
	if i%11 == 0 {
		typ = consensus.EntryConfChange
	}
	return consensus.Entry{Term: term, Index: i, Type: typ, Data: entryData(i, term)}
}

// mkEntries returns entries lo..hi in term.
func mkEntries(lo, hi, term uint64) []consensus.Entry {
	var es []consensus.Entry
	for i := lo; i <= hi; i++ {
		es = append(es, mkEntry(i, term))
	}
	return es
}

// checkEntries fails unless got is exactly want (index, term, type, data).
func checkEntries(t testing.TB, got, want []consensus.Entry) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("entries:\n got %s\nwant %s", describe(got), describe(want))
	}
}

func describe(es []consensus.Entry) string {
	if len(es) == 0 {
		return "[]"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d entries:", len(es))
	for i, e := range es {
		if i > 12 && i < len(es)-3 {
			if i == 13 {
				b.WriteString(" ...")
			}
			continue
		}
		fmt.Fprintf(&b, " %d.%d", e.Index, e.Term)
	}
	return b.String()
}

func mustCreate(t testing.TB, dir string, meta []byte, opts Options) *WAL {
	t.Helper()
	w, err := Create(dir, meta, opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return w
}

func mustOpen(t testing.TB, dir string, after uint64, opts Options) (*WAL, *Contents) {
	t.Helper()
	w, c, err := Open(dir, after, opts)
	if err != nil {
		t.Fatalf("Open(%d): %v", after, err)
	}
	return w, c
}

func mustSave(t testing.TB, w *WAL, hs consensus.HardState, ents []consensus.Entry) {
	t.Helper()
	if err := w.Save(hs, ents); err != nil {
		t.Fatalf("Save(%+v, %s): %v", hs, describe(ents), err)
	}
}

func mustClose(t testing.TB, w *WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// segNames lists the segment files of dir in sequence order.
func segNames(t testing.TB, dir string) []string {
	t.Helper()
	segs, err := listSegments(OS, dir)
	if err != nil {
		t.Fatalf("listSegments: %v", err)
	}
	var names []string
	for _, s := range segs {
		names = append(names, s.name)
	}
	return names
}

func lastSeg(t testing.TB, dir string) string {
	t.Helper()
	names := segNames(t, dir)
	if len(names) == 0 {
		t.Fatalf("no segments in %s", dir)
	}
	return filepath.Join(dir, names[len(names)-1])
}

// copyDir copies the files of src into a new temp directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func readAll(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeAll(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// recInfo locates one framed record in a segment's bytes.
type recInfo struct {
	off        int // start of the header
	payloadEnd int // end of type + data
	end        int // end of the padding
	typ        byte
	data       []byte
}

// layout walks the framing of a well-formed segment without checking
// CRCs (independently of scan): records until a zero length or the end.
func layout(t testing.TB, b []byte) []recInfo {
	t.Helper()
	var rs []recInfo
	off := 0
	for off+8 <= len(b) {
		n := int(binary.LittleEndian.Uint32(b[off:]) & 0xffffff) // low 24 bits: the length
		if n == 0 {
			break
		}
		if off+8+n > len(b) {
			t.Fatalf("layout: record at %d overruns the file", off)
		}
		end := off + 8 + (n+7)/8*8
		rs = append(rs, recInfo{off: off, payloadEnd: off + 8 + n, end: end, typ: b[off+8], data: b[off+9 : off+8+n]})
		off = end
	}
	return rs
}

// rawRecords decodes every record of every segment of dir with scan,
// checking the chain across segments; it fails the test on any error.
func rawRecords(t testing.TB, dir string) [][]rec {
	t.Helper()
	names := segNames(t, dir)
	var out [][]rec
	var chain uint32
	for i, name := range names {
		data := readAll(t, filepath.Join(dir, name))
		recs, _, crc, err := scanBytes(data, chain, i > 0, i == len(names)-1, false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		chain = crc
		out = append(out, recs)
	}
	return out
}

// entriesOf decodes the entry records among recs.
func entriesOf(t testing.TB, recs []rec) []consensus.Entry {
	t.Helper()
	var es []consensus.Entry
	for _, r := range recs {
		if r.typ == recEntry {
			e, err := decodeEntry(r.data)
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, e)
		}
	}
	return es
}

// checkCorrupt fails unless err is a corruption refusal naming file and
// (if off >= 0) the offset.
func checkCorrupt(t testing.TB, err error, file string, off int) {
	t.Helper()
	if err == nil {
		t.Fatalf("Open succeeded; want ErrCorrupt in %s at offset %d", filepath.Base(file), off)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v; want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), filepath.Base(file)) {
		t.Fatalf("Open: %q does not name the file %s", err, filepath.Base(file))
	}
	if off >= 0 && !strings.Contains(err.Error(), fmt.Sprintf("offset %d", off)) {
		t.Fatalf("Open: %q does not name the offset %d", err, off)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// noSyncFS is OS without fsyncs, for tests that check contents rather
// than durability (the page cache is enough within one process).
type noSyncFS struct{ FS }

func (n noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := n.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }

var fastOpts = Options{SegmentSize: smallSeg, FS: noSyncFS{OS}}

// scanBytes scans a segment held in memory.
func scanBytes(data []byte, seed uint32, checkSeed, isLast, trustTail bool) ([]rec, int, uint32, error) {
	return scan(newSegReader(bytes.NewReader(data), len(data), segmentChunk), seed, checkSeed, isLast, trustTail)
}
