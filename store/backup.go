package store

import (
	"errors"
	"fmt"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
)

// FileStatus describes an applied-state file (a member's, or a backup made
// with WriteSnapshot).
type FileStatus struct {
	StoreIndex uint64 // last store index it holds
	RaftIndex  uint64 // Raft index it covers
	Keys       int    // nodes in the tree (keys and directories)
	Size       int64  // file size in bytes
	Hash       uint64 // Store.Hash of its contents
}

// StatusOf opens the file at path read-only and describes it. It fails on
// a file that is not a valid applied-state file.
func StatusOf(path string) (FileStatus, error) {
	var st FileStatus
	fi, err := os.Stat(path)
	if err != nil {
		return st, err
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return st, fmt.Errorf("%w: %s: %v", ErrBadDB, path, err)
	}
	defer db.Close()
	s := New(DefaultEventHistory)
	s.disk = &disk{db: db}
	err = db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketHistory, bucketMeta} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%w: %s: no %s bucket", ErrBadDB, path, b)
			}
		}
		st.Keys = tx.Bucket(bucketKeys).Stats().KeyN
		return s.load(tx)
	})
	if err != nil {
		return st, err
	}
	st.StoreIndex, st.RaftIndex, st.Size, st.Hash = s.Index(), s.RaftIndex(), fi.Size(), s.Hash()
	return st, nil
}

// Progress hears how a long operation goes (cairn snapshot restore shows
// it on a terminal; internal/progress.Meter is one).
type Progress interface {
	// Step begins a step that reads no bytes through Reader (a check),
	// on total bytes.
	Step(step string, total int64)
	// Reader begins a step over the total bytes read through the reader
	// it returns.
	Reader(step string, total int64, r io.Reader) io.Reader
	// Keys gives the number of keys once known.
	Keys(n int)
}

type noProgress struct{}

func (noProgress) Step(string, int64)                              {}
func (noProgress) Reader(_ string, _ int64, r io.Reader) io.Reader { return r }
func (noProgress) Keys(int)                                        {}

// Restore builds an applied-state file at dst from a backup at src (a file
// written by WriteSnapshot), stamping it with raftMeta: the restoring
// member's description of the backup's Raft index (a new term and
// membership). The copy is written atomically (temp file, fsync, rename,
// directory fsync). dst must not exist. p, if not nil, hears of the
// steps: checking the backup, copying it, checking the copy.
func Restore(src, dst string, raftMeta []byte, p Progress) (FileStatus, error) {
	if p == nil {
		p = noProgress{}
	}
	if _, err := os.Stat(dst); err == nil {
		return FileStatus{}, fmt.Errorf("store: restore: %s already exists", dst)
	}
	var size int64
	if fi, err := os.Stat(src); err == nil {
		size = fi.Size()
	}
	p.Step("checking", size)
	st, err := StatusOf(src)
	if err != nil {
		return FileStatus{}, err
	}
	p.Keys(st.Keys)
	f, err := os.Open(src)
	if err != nil {
		return FileStatus{}, err
	}
	_, err = InstallSnapshot(p.Reader("restoring", st.Size, f), dst)
	f.Close()
	if err != nil {
		return FileStatus{}, err
	}
	db, err := OpenDB(dst)
	if err != nil {
		return FileStatus{}, err
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaRaftMeta, raftMeta) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return FileStatus{}, err
	}
	p.Step("checking the copy of", st.Size)
	return StatusOf(dst)
}

// SnapshotMeta reads the Raft index an applied-state file covers and the
// Raft metadata stored with it (see Capture).
func SnapshotMeta(path string) (raftIndex uint64, raftMeta []byte, err error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: %v", ErrBadDB, path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("%w: %s: no meta bucket", ErrBadDB, path)
		}
		raftIndex = getU64(meta, metaRaft)
		raftMeta = append([]byte(nil), meta.Get(metaRaftMeta)...)
		return nil
	})
	return raftIndex, raftMeta, err
}

// ErrWatcherCleared ends every watcher of a store that is being replaced
// (a member installing a snapshot): clients re-watch from NextIndex.
var ErrWatcherCleared = errors.New("store: watcher cleared: the member installed a snapshot")

// EndWatchers ends every registered watcher with ErrWatcherCleared.
func (s *Store) EndWatchers() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range sortedKeys(pathSet(h.watchers)) {
		for _, w := range append([]*Watcher(nil), h.watchers[p]...) {
			w.err = ErrWatcherCleared
			h.unlist(w)
			close(w.c)
		}
	}
}

func pathSet(m map[string][]*Watcher) map[string]struct{} {
	out := make(map[string]struct{}, len(m))
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}
