package server

import (
	"fmt"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
)

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

// Status reports the figures for response headers.
func (m *Member) Status() Status {
	return Status{ClusterID: m.cfg.ClusterID, RaftIndex: m.committed.Load(), Term: m.term.Load()}
}

func hex(id uint64) string { return fmt.Sprintf("%x", id) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func hexes(ids []uint64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = hex(id)
	}
	return out
}
