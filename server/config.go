package server

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
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
	// written to bbolt (defaults 1 s and 5000 entries). A bigger batch
	// rewrites fewer bbolt pages, and fsyncs bbolt less often beside the
	// WAL, per write: with 100 ms and 1000 entries, bench/compare.sh
	// measured put at 0.75 of etcd's throughput and 1.32 of its CPU per
	// put, with 1 s and 10,000 entries 0.93 and 1.07. But the log in
	// memory is compacted only as bbolt covers it, so 10,000-entry batches
	// held up to 20,000 entries of it between flushes (RSS after 100,000
	// keys 127 MiB instead of 106); 5000 bounds that to 10,000. A restart
	// replays at most a batch of the WAL.
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
	// Now is the clock (default time.Now). The run loop reads it once per
	// event, and its decisions (expiry, batching the applied state) use
	// only that reading; Do stamps requests with it.
	Now func() time.Time
	// Seed feeds the Raft core's randomised election timeouts and the
	// first request ID (0: drawn from crypto/rand). A simulation sets it
	// so that a run replays.
	Seed uint64
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

	// Set only by package server's tests (the whole-cluster simulator).
	// transport replaces the HTTP peer transport.
	transport transport
	// syncPersist writes each captured batch of applied state at once,
	// on the driver's goroutine, instead of handing it to the persister
	// goroutine; the index it covers is queued in Member.flushedq for
	// the simulator to feed back as an evFlushed event.
	syncPersist bool
	// unsafeKeepExpiry is a deliberate bug for the simulator: a change of
	// leadership does not forget a pending expiry proposal, so one that a
	// new leader dropped blocks every later expiry while this member leads.
	unsafeKeepExpiry bool
	// unsafeTrustTornTail is a deliberate bug for the simulator: the WAL
	// takes a torn record at its tail as whole (wal.Options.
	// UnsafeTrustTornTail), so a crash's lost unsynced data goes undetected.
	unsafeTrustTornTail bool
	// unsafeWatchFromNow is a deliberate bug for the simulator: Watch
	// ignores a waitIndex the store has already passed and watches from
	// the next change, so a client resuming a watch silently misses the
	// events between.
	unsafeWatchFromNow bool
	// unsafeEmptyStopAnswer is a deliberate bug for the simulator: a
	// stopping member answers the proposals still waiting with an empty
	// result (no error, no event), as a shutdown that ended a request's
	// context without writing anything once answered an empty 200.
	unsafeEmptyStopAnswer bool
	// onApply, when set, sees every entry the member applies, before it
	// is applied (the simulator compares the members' applied logs).
	onApply func(consensus.Entry)
	// walSegmentSize overrides the WAL's segment size (the simulator
	// keeps segments small: recovery reads a whole preallocated one).
	walSegmentSize int64
	// askAbout, when set, asks the members this member knows about a
	// stranger instead of their peer endpoint /members (the simulator
	// answers from its members' lists, and calls vouch).
	askAbout func(id uint64)
}

// electionTimeout is ElectionTicks heartbeat intervals.
func (c *MemberConfig) electionTimeout() time.Duration {
	return time.Duration(c.ElectionTicks) * c.HeartbeatInterval
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
		cc.FlushInterval = time.Second
	}
	if cc.FlushEntries <= 0 {
		cc.FlushEntries = 5000
	}
	if cc.RequestTimeout <= 0 {
		cc.RequestTimeout = 5*time.Second + 2*cc.electionTimeout()
	}
	if cc.Now == nil {
		cc.Now = time.Now
	}
	return cc
}

// StatePath is the applied-state file in a data directory.
func StatePath(dataDir string) string { return filepath.Join(dataDir, "member", "state.db") }
