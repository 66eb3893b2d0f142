package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/peer"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// Errors a Member answers with. httpapi reports them as code 300.
var (
	// ErrTimeout: the request was proposed but not applied in time; it may
	// still be applied later (outcome unknown).
	ErrTimeout = errors.New("request timed out; outcome unknown")
	// ErrStopped: the member is stopping or stopped.
	ErrStopped = errors.New("member stopped")
	// ErrNotProposed: the request timed out before it could be proposed
	// (no leader was known); it was not applied and never will be.
	ErrNotProposed = errors.New("request timed out before it could be proposed (no leader); not applied")
)

// MemberConfig configures a Member. Zero fields take the defaults noted.
type MemberConfig struct {
	// ID and ClusterID identify the member and its cluster (never 0).
	ID, ClusterID uint64
	// ID 0 takes the identity recorded in an existing data directory.
	// Name is the member's human-readable name; PeerURLs and ClientURLs
	// are the URLs it advertises. Name and ClientURLs are published to the
	// cluster's member list once a leader is known.
	Name                 string
	PeerURLs, ClientURLs []string
	// InitialMembers are a new cluster's members (every one a voter), or,
	// with Join, the members of the cluster this new member joins.
	InitialMembers []MemberInfo
	// Join starts a new member of an existing cluster: its log starts
	// empty and the leader brings it up to date.
	Join bool
	// Voters and Peers are the short form of InitialMembers: the initial
	// voters (default: ID alone) and the other members' peer URLs.
	Voters []uint64
	Peers  map[uint64]string
	// DataDir holds the member's state (layout in docs/operations.md).
	DataDir string
	// WALDir moves the WAL out of DataDir (default DataDir/member/wal).
	WALDir string
	// HeartbeatInterval is the tick (default 100 ms); ElectionTicks the
	// election timeout in ticks (default 10).
	HeartbeatInterval time.Duration
	ElectionTicks     int
	// SnapshotCount: a Raft snapshot (and WAL purge) once the applied
	// state covers this many entries more than the last one (default
	// 100000, etcd's).
	SnapshotCount uint64
	// CatchUpEntries stay in memory after a snapshot for followers that
	// are only a little behind (default 5000, etcd's).
	CatchUpEntries uint64
	// MaxWALs bounds the WAL segments kept (default 5; 0 keeps all).
	MaxWALs *int
	// EventHistory sizes the watch history (default store.DefaultEventHistory).
	EventHistory int
	// FlushInterval and FlushEntries bound a batch of applied state
	// written to bbolt (defaults 100 ms and 1000 entries).
	FlushInterval time.Duration
	FlushEntries  int
	// RequestTimeout bounds a proposal's wait, and a linearizable read's
	// wait for its ReadIndex round (default 5 s + 2 election timeouts, as
	// etcd).
	RequestTimeout time.Duration
	Logger         zerolog.Logger
	// WALFS is the WAL's file system (wal.OS when nil); tests inject faults.
	WALFS wal.FS
	// PeerDialTLS dials peers with https URLs: the peer TLS (see
	// peer.Config.DialTLSContext). Nil: Go's defaults.
	PeerDialTLS func(ctx context.Context, network, addr string) (net.Conn, error)
	// Metrics is where the member registers its Prometheus metrics (none
	// when nil).
	Metrics prometheus.Registerer
	// Now is the clock for proposals and expiry (default time.Now).
	Now func() time.Time
	// UnsafeSkipProposalCheck is a deliberate bug for testing that apply
	// refuses what it cannot take: as leader, the member appends proposals
	// without checking them. Never set it in production (cairn sets it
	// from CAIRN_UNSAFE_SKIP_PROPOSAL_CHECK=1 and logs a warning).
	UnsafeSkipProposalCheck bool
	// UnsafeLocalReads is a deliberate bug for testing the checkers: a
	// linearizable read answers from the local state without a ReadIndex
	// round, so a partitioned or lagging member serves stale data. Never
	// set it in production (cairn sets it from CAIRN_UNSAFE_LOCAL_READS=1
	// and logs a warning).
	UnsafeLocalReads bool
}

func (c *MemberConfig) withDefaults() MemberConfig {
	cc := *c
	if len(cc.InitialMembers) == 0 {
		if len(cc.Voters) == 0 {
			cc.Voters = []uint64{cc.ID}
		}
		for _, id := range cc.Voters {
			mi := MemberInfo{ID: id, PeerURLs: []string{}, ClientURLs: []string{}}
			if u, ok := cc.Peers[id]; ok {
				mi.PeerURLs = []string{u}
			} else if id == cc.ID && len(cc.PeerURLs) > 0 {
				mi.PeerURLs = slices.Clone(cc.PeerURLs)
			}
			cc.InitialMembers = append(cc.InitialMembers, mi)
		}
	}
	if cc.ClientURLs == nil {
		cc.ClientURLs = []string{}
	}
	if cc.WALDir == "" {
		cc.WALDir = filepath.Join(cc.DataDir, "member", "wal")
	}
	if cc.HeartbeatInterval <= 0 {
		cc.HeartbeatInterval = 100 * time.Millisecond
	}
	if cc.ElectionTicks <= 1 {
		cc.ElectionTicks = 10
	}
	if cc.SnapshotCount == 0 {
		cc.SnapshotCount = 100000
	}
	if cc.CatchUpEntries == 0 {
		cc.CatchUpEntries = 5000
	}
	if cc.MaxWALs == nil {
		five := 5
		cc.MaxWALs = &five
	}
	if cc.EventHistory <= 0 {
		cc.EventHistory = store.DefaultEventHistory
	}
	if cc.FlushInterval <= 0 {
		cc.FlushInterval = 100 * time.Millisecond
	}
	if cc.FlushEntries <= 0 {
		cc.FlushEntries = 1000
	}
	if cc.RequestTimeout <= 0 {
		cc.RequestTimeout = 5*time.Second + 2*time.Duration(cc.ElectionTicks)*cc.HeartbeatInterval
	}
	if cc.Now == nil {
		cc.Now = time.Now
	}
	return cc
}

// StatePath is the applied-state file in a data directory.
func StatePath(dataDir string) string { return filepath.Join(dataDir, "member", "state.db") }

type result struct {
	ev  *store.Event
	err error
	out any // an auth operation's authOutcome
}

type proposal struct {
	id   uint64
	data []byte
	cc   *consensus.ConfChange // a membership change instead of data
}

// Member is one Cairn member: it owns the consensus node and runs its loop
// (tick, step, persist to the WAL, apply to the store, advance) on one
// goroutine, mirrors applied state into bbolt in batches on another, and
// serves the httpapi.Backend interface.
type Member struct {
	cfg  MemberConfig
	log  zerolog.Logger
	node *consensus.Node
	rs   *consensus.MemoryStorage
	wal  *wal.WAL
	db   *bolt.DB
	// store is replaced when a snapshot is installed: the run loop reads
	// it freely (it alone writes it), others through Store or storeMu.
	storeMu sync.RWMutex
	store   *store.Store
	// incoming is a received snapshot waiting for the core to accept it.
	incoming *incomingSnapshot
	snapc    chan incomingSnapshot
	// savec asks the run loop to write everything applied to bbolt.
	savec chan chan error

	propc     chan proposal
	readc     chan chan struct{}
	recvc     chan consensus.Message
	reportc   chan report
	transport *peer.Transport
	persistc  chan persistItem
	flushedc  chan uint64
	stopc     chan struct{}
	done      chan struct{}
	stopOnce  sync.Once

	waitMu  sync.Mutex
	waiters map[uint64]chan result
	// proposed holds waiters whose request reached the Raft core, with
	// the log index it was given once known (0 before).
	proposed map[uint64]uint64
	nextID   atomic.Uint64
	// view is the member list as of the last applied entry; the run loop
	// replaces it, anyone may read it.
	view atomic.Pointer[registry]
	// confView is m.conf for readers outside the run loop.
	confView atomic.Pointer[consensus.ConfState]
	// authView is the v2 auth registry as of the last applied entry; the
	// run loop replaces it, anyone may read it.
	authView atomic.Pointer[AuthState]
	authAPI
	// followers measures heartbeat round trips for /v2/stats/leader.
	followers *followerTracker
	// seedPeers are the peers a joining member was told of, kept until it
	// has applied its own addition (see syncPeers).
	seedPeers map[uint64]string
	// removedTicks counts ticks since this member applied its own removal
	// (0: not removed).
	removedTicks int

	// Run-loop state.
	applied      uint64
	appliedTerm  uint64
	conf         consensus.ConfState
	snapIndex    uint64
	lastCapture  time.Time
	reads        []chan struct{} // waiting for the next ReadIndex round
	readRound    *readRound
	readSeq      uint64
	expiryID     uint64     // pending expiry proposal
	held         []proposal // proposed while no leader was known
	campaigned   bool
	isLeader     bool
	persisterErr chan error
	persistDone  chan struct{}

	metrics   *metrics
	started   time.Time
	leadSince atomic.Int64 // Unix ns when the current leader became known
	state     atomic.Uint32
	recvApp   atomic.Uint64
	sendApp   atomic.Uint64
	recvRate  rateWindow // appends received, for /v2/stats/self
	sendRate  rateWindow // appends sent
	committed atomic.Uint64
	term      atomic.Uint64
	lead      atomic.Uint64
	failure   atomic.Pointer[error]
	ready     readiness
}

// report is the transport's word about a peer.
type report struct {
	id       uint64
	snapshot bool // a snapshot was sent (else: the peer is unreachable)
	failed   bool // the snapshot failed
}

// incomingSnapshot is a received applied-state file and the MsgSnap,
// rewritten to the index, term and membership the file covers.
type incomingSnapshot struct {
	msg     consensus.Message
	path    string
	members *registry
	auth    *AuthState
}

type readRound struct {
	ctx     []byte
	index   uint64 // 0 until the ReadState arrives
	waiters []chan struct{}
	ticks   int
	lead    uint64 // the leader known when the round was asked (0: none)
}

// StartMember opens (or creates) the member's state in cfg.DataDir and
// starts it. A new member bootstraps a cluster of cfg.Voters.
func StartMember(c MemberConfig) (*Member, error) {
	cfg := c.withDefaults()
	if (cfg.ID == 0 || cfg.ClusterID == 0) && !Initialized(cfg.DataDir, cfg.WALDir) {
		return nil, errors.New("server: a new member needs member and cluster IDs other than 0")
	}
	if err := os.MkdirAll(filepath.Dir(StatePath(cfg.DataDir)), 0o700); err != nil {
		return nil, err
	}
	db, err := store.OpenDB(StatePath(cfg.DataDir))
	if err != nil {
		return nil, fmt.Errorf("server: applied state: %w", err)
	}
	m := &Member{cfg: cfg, log: cfg.Logger, db: db, rs: consensus.NewMemoryStorage(),
		propc: make(chan proposal, 4096), readc: make(chan chan struct{}, 4096),
		persistc: make(chan persistItem, 64), flushedc: make(chan uint64, 64),
		recvc: make(chan consensus.Message, 4096), reportc: make(chan report, 1024), snapc: make(chan incomingSnapshot), savec: make(chan chan error),
		stopc: make(chan struct{}), done: make(chan struct{}), waiters: map[uint64]chan result{}, proposed: map[uint64]uint64{},
		persisterErr: make(chan error, 1), persistDone: make(chan struct{})}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	m.nextID.Store(binary.BigEndian.Uint64(seed[:]))
	m.view.Store(newRegistry())
	m.authView.Store(NewAuthState())
	m.authAPI = authAPI{state: m.authView.Load, do: m.proposeAuth}
	m.followers = newFollowerTracker()
	if err := m.recover(); err != nil {
		_ = db.Close()
		if m.wal != nil {
			_ = m.wal.Close()
		}
		return nil, err
	}
	cfg = m.cfg // the identity may come from the data directory
	m.ready.catchUp.Store(m.rs.HardState().Commit)
	node, err := consensus.NewNode(&consensus.Config{
		ID: cfg.ID, ElectionTick: cfg.ElectionTicks, HeartbeatTick: 1, Storage: m.rs, Applied: m.applied,
		CheckQuorum: true, PreVote: true, Seed: binary.BigEndian.Uint64(seed[:]),
		CheckProposal: m.checkProposal,
	})
	if err != nil {
		_ = db.Close()
		_ = m.wal.Close()
		return nil, err
	}
	m.node = node
	m.lastCapture = cfg.Now()
	m.started = time.Now()
	m.metrics = newMetrics(cfg.Metrics, m)
	m.transport = peer.New(peer.Config{
		ID: m.cfg.ID, ClusterID: m.cfg.ClusterID, Logger: cfg.Logger,
		Receive:   m.receive,
		IsRemoved: func(id uint64) bool { return m.view.Load().removed[id] },
		IsMember:  m.isPeer,
		Refused:   func(reason string) { m.metrics.peerRefused.WithLabelValues(reason).Inc() },
		Removed: func() {
			m.log.Error().Msg("a peer says this member was removed from the cluster")
			m.fail(ErrRemoved)
		},
		Unreachable: func(id uint64) {
			m.metrics.sendFailures.WithLabelValues(hex(id)).Inc()
			m.followers.failed(id)
			m.tellReport(report{id: id})
		},
		SnapshotDone: func(id uint64, failed bool) {
			if failed {
				m.metrics.snapshotFailed.WithLabelValues(hex(id)).Inc()
			} else {
				m.metrics.snapshotSent.WithLabelValues(hex(id)).Inc()
			}
			m.tellReport(report{id: id, snapshot: true, failed: failed})
		},
		WriteSnapshot:   m.writeSnapshot,
		ReceiveSnapshot: m.receiveSnapshot,
		DialTLSContext:  cfg.PeerDialTLS,
	})

	m.syncPeers(m.view.Load())
	go m.persister()
	go m.run()
	go m.publish()
	return m, nil
}

// recover loads the applied state from bbolt and the log from the WAL: the
// applied state is the Raft snapshot; only WAL entries after it are read.
func (m *Member) recover() error {
	cfg := m.cfg
	st, err := store.Open(m.db, cfg.EventHistory)
	if err != nil {
		return err
	}
	m.store = st
	meta := encodeWALMeta(cfg.ID, cfg.ClusterID)
	wopts := wal.Options{FS: cfg.WALFS}
	if !wal.Exist(cfg.WALDir, wopts) {
		if st.RaftIndex() != 0 {
			return fmt.Errorf("server: %s has applied state up to %d but no WAL", cfg.DataDir, st.RaftIndex())
		}
		w, err := wal.Create(cfg.WALDir, meta, wopts)
		if err != nil {
			return err
		}
		m.wal = w
		g := newRegistry()
		for _, mi := range cfg.InitialMembers {
			g.members[mi.ID] = mi.clone()
		}
		if cfg.Join {
			// The leader sends the log (or a snapshot) with the cluster's
			// history, which builds the member list as every member built
			// it; until then the member only knows whom to answer.
			m.seedPeers = map[uint64]string{}
			for _, mi := range cfg.InitialMembers {
				if mi.ID != cfg.ID && len(mi.PeerURLs) > 0 {
					m.seedPeers[mi.ID] = mi.PeerURLs[0]
				}
			}
			m.log.Info().Str("data-dir", cfg.DataDir).Str("member-id", hex(cfg.ID)).Msg("joining an existing cluster")
			return nil
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
		// Applying the bootstrap entries fills the registry again.
		m.view.Store(newRegistry())
		if err := w.Save(hs, ents); err != nil {
			return err
		}
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
	if cfg.ID == 0 {
		id, cid, err := decodeWALMeta(c.Metadata)
		if err != nil {
			return fmt.Errorf("server: WAL in %s: %w", cfg.WALDir, err)
		}
		m.cfg.ID, m.cfg.ClusterID = id, cid
		meta = c.Metadata
	}
	if string(c.Metadata) != string(meta) {
		return fmt.Errorf("server: WAL in %s belongs to another member or cluster", cfg.WALDir)
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
		snap := consensus.Snapshot{Meta: consensus.SnapshotMeta{Index: covered, Term: term, ConfState: conf}}
		if err := m.rs.ApplySnapshot(snap); err != nil {
			return err
		}
		m.applied, m.appliedTerm, m.snapIndex = covered, term, covered
		m.setConf(conf)
	}
	if err := m.rs.Append(c.Entries); err != nil {
		return err
	}
	// The applied state proves its index committed (a crash can come
	// between installing a snapshot and persisting the hard state).
	hs := c.HardState
	hs.Commit = max(hs.Commit, covered)
	m.rs.SetHardState(hs)
	m.log.Info().Uint64("applied", covered).Int("wal-entries", len(c.Entries)).Msg("recovered")
	return nil
}

// Store returns the member's store (for watches and tests).
func (m *Member) Store() *store.Store {
	m.storeMu.RLock()
	defer m.storeMu.RUnlock()
	return m.store
}

// Done is closed when the member has stopped; Err says why, if it failed.
func (m *Member) Done() <-chan struct{} { return m.done }

// Err returns the failure that stopped the member, if any.
func (m *Member) Err() error {
	if p := m.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// Stop stops the member: the loop ends, the applied state is flushed and
// the files are closed.
func (m *Member) Stop() error {
	m.stopOnce.Do(func() { close(m.stopc) })
	<-m.done
	return m.Err()
}

// fail stops the member after an error it cannot continue from (a failed
// fsync): nothing more is acknowledged.
func (m *Member) fail(err error) {
	if m.failure.CompareAndSwap(nil, &err) {
		m.log.Error().Err(err).Msg("member failed; stopping")
	}
	m.stopOnce.Do(func() { close(m.stopc) })
}

func (m *Member) run() {
	defer m.shutdown()
	tick := time.NewTicker(m.cfg.HeartbeatInterval)
	defer tick.Stop()
	expiry := time.NewTicker(SyncInterval)
	defer expiry.Stop()
	stopc := m.stopc
	var handoverDone <-chan time.Time
	for {
		select {
		case <-stopc:
			// A leader hands over before stopping, so that the others
			// need not wait out an election timeout.
			if m.Err() != nil || !m.handOver() {
				return
			}
			stopc = nil
			handoverDone = time.After(time.Duration(m.cfg.ElectionTicks) * m.cfg.HeartbeatInterval)
		case <-handoverDone:
			return
		case <-tick.C:
			m.node.Tick()
			m.tickReads()
			m.maybePromote()
			m.tickRemoved()
		case <-expiry.C:
			m.maybeExpire()
		case p := <-m.propc:
			m.propose(p)
			// Everything that piled up during the last fsync goes into
			// the next one (group commit).
			for more := true; more; {
				select {
				case p := <-m.propc:
					m.propose(p)
				default:
					more = false
				}
			}
		case r := <-m.readc:
			m.reads = append(m.reads, r)
			m.startRead()
		case msg := <-m.recvc:
			_ = m.node.Step(msg)
			for more := true; more; {
				select {
				case msg := <-m.recvc:
					_ = m.node.Step(msg)
				default:
					more = false
				}
			}
		case reply := <-m.savec:
			m.maybeCapture(true)
			err := m.syncPersister()
			reply <- err
			if err != nil {
				m.fail(err)
				return
			}
		case in := <-m.snapc:
			if m.incoming != nil {
				_ = os.Remove(m.incoming.path)
			}
			m.incoming = &in
			_ = m.node.Step(in.msg)
		case r := <-m.reportc:
			if r.snapshot {
				m.node.ReportSnapshot(r.id, r.failed)
			} else {
				m.node.ReportUnreachable(r.id)
			}
		case idx := <-m.flushedc:
			m.flushed(idx)
		case err := <-m.persisterErr:
			m.fail(err)
			return
		}
		if !m.drain() {
			return
		}
		m.campaignAlone()
		m.maybeCapture(false)
		if stopc == nil && !m.isLeader {
			return // the handover is done
		}
	}
}

// handOver asks the most caught-up other voter to take over leadership;
// false if there is nobody to hand over to.
func (m *Member) handOver() bool {
	if !m.isLeader || m.transport == nil {
		return false
	}
	st := m.node.Status()
	var best uint64
	var bestMatch uint64
	for _, id := range st.Config.Voters {
		if pr, ok := st.Progress[id]; ok && id != m.cfg.ID && (best == 0 || pr.Match > bestMatch) {
			best, bestMatch = id, pr.Match
		}
	}
	if best == 0 {
		return false
	}
	m.log.Info().Str("to", fmt.Sprintf("%x", best)).Msg("handing over leadership before stopping")
	_ = m.node.TransferLeadership(best)
	return m.drain()
}

func (m *Member) propose(p proposal) {
	m.waitMu.Lock()
	_, waiting := m.waiters[p.id]
	if waiting {
		m.proposed[p.id] = 0
	}
	m.waitMu.Unlock()
	if !waiting {
		return // its caller gave up before it reached Raft
	}
	var err error
	if p.cc != nil {
		err = m.node.ProposeConfChange(*p.cc)
	} else {
		err = m.node.Propose(p.data)
	}
	if errors.Is(err, consensus.ErrNoLeader) {
		// Hold it until a leader is known; the caller's timeout bounds
		// the wait, and a caller that gives up meanwhile is told it was
		// not applied.
		m.waitMu.Lock()
		delete(m.proposed, p.id)
		m.waitMu.Unlock()
		m.held = append(m.held, p)
		return
	}
	if err != nil {
		m.trigger(p.id, result{err: err})
	}
}

// releaseHeld proposes what waited for a leader.
func (m *Member) releaseHeld() {
	held := m.held
	m.held = nil
	for _, p := range held {
		m.waitMu.Lock()
		_, waiting := m.waiters[p.id]
		m.waitMu.Unlock()
		if waiting {
			m.propose(p)
		}
	}
}

// drain carries out every Ready: persist, send, apply, advance.
func (m *Member) drain() bool {
	for m.node.HasReady() {
		rd := m.node.Ready()
		if rd.SoftState != nil {
			prevLead := m.lead.Swap(rd.SoftState.Lead)
			m.state.Store(uint32(rd.SoftState.State))
			if rd.SoftState.Lead != prevLead {
				m.leadSince.Store(time.Now().UnixNano())
			}
			leader := rd.SoftState.State == consensus.StateLeader
			if leader && !m.isLeader {
				m.followers.reset()
			}
			if leader != m.isLeader {
				m.log.Info().Bool("leader", leader).Str("lead", fmt.Sprintf("%x", rd.SoftState.Lead)).Msg("leadership changed")
				// An expiry proposed in an earlier term may never be
				// applied (a new leader can drop it): waiting for it
				// would stop every TTL while we lead.
				m.expiryID = 0
			}
			if rd.SoftState.Lead != 0 && rd.SoftState.Lead != prevLead {
				m.metrics.leaderChanges.Inc()
			}
			m.metrics.hasLeader.Set(b2f(rd.SoftState.Lead != 0))
			m.metrics.isLeader.Set(b2f(leader))
			m.isLeader = leader
			if rd.SoftState.Lead != 0 {
				defer m.releaseHeld()
			}
		}
		// Messages that promise nothing go out while we write; the rest
		// only once what they promise is on disk.
		m.send(rd.Messages)
		if !rd.Snapshot.IsEmpty() {
			if err := m.installSnapshot(rd.Snapshot); err != nil {
				m.fail(err)
				return false
			}
		}
		start := time.Now()
		if err := m.wal.Save(rd.HardState, rd.Entries); err != nil {
			m.fail(err)
			return false
		}
		if len(rd.Entries) > 0 || !rd.HardState.IsEmpty() {
			took := time.Since(start)
			m.metrics.walFsync.Observe(took.Seconds())
			if took > time.Second {
				m.log.Warn().Dur("took", took).Int("entries", len(rd.Entries)).Msg("slow WAL fsync")
			}
		}
		if err := m.rs.Append(rd.Entries); err != nil {
			m.fail(err)
			return false
		}
		m.noteIndexes(rd.Entries)
		if !rd.HardState.IsEmpty() {
			m.rs.SetHardState(rd.HardState)
			m.committed.Store(rd.HardState.Commit)
			m.metrics.committed.Set(float64(rd.HardState.Commit))
			m.term.Store(rd.HardState.Term)
		}
		m.send(rd.MessagesAfterPersist)
		for _, e := range rd.CommittedEntries {
			m.apply(e)
		}
		for _, rs := range rd.ReadStates {
			m.readState(rs)
		}
		m.node.Advance(rd)
		m.releaseReads()
	}
	return true
}

// campaignAlone: a lone voter need not wait out an election timeout to
// lead; it campaigns as soon as it knows it is alone (once per start).
func (m *Member) campaignAlone() {
	if m.campaigned || m.lead.Load() != 0 || len(m.conf.Voters) != 1 || m.conf.Voters[0] != m.cfg.ID {
		return
	}
	m.campaigned = true
	_ = m.node.Campaign()
	m.drain()
}

func (m *Member) send(msgs []consensus.Message) {
	if m.transport != nil && len(msgs) > 0 {
		if m.isLeader {
			m.followers.sending(msgs, time.Now())
		}
		now := time.Now()
		for i := range msgs {
			if msgs[i].Type == consensus.MsgApp {
				m.sendApp.Add(1)
				m.sendRate.add(now, peer.Size(&msgs[i]))
			}
		}
		m.transport.Send(msgs)
	}
}

// isPeer tells the transport whom to accept messages from: the members of
// the member list as last applied here and, until this member has applied
// its own addition (a new cluster's bootstrap entries, or a joining
// member's add), the members it was started with.
func (m *Member) isPeer(id uint64) bool {
	g := m.view.Load()
	if _, ok := g.members[id]; ok {
		return true
	}
	if _, joined := g.members[m.cfg.ID]; joined || g.removed[id] {
		return false
	}
	for _, mi := range m.cfg.InitialMembers {
		if mi.ID == id {
			return true
		}
	}
	return false
}

// receive takes a message from the transport; when the loop is too far
// behind it is dropped (Raft recovers from lost messages).
func (m *Member) receive(msg consensus.Message) {
	now := time.Now()
	if msg.Type == consensus.MsgApp {
		m.recvApp.Add(1)
		m.recvRate.add(now, peer.Size(&msg))
		m.ready.learn(msg)
	}
	m.followers.received(msg, now)
	select {
	case m.recvc <- msg:
	default:
	}
}

func (m *Member) tellReport(r report) {
	select {
	case m.reportc <- r:
	default:
	}
}

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
	dir := filepath.Dir(StatePath(m.cfg.DataDir))
	f, err := os.CreateTemp(dir, "state.db.incoming-*")
	if err != nil {
		return err
	}
	path := f.Name()
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var index uint64
	var meta []byte
	if err == nil {
		index, meta, err = store.SnapshotMeta(path)
	}
	var term uint64
	var conf consensus.ConfState
	var g *registry
	var auth *AuthState
	if err == nil {
		term, conf, g, auth, err = decodeRaftMeta(meta)
	}
	if err == nil && g == nil {
		err = errors.New("server: the snapshot has no member list (sent by an older member)")
	}
	if err == nil && index < msg.Snapshot.Meta.Index {
		err = fmt.Errorf("server: snapshot covers %d, leader sent %d", index, msg.Snapshot.Meta.Index)
	}
	if err != nil {
		_ = os.Remove(path)
		return err
	}
	msg.Snapshot = &consensus.Snapshot{Meta: consensus.SnapshotMeta{Index: index, Term: term, ConfState: conf}}
	select {
	case m.snapc <- incomingSnapshot{msg: msg, path: path, members: g, auth: auth}:
		return nil
	case <-m.stopc:
		_ = os.Remove(path)
		return ErrStopped
	}
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
	if err := m.db.Close(); err != nil {
		return err
	}
	path := StatePath(m.cfg.DataDir)
	if err := os.Rename(in.path, path); err != nil {
		return err
	}
	if err := wal.OS.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	db, err := store.OpenDB(path)
	if err != nil {
		return err
	}
	st, err := store.Open(db, m.cfg.EventHistory)
	if err != nil {
		_ = db.Close()
		return err
	}
	m.storeMu.Lock()
	old := m.store
	m.store, m.db = st, db
	old.EndWatchers()
	m.storeMu.Unlock()
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

// PeerHandler serves the peer endpoints: the Raft transport, and
// /members and /version, which a joining member reads.
func (m *Member) PeerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", m.transport.Handler())
	mux.HandleFunc("GET "+PeerMembersPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(peer.HeaderCluster, hex(m.cfg.ClusterID))
		_, _ = w.Write(MarshalMembers(m.cfg.ClusterID, m.Members()))
	})
	mux.HandleFunc("GET "+PeerVersionPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"cairn":"` + Version + `"}`))
	})
	return mux
}

func (m *Member) apply(e consensus.Entry) {
	m.applied, m.appliedTerm = e.Index, e.Term
	// Before any waiter is answered, so what a client saw applied is
	// never ahead of the figure.
	m.metrics.applied.Set(float64(e.Index))
	d := decodeEntry(e)
	switch {
	case d.err != nil:
		m.refuseEntry(e, d)
	case d.cc != nil:
		m.applyConfChange(e, d)
	case d.kind == memberEntry:
		m.applyMemberEntry(e, d)
	case d.kind == authEntry:
		m.applyAuthEntry(e, d)
	case d.kind == entryRequest && store.CheckLimits(d.req) != nil:
		// Over the hard limits: the leader should have refused it.
		d.err = store.CheckLimits(d.req)
		m.refuseEntry(e, d)
	case d.kind == entryRequest:
		ev, err := m.store.Apply(e.Index, d.req)
		if d.id == m.expiryID {
			m.expiryID = 0
		}
		m.trigger(d.id, result{ev: ev, err: err})
	default: // a leader's no-op
		m.store.MarkApplied(e.Index)
	}
}

// checkProposal keeps out of the log, when this member leads, what apply
// could not take (consensus.Config.CheckProposal).
func (m *Member) checkProposal(e consensus.Entry) error {
	if m.cfg.UnsafeSkipProposalCheck {
		return nil
	}
	err := checkProposal(e)
	if err != nil {
		m.metrics.proposalsRefused.Inc()
		m.log.Warn().Err(err).Msg("refused a proposal that apply could not take")
	}
	return err
}

// refuseEntry applies an entry that cannot be applied as a refusal: the
// state does not change, the waiter (if any) is told why, and the member
// goes on. Every member refuses it alike.
func (m *Member) refuseEntry(e consensus.Entry, d entry) {
	m.metrics.entriesRefused.Inc()
	m.log.Error().Err(d.err).Uint64("index", e.Index).Int("bytes", len(e.Data)).Msg("refused a log entry that cannot be applied")
	m.store.MarkApplied(e.Index)
	m.trigger(d.id, result{err: d.err})
}

func (m *Member) register(id uint64) chan result {
	ch := make(chan result, 1)
	m.waitMu.Lock()
	m.waiters[id] = ch
	m.waitMu.Unlock()
	return ch
}

func (m *Member) trigger(id uint64, r result) {
	m.waitMu.Lock()
	ch, ok := m.waiters[id]
	delete(m.waiters, id)
	delete(m.proposed, id)
	m.waitMu.Unlock()
	if ok {
		ch <- r
	}
}

// Do proposes r and waits for it to be applied. A request over the hard
// limits (store.CheckLimits) is refused at once, unproposed.
func (m *Member) Do(ctx context.Context, r *store.Request) (*store.Event, error) {
	if r.Time == 0 {
		r.Time = m.cfg.Now().UnixNano()
	}
	if err := store.CheckLimits(r); err != nil {
		return nil, err
	}
	id := m.nextID.Add(1)
	return m.await(ctx, proposal{id: id, data: encodeProposal(id, r)})
}

// await proposes p and waits (at most RequestTimeout) for it to be
// applied.
func (m *Member) await(ctx context.Context, p proposal) (*store.Event, error) {
	res := m.awaitResult(ctx, p)
	return res.ev, res.err
}

// awaitResult is await answering the whole result.
func (m *Member) awaitResult(ctx context.Context, p proposal) result {
	id := p.id
	ch := m.register(id)
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	m.metrics.pending.Inc()
	defer m.metrics.pending.Dec()
	select {
	case m.propc <- p:
	case <-ctx.Done():
		m.trigger(id, result{})
		return result{err: ctx.Err()}
	case <-m.stopc:
		return result{err: ErrStopped}
	}
	select {
	case res := <-ch:
		if res.err != nil {
			var se *store.Error
			var ae *AuthError
			if !errors.As(res.err, &se) && !errors.As(res.err, &ae) {
				m.metrics.failed.Inc()
			}
		}
		return res
	case <-ctx.Done():
		res := m.abandon(id, ch)
		if res.err != nil {
			m.metrics.failed.Inc()
		}
		return res
	case <-m.stopc:
		return result{err: ErrStopped}
	}
}

// abandon gives up waiting for request id: ErrTimeout (outcome unknown)
// if it reached Raft, ErrNotProposed if it never did, or its result if
// that arrived meanwhile.
func (m *Member) abandon(id uint64, ch chan result) result {
	m.waitMu.Lock()
	_, waiting := m.waiters[id]
	index, proposed := m.proposed[id]
	delete(m.waiters, id)
	delete(m.proposed, id)
	m.waitMu.Unlock()
	if !waiting {
		return <-ch // answered just as we gave up
	}
	if !proposed {
		return result{err: ErrNotProposed}
	}
	return result{err: &TimeoutError{Index: index}}
}

// TimeoutError is ErrTimeout with the log index the request was given, if
// this member saw it appended (0: not known; the proposal may have been
// lost on its way to the leader).
type TimeoutError struct{ Index uint64 }

func (e *TimeoutError) Error() string {
	if e.Index == 0 {
		return ErrTimeout.Error() + " (proposed; its log index is not known)"
	}
	return fmt.Sprintf("%s (proposed at index %d)", ErrTimeout.Error(), e.Index)
}

// Is makes errors.Is(err, ErrTimeout) hold.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// noteIndexes records the log index of appended entries whose proposer is
// waiting here, for TimeoutError.
func (m *Member) noteIndexes(ents []consensus.Entry) {
	m.waitMu.Lock()
	defer m.waitMu.Unlock()
	if len(m.proposed) == 0 {
		return
	}
	for _, e := range ents {
		id, ok := requestIDOf(e)
		if !ok {
			continue
		}
		if _, ok := m.proposed[id]; ok {
			m.proposed[id] = e.Index
		}
	}
}

// Get reads p; unless serializable, only after a ReadIndex round shows the
// local state is current (linearizable). Concurrent reads share a round.
// A read that cannot be confirmed fails with ErrReadNoLeader or a
// *ReadTimeoutError (see confirmRead).
func (m *Member) Get(ctx context.Context, p string, recursive, serializable bool) (*store.Event, error) {
	if !serializable && !m.cfg.UnsafeLocalReads {
		if err := m.confirmRead(ctx); err != nil {
			return nil, err
		}
	}
	return m.Store().Get(p, recursive)
}

// startRead begins a ReadIndex round for the waiting reads, unless one is
// already running.
func (m *Member) startRead() {
	if m.readRound != nil || len(m.reads) == 0 {
		return
	}
	m.readSeq++
	ctx := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, m.cfg.ID), m.readSeq)
	m.readRound = &readRound{ctx: ctx, waiters: m.reads, lead: m.lead.Load()}
	m.reads = nil
	_ = m.node.ReadIndex(ctx)
}

func (m *Member) readState(rs consensus.ReadState) {
	if m.readRound != nil && string(rs.RequestCtx) == string(m.readRound.ctx) {
		m.readRound.index = rs.Index
	}
}

// releaseReads answers a round once its read index is applied.
func (m *Member) releaseReads() {
	r := m.readRound
	if r == nil || r.index == 0 || m.applied < r.index {
		return
	}
	for _, w := range r.waiters {
		close(w)
	}
	m.readRound = nil
	m.startRead()
}

// tickReads re-asks a round whose answer did not come within an election
// timeout (the request or its answer was lost), or on the next tick once
// a leader other than the one it was asked of is known: a round asked
// while no leader was known went nowhere, and one asked of a former
// leader may never be answered.
func (m *Member) tickReads() {
	if r := m.readRound; r != nil && r.index == 0 {
		r.ticks++
		if lead := m.lead.Load(); r.ticks > m.cfg.ElectionTicks || (lead != 0 && lead != r.lead) {
			m.reads = append(r.waiters, m.reads...)
			m.readRound = nil
			m.startRead()
		}
	}
}

// maybeExpire: the leader proposes an expiry, carrying its clock, once a
// deadline has passed; every member then expires the same keys at the
// same index.
func (m *Member) maybeExpire() {
	if !m.isLeader || m.expiryID != 0 {
		return
	}
	now := m.cfg.Now().UnixNano()
	if d, ok := m.store.NextDeadline(); !ok || d > now {
		return
	}
	m.expiryID = m.nextID.Add(1)
	if err := m.node.Propose(encodeProposal(m.expiryID, &store.Request{Op: store.OpExpire, Path: "/", Time: now})); err != nil {
		m.expiryID = 0
	}
}

// maybeCapture hands a batch of applied state to the persister once the
// batch is big or old enough.
func (m *Member) maybeCapture(force bool) {
	n := m.store.Pending()
	if n == 0 || (!force && n < m.cfg.FlushEntries && m.cfg.Now().Sub(m.lastCapture) < m.cfg.FlushInterval) {
		return
	}
	m.lastCapture = m.cfg.Now()
	m.persistc <- persistItem{b: m.store.Capture(encodeRaftMeta(m.appliedTerm, m.conf, m.view.Load(), m.authView.Load()))}
}

// persistItem is a batch to write, or (done set) a barrier: done is
// closed once everything before it is written.
type persistItem struct {
	b    *store.Batch
	done chan struct{}
}

// syncPersister waits until every batch captured so far is written.
func (m *Member) syncPersister() error {
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

// flushed runs once bbolt covers index: past SnapshotCount entries since
// the last snapshot, take a Raft snapshot there and purge the WAL.
func (m *Member) flushed(index uint64) {
	if index < m.snapIndex+m.cfg.SnapshotCount {
		return
	}
	conf := m.conf
	if _, err := m.rs.CreateSnapshot(index, &conf, nil); err != nil {
		return
	}
	// Keep some entries for followers that are only a little behind.
	if catchUp := m.cfg.CatchUpEntries; index > catchUp {
		_ = m.rs.Compact(index - catchUp)
	}
	term, _ := m.rs.Term(index)
	if err := m.wal.SaveSnapshot(wal.SnapshotMarker{Index: index, Term: term, ConfState: conf}); err != nil {
		m.fail(err)
		return
	}
	if removed, err := m.wal.Purge(index, *m.cfg.MaxWALs); err == nil && len(removed) > 0 {
		m.log.Info().Strs("removed", removed).Msg("purged WAL segments")
	}
	m.snapIndex = index
	m.log.Info().Uint64("index", index).Msg("snapshot taken")
}

func (m *Member) shutdown() {
	defer close(m.done)
	if m.incoming != nil {
		_ = os.Remove(m.incoming.path)
	}
	if m.transport != nil {
		m.transport.Stop()
	}
	if m.Err() == nil {
		m.maybeCapture(true)
	}
	close(m.persistc)
	<-m.persistDone // every captured batch is written (or the writer failed)
	var errs []error
	m.waitMu.Lock()
	for id, ch := range m.waiters {
		ch <- result{err: ErrStopped}
		delete(m.waiters, id)
	}
	m.waitMu.Unlock()
	errs = append(errs, m.wal.Close(), m.db.Close())
	if err := errors.Join(errs...); err != nil && m.Err() == nil {
		m.log.Error().Err(err).Msg("closing")
	}
}

// SelfStats is what /v2/stats/self reports, in etcd's field order. The
// rates are of append messages (a leader sends them, a follower receives
// them) and of their encoded bytes, per second, over the latest 200 of
// them (rateWindow); 0, and left out, when there is no such traffic.
type SelfStats struct {
	Name                 string     `json:"name"`
	ID                   string     `json:"id"`
	State                string     `json:"state"`
	StartTime            time.Time  `json:"startTime"`
	LeaderInfo           LeaderInfo `json:"leaderInfo"`
	RecvAppendRequestCnt uint64     `json:"recvAppendRequestCnt"`
	RecvPkgRate          float64    `json:"recvPkgRate,omitempty"`
	RecvBandwidthRate    float64    `json:"recvBandwidthRate,omitempty"`
	SendAppendRequestCnt uint64     `json:"sendAppendRequestCnt"`
	SendPkgRate          float64    `json:"sendPkgRate,omitempty"`
	SendBandwidthRate    float64    `json:"sendBandwidthRate,omitempty"`
}

// LeaderInfo names the leader this member knows and since when.
type LeaderInfo struct {
	Leader    string    `json:"leader"`
	Uptime    string    `json:"uptime"`
	StartTime time.Time `json:"startTime"`
}

// SelfStats reports the member's figures.
func (m *Member) SelfStats() SelfStats {
	since := time.Unix(0, m.leadSince.Load()).UTC()
	lead := ""
	if l := m.lead.Load(); l != 0 {
		lead = hex(l)
	}
	now := time.Now()
	st := SelfStats{
		Name: m.cfg.Name, ID: hex(m.cfg.ID), State: consensus.StateType(m.state.Load()).String(),
		StartTime:            m.started.UTC(),
		LeaderInfo:           LeaderInfo{Leader: lead, Uptime: now.Sub(since).String(), StartTime: since},
		RecvAppendRequestCnt: m.recvApp.Load(), SendAppendRequestCnt: m.sendApp.Load(),
	}
	st.RecvPkgRate, st.RecvBandwidthRate = m.recvRate.rate(now)
	st.SendPkgRate, st.SendBandwidthRate = m.sendRate.rate(now)
	return st
}

// StoreStats reports the store's operation counters and watchers.
func (m *Member) StoreStats() (*store.Stats, int) {
	st := m.Store()
	return st.Stats(), st.WatcherCount()
}

// Watch registers a watcher on the store.
func (m *Member) Watch(p string, recursive, stream bool, since uint64) (*store.Watcher, error) {
	// Under the read lock: a snapshot install swaps the store and ends the
	// old one's watchers under the write lock, so none is left behind.
	m.storeMu.RLock()
	defer m.storeMu.RUnlock()
	return m.store.Watch(p, recursive, stream, since)
}

// Status reports the figures for response headers.
func (m *Member) Status() Status {
	return Status{ClusterID: m.cfg.ClusterID, RaftIndex: m.committed.Load(), Term: m.term.Load()}
}

func encodeWALMeta(id, cluster uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte{1}, id), cluster)
}

func decodeWALMeta(b []byte) (id, cluster uint64, err error) {
	if len(b) != 17 || b[0] != 1 {
		return 0, 0, fmt.Errorf("bad member metadata %x", b)
	}
	return binary.BigEndian.Uint64(b[1:9]), binary.BigEndian.Uint64(b[9:]), nil
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

func hex(id uint64) string { return fmt.Sprintf("%x", id) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
