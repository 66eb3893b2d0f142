package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestPersistMatchesMemory applies random requests to an in-memory store
// and to a persisted one, flushing at random points and reopening the
// file now and then; after every reopen the persisted store must equal the
// in-memory one: same tree, indexes, history (Hash) and listing.
func TestPersistMatchesMemory(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { persistRun(t, seed) })
	}
}

func persistRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	hist := 16 + rng.IntN(64)
	disk, err := Open(db, hist)
	if err != nil {
		t.Fatal(err)
	}
	mem := New(hist)
	names := []string{"a", "b", "_h", "c"}
	randPath := func() string {
		p := ""
		for range 1 + rng.IntN(3) {
			p += "/" + names[rng.IntN(len(names))]
		}
		return p
	}
	now := int64(1_800_000_000e9)
	raft := uint64(0)
	for step := range 400 {
		now += int64(rng.IntN(3)) * 1e9
		r := Request{Path: randPath(), Value: fmt.Sprint("v", step), Time: now}
		switch rng.IntN(9) {
		case 0, 1, 2:
			r.Op = OpSet
			r.Dir = rng.IntN(5) == 0
		case 3:
			r.Op = OpCreateInOrder
		case 4:
			r.Op, r.Recursive = OpDelete, true
		case 5:
			r.Op, r.Dir, r.Value = OpUpdate, rng.IntN(2) == 0, ""
		case 6:
			r.Op = OpSet
			r.HasTTL, r.TTL = true, uint64(rng.IntN(4))
		case 7:
			r.Op = OpExpire
		case 8:
			r.Op, r.Refresh, r.HasTTL, r.TTL, r.Value = OpSet, true, true, 5, ""
		}
		raft++
		_, errM := mem.Apply(raft, &r)
		_, errD := disk.Apply(raft, &r)
		if fmt.Sprint(errM) != fmt.Sprint(errD) {
			t.Fatalf("step %d: errors differ: %v vs %v", step, errM, errD)
		}
		if rng.IntN(10) == 0 {
			if err := disk.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(40) == 0 {
			if err := disk.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if db, err = OpenDB(path); err != nil {
				t.Fatal(err)
			}
			if disk, err = Open(db, hist); err != nil {
				t.Fatal(err)
			}
			requireSame(t, step, mem, disk)
		}
	}
	if err := disk.Flush(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, _ = OpenDB(path)
	defer db.Close()
	disk, err = Open(db, hist)
	if err != nil {
		t.Fatal(err)
	}
	requireSame(t, -1, mem, disk)
	if got := disk.RaftIndex(); got != raft {
		t.Fatalf("raft index %d after reopen, want %d", got, raft)
	}
}

func requireSame(t *testing.T, step int, want, got *Store) {
	t.Helper()
	if want.Index() != got.Index() {
		t.Fatalf("step %d: index %d, want %d", step, got.Index(), want.Index())
	}
	if want.DataBytes() != got.DataBytes() {
		t.Fatalf("step %d: DataBytes %d, want %d (recomputed on Open)", step, got.DataBytes(), want.DataBytes())
	}
	if want.Hash() != got.Hash() {
		a, _ := want.Get("/", true)
		b, _ := got.Get("/", true)
		t.Fatalf("step %d: hash differs\nwant %s\ngot  %s", step, dumpView(a.Node), dumpView(b.Node))
	}
	d1, _ := want.NextDeadline()
	d2, _ := got.NextDeadline()
	if d1 != d2 {
		t.Fatalf("step %d: next deadline %d, want %d", step, d2, d1)
	}
}

func dumpView(v *NodeView) string {
	var b bytes.Buffer
	var walk func(*NodeView)
	walk = func(v *NodeView) {
		fmt.Fprintf(&b, "%s(%d,%d,%v) ", v.Key, v.CreatedIndex, v.ModifiedIndex, v.Dir)
		for _, c := range v.Nodes {
			walk(c)
		}
	}
	walk(v)
	return b.String()
}

// TestSnapshotInstall streams a persisted store and installs the copy.
func TestSnapshotInstall(t *testing.T) {
	dir := t.TempDir()
	db, err := OpenDB(filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := Open(db, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := s.Apply(uint64(i+1), &Request{Op: OpSet, Path: fmt.Sprintf("/d/k%d", i), Value: "x", Time: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	buf := &sizedBuffer{size: -1}
	raft, n, err := s.WriteSnapshot(buf)
	if err != nil || raft != 50 || n != int64(buf.Len()) {
		t.Fatalf("WriteSnapshot = %d, %d, %v", raft, n, err)
	}
	if buf.size != n || buf.sizedAt != 0 {
		t.Fatalf("SnapshotSize said %d after %d bytes; %d were written", buf.size, buf.sizedAt, n)
	}
	dst := filepath.Join(dir, "b.db")
	if _, err := InstallSnapshot(buf, dst); err != nil {
		t.Fatal(err)
	}
	db2, err := bolt.Open(dst, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	s2, err := Open(db2, 100)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Hash() != s.Hash() || s2.RaftIndex() != 50 {
		t.Fatalf("installed copy differs: hash %x vs %x, raft %d", s2.Hash(), s.Hash(), s2.RaftIndex())
	}
}

// TestStatusOf describes a flushed file and refuses one that is not ours.
func TestStatusOf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(db, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := s.Apply(uint64(100+i), &Request{Op: OpSet, Path: fmt.Sprintf("/a/k%d", i), Value: "v", Time: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	want := s.Hash()
	db.Close()
	st, err := StatusOf(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.StoreIndex != 10 || st.RaftIndex != 109 || st.Keys != 11 || st.Hash != want || st.Size <= 0 {
		t.Fatalf("status %+v, want index 10, raft 109, 11 keys, hash %x", st, want)
	}
	other := filepath.Join(dir, "other.db")
	odb, _ := bolt.Open(other, 0o600, nil)
	odb.Close()
	if _, err := StatusOf(other); !errors.Is(err, ErrBadDB) {
		t.Fatalf("StatusOf(foreign file) = %v, want ErrBadDB", err)
	}
}

// TestCaptureCarriesRaftMeta: the Raft metadata given to Capture is stored
// with the batch's version and read back by Open; a later Capture(nil)
// keeps it.
func TestCaptureCarriesRaftMeta(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(db, 10)
	if err != nil {
		t.Fatal(err)
	}
	if s.RaftMeta() != nil {
		t.Fatalf("fresh store has raft meta %q", s.RaftMeta())
	}
	if _, err := s.Apply(7, &Request{Op: OpSet, Path: "/k", Value: "v", Time: 1}); err != nil {
		t.Fatal(err)
	}
	b := s.Capture([]byte("term=3"))
	if b.RaftIndex() != 7 {
		t.Fatalf("batch covers %d, want 7", b.RaftIndex())
	}
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
	s.MarkApplied(8)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, _ = OpenDB(path)
	defer db.Close()
	s, err = Open(db, 10)
	if err != nil {
		t.Fatal(err)
	}
	if string(s.RaftMeta()) != "term=3" || s.RaftIndex() != 8 {
		t.Fatalf("after reopen: meta %q, raft index %d", s.RaftMeta(), s.RaftIndex())
	}
}

// sizedBuffer is a SnapshotSizer: it records the size it is told and
// how much had been written by then.
type sizedBuffer struct {
	bytes.Buffer
	size, sizedAt int64
}

func (b *sizedBuffer) SnapshotSize(n int64) { b.size, b.sizedAt = n, int64(b.Len()) }

// One batch whose values fill several arena chunks, one of them larger
// than a chunk, each value different: after a reopen the file holds every
// node and event as applied.
func TestBatchLargerThanAnArenaChunk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	disk, err := Open(db, 1000)
	if err != nil {
		t.Fatal(err)
	}
	mem := New(1000)
	total := 0
	for i := range 300 {
		size := 1000 + i
		if i == 150 {
			size = 3 * arenaChunk
		}
		v := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		r := Request{Op: OpSet, Path: fmt.Sprintf("/d%d/k%d", i%7, i), Value: string(v), Time: int64(i)}
		for _, s := range []*Store{mem, disk} {
			if _, err := s.Apply(uint64(i+1), &r); err != nil {
				t.Fatal(err)
			}
		}
		total += size
	}
	if total < 4*arenaChunk {
		t.Fatalf("the batch's values take %d bytes, less than four chunks", total)
	}
	if err := disk.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = OpenDB(path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if disk, err = Open(db, 1000); err != nil {
		t.Fatal(err)
	}
	requireSame(t, -1, mem, disk)
}
