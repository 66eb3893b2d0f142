package server

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/wal"
)

// A member is not ready while its own publish (name and client URLs) is
// not applied, even with a leader known; once it is ready its member list
// shows them. Slow WAL fsyncs hold the publish back: it is proposed once
// a leader is known and applied at least one fsync later.
func TestReadyWaitsForItsPublish(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Name, cfg.ClientURLs = "m1", []string{"http://127.0.0.1:2379"}
	cfg.WALFS = wal.SlowSync(wal.OS, 200*time.Millisecond)
	m := startMember(t, cfg)
	defer m.Stop()
	sawUnpublished := false
	waitFor(t, "the member to be ready", func() bool {
		err := m.Ready()
		if errors.Is(err, ErrNotPublished) && !errors.Is(err, ErrLeaderUnknown) {
			sawUnpublished = true
		}
		if err != nil {
			return false
		}
		i := slices.IndexFunc(m.Members(), func(mi MemberInfo) bool { return mi.ID == cfg.ID })
		if i < 0 || m.Members()[i].Name != "m1" || !slices.Equal(m.Members()[i].ClientURLs, cfg.ClientURLs) {
			t.Fatalf("ready, but the member list is %+v", m.Members())
		}
		return true
	})
	if !sawUnpublished {
		t.Fatal("never saw the member with a leader and its publish not applied (ErrNotPublished alone)")
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Ready after Stop: %v", err)
	}
}

// A member is not ready until it has applied the commit index it must
// reach; the first append a leader sends raises that index, once.
func TestReadyWaitsToCatchUp(t *testing.T) {
	m := startMember(t, testConfig(t.TempDir()))
	defer m.Stop()
	waitFor(t, "the member to be ready", func() bool { return m.Ready() == nil })
	m.ready.catchUp.Store(m.Store().RaftIndex() + 3)
	if err := m.Ready(); !errors.Is(err, ErrCatchingUp) || errors.Is(err, ErrNotPublished) || errors.Is(err, ErrLeaderUnknown) {
		t.Fatalf("behind the catch-up index: %v, want ErrCatchingUp alone", err)
	}
	for range 3 {
		set(t, m, "/k", "v")
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("caught up: %v", err)
	}

	var r readiness
	r.catchUp.Store(10)
	r.learn(consensus.Message{Type: consensus.MsgHeartbeat, Commit: 50})
	r.learn(consensus.Message{Type: consensus.MsgApp, Commit: 5})
	r.learn(consensus.Message{Type: consensus.MsgApp, Commit: 50})
	if got := r.catchUp.Load(); got != 10 {
		t.Fatalf("catch-up index %d: only the first append counts, and never lowers it", got)
	}
	var r2 readiness
	r2.learn(consensus.Message{Type: consensus.MsgApp, Commit: 50})
	if got := r2.catchUp.Load(); got != 50 {
		t.Fatalf("catch-up index %d after the first append's commit 50", got)
	}
}
