package server

import (
	"math"
	"sync"
	"time"

	"github.com/cairnkv/cairn/consensus"
)

// LeaderStats is what /v2/stats/leader reports, in etcd's shape: per
// follower, heartbeat round-trip latency in milliseconds and counts of
// answered and failed sends.
type LeaderStats struct {
	Leader    string                    `json:"leader"`
	Followers map[string]*FollowerStats `json:"followers"`
}

// FollowerStats are one follower's figures.
type FollowerStats struct {
	Latency struct {
		Current           float64 `json:"current"`
		Average           float64 `json:"average"`
		StandardDeviation float64 `json:"standardDeviation"`
		Minimum           float64 `json:"minimum"`
		Maximum           float64 `json:"maximum"`
		sum, sumSq        float64
	} `json:"latency"`
	Counts struct {
		Fail    uint64 `json:"fail"`
		Success uint64 `json:"success"`
	} `json:"counts"`
}

// followerTracker measures heartbeat round trips while this member leads.
type followerTracker struct {
	mu        sync.Mutex
	sent      map[uint64]time.Time
	followers map[uint64]*FollowerStats
}

func newFollowerTracker() *followerTracker {
	return &followerTracker{sent: map[uint64]time.Time{}, followers: map[uint64]*FollowerStats{}}
}

func (f *followerTracker) get(id uint64) *FollowerStats {
	fs := f.followers[id]
	if fs == nil {
		fs = &FollowerStats{}
		fs.Latency.Minimum = math.MaxInt64 // etcd's starting minimum
		f.followers[id] = fs
	}
	return fs
}

// reset starts afresh (a new term of leadership).
func (f *followerTracker) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.sent)
	clear(f.followers)
}

// sending notes heartbeats going out.
func (f *followerTracker) sending(msgs []consensus.Message, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		if m.Type == consensus.MsgHeartbeat {
			if _, waiting := f.sent[m.To]; !waiting {
				f.sent[m.To] = now
			}
		}
	}
}

// received notes a heartbeat's answer.
func (f *followerTracker) received(m consensus.Message, now time.Time) {
	if m.Type != consensus.MsgHeartbeatResp {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.sent[m.From]
	if !ok {
		return
	}
	delete(f.sent, m.From)
	fs := f.get(m.From)
	ms := float64(now.Sub(at)) / float64(time.Millisecond)
	l := &fs.Latency
	fs.Counts.Success++
	n := float64(fs.Counts.Success)
	l.Current = ms
	l.sum += ms
	l.sumSq += ms * ms
	l.Average = l.sum / n
	l.StandardDeviation = math.Sqrt(math.Max(0, l.sumSq/n-l.Average*l.Average))
	l.Minimum = math.Min(l.Minimum, ms)
	l.Maximum = math.Max(l.Maximum, ms)
}

func (f *followerTracker) failed(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sent, id)
	f.get(id).Counts.Fail++
}

// LeaderStats reports the followers' figures; false when this member does
// not lead.
func (m *Member) LeaderStats() (LeaderStats, bool) {
	if consensus.StateType(m.state.Load()) != consensus.StateLeader {
		return LeaderStats{}, false
	}
	st := LeaderStats{Leader: hex(m.cfg.ID), Followers: map[string]*FollowerStats{}}
	f := m.followers
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, mi := range m.view.Load().list() {
		if mi.ID == m.cfg.ID {
			continue
		}
		fs := *f.get(mi.ID)
		st.Followers[hex(mi.ID)] = &fs
	}
	return st, true
}
