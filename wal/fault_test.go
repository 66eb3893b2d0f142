package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairnkv/cairn/consensus"
)

// Failpoints: the file operations a faultFS can fail.
type op int

const (
	opOpenFile op = iota
	opPreallocate
	opWriteAt
	opSync
	opRename
	opSyncDir
	numOps
)

var opNames = [numOps]string{"OpenFile", "Preallocate", "WriteAt", "Sync", "Rename", "SyncDir"}

func (o op) String() string { return opNames[o] }

var errInjected = errors.New("injected failure")

// faultFS wraps an FS and fails the failAt-th call (counted from arming)
// of failOp.
type faultFS struct {
	FS
	mu      sync.Mutex
	armed   bool
	calls   [numOps]int
	failOp  op
	failAt  int  // 0: never
	fired   bool // the failpoint was hit
	partial bool // a failing WriteAt writes the first half of its data first
	lossy   bool // a failing Sync loses what was written since the last Sync
}

func (f *faultFS) arm() {
	f.mu.Lock()
	f.armed = true
	f.calls = [numOps]int{}
	f.mu.Unlock()
}

func (f *faultFS) hit(o op) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed {
		return false
	}
	f.calls[o]++
	if o == f.failOp && f.calls[o] == f.failAt {
		f.fired = true
		return true
	}
	return false
}

func (f *faultFS) hasFired() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if f.hit(opOpenFile) {
		return nil, fmt.Errorf("open %s: %w", name, errInjected)
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) Rename(o, n string) error {
	if f.hit(opRename) {
		return fmt.Errorf("rename: %w", errInjected)
	}
	return f.FS.Rename(o, n)
}

func (f *faultFS) SyncDir(dir string) error {
	if f.hit(opSyncDir) {
		return fmt.Errorf("sync dir: %w", errInjected)
	}
	return f.FS.SyncDir(dir)
}

type faultFile struct {
	File
	fs      *faultFS
	mu      sync.Mutex
	pending [][2]int64 // ranges written since the last Sync
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	if f.fs.hit(opWriteAt) {
		n := 0
		if f.fs.partial {
			n, _ = f.File.WriteAt(b[:len(b)/2], off)
			f.note(off, n)
		}
		return n, fmt.Errorf("write: %w", errInjected)
	}
	n, err := f.File.WriteAt(b, off)
	f.note(off, n)
	return n, err
}

func (f *faultFile) note(off int64, n int) {
	f.mu.Lock()
	f.pending = append(f.pending, [2]int64{off, int64(n)})
	f.mu.Unlock()
}

func (f *faultFile) Sync() error {
	f.mu.Lock()
	pending := f.pending
	f.pending = nil
	f.mu.Unlock()
	if f.fs.hit(opSync) {
		if f.fs.lossy {
			// The kernel dropped the dirty pages it failed to write.
			for _, p := range pending {
				_, _ = f.File.WriteAt(make([]byte, p[1]), p[0])
			}
		}
		return fmt.Errorf("fsync: %w", errInjected)
	}
	return f.File.Sync()
}

func (f *faultFile) Preallocate(size int64) error {
	if f.fs.hit(opPreallocate) {
		return fmt.Errorf("fallocate: %w", errInjected)
	}
	return f.File.Preallocate(size)
}

// faultBase is what faultFS wraps: the real file system, without the
// fsyncs themselves (they are counted and failed all the same), which only
// cost time here: these tests reopen within one process.
var faultBase FS = noSyncFS{OS}

// faultSeg is tiny so that the Save scenario cuts segments often.
const faultSeg = 512

// saveScenario runs a fixed sequence of Saves on w (entries 1.. in
// batches of 1..3, a hard state on some), stopping after the first
// failure plus a few more attempts. It returns the last acknowledged
// entry index and hard state, the highest index attempted, and checks
// stickiness.
type saveResult struct {
	acked     uint64
	ackedHS   consensus.HardState
	attempted uint64
	failHS    consensus.HardState // hard state of the failed Save
	firstErr  error
	failK     int  // the Save that failed
	swallowed bool // the failpoint fired during a Save that succeeded
}

func saveScenario(t *testing.T, w *WAL, ffs *faultFS, saves int) saveResult {
	t.Helper()
	var r saveResult
	next := uint64(1)
	for k := range saves {
		hi := next + uint64(k%3)
		var hs consensus.HardState
		if k%2 == 0 {
			hs = consensus.HardState{Term: 1, Vote: 1, Commit: next - 1}
		}
		var err error
		before := ffs.hasFired()
		if k%5 == 4 {
			hs = consensus.HardState{}
			err = w.SaveSnapshot(SnapshotMarker{Index: next - 1, Term: 1, ConfState: consensus.ConfState{Voters: []uint64{1}}})
			hi = next - 1
		} else {
			err = w.Save(hs, mkEntries(next, hi, 1))
		}
		if r.firstErr != nil {
			if err == nil || !errors.Is(err, ErrFailed) {
				t.Fatalf("Save after a failure: %v; want ErrFailed (sticky)", err)
			}
			if k > r.failK+3 {
				break
			}
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrFailed) {
				t.Fatalf("failing Save: %v; want ErrFailed", err)
			}
			if !ffs.hasFired() {
				t.Fatalf("Save failed without the failpoint: %v", err)
			}
			if !errors.Is(err, errInjected) {
				t.Errorf("failing Save: %v does not wrap the cause", err)
			}
			r.firstErr = err
			r.attempted = hi
			r.failHS = hs
			r.failK = k
			continue
		}
		if !before && ffs.hasFired() {
			r.swallowed = true
		}
		if k%5 != 4 {
			r.acked = hi
			if !hs.IsEmpty() {
				r.ackedHS = hs
			}
			next = hi + 1
		}
	}
	if r.firstErr != nil {
		if err := w.Err(); !errors.Is(err, ErrFailed) {
			t.Fatalf("Err() = %v after a failure", err)
		}
	} else {
		r.attempted = r.acked
	}
	return r
}

// checkRecovered reopens dir with the real file system and checks that
// every acknowledged Save is there, whole, and that the log goes on.
func checkRecovered(t *testing.T, dir string, r saveResult) {
	t.Helper()
	w, c, err := Open(dir, 0, Options{SegmentSize: faultSeg, FS: OS})
	if err != nil {
		t.Fatalf("reopen after the failure (%v): %v", r.firstErr, err)
	}
	if !bytes.Equal(c.Metadata, testMeta) {
		t.Fatalf("metadata %q", c.Metadata)
	}
	n := uint64(len(c.Entries))
	if n < r.acked || n > r.attempted {
		t.Fatalf("reopen: %d entries; acknowledged %d, attempted %d", n, r.acked, r.attempted)
	}
	checkEntries(t, c.Entries, mkEntries(1, n, 1))
	if c.HardState != r.ackedHS && c.HardState != r.failHS {
		t.Fatalf("hard state %+v; acknowledged %+v, failed %+v", c.HardState, r.ackedHS, r.failHS)
	}
	// The recovered log takes appends.
	mustSave(t, w, consensus.HardState{Term: 2, Commit: n}, mkEntries(n+1, n+2, 2))
	mustClose(t, w)
	w, c = mustOpen(t, dir, 0, Options{SegmentSize: faultSeg, FS: OS})
	defer w.Close()
	checkEntries(t, c.Entries, append(mkEntries(1, n, 1), mkEntries(n+1, n+2, 2)...))
}

type faultMode struct {
	name           string
	partial, lossy bool
}

func modesFor(o op) []faultMode {
	switch o {
	case opWriteAt:
		return []faultMode{{"nothing-written", false, false}, {"half-written", true, false}}
	case opSync:
		return []faultMode{{"kept", false, false}, {"lost", false, true}}
	}
	return []faultMode{{"", false, false}}
}

const faultSaves = 60

// Every failpoint hit during Saves (appends and segment cuts): the Save
// fails with ErrFailed, every later one too, and after a reopen every
// acknowledged Save is there.
func TestFaultsDuringSave(t *testing.T) {
	// Count the calls of a run without faults.
	counter := &faultFS{FS: faultBase}
	dir := t.TempDir()
	w := mustCreate(t, dir, testMeta, Options{SegmentSize: faultSeg, FS: counter})
	counter.arm()
	if r := saveScenario(t, w, counter, faultSaves); r.firstErr != nil {
		t.Fatal(r.firstErr)
	}
	mustClose(t, w)
	if n := len(segNames(t, dir)); n < 5 {
		t.Fatalf("only %d segments cut", n)
	}
	counts := counter.calls
	t.Logf("calls during %d saves: %v", faultSaves, counts)
	var swallowed []string
	for o := range numOps {
		if counts[o] == 0 {
			t.Errorf("no %v during the Saves", o)
		}
		for _, mode := range modesFor(o) {
			for n := 1; n <= counts[o]; n++ {
				name := fmt.Sprintf("%v#%d", o, n)
				if mode.name != "" {
					name += "/" + mode.name
				}
				t.Run(name, func(t *testing.T) {
					ffs := &faultFS{FS: faultBase, failOp: o, failAt: n, partial: mode.partial, lossy: mode.lossy}
					dir := t.TempDir()
					w := mustCreate(t, dir, testMeta, Options{SegmentSize: faultSeg, FS: ffs})
					ffs.arm()
					r := saveScenario(t, w, ffs, faultSaves)
					_ = w.Close()
					if !ffs.hasFired() {
						t.Fatalf("failpoint not reached")
					}
					if r.firstErr == nil {
						if r.swallowed {
							swallowed = append(swallowed, name)
						} else {
							t.Errorf("the failpoint fired but no Save failed")
						}
					}
					checkRecovered(t, dir, r)
				})
			}
		}
	}
	if len(swallowed) > 0 && !t.Failed() {
		knownBug(t, "a failed call is swallowed and the Save that made it is acknowledged: %v. It is the fsync after truncating the previous segment at a cut (wal.go cut: `if err := w.f.Truncate(w.off); err == nil { _ = w.f.Sync() }`); the records were already fsynced, so nothing acknowledged is at risk, but the WAL goes on after a failed fsync, against \"fatal and sticky after any write or fsync failure\"", swallowed)
	}
}

// Every failpoint hit during Create: Create fails, and the directory
// then holds either no log or a whole one.
func TestFaultsDuringCreate(t *testing.T) {
	counter := &faultFS{FS: faultBase}
	counter.arm()
	dir := t.TempDir()
	mustClose(t, mustCreate(t, dir, testMeta, Options{SegmentSize: faultSeg, FS: counter}))
	counts := counter.calls
	for o := range numOps {
		if counts[o] == 0 {
			t.Errorf("no %v during Create", o)
		}
		for _, mode := range modesFor(o) {
			for n := 1; n <= counts[o]; n++ {
				t.Run(fmt.Sprintf("%v#%d%s", o, n, mode.name), func(t *testing.T) {
					ffs := &faultFS{FS: faultBase, failOp: o, failAt: n, partial: mode.partial, lossy: mode.lossy}
					ffs.arm()
					dir := t.TempDir()
					w, err := Create(dir, testMeta, Options{SegmentSize: faultSeg, FS: ffs})
					if err == nil {
						w.Close()
						t.Fatalf("Create succeeded through a failed %v", o)
					}
					if !errors.Is(err, errInjected) {
						t.Errorf("Create: %v does not wrap the cause", err)
					}
					des, _ := os.ReadDir(dir)
					for _, de := range des {
						if strings.HasSuffix(de.Name(), ".tmp") {
							t.Errorf("Create left %s behind", de.Name())
						}
					}
					w, c, err := Open(dir, 0, Options{SegmentSize: faultSeg, FS: OS})
					switch {
					case errors.Is(err, ErrNotExist):
						w = mustCreate(t, dir, testMeta, Options{SegmentSize: faultSeg, FS: OS})
					case err != nil:
						t.Fatalf("Open after a failed Create: %v", err)
					default:
						if !bytes.Equal(c.Metadata, testMeta) || len(c.Entries) != 0 {
							t.Fatalf("Open after a failed Create: %+v", c)
						}
					}
					mustSave(t, w, consensus.HardState{Term: 1}, mkEntries(1, 3, 1))
					mustClose(t, w)
					w, c = mustOpen(t, dir, 0, Options{SegmentSize: faultSeg, FS: OS})
					defer w.Close()
					checkEntries(t, c.Entries, mkEntries(1, 3, 1))
				})
			}
		}
	}
}

// Every failpoint hit during CreateWith: it fails, and the directory then
// holds either no log or one with the initial entries and hard state,
// never a log without them.
func TestFaultsDuringCreateWith(t *testing.T) {
	hs, ents := consensus.HardState{Term: 1, Commit: 3}, mkEntries(1, 3, 1)
	counter := &faultFS{FS: faultBase}
	counter.arm()
	w, err := CreateWith(t.TempDir(), testMeta, hs, ents, Options{SegmentSize: faultSeg, FS: counter})
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	counts := counter.calls
	for o := range numOps {
		for _, mode := range modesFor(o) {
			for n := 1; n <= counts[o]; n++ {
				t.Run(fmt.Sprintf("%v#%d%s", o, n, mode.name), func(t *testing.T) {
					ffs := &faultFS{FS: faultBase, failOp: o, failAt: n, partial: mode.partial, lossy: mode.lossy}
					ffs.arm()
					dir := t.TempDir()
					w, err := CreateWith(dir, testMeta, hs, ents, Options{SegmentSize: faultSeg, FS: ffs})
					if err == nil {
						w.Close()
						t.Fatalf("CreateWith succeeded through a failed %v", o)
					}
					w, c, err := Open(dir, 0, Options{SegmentSize: faultSeg, FS: OS})
					switch {
					case errors.Is(err, ErrNotExist):
						return
					case err != nil:
						t.Fatalf("Open after a failed CreateWith: %v", err)
					}
					defer w.Close()
					if !bytes.Equal(c.Metadata, testMeta) || c.HardState != hs {
						t.Fatalf("Open after a failed CreateWith: metadata %x hard state %+v", c.Metadata, c.HardState)
					}
					checkEntries(t, c.Entries, ents)
				})
			}
		}
	}
	// And when it succeeds, the log holds them and appends go on after.
	dir := t.TempDir()
	w, err = CreateWith(dir, testMeta, hs, ents, Options{SegmentSize: faultSeg, FS: OS})
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, consensus.HardState{Term: 1, Commit: 4}, mkEntries(4, 4, 1))
	mustClose(t, w)
	w, c := mustOpen(t, dir, 0, Options{SegmentSize: faultSeg, FS: OS})
	defer w.Close()
	checkEntries(t, c.Entries, mkEntries(1, 4, 1))
	if c.HardState.Commit != 4 {
		t.Fatalf("hard state %+v", c.HardState)
	}
}

// Every failpoint hit during Open (of a log with a torn tail to repair):
// Open fails, and a later Open with the real file system still finds
// everything.
func TestFaultsDuringOpen(t *testing.T) {
	l := buildLog(t, 100)
	seg := lastSeg(t, l.dir)
	rs := layout(t, readAll(t, seg))
	last := rs[len(rs)-1]
	// Tear the last record, leaving garbage after the cut.
	b := readAll(t, seg)
	clear(b[last.off+9 : last.end])
	writeAll(t, seg, b)
	want := l.entries
	if last.typ == recEntry {
		want = want[:len(want)-1]
	}
	counter := &faultFS{FS: faultBase}
	counter.arm()
	w, _ := mustOpen(t, copyDir(t, l.dir), 0, Options{SegmentSize: smallSeg, FS: counter})
	mustClose(t, w)
	counts := counter.calls
	for o := range numOps {
		for n := 1; n <= counts[o]; n++ {
			t.Run(fmt.Sprintf("%v#%d", o, n), func(t *testing.T) {
				dir := copyDir(t, l.dir)
				ffs := &faultFS{FS: faultBase, failOp: o, failAt: n}
				ffs.arm()
				w, _, err := Open(dir, 0, Options{SegmentSize: smallSeg, FS: ffs})
				if err == nil {
					w.Close()
					t.Fatalf("Open succeeded through a failed %v", o)
				}
				if errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open: %v", err)
				}
				w, c := mustOpen(t, dir, 0, Options{SegmentSize: smallSeg, FS: OS})
				checkEntries(t, c.Entries, want)
				next := uint64(len(want)) + 1
				mustSave(t, w, consensus.HardState{}, mkEntries(next, next, 2))
				mustClose(t, w)
				w, c = mustOpen(t, dir, 0, Options{SegmentSize: smallSeg, FS: OS})
				defer w.Close()
				checkEntries(t, c.Entries, append(slices.Clone(want), mkEntry(next, 2)))
			})
		}
	}
}

// Concurrent writers (one appending entries, others saving hard states)
// with a failpoint somewhere: no Save that starts after a failure was
// reported succeeds, and every acknowledged Save is on disk.
func TestFaultsConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 40 {
		o := op(round % int(numOps))
		n := 1 + rng.IntN(12)
		if o == opWriteAt || o == opSync {
			n = 1 + rng.IntN(60)
		}
		t.Run(fmt.Sprintf("%v#%d", o, n), func(t *testing.T) {
			ffs := &faultFS{FS: faultBase, failOp: o, failAt: n, partial: round%2 == 0, lossy: round%4 == 1}
			dir := t.TempDir()
			w := mustCreate(t, dir, testMeta, Options{SegmentSize: faultSeg, FS: ffs})
			ffs.arm()
			var (
				failed   atomic.Bool
				wg       sync.WaitGroup
				mu       sync.Mutex
				ackedHS  = map[uint64]uint64{} // writer -> last acknowledged commit
				acked    uint64
				attempts uint64
			)
			save := func(hs consensus.HardState, ents []consensus.Entry) bool {
				seen := failed.Load()
				err := w.Save(hs, ents)
				if err != nil {
					if !errors.Is(err, ErrFailed) {
						t.Errorf("Save: %v; want ErrFailed", err)
					}
					failed.Store(true)
					return false
				}
				if seen {
					t.Errorf("a Save that started after a failure was reported succeeded")
				}
				return true
			}
			for g := uint64(1); g <= 4; g++ {
				wg.Go(func() {
					for c := uint64(1); c <= 40; c++ {
						if !save(consensus.HardState{Term: 1, Vote: g, Commit: c}, nil) {
							return
						}
						mu.Lock()
						ackedHS[g] = c
						mu.Unlock()
					}
				})
			}
			for i := uint64(1); i <= 60; i++ {
				attempts = i
				if !save(consensus.HardState{}, mkEntries(i, i, 1)) {
					break
				}
				acked = i
			}
			wg.Wait()
			_ = w.Close()
			if !ffs.hasFired() {
				t.Skip("failpoint not reached in this interleaving")
			}
			w2, c, err := Open(dir, 0, Options{SegmentSize: faultSeg, FS: OS})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			ne := uint64(len(c.Entries))
			if ne < acked || ne > attempts {
				t.Fatalf("%d entries; acknowledged %d, attempted %d", ne, acked, attempts)
			}
			checkEntries(t, c.Entries, mkEntries(1, ne, 1))
			mustClose(t, w2)
			last := map[uint64]uint64{}
			for _, recs := range rawRecords(t, dir) {
				for _, r := range recs {
					if r.typ == recHardState {
						h, _ := decodeHardState(r.data)
						if h.Vote != 0 && h.Commit > last[h.Vote] {
							last[h.Vote] = h.Commit
						}
					}
				}
			}
			for g, c := range ackedHS {
				if last[g] < c {
					t.Errorf("writer %d: acknowledged commit %d, on disk %d", g, c, last[g])
				}
			}
		})
	}
}
