package simfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairnkv/cairn/wal"
)

// ErrInjected is wrapped by every failure the file system injects.
var ErrInjected = errors.New("simfs: injected failure")

// Faults are the file system's fault rates, each a probability per call.
type Faults struct {
	// SyncError: a File.Sync or SyncDir fails (nothing is made durable).
	SyncError float64
	// WriteError: a WriteAt fails; TornWrite of those write a prefix of
	// the data first.
	WriteError float64
	TornWrite  float64
}

// Latency is how long the file system's calls take, in virtual time. The
// file system does not sleep: it adds each call's duration to a running
// total (Elapsed), which a simulator reads to keep the caller busy for as
// long. Each range is [min, max], drawn uniformly; zero ranges cost
// nothing and draw nothing.
type Latency struct {
	// Write is the time of a WriteAt.
	Write [2]time.Duration
	// Sync is the time of a File.Sync or SyncDir; with probability
	// Stall, a sync takes StallTime instead (a disk that stalls now and
	// then).
	Sync      [2]time.Duration
	Stall     float64
	StallTime [2]time.Duration
}

// FS is an in-memory wal.FS whose durability is explicit: what was
// written and not synced is lost, in part or whole, by Crash, as are
// directory changes (a file created, renamed or removed) not made durable
// by SyncDir. All randomness comes from the seed given to New, so a run
// replays exactly. It is safe for concurrent use.
type FS struct {
	mu     sync.Mutex
	rng    *rand.Rand
	faults Faults
	lat    Latency
	// elapsed is the virtual time every call so far took (Latency).
	elapsed time.Duration
	// files is the namespace as the running process sees it; durable is
	// the namespace a crash falls back to (only SyncDir updates it).
	files   map[string]*inode
	durable map[string]*inode
	dirs    map[string]bool
	crashes int
}

// inode is one file's contents: data as written, and synced, the prefix
// of data known durable plus the bytes past it that a crash keeps.
//
// synced may share data's array (Sync does not copy): data never changes
// below len(synced) without synced being cut first (write, Truncate), and
// O_TRUNC gives data a new array, so synced always reads what was synced.
type inode struct {
	data   []byte
	synced []byte
	size   int64 // logical size (Preallocate and Truncate may extend past data)
}

var _ wal.FS = (*FS)(nil)

// New returns an empty file system drawing its faults from seed.
func New(seed uint64, faults Faults) *FS {
	return &FS{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), faults: faults,
		files: map[string]*inode{}, durable: map[string]*inode{}, dirs: map[string]bool{"/": true, ".": true}}
}

// SetFaults changes the fault rates (a simulator turns them off to let a
// cluster heal).
func (f *FS) SetFaults(x Faults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = x
}

// SetLatency changes how long calls take (Latency).
func (f *FS) SetLatency(l Latency) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lat = l
}

// Elapsed is the virtual time every call so far took, summed.
func (f *FS) Elapsed() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.elapsed
}

func (f *FS) roll(p float64) bool { return p > 0 && f.rng.Float64() < p }

// spend adds a call's duration, drawn from r, to the elapsed time.
func (f *FS) spend(r [2]time.Duration) {
	if r[1] <= 0 {
		return
	}
	f.elapsed += r[0] + time.Duration(f.rng.Int64N(int64(r[1]-r[0])+1))
}

// spendSync adds a sync's duration: a stall, now and then.
func (f *FS) spendSync() {
	if f.roll(f.lat.Stall) {
		f.spend(f.lat.StallTime)
		return
	}
	f.spend(f.lat.Sync)
}

// Crash simulates a power loss: every file goes back to what was synced,
// keeping a random part (maybe none, maybe all) of what was written after
// its last sync, torn at a random byte; the namespace goes back to what
// SyncDir made durable. Open files must not be used afterwards.
func (f *FS) Crash() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashes++
	names := make([]string, 0, len(f.durable))
	for n := range f.durable {
		names = append(names, n)
	}
	slices.Sort(names) // map order must not reach the random stream
	files := make(map[string]*inode, len(f.durable))
	for _, n := range names {
		in := f.durable[n]
		kept := in.synced
		if len(in.data) > len(in.synced) && f.rng.IntN(2) == 0 {
			// Part of the unsynced tail reached the disk: a prefix of it.
			extra := f.rng.IntN(len(in.data) - len(in.synced) + 1)
			kept = append(slices.Clip(in.synced), in.data[len(in.synced):len(in.synced)+extra]...)
		}
		in.data = slices.Clone(kept)
		in.synced = in.data
		in.size = max(in.size, int64(len(kept)))
		files[n] = in
	}
	f.files = files
	f.durable = cloneFiles(files)
}

// Crashes reports how many times Crash was called.
func (f *FS) Crashes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashes
}

func cloneFiles(m map[string]*inode) map[string]*inode {
	out := make(map[string]*inode, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func clean(name string) string { return filepath.Clean(name) }

// OpenFile opens name; os.O_CREATE creates it (durable only once its
// directory is synced), os.O_TRUNC empties it.
func (f *FS) OpenFile(name string, flag int, _ os.FileMode) (wal.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = clean(name)
	in, ok := f.files[name]
	switch {
	case !ok && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case !ok:
		if !f.dirs[filepath.Dir(name)] {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		in = &inode{}
		f.files[name] = in
	case flag&os.O_EXCL != 0 && flag&os.O_CREATE != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	}
	if flag&os.O_TRUNC != 0 {
		in.data, in.size = nil, 0
	}
	return &file{fs: f, in: in, name: name, readOnly: flag&(os.O_WRONLY|os.O_RDWR) == 0}, nil
}

// Rename moves oldpath to newpath (replacing it); durable at SyncDir.
func (f *FS) Rename(oldpath, newpath string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	oldpath, newpath = clean(oldpath), clean(newpath)
	in, ok := f.files[oldpath]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	}
	delete(f.files, oldpath)
	f.files[newpath] = in
	return nil
}

// Remove removes name; durable at SyncDir.
func (f *FS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = clean(name)
	if _, ok := f.files[name]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(f.files, name)
	return nil
}

// ReadDir lists the files directly in dir, sorted by name.
func (f *FS) ReadDir(dir string) ([]os.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir = clean(dir)
	if !f.dirs[dir] {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	var out []os.DirEntry
	for n, in := range f.files {
		if filepath.Dir(n) == dir {
			out = append(out, entry{name: filepath.Base(n), size: in.size})
		}
	}
	for d := range f.dirs {
		if d != dir && filepath.Dir(d) == dir {
			out = append(out, entry{name: filepath.Base(d), dir: true})
		}
	}
	slices.SortFunc(out, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// MkdirAll creates dir and its parents. Directories are durable at once
// (the simulator never loses one).
func (f *FS) MkdirAll(dir string, _ os.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for d := clean(dir); !f.dirs[d]; d = filepath.Dir(d) {
		f.dirs[d] = true
	}
	return nil
}

// SyncDir makes the directory's entries durable: files created, renamed
// or removed in it since the last SyncDir survive a crash.
func (f *FS) SyncDir(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spendSync()
	if f.roll(f.faults.SyncError) {
		return fmt.Errorf("syncdir %s: %w", dir, ErrInjected)
	}
	dir = clean(dir)
	for n := range f.durable {
		if filepath.Dir(n) == dir {
			if _, ok := f.files[n]; !ok {
				delete(f.durable, n)
			}
		}
	}
	for n, in := range f.files {
		if filepath.Dir(n) == dir {
			f.durable[n] = in
		}
	}
	return nil
}

// Bytes returns a copy of name's contents as the process sees them (for
// tests).
func (f *FS) Bytes(name string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.files[clean(name)]
	if !ok {
		return nil, false
	}
	return slices.Clone(in.data), true
}

type file struct {
	fs       *FS
	in       *inode
	name     string
	readOnly bool
	closed   bool
}

func (fl *file) ReadAt(b []byte, off int64) (int, error) {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if fl.closed {
		return 0, fs.ErrClosed
	}
	in := fl.in
	if off >= in.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(b) && off+int64(n) < in.size {
		p := off + int64(n)
		if p < int64(len(in.data)) {
			n += copy(b[n:], in.data[p:min(int64(len(in.data)), in.size)])
			continue
		}
		b[n] = 0 // preallocated, never written
		n++
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (fl *file) WriteAt(b []byte, off int64) (int, error) {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if fl.closed {
		return 0, fs.ErrClosed
	}
	if fl.readOnly {
		return 0, &fs.PathError{Op: "write", Path: fl.name, Err: fs.ErrPermission}
	}
	fl.fs.spend(fl.fs.lat.Write)
	if fl.fs.roll(fl.fs.faults.WriteError) {
		n := 0
		if fl.fs.roll(fl.fs.faults.TornWrite) {
			n = fl.fs.rng.IntN(len(b) + 1)
			fl.write(b[:n], off)
		}
		return n, fmt.Errorf("write %s: %w", fl.name, ErrInjected)
	}
	fl.write(b, off)
	return len(b), nil
}

func (fl *file) write(b []byte, off int64) {
	in := fl.in
	end := off + int64(len(b))
	if int64(len(in.data)) < end {
		in.data = append(in.data, make([]byte, end-int64(len(in.data)))...)
	}
	copy(in.data[off:], b)
	in.size = max(in.size, end)
	// A write below the synced prefix makes that part of it unsynced.
	if off < int64(len(in.synced)) {
		in.synced = in.synced[:off]
	}
}

func (fl *file) Sync() error {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if fl.closed {
		return fs.ErrClosed
	}
	fl.fs.spendSync()
	if fl.fs.roll(fl.fs.faults.SyncError) {
		return fmt.Errorf("sync %s: %w", fl.name, ErrInjected)
	}
	fl.in.synced = fl.in.data
	return nil
}

func (fl *file) Truncate(size int64) error {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if fl.closed {
		return fs.ErrClosed
	}
	in := fl.in
	if size < int64(len(in.data)) {
		in.data = in.data[:size]
		if int64(len(in.synced)) > size {
			in.synced = in.synced[:size]
		}
	}
	in.size = size
	return nil
}

func (fl *file) Close() error {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	fl.closed = true
	return nil
}

func (fl *file) Size() (int64, error) {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	return fl.in.size, nil
}

// Preallocate extends the file to size without writing (reads see zeros).
func (fl *file) Preallocate(size int64) error {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	fl.in.size = max(fl.in.size, size)
	return nil
}

type entry struct {
	name string
	size int64
	dir  bool
}

func (e entry) Name() string { return e.name }
func (e entry) IsDir() bool  { return e.dir }
func (e entry) Type() fs.FileMode {
	if e.dir {
		return fs.ModeDir
	}
	return 0
}
func (e entry) Info() (fs.FileInfo, error) { return info(e), nil }

type info entry

func (i info) Name() string { return i.name }
func (i info) Size() int64  { return i.size }
func (i info) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o700
	}
	return 0o600
}
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.dir }
func (i info) Sys() any           { return nil }
