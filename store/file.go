package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The applied-state file's life, every step of it here: opening it,
// receiving a replacement from a peer, and putting that in its place.
// Callers never see the bbolt handle.

// OpenFile opens (creating) the applied-state file at path and returns the
// store persisted in it, which owns the file until Close.
func OpenFile(path string, historySize int) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	db, err := OpenDB(path)
	if err != nil {
		return nil, err
	}
	s, err := Open(db, historySize)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.path = path
	return s, nil
}

// Close closes a store opened by OpenFile (or Open) and its file. Batches
// captured and not written are lost: write them first.
func (s *Store) Close() error {
	if s.disk == nil {
		return nil
	}
	return s.disk.close()
}

// Incoming is an applied-state file received from a peer, synced, beside
// the file it may replace; RaftIndex and RaftMeta are what it covers.
type Incoming struct {
	Path      string
	RaftIndex uint64
	RaftMeta  []byte
}

// Discard removes a received file that will not be installed.
func (in *Incoming) Discard() error {
	err := os.Remove(in.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// ReceiveSnapshot writes r to a new file beside the applied-state file at
// path, fsyncs it, and reads what it covers. On error nothing is left.
func ReceiveSnapshot(path string, r io.Reader) (*Incoming, error) {
	tmp, _, err := writeSynced(path, "incoming-*", r)
	if err != nil {
		return nil, err
	}
	index, meta, err := SnapshotMeta(tmp)
	if err != nil {
		_ = os.Remove(tmp)
		return nil, err
	}
	return &Incoming{Path: tmp, RaftIndex: index, RaftMeta: meta}, nil
}

// Replace puts in in the place of s's file and returns the store it holds:
// s is closed (the caller has written every batch it captured), in is
// renamed over the file and the directory fsynced, the file reopened, and
// s's watchers are ended (ErrWatcherCleared) so that clients re-watch.
func (s *Store) Replace(in *Incoming, historySize int) (*Store, error) {
	if s.path == "" {
		return nil, errors.New("store: Replace needs a store opened by OpenFile")
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	if err := renameSynced(in.Path, s.path); err != nil {
		return nil, err
	}
	ns, err := OpenFile(s.path, historySize)
	if err != nil {
		return nil, fmt.Errorf("store: reopening %s after installing a snapshot: %w", s.path, err)
	}
	s.EndWatchers()
	return ns, nil
}

// InstallSnapshot writes a backup read from r to path (replacing what is
// there) durably: a synced file beside it, renamed into place, the
// directory synced. It returns the bytes written.
func InstallSnapshot(r io.Reader, path string) (int64, error) {
	tmp, n, err := writeSynced(path, "*.tmp", r)
	if err != nil {
		return n, err
	}
	if err := renameSynced(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return n, err
	}
	return n, nil
}

// writeSynced copies r into a new file beside path (named after it with
// pattern) and fsyncs it; on error the file is removed.
func writeSynced(path, pattern string, r io.Reader) (string, int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+"."+pattern)
	if err != nil {
		return "", 0, err
	}
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", n, err
	}
	return f.Name(), n, nil
}

// renameSynced renames from to to and fsyncs their directory, so the
// rename survives a crash.
func renameSynced(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(to))
	if err != nil {
		return err
	}
	serr := d.Sync()
	return errors.Join(serr, d.Close())
}
