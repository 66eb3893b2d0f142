package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// SaveSnapshot streams a consistent copy of everything applied so far (a
// backup) to w and returns the Raft index it covers.
func (m *Member) SaveSnapshot(ctx context.Context, w io.Writer) (uint64, error) {
	reply := make(chan error, 1)
	select {
	case m.savec <- reply:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-m.stopc:
		return 0, ErrStopped
	}
	select {
	case err := <-reply:
		if err != nil {
			return 0, err
		}
	case <-m.stopc:
		return 0, ErrStopped
	}
	index, _, err := m.Store().WriteSnapshot(w)
	return index, err
}

// writeSnapshot streams the applied state, as last written, to a peer.
func (m *Member) writeSnapshot(w io.Writer) error {
	_, _, err := m.Store().WriteSnapshot(w)
	return err
}

// receiveSnapshot takes a snapshot from the leader: the stream goes to a
// file beside the applied state, and the MsgSnap, rewritten to what the
// file covers (at or past what the leader asked for), goes to the run
// loop, which installs the file when the core accepts it.
func (m *Member) receiveSnapshot(msg consensus.Message, r io.Reader) error {
	in, err := m.readSnapshot(msg, r)
	if err != nil {
		return err
	}
	select {
	case m.snapc <- in:
		return nil
	case <-m.stopc:
		_ = in.file.Discard()
		return ErrStopped
	}
}

// readSnapshot writes a snapshot stream from the leader to a file beside
// the applied state and rewrites msg to what the file covers.
func (m *Member) readSnapshot(msg consensus.Message, r io.Reader) (incomingSnapshot, error) {
	in, err := store.ReceiveSnapshot(StatePath(m.cfg.DataDir), r)
	if err != nil {
		return incomingSnapshot{}, err
	}
	term, conf, g, auth, err := decodeRaftMeta(in.RaftMeta)
	if err == nil && g == nil {
		err = errors.New("server: the snapshot has no member list (sent by an older member)")
	}
	if err == nil && in.RaftIndex < msg.Snapshot.Meta.Index {
		err = fmt.Errorf("server: snapshot covers %d, leader sent %d", in.RaftIndex, msg.Snapshot.Meta.Index)
	}
	if err != nil {
		_ = in.Discard()
		return incomingSnapshot{}, err
	}
	msg.Snapshot = &consensus.Snapshot{Meta: consensus.SnapshotMeta{Index: in.RaftIndex, Term: term, ConfState: conf}}
	return incomingSnapshot{msg: msg, file: in, members: g, auth: auth}, nil
}

// installSnapshot replaces the applied state with the received file the
// core has accepted: every batch of the old state is written first, the
// file is renamed into place, the store reopened, and the old store's
// watchers are ended (clients re-watch).
func (m *Member) installSnapshot(snap consensus.Snapshot) error {
	in := m.incoming
	if in == nil || in.msg.Snapshot.Meta.Index != snap.Meta.Index {
		return fmt.Errorf("server: the core accepted a snapshot at %d that was not received", snap.Meta.Index)
	}
	m.incoming = nil
	if err := m.syncPersister(); err != nil {
		return err
	}
	m.storeMu.Lock()
	st, err := m.store.Replace(in.file, m.cfg.EventHistory)
	if err == nil {
		m.store = st
	}
	m.storeMu.Unlock()
	if err != nil {
		return err
	}
	conf := snap.Meta.ConfState
	if err := m.wal.SaveSnapshot(wal.SnapshotMarker{Index: snap.Meta.Index, Term: snap.Meta.Term, ConfState: conf}); err != nil {
		return err
	}
	if err := m.rs.ApplySnapshot(snap); err != nil {
		return err
	}
	m.applied, m.appliedTerm, m.snapIndex = snap.Meta.Index, snap.Meta.Term, snap.Meta.Index
	m.setConf(conf)
	m.view.Store(in.members)
	m.authView.Store(in.auth)
	m.syncPeers(in.members)
	m.metrics.applied.Set(float64(snap.Meta.Index))
	m.metrics.snapshotsIn.Inc()
	m.log.Info().Uint64("index", snap.Meta.Index).Msg("installed a snapshot from the leader")
	return nil
}
