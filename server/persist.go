package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// recover loads the applied state from bbolt and the log from the WAL: the
// applied state is the Raft snapshot; only WAL entries after it are read.
func (m *Member) recover() error {
	cfg := m.cfg
	st, err := store.OpenFile(StatePath(cfg.DataDir), cfg.EventHistory)
	if err != nil {
		return fmt.Errorf("server: applied state: %w", err)
	}
	m.store = st
	wopts := wal.Options{FS: cfg.WALFS, SegmentSize: cfg.walSegmentSize, UnsafeTrustTornTail: cfg.unsafeTrustTornTail}
	if !wal.Exist(cfg.WALDir, wopts) {
		if st.RaftIndex() != 0 {
			return fmt.Errorf("server: %s has applied state up to %d but no WAL", cfg.DataDir, st.RaftIndex())
		}
		meta := encodeWALMeta(cfg.ID, cfg.ClusterID, nil)
		if cfg.Join {
			// The leader sends the log (or a snapshot) with the cluster's
			// history, which builds the member list as every member built
			// it; until then the member only knows whom to answer, and
			// keeps them with its identity for a restart before then.
			w, err := wal.Create(cfg.WALDir, encodeWALMeta(cfg.ID, cfg.ClusterID, cfg.InitialMembers), wopts)
			if err != nil {
				return err
			}
			m.wal = w
			m.seedPeers = seedPeers(cfg.ID, cfg.InitialMembers)
			m.log.Info().Str("data-dir", cfg.DataDir).Str("member-id", hex(cfg.ID)).Msg("joining an existing cluster")
			return nil
		}
		g := newRegistry()
		for _, mi := range cfg.InitialMembers {
			g.members[mi.ID] = mi.clone()
		}
		voters := make([]uint64, len(cfg.InitialMembers))
		for i, mi := range cfg.InitialMembers {
			voters[i] = mi.ID
		}
		slices.Sort(voters)
		ents, hs := consensus.BootstrapEntries(voters)
		for i := range ents {
			cc := consensus.ConfChange{Type: consensus.AddVoter, NodeID: voters[i], Context: encodeCCContext(0, g.members[voters[i]])}
			ents[i].Data = cc.Marshal()
		}
		// The log is created with the bootstrap entries in it: a log
		// without them would be a member that knows no one, and a
		// restart would not bootstrap again.
		w, err := wal.CreateWith(cfg.WALDir, meta, hs, ents, wopts)
		if err != nil {
			return err
		}
		m.wal = w
		// Applying the bootstrap entries fills the registry.
		if err := m.rs.Append(ents); err != nil {
			return err
		}
		m.rs.SetHardState(hs)
		m.log.Info().Str("data-dir", cfg.DataDir).Msg("bootstrapped a new cluster")
		return nil
	}
	covered := st.RaftIndex()
	w, c, err := wal.Open(cfg.WALDir, covered, wopts)
	if err != nil {
		return err
	}
	m.wal = w
	id, cid, join, err := decodeWALMeta(c.Metadata)
	if err != nil {
		return fmt.Errorf("server: WAL in %s: %w", cfg.WALDir, err)
	}
	if cfg.ID == 0 {
		m.cfg.ID, m.cfg.ClusterID = id, cid
	} else if id != cfg.ID || cid != cfg.ClusterID {
		return fmt.Errorf("server: WAL in %s belongs to another member or cluster", cfg.WALDir)
	}
	if len(join) > 0 {
		// A member that joined: until it has applied its own addition
		// (the log may not hold it yet, or be empty) it answers the
		// members it was told of then, as on its first start.
		m.cfg.Join, m.cfg.InitialMembers = true, join
		m.seedPeers = seedPeers(id, join)
	}
	if covered > 0 {
		term, conf, g, auth, err := decodeRaftMeta(st.RaftMeta())
		if err != nil {
			return err
		}
		m.authView.Store(auth)
		if g == nil { // written before the member list was replicated
			g = newRegistry()
			for _, mi := range cfg.InitialMembers {
				g.members[mi.ID] = mi.clone()
			}
		}
		m.view.Store(g)
		if g.removed[m.cfg.ID] {
			// It applied its own removal before it stopped: it goes on
			// as a removed member does (tickRemoved).
			m.removedTicks = 1
		}
		snap := consensus.Snapshot{Meta: consensus.SnapshotMeta{Index: covered, Term: term, ConfState: conf}}
		if err := m.rs.ApplySnapshot(snap); err != nil {
			return err
		}
		if c.LastIndex < covered {
			// The WAL ends before the applied state: the member stopped
			// after it replaced its applied state with a snapshot from the
			// leader and before the WAL recorded that. Record it now, or
			// the next entry would follow a gap that the next Open refuses.
			if err := m.recordCovered(&c.HardState, snap.Meta); err != nil {
				return err
			}
		}
		m.applied, m.appliedTerm, m.snapIndex = covered, term, covered
		m.setConf(conf)
	}
	if err := m.rs.Append(c.Entries); err != nil {
		return err
	}
	// The applied state proves its index committed: a crash can come
	// between installing a snapshot and persisting the hard state, and a
	// hard state that only moved the commit index is not fsynced
	// (persist), so the applied state may have been written past the
	// WAL's durable commit index. It is past the WAL's last entry only
	// after a snapshot install the WAL did not record, mended above
	// (recordCovered): every entry is fsynced before it is applied.
	hs := c.HardState
	hs.Commit = max(hs.Commit, covered)
	m.rs.SetHardState(hs)
	m.log.Info().Uint64("applied", covered).Int("wal-entries", len(c.Entries)).Msg("recovered")
	// Reading the WAL held its segments whole (64 MiB each, preallocated
	// zeros included) and loading the store built the tree: garbage now,
	// but the first GC ran while it was live, so the next one would wait
	// for a heap twice that size, and an idle member would keep it (and
	// its pages) until the runtime's forced GC minutes later. Collect it
	// and give the pages back once, here.
	debug.FreeOSMemory()
	return nil
}

// maybeCapture hands a batch of applied state to the persister once the
// batch is big or old enough.
func (m *Member) maybeCapture(force bool) {
	n := m.store.Pending()
	if n == 0 || (!force && n < m.cfg.FlushEntries && m.now.Sub(m.lastCapture) < m.cfg.FlushInterval) {
		return
	}
	m.lastCapture = m.now
	b := m.store.Capture(encodeRaftMeta(m.appliedTerm, m.conf, m.view.Load(), m.authView.Load()))
	if m.cfg.syncPersist {
		if err := b.Write(); err != nil {
			m.fail(fmt.Errorf("server: writing applied state: %w", err))
			return
		}
		m.flushedq = append(m.flushedq, b.RaftIndex())
		return
	}
	m.persistc <- persistItem{b: b}
}

// persistItem is a batch to write, or (done set) a barrier: done is
// closed once everything before it is written.
type persistItem struct {
	b    *store.Batch
	done chan struct{}
}

// syncPersister waits until every batch captured so far is written.
func (m *Member) syncPersister() error {
	if m.cfg.syncPersist {
		return m.Err() // every batch was written when it was captured
	}
	done := make(chan struct{})
	select {
	case m.persistc <- persistItem{done: done}:
	case err := <-m.persisterErr:
		return err
	}
	select {
	case <-done:
		return nil
	case err := <-m.persisterErr:
		return err
	}
}

// persister writes captured batches to bbolt, in order.
func (m *Member) persister() {
	defer close(m.persistDone)
	for it := range m.persistc {
		if it.done != nil {
			close(it.done)
			continue
		}
		b := it.b
		start := time.Now()
		err := b.Write()
		took := time.Since(start)
		m.metrics.backendCommit.Observe(took.Seconds())
		if took > time.Second {
			m.log.Warn().Dur("took", took).Msg("slow write of applied state")
		}
		if err != nil {
			m.persisterErr <- fmt.Errorf("server: writing applied state: %w", err)
			return
		}
		select {
		case m.flushedc <- b.RaftIndex():
		default:
		}
	}
}

// flushed runs once bbolt covers index. The applied state in bbolt is
// the Raft snapshot, so the in-memory log need not hold what bbolt
// covers: past 2×CatchUpEntries entries in memory, the log is compacted
// to the last CatchUpEntries (a follower further behind is sent the
// applied state). Past SnapshotCount entries since the last WAL snapshot
// marker, the log is compacted to its last CatchUpEntries whatever its
// length, a marker is written and old WAL segments purged.
func (m *Member) flushed(index uint64) {
	snapshot := index >= m.snapIndex+m.cfg.SnapshotCount
	m.compactLog(index, snapshot)
	if !snapshot {
		return
	}
	term, err := m.rs.Term(index)
	if err != nil {
		return
	}
	if err := m.wal.SaveSnapshot(wal.SnapshotMarker{Index: index, Term: term, ConfState: m.conf}); err != nil {
		m.fail(err)
		return
	}
	if removed, err := m.wal.Purge(index, *m.cfg.MaxWALs); err == nil && len(removed) > 0 {
		m.log.Info().Strs("removed", removed).Msg("purged WAL segments")
	}
	m.snapIndex = index
	m.log.Info().Uint64("index", index).Msg("snapshot taken")
}

// compactLog takes a Raft snapshot (metadata only: the data is bbolt's)
// at index, which bbolt covers, and drops the entries before its last
// CatchUpEntries from memory once it holds twice that many, or at once
// when always (a WAL snapshot is due). The log of 100,000 puts of 256 B
// held about 37 MiB before it was compacted only at SnapshotCount.
func (m *Member) compactLog(index uint64, always bool) {
	catchUp := m.cfg.CatchUpEntries
	if first, _ := m.rs.FirstIndex(); !always && index < first+2*catchUp {
		return
	}
	conf := m.conf
	if _, err := m.rs.CreateSnapshot(index, &conf, nil); err != nil && !errors.Is(err, consensus.ErrSnapOutOfDate) {
		return
	}
	if index > catchUp {
		_ = m.rs.Compact(index - catchUp)
	}
}

// The WAL's metadata is the member's identity: version 1, the member ID
// and the cluster ID (8 bytes each, big-endian). A member that joined an
// existing cluster writes version 2: the same, then the members it was
// told of when it joined (uvarint count, each as in the registry's
// encoding), which it answers after a restart until it has applied its
// own addition.
func encodeWALMeta(id, cluster uint64, join []MemberInfo) []byte {
	version := byte(1)
	if len(join) > 0 {
		version = 2
	}
	b := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte{version}, id), cluster)
	if version == 1 {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(join)))
	for _, mi := range join {
		b = appendMemberInfo(b, mi)
	}
	return b
}

func decodeWALMeta(b []byte) (id, cluster uint64, join []MemberInfo, err error) {
	if len(b) < 17 || (b[0] != 1 && b[0] != 2) || (b[0] == 1 && len(b) != 17) {
		return 0, 0, nil, fmt.Errorf("bad member metadata %x", b)
	}
	id, cluster = binary.BigEndian.Uint64(b[1:9]), binary.BigEndian.Uint64(b[9:17])
	if b[0] == 1 {
		return id, cluster, nil, nil
	}
	d := newDecoder(b[17:])
	for n := d.uvarint(); n > 0 && d.Err() == nil; n-- {
		join = append(join, d.memberInfo())
	}
	if d.Err() == nil && d.Len() != 0 {
		d.Fail("trailing bytes")
	}
	if d.Err() != nil || len(join) == 0 {
		return 0, 0, nil, fmt.Errorf("bad member metadata %x: %v", b, d.Err())
	}
	return id, cluster, join, nil
}

// seedPeers are the peers of the members a joining member was told of,
// itself excepted.
func seedPeers(self uint64, join []MemberInfo) map[uint64]string {
	peers := map[uint64]string{}
	for _, mi := range join {
		if mi.ID != self && len(mi.PeerURLs) > 0 {
			peers[mi.ID] = mi.PeerURLs[0]
		}
	}
	return peers
}

// Initialized reports whether dataDir (with its WAL in walDir, or the
// default place when empty) already holds a member.
func Initialized(dataDir, walDir string) bool {
	if walDir == "" {
		walDir = filepath.Join(dataDir, "member", "wal")
	}
	return wal.Exist(walDir, wal.Options{})
}

// Raft metadata stored with the applied state: version 3, the term of the
// last applied entry, the voters and learners, the member list
// (uvarint-prefixed), the v2 auth registry. Version 2 had no auth
// registry, version 1 no member list either.
func encodeRaftMeta(term uint64, cs consensus.ConfState, g *registry, auth *AuthState) []byte {
	b := consensus.AppendConfState(binary.AppendUvarint([]byte{3}, term), cs)
	reg := g.appendTo(nil)
	b = append(binary.AppendUvarint(b, uint64(len(reg))), reg...)
	return auth.appendTo(b)
}

// decodeRaftMeta returns a nil registry for version 1, and an empty auth
// registry (auth disabled) for versions 1 and 2.
func decodeRaftMeta(b []byte) (uint64, consensus.ConfState, *registry, *AuthState, error) {
	bad := fmt.Errorf("server: applied state has bad Raft metadata %x", b)
	if len(b) < 1 || b[0] < 1 || b[0] > 3 {
		return 0, consensus.ConfState{}, nil, nil, bad
	}
	term, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return 0, consensus.ConfState{}, nil, nil, bad
	}
	cs, rest, err := consensus.DecodeConfState(b[1+n:])
	if err != nil || (b[0] == 1 && len(rest) != 0) {
		return 0, consensus.ConfState{}, nil, nil, bad
	}
	if b[0] == 1 {
		return term, cs, nil, NewAuthState(), nil
	}
	regBytes, authBytes := rest, []byte(nil)
	if b[0] == 3 {
		size, n := binary.Uvarint(rest)
		if n <= 0 || size > uint64(len(rest)-n) {
			return 0, consensus.ConfState{}, nil, nil, bad
		}
		regBytes, authBytes = rest[n:n+int(size)], rest[n+int(size):]
	}
	g, err := decodeRegistry(regBytes)
	if err != nil {
		return 0, consensus.ConfState{}, nil, nil, err
	}
	auth := NewAuthState()
	if b[0] == 3 {
		if auth, err = decodeAuthState(authBytes); err != nil {
			return 0, consensus.ConfState{}, nil, nil, err
		}
	}
	return term, cs, g, auth, nil
}

// recordCovered writes a WAL snapshot marker at meta, an applied state the
// WAL does not reach, and raises the WAL's term to the marker's if it is
// behind (a term the member must have seen, since a leader of that term
// sent the snapshot; its vote, for an older term, is dropped). hs is the
// WAL's hard state, updated in place.
func (m *Member) recordCovered(hs *consensus.HardState, meta consensus.SnapshotMeta) error {
	if hs.Term < meta.Term {
		*hs = consensus.HardState{Term: meta.Term, Commit: max(hs.Commit, meta.Index)}
		if err := m.wal.Save(*hs, nil); err != nil {
			return err
		}
	}
	if err := m.wal.SaveSnapshot(wal.SnapshotMarker{Index: meta.Index, Term: meta.Term, ConfState: meta.ConfState}); err != nil {
		return err
	}
	m.log.Warn().Uint64("applied", meta.Index).Msg("the WAL ended before the applied state; recorded it as a snapshot")
	return nil
}
