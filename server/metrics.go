package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a member's Prometheus figures, named after etcd's
// (etcd_* becomes cairn_*). Label values come from fixed sets (member IDs
// of the cluster), never from requests.
type metrics struct {
	hasLeader      prometheus.Gauge
	isLeader       prometheus.Gauge
	leaderChanges  prometheus.Counter
	committed      prometheus.Gauge
	applied        prometheus.Gauge
	pending        prometheus.Gauge
	failed         prometheus.Counter
	walFsync       prometheus.Histogram
	backendCommit  prometheus.Histogram
	sendFailures   *prometheus.CounterVec
	snapshotSent   *prometheus.CounterVec
	snapshotFailed *prometheus.CounterVec
	snapshotsIn    prometheus.Counter
	// entriesRefused: entries in the log that apply refused; proposals-
	// Refused: proposals the leader kept out of the log; peerRefused:
	// peer requests refused, by reason.
	entriesRefused   prometheus.Counter
	proposalsRefused prometheus.Counter
	peerRefused      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, m *Member) *metrics {
	x := &metrics{
		hasLeader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_server_has_leader", Help: "1 if a leader is known, else 0."}),
		isLeader:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_server_is_leader", Help: "1 if this member leads, else 0."}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_server_leader_changes_seen_total",
			Help: "Leader changes this member has seen."}),
		committed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_server_proposals_committed_total", Help: "The Raft commit index."}),
		applied:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_server_proposals_applied_total", Help: "The Raft index last applied."}),
		pending:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_server_proposals_pending", Help: "Proposals waiting to be applied."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_server_proposals_failed_total",
			Help: "Proposals that failed or timed out."}),
		walFsync: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cairn_disk_wal_fsync_duration_seconds",
			Help: "Duration of WAL saves (write and fsync).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		backendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cairn_disk_backend_commit_duration_seconds",
			Help: "Duration of writing a batch of applied state to bbolt.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		sendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_network_peer_sent_failures_total",
			Help: "Messages that could not be sent, by peer."}, []string{"To"}),
		snapshotSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_network_snapshot_send_success",
			Help: "Snapshots sent, by peer."}, []string{"To"}),
		snapshotFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_network_snapshot_send_failures",
			Help: "Snapshots that failed to send, by peer."}, []string{"To"}),
		snapshotsIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_network_snapshot_receive_success",
			Help: "Snapshots received and installed."}),
		entriesRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_server_entries_refused_total",
			Help: "Log entries apply could not take and applied as a refusal (written by another version or an unchecked peer)."}),
		proposalsRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_server_proposals_refused_total",
			Help: "Proposals this member, as leader, kept out of the log because apply could not take them."}),
		peerRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_network_peer_refused_total",
			Help: "Requests on the peer port refused, by reason."}, []string{"reason"}),
	}
	if reg == nil {
		return x
	}
	reg.MustRegister(x.hasLeader, x.isLeader, x.leaderChanges, x.committed, x.applied, x.pending, x.failed,
		x.walFsync, x.backendCommit, x.sendFailures, x.snapshotSent, x.snapshotFailed, x.snapshotsIn,
		x.entriesRefused, x.proposalsRefused, x.peerRefused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_store_watchers", Help: "Registered watchers."},
			func() float64 { return float64(m.Store().WatcherCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_store_index", Help: "The store index."},
			func() float64 { return float64(m.Store().Index()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_server_id", Help: "The member ID.",
			ConstLabels: prometheus.Labels{"server_id": hex(m.cfg.ID)}}, func() float64 { return 1 }),
	)
	return x
}
