package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// Restore builds a fresh data directory for cfg (its member ID, cluster ID
// and voters: a new cluster identity and membership) from a backup taken
// with store.WriteSnapshot, with cfg's InitialMembers (or Voters) as its
// member list. The backup becomes the applied state, at the
// Raft index it covers; the WAL starts with a hard state and a snapshot
// marker there, in term 1. Starting the member afterwards serves the
// backup's keys and history. The backup's v2 auth registry (users, roles,
// whether auth is enabled) is kept: restoring a backup must not open a
// cluster that was closed. The data directory must not hold a member.
// p, if not nil, hears how the copy goes (store.Restore).
func Restore(backup string, c MemberConfig, p store.Progress) (store.FileStatus, error) {
	cfg := c.withDefaults()
	if cfg.ID == 0 || cfg.ClusterID == 0 {
		return store.FileStatus{}, errors.New("server: member and cluster IDs must not be 0")
	}
	if wal.Exist(cfg.WALDir, wal.Options{FS: cfg.WALFS}) {
		return store.FileStatus{}, fmt.Errorf("server: restore: %s already holds a WAL", cfg.WALDir)
	}
	if err := os.MkdirAll(filepath.Dir(StatePath(cfg.DataDir)), 0o700); err != nil {
		return store.FileStatus{}, err
	}
	g := newRegistry()
	var conf consensus.ConfState
	for _, mi := range cfg.InitialMembers {
		g.members[mi.ID] = mi.clone()
		conf.Voters = append(conf.Voters, mi.ID)
	}
	slices.Sort(conf.Voters)
	auth := NewAuthState()
	if _, meta, err := store.SnapshotMeta(backup); err == nil && len(meta) > 0 {
		if _, _, _, a, err := decodeRaftMeta(meta); err == nil {
			auth = a
		} else {
			return store.FileStatus{}, fmt.Errorf("server: restore: %w", err)
		}
	}
	st, err := store.Restore(backup, StatePath(cfg.DataDir), encodeRaftMeta(1, conf, g, auth), p)
	if err != nil {
		return st, err
	}
	w, err := wal.Create(cfg.WALDir, encodeWALMeta(cfg.ID, cfg.ClusterID, nil), wal.Options{FS: cfg.WALFS})
	if err != nil {
		return st, err
	}
	err = errors.Join(
		w.Save(consensus.HardState{Term: 1, Commit: st.RaftIndex}, nil),
		w.SaveSnapshot(wal.SnapshotMarker{Index: st.RaftIndex, Term: 1, ConfState: conf}),
	)
	return st, errors.Join(err, w.Close())
}
