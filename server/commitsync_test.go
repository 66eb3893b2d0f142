package server

import (
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/simfs"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// A hard state that only moves the commit index is written and not
// fsynced (persist), so a member can crash with its applied state on disk
// past the WAL's durable commit index. Each member of a calm simulated
// cluster in turn, on a few seeds, applies a write, writes its applied
// state, loses power and restarts: the log must still hold every entry it
// applied, and the member must come back, serve the write and go on
// applying with the others. Some of those crashes must have lost the
// commit index, or the test did not test it.
func TestRestartWithAppliedPastDurableCommit(t *testing.T) {
	ahead := 0
	for seed := uint64(1); seed <= 4; seed++ {
		for victim := range simMembers {
			if restartPastCommit(t, seed, victim) {
				ahead++
			}
		}
	}
	if ahead == 0 {
		t.Fatal("no crash left the applied state past the WAL's durable commit index")
	}
	t.Logf("%d of %d crashes left the applied state past the WAL's durable commit index", ahead, 4*simMembers)
}

// restartPastCommit crashes member victim after it applied a write and
// checks its restart; it reports whether the crash left its applied state
// past the WAL's durable commit index.
func restartPastCommit(t *testing.T, seed uint64, victim int) bool {
	t.Helper()
	w := newSimWorld(t, seed, "", func(string, ...any) {})
	defer w.close()
	w.p = simParams{minDelay: time.Millisecond, maxDelay: 2 * time.Millisecond}
	w.calm = true // no loss, no duplicates, no faults
	for i, n := range w.nodes {
		n.fs.SetFaults(simfs.Faults{})
		w.start(i)
	}
	w.loop(3 * time.Second)
	put := func(key, value string) {
		t.Helper()
		l := w.leader()
		if l < 0 {
			t.Fatalf("seed %d: no leader at %v", seed, w.now)
		}
		m := w.nodes[l].m
		req := &store.Request{Op: store.OpSet, Path: key, Value: value, Time: w.clock().UnixNano()}
		id := m.nextID.Add(1)
		ch := m.register(id)
		w.step(l, event{kind: evPropose, props: []proposal{{id: id, data: encodeProposal(id, req)}}})
		w.loop(w.now + time.Second) // heartbeats carry the commit index to the followers
		select {
		case res := <-ch:
			if res.err != nil {
				t.Fatalf("seed %d: set %s: %v", seed, key, res.err)
			}
		default:
			t.Fatalf("seed %d: set %s not answered", seed, key)
		}
	}
	put("/k", "v1")
	n := w.nodes[victim]
	reply := make(chan error, 1)
	w.step(victim, event{kind: evSave, reply: reply}) // the applied state, written
	if err := <-reply; err != nil {
		t.Fatalf("seed %d: writing member %d's applied state: %v", seed, n.id, err)
	}
	applied := n.m.Store().RaftIndex()
	w.crash(victim, "power loss")
	// What the WAL holds after the crash (the restart reads the same).
	wl, c, err := wal.Open("/wal", 0, wal.Options{FS: n.fs, SegmentSize: 64 << 10})
	if err != nil {
		t.Fatalf("seed %d: member %d's WAL after the crash: %v", seed, n.id, err)
	}
	_ = wl.Close()
	if len(c.Entries) == 0 || c.Entries[len(c.Entries)-1].Index < applied {
		t.Fatalf("seed %d: member %d applied (and wrote) %d; its WAL holds %d entries after the crash", seed, n.id, applied, len(c.Entries))
	}
	w.loop(w.now + 5*time.Second) // the restart comes within 3 s
	if n.m == nil {
		t.Fatalf("seed %d: member %d did not restart: %v", seed, n.id, w.failure)
	}
	if got := n.m.applied; got < applied {
		t.Fatalf("seed %d: member %d restarted at applied %d, below the %d it had written", seed, n.id, got, applied)
	}
	put("/k2", "v2")
	want := w.nodes[w.leader()].m.applied
	for _, o := range w.nodes {
		if o.m.applied != want {
			t.Fatalf("seed %d, member %d crashed: member %d applied %d, the leader %d", seed, n.id, o.id, o.m.applied, want)
		}
		for key, val := range map[string]string{"/k": "v1", "/k2": "v2"} {
			if ev, err := o.m.Store().Get(key, false); err != nil || ev.Node.Value != val {
				t.Fatalf("seed %d, member %d crashed: member %d reads %s: %v %v", seed, n.id, o.id, key, ev, err)
			}
		}
	}
	if w.failure != nil {
		t.Fatalf("seed %d: %v", seed, w.failure)
	}
	return applied > c.HardState.Commit
}
