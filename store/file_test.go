package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A snapshot received from a peer replaces the applied-state file: the
// new store holds the peer's data, the old one's watchers are ended with
// ErrWatcherCleared, and no temporary file is left beside it.
func TestReceiveAndReplace(t *testing.T) {
	dir := t.TempDir()
	peer, err := OpenFile(filepath.Join(dir, "peer", "state.db"), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.Apply(7, &Request{Op: OpSet, Path: "/from-peer", Value: "x", Time: 1}); err != nil {
		t.Fatal(err)
	}
	if err := peer.Flush(); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if _, _, err := peer.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(dir, "me", "state.db")
	s, err := OpenFile(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch("/", true, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ReceiveSnapshot(path, bytes.NewReader(snap.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if in.RaftIndex != 7 {
		t.Fatalf("received a snapshot covering %d, want 7", in.RaftIndex)
	}
	ns, err := s.Replace(in, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if _, open := <-w.C; open || !errors.Is(w.Err(), ErrWatcherCleared) {
		t.Fatalf("the old store's watcher: open %v, err %v", open, w.Err())
	}
	if e, err := ns.Get("/from-peer", false); err != nil || e.Node.Value != "x" {
		t.Fatalf("the new store reads %v, %v", e, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 || ents[0].Name() != "state.db" {
		t.Fatalf("left beside the file: %v", ents)
	}
}

// A received file that is not a snapshot is refused and removed.
func TestReceiveRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if _, err := ReceiveSnapshot(path, bytes.NewReader([]byte("not a bbolt file"))); err == nil {
		t.Fatal("garbage received as a snapshot")
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}
