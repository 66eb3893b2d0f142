package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
)

// poisonEntries are entry data apply cannot take, each as a proposal with
// its own request ID: an unknown entry kind (as a later version could
// write), a store request that does not decode, a request over the hard
// key limit (bbolt could not hold the key), a membership entry that does
// not decode, and data too short to name a waiter.
func poisonEntries(m *Member) map[string]proposal {
	out := map[string]proposal{}
	withID := func(kind byte, rest []byte) proposal {
		id := m.nextID.Add(1)
		b := binary.BigEndian.AppendUint64([]byte{kind}, id)
		return proposal{id: id, data: append(b, rest...)}
	}
	out["unknown kind"] = withID(9, []byte("from a later version"))
	out["bad request"] = withID(entryRequest, []byte{1, 250, 0})
	id := m.nextID.Add(1)
	out["key too long"] = proposal{id: id, data: encodeProposal(id, &store.Request{Op: store.OpSet,
		Path: "/" + strings.Repeat("k", 40<<10), Value: "v", Time: 1})}
	id = m.nextID.Add(1)
	out["key too deep"] = proposal{id: id, data: encodeProposal(id, &store.Request{Op: store.OpSet,
		Path: strings.Repeat("/d", store.MaxKeyDepth+1), Value: "v", Time: 1})}
	out["bad member op"] = withID(memberEntry, []byte{7, 1})
	return out
}

// An entry in the log that apply cannot take is applied as a refusal on
// every member alike: the waiter gets the reason, no member stops, the
// state stays the same everywhere, and every member restarts on its data
// directory (the entries replay from the WAL). The leaders here skip the
// proposal check, as a peer of another version or a buggy one might.
func TestApplyRefusesEntriesItCannotTake(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *MemberConfig) { cfg.UnsafeSkipProposalCheck = true })
	l := c.leader()
	c.set(l, "/before", "1")
	m := c.members[l]
	for name, p := range poisonEntries(m) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := m.await(ctx, p)
		cancel()
		var se *store.Error
		switch {
		case strings.HasPrefix(name, "key too"):
			if !errors.As(err, &se) || se.Code != store.EcodeTooLarge {
				t.Errorf("%s: waiter got %v, want errorCode %d", name, err, store.EcodeTooLarge)
			}
		case !errors.Is(err, ErrBadEntry):
			t.Errorf("%s: waiter got %v, want ErrBadEntry", name, err)
		}
	}
	c.set(l, "/after", "2")
	want := c.members[l].Store().Index()
	for id, mb := range c.members {
		select {
		case <-mb.Done():
			t.Fatalf("member %d stopped: %v", id, mb.Err())
		default:
		}
		waitRaftIndex(t, mb, m.Store().RaftIndex())
		if got := mb.Store().Index(); got != want {
			t.Errorf("member %d at store index %d, leader %d", id, got, want)
		}
		if v := get(t, mb, "/after"); v != "2" {
			t.Errorf("member %d reads /after = %q", id, v)
		}
	}
	for id := range c.cfgs {
		c.stop(id)
	}
	for id := range c.cfgs {
		c.start(id)
	}
	l = c.leader()
	c.set(l, "/restarted", "3")
	for id, mb := range c.members {
		if v := get(t, mb, "/before"); v != "1" {
			t.Errorf("member %d after restart reads /before = %q", id, v)
		}
	}
}

// A leader keeps out of the log what apply could not take, whether it
// was proposed on the leader (the waiter hears at once) or forwarded by
// a follower; the follower's proposal never commits.
func TestLeaderRefusesProposalsApplyCannotTake(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *MemberConfig) { cfg.RequestTimeout = time.Second })
	l := c.leader()
	c.set(l, "/before", "1")
	m := c.members[l]
	start := m.Store().RaftIndex()
	for name, p := range poisonEntries(m) {
		_, err := m.await(context.Background(), p)
		if !errors.Is(err, consensus.ErrProposalRefused) {
			t.Errorf("%s on the leader: %v, want ErrProposalRefused", name, err)
		}
	}
	var f *Member
	for id, mb := range c.members {
		if id != l {
			f = mb
		}
	}
	for name, p := range poisonEntries(f) {
		if _, err := f.await(context.Background(), p); err == nil {
			t.Errorf("%s on a follower: applied", name)
		}
	}
	c.set(l, "/after", "2")
	// The log holds /before, /after and nothing refused in between.
	ents, err := m.rs.Entries(start+1, m.Store().RaftIndex()+1, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := checkProposal(e); err != nil {
			t.Errorf("entry %d in the log: %v", e.Index, err)
		}
	}
	if n := len(ents); n != 1 {
		t.Errorf("%d entries after /before, want 1 (/after)", n)
	}
}

// Every poison entry decodes to a refusal that names its waiter, and the
// refusal is the same on a second decode (no state, no clock).
func TestDecodeEntryRefusesPoison(t *testing.T) {
	m := &Member{}
	for name, p := range poisonEntries(m) {
		e := consensus.Entry{Index: 7, Term: 2, Data: p.data}
		d := decodeEntry(e)
		if strings.HasPrefix(name, "key too") {
			if d.err != nil || d.req == nil || store.CheckLimits(d.req) == nil {
				t.Errorf("%s: decoded %+v; want a request over the limits", name, d)
			}
			continue
		}
		if !errors.Is(d.err, ErrBadEntry) || d.id != p.id {
			t.Errorf("%s: %+v, want ErrBadEntry for waiter %d", name, d, p.id)
		}
		if d2 := decodeEntry(e); fmt.Sprint(d2.err) != fmt.Sprint(d.err) {
			t.Errorf("%s: decoded twice to %v and %v", name, d.err, d2.err)
		}
	}
	if d := decodeEntry(consensus.Entry{Type: consensus.EntryConfChange, Data: []byte{1, 2, 3}}); !errors.Is(d.err, ErrBadEntry) {
		t.Errorf("bad conf change: %v", d.err)
	}
	if d := decodeEntry(consensus.Entry{Type: 9}); !errors.Is(d.err, ErrBadEntry) {
		t.Errorf("unknown entry type: %v", d.err)
	}
}

// waitRaftIndex waits until m has applied index.
func waitRaftIndex(t *testing.T, m *Member, index uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.Store().RaftIndex() < index {
		if time.Now().After(deadline) {
			t.Fatalf("member %d applied %d, want %d", m.cfg.ID, m.Store().RaftIndex(), index)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
