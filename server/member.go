package server

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

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
	// (no leader was known, or none reachable); it was not applied and
	// never will be.
	ErrNotProposed = errors.New("request timed out before it could be proposed (no leader reachable); not applied")
)

// Member is one Cairn member: it owns the consensus node and runs its loop
// (tick, step, persist to the WAL, apply to the store, advance) on one
// goroutine, mirrors applied state into bbolt in batches on another, and
// serves the httpapi.Backend interface.
type Member struct {
	// Set before the loop starts, read-only after.
	cfg MemberConfig
	log zerolog.Logger
	// refusedLog logs refused proposals and entries, at most 5 a second:
	// a peer that sends them must not be able to flood the log.
	refusedLog zerolog.Logger
	transport  transport
	metrics    *metrics
	started    time.Time
	// seedPeers are the peers a joining member was told of, kept until it
	// has applied its own addition (see syncPeers).
	seedPeers map[uint64]string
	// vouchMu guards vouched, the members this member has not applied the
	// addition of that a member it knows lists (their peer URLs), and
	// asked, when it last asked about a stranger (askAbout).
	vouchMu sync.Mutex
	vouched map[uint64]string
	asked   map[uint64]time.Time
	// peerClient asks the members this member knows about strangers.
	peerClient *http.Client
	// followers measures heartbeat round trips for /v2/stats/leader (it
	// locks for itself).
	followers *followerTracker
	authAPI

	// Owned by the run loop (loop.go): only its goroutine reads or
	// writes them. The Raft core and its log storage, the WAL, and the
	// loop's bookkeeping.
	node         *consensus.Node
	rs           *consensus.MemoryStorage
	wal          *wal.WAL
	incoming     *incomingSnapshot // a received snapshot the core has not accepted yet
	applied      uint64
	appliedTerm  uint64
	conf         consensus.ConfState
	snapIndex    uint64
	lastCapture  time.Time
	reads        []chan struct{} // waiting for the next ReadIndex round
	readRound    *readRound
	readSeq      uint64
	expiryID     uint64     // pending expiry proposal
	held         []proposal // proposed while no leader was known, or none reachable
	campaigned   bool
	isLeader     bool
	removedTicks int // ticks since this member applied its own removal (0: not removed)
	// removedLearner: it was a learner when it applied its removal.
	removedLearner bool
	// refusedBy are the peers that refused this member as removed, in
	// the order they did; removedQuiet counts ticks since it last heard
	// from a voter left (a message, or a refusal).
	refusedBy    []uint64
	removedQuiet int

	// unreachableLead is the leader leaderUnreachable last found
	// unreachable, since unreachableSince (0: none).
	unreachableLead  uint64
	unreachableSince time.Time
	// flushedq: with cfg.syncPersist, the indexes written, for the
	// simulator to hand back as evFlushed events.
	flushedq []uint64
	// now is the time of the event being handled: the only clock the
	// driver's decisions read.
	now time.Time

	// The store: replaced when a snapshot is installed. The run loop
	// reads it freely (it alone writes it), others through Store or
	// under storeMu.
	storeMu sync.RWMutex
	store   *store.Store

	// Waiters of proposals, under waitMu: callers register and abandon,
	// the run loop notes indexes and answers (propose.go).
	waitMu  sync.Mutex
	waiters map[uint64]chan result
	// proposed holds waiters whose request reached the Raft core, with
	// the log index it was given once known (0 before).
	proposed map[uint64]uint64
	// selfRemoval is the waiter of the last proposal made here to remove
	// this member (0: none); see closeDown.
	selfRemoval uint64
	nextID      atomic.Uint64

	// Published by the run loop for anyone to read.
	// view is the member list as of the last applied entry.
	view atomic.Pointer[registry]
	// confView is m.conf for readers outside the run loop.
	confView atomic.Pointer[consensus.ConfState]
	// authView is the v2 auth registry as of the last applied entry.
	authView  atomic.Pointer[AuthState]
	leadSince atomic.Int64 // Unix ns when the current leader became known
	state     atomic.Uint32
	committed atomic.Uint64
	term      atomic.Uint64
	lead      atomic.Uint64
	failure   atomic.Pointer[error]
	ready     readiness
	// Counted by the transport's goroutines and the run loop.
	recvApp  atomic.Uint64
	sendApp  atomic.Uint64
	recvRate rateWindow // appends received, for /v2/stats/self
	sendRate rateWindow // appends sent

	// Channels into the run loop, and between it and the persister
	// (persist.go), which alone writes the applied-state file's batches.
	propc        chan proposal
	readc        chan chan struct{}
	recvc        chan consensus.Message
	reportc      chan report
	snapc        chan incomingSnapshot
	savec        chan chan error // write everything applied to bbolt, then answer
	flushedc     chan uint64
	persistc     chan persistItem
	persisterErr chan error
	persistDone  chan struct{}
	stopc        chan struct{}
	done         chan struct{}
	stopOnce     sync.Once
}

// report is the transport's word about a peer.
type report struct {
	id       uint64
	snapshot bool // a snapshot was sent (else: the peer is unreachable)
	failed   bool // the snapshot failed
	removed  bool // the peer refused this member as removed (410 Gone)
}

// incomingSnapshot is a received applied-state file and the MsgSnap,
// rewritten to the index, term and membership the file covers.
type incomingSnapshot struct {
	msg     consensus.Message
	file    *store.Incoming
	members *registry
	auth    *AuthState
}

// transport is what the member needs of its peer transport: the methods
// of *peer.Transport it calls. A simulated network stands in for it in
// the whole-cluster simulator (MemberConfig.transport).
type transport interface {
	Send(msgs []consensus.Message)
	Stop()
	KeepAlive() time.Duration
	ActiveWithin(id uint64, d time.Duration) bool
	Peers() map[uint64]string
	AddPeer(id uint64, url string)
	RemovePeer(id uint64)
	Handler() http.Handler
}

var _ transport = (*peer.Transport)(nil)

// StartMember opens (or creates) the member's state in cfg.DataDir and
// starts it. A new member bootstraps a cluster of cfg.Voters.
func StartMember(c MemberConfig) (*Member, error) {
	m, err := newMember(c)
	if err != nil {
		return nil, err
	}
	m.start()
	return m, nil
}

// newMember opens (or creates) the member's state and builds its Raft
// core and transport; it starts no goroutine (start does), so that a
// simulator can drive it with handle and after alone.
func newMember(c MemberConfig) (*Member, error) {
	cfg := c.withDefaults()
	if (cfg.ID == 0 || cfg.ClusterID == 0) && !Initialized(cfg.DataDir, cfg.WALDir) {
		return nil, errors.New("server: a new member needs member and cluster IDs other than 0")
	}
	m := &Member{cfg: cfg, log: cfg.Logger,
		refusedLog: cfg.Logger.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second}), rs: consensus.NewMemoryStorage(),
		propc: make(chan proposal, 4096), readc: make(chan chan struct{}, 4096),
		persistc: make(chan persistItem, 64), flushedc: make(chan uint64, 64),
		recvc: make(chan consensus.Message, 4096), reportc: make(chan report, 1024), snapc: make(chan incomingSnapshot), savec: make(chan chan error),
		stopc: make(chan struct{}), done: make(chan struct{}), waiters: map[uint64]chan result{}, proposed: map[uint64]uint64{},
		vouched: map[uint64]string{}, asked: map[uint64]time.Time{},
		peerClient:   &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialTLSContext: c.PeerDialTLS}},
		persisterErr: make(chan error, 1), persistDone: make(chan struct{})}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.BigEndian.Uint64(b[:])
	}
	m.nextID.Store(seed)
	m.view.Store(newRegistry())
	m.authView.Store(NewAuthState())
	m.authAPI = authAPI{state: m.authView.Load, do: m.proposeAuth}
	m.followers = newFollowerTracker()
	if err := m.recover(); err != nil {
		if m.store != nil {
			_ = m.store.Close()
		}
		if m.wal != nil {
			_ = m.wal.Close()
		}
		return nil, err
	}
	cfg = m.cfg // the identity may come from the data directory
	m.ready.catchUp.Store(m.rs.HardState().Commit)
	node, err := consensus.NewNode(&consensus.Config{
		ID: cfg.ID, ElectionTick: cfg.ElectionTicks, HeartbeatTick: 1, Storage: m.rs, Applied: m.applied,
		CheckQuorum: true, PreVote: true, Seed: seed,
		CheckProposal: m.checkProposal,
	})
	if err != nil {
		_ = m.store.Close()
		_ = m.wal.Close()
		return nil, err
	}
	m.node = node
	m.lastCapture = cfg.Now()
	m.now = m.lastCapture
	m.started = time.Now()
	m.metrics = newMetrics(cfg.Metrics, m)
	if cfg.transport != nil {
		m.transport = cfg.transport
	} else {
		m.transport = m.newPeerTransport()
	}
	m.syncPeers(m.view.Load())
	return m, nil
}

// start starts the member's goroutines: the persister (unless it writes
// synchronously), the run loop and publish.
func (m *Member) start() {
	go m.persister()
	go m.run()
	go m.publish()
}

// newPeerTransport is the HTTP transport to the other members.
func (m *Member) newPeerTransport() *peer.Transport {
	cfg := m.cfg
	return peer.New(peer.Config{
		ID: m.cfg.ID, ClusterID: m.cfg.ClusterID, Logger: cfg.Logger,
		Receive:   m.receive,
		IsRemoved: func(id uint64) bool { return m.view.Load().removed[id] },
		IsMember:  m.isPeer,
		Refused:   func(reason string) { m.metrics.peerRefused.WithLabelValues(reason).Inc() },
		Removed:   func(by uint64) { m.tellReport(report{id: by, removed: true}) },
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
