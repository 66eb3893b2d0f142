package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/consensus"
)

func TestRegistryEncodingRoundTrip(t *testing.T) {
	g := newRegistry()
	g.members[7] = MemberInfo{ID: 7, Name: "a", PeerURLs: []string{"http://127.0.0.1:1"}, ClientURLs: []string{"http://127.0.0.1:2", "http://127.0.0.1:3"}}
	g.members[3] = MemberInfo{ID: 3, PeerURLs: []string{"http://127.0.0.1:4"}, ClientURLs: []string{}}
	g.removed[9], g.removed[1] = true, true
	b := g.appendTo(nil)
	got, err := decodeRegistry(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.appendTo(nil)) != string(b) {
		t.Fatalf("round trip changed the encoding")
	}
	if !slices.Equal(got.members[7].ClientURLs, g.members[7].ClientURLs) || got.members[7].Name != "a" || !got.removed[9] {
		t.Fatalf("decoded %+v", got)
	}
	// Every truncation, and trailing bytes, are refused.
	for i := range len(b) {
		if _, err := decodeRegistry(b[:i]); err == nil {
			t.Fatalf("a registry cut at %d of %d bytes was accepted", i, len(b))
		}
	}
	if _, err := decodeRegistry(append(b, 0)); err == nil {
		t.Fatal("trailing bytes accepted")
	}
	// Raft metadata: version 3 carries the registry and the auth
	// registry, version 2 the registry alone, version 1 (written before
	// the member list was replicated) neither.
	cs := consensus.ConfState{Voters: []uint64{3, 7}}
	term, cs2, g2, a2, err := decodeRaftMeta(encodeRaftMeta(5, cs, g, NewAuthState()))
	if err != nil || term != 5 || !slices.Equal(cs2.Voters, cs.Voters) || len(g2.members) != 2 || a2.Enabled() {
		t.Fatalf("v3 meta: %d %v %v %v", term, cs2, g2, err)
	}
	v2 := g.appendTo(consensus.AppendConfState([]byte{2, 5}, cs))
	if term, _, g2, a2, err := decodeRaftMeta(v2); err != nil || term != 5 || len(g2.members) != 2 || a2 == nil || a2.Enabled() {
		t.Fatalf("v2 meta: %d %v %v", term, g2, err)
	}
	v1 := consensus.AppendConfState([]byte{1, 5}, cs)
	if term, _, g1, a1, err := decodeRaftMeta(v1); err != nil || term != 5 || g1 != nil || a1 == nil {
		t.Fatalf("v1 meta: %d %v %v", term, g1, err)
	}
}

// serveMember starts m's peer endpoints on ln.
func serveMember(t *testing.T, m *Member, ln net.Listener) {
	srv := &http.Server{Handler: m.PeerHandler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func listen(t *testing.T) (net.Listener, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A member added at runtime joins as a learner, catches up, is promoted,
// publishes its name; the first member then removes itself (it leads):
// it stops, and the new member leads alone with every key.
func TestAddPromoteAndRemoveTheLeader(t *testing.T) {
	ln1, u1 := listen(t)
	cfg1 := testConfig(t.TempDir())
	cfg1.ID, cfg1.Name, cfg1.PeerURLs, cfg1.ClientURLs = 1, "one", []string{u1}, []string{"http://127.0.0.1:1"}
	m1 := startMember(t, cfg1)
	defer m1.Stop()
	serveMember(t, m1, ln1)
	waitFor(t, "member 1 leads and has published its name", func() bool {
		ms := m1.Members()
		return m1.lead.Load() == 1 && len(ms) == 1 && ms[0].Name == "one"
	})
	set(t, m1, "/a", "1")
	ctx := context.Background()

	ln2, u2 := listen(t)
	if _, err := m1.AddMember(ctx, []string{u1}); !errors.Is(err, ErrPeerURLExists) {
		t.Fatalf("adding a used peer URL: %v", err)
	}
	mi, err := m1.AddMember(ctx, []string{u2})
	if err != nil {
		t.Fatal(err)
	}
	if mi.Name != "" || !slices.Equal(mi.PeerURLs, []string{u2}) || len(mi.ClientURLs) != 0 {
		t.Fatalf("added %+v", mi)
	}
	// Not started yet: a learner, so member 1 still commits alone.
	if !slices.Contains(m1.Conf().Learners, mi.ID) {
		t.Fatalf("new member is not a learner: %+v", m1.Conf())
	}
	set(t, m1, "/b", "2")

	cfg2 := testConfig(t.TempDir())
	cfg2.ID, cfg2.ClusterID, cfg2.Name, cfg2.PeerURLs, cfg2.Join = mi.ID, m1.ClusterID(), "two", []string{u2}, true
	cfg2.InitialMembers = m1.Members()
	m2 := startMember(t, cfg2)
	defer m2.Stop()
	serveMember(t, m2, ln2)
	waitFor(t, "the new member is promoted and has published its name", func() bool {
		cs := m1.Conf()
		for _, x := range m2.Members() {
			if x.ID == mi.ID && x.Name == "two" {
				return len(cs.Voters) == 2 && len(cs.Learners) == 0
			}
		}
		return false
	})
	if got := get(t, m2, "/b"); got != "2" {
		t.Fatalf("/b on the new member = %q", got)
	}
	// Update the new member's peer URL to the same one (a no-op change
	// through the log) and refuse a URL in use.
	if err := m2.UpdateMember(ctx, mi.ID, []string{u1}); !errors.Is(err, ErrPeerURLExists) {
		t.Fatalf("updating to a used URL: %v", err)
	}
	if err := m2.UpdateMember(ctx, mi.ID, []string{u2}); err != nil {
		t.Fatal(err)
	}

	// Remove the leader, asked through the other member.
	if err := m2.RemoveMember(ctx, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m1.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the removed member did not stop")
	}
	if !errors.Is(m1.Err(), ErrRemoved) {
		t.Fatalf("removed member stopped with %v", m1.Err())
	}
	waitFor(t, "the remaining member leads", func() bool { return m2.lead.Load() == mi.ID })
	set(t, m2, "/c", "3")
	if ms := m2.Members(); len(ms) != 1 || ms[0].ID != mi.ID {
		t.Fatalf("members after removal: %+v", ms)
	}
	if err := m2.RemoveMember(ctx, 1); !errors.Is(err, ErrMemberRemoved) {
		t.Fatalf("removing again: %v", err)
	}
	if err := m2.RemoveMember(ctx, 12345); !errors.Is(err, ErrMemberNotFound) {
		t.Fatalf("removing a stranger: %v", err)
	}
	if err := m2.UpdateMember(ctx, 1, []string{"http://127.0.0.1:9"}); !errors.Is(err, ErrMemberRemoved) {
		t.Fatalf("updating a removed member: %v", err)
	}

	// The member list survives a restart (it is in the applied state and
	// the WAL), and the restarted member takes its identity from disk.
	if err := m2.Stop(); err != nil {
		t.Fatal(err)
	}
	cfg2.ID, cfg2.ClusterID, cfg2.Join, cfg2.InitialMembers = 0, 0, false, nil
	m2 = startMember(t, cfg2)
	defer m2.Stop()
	if m2.ID() != mi.ID || m2.ClusterID() != m1.ClusterID() {
		t.Fatalf("restarted as %x in %x", m2.ID(), m2.ClusterID())
	}
	waitFor(t, "the restarted member leads", func() bool { return m2.lead.Load() == mi.ID })
	if ms := m2.Members(); len(ms) != 1 || ms[0].Name != "two" {
		t.Fatalf("members after restart: %+v", ms)
	}
	if got := get(t, m2, "/c"); got != "3" {
		t.Fatalf("/c after restart = %q", got)
	}
}

// A new member that stops before it heard anything from the cluster (it
// was killed, or lost power, right after its first start) and restarts as
// the cairn command restarts a member, from its data directory alone,
// still joins: the data directory keeps the members it was told of when
// it joined. (It answered nobody before: its log was empty, so it had no
// member list and refused the leader as a stranger.)
func TestJoinerRestartedBeforeItHeardAnythingJoins(t *testing.T) {
	ln1, u1 := listen(t)
	cfg1 := testConfig(t.TempDir())
	cfg1.ID, cfg1.PeerURLs = 1, []string{u1}
	m1 := startMember(t, cfg1)
	defer m1.Stop()
	serveMember(t, m1, ln1)
	waitFor(t, "member 1 leads", func() bool { return m1.lead.Load() == 1 })
	set(t, m1, "/a", "1")
	ln2, u2 := listen(t)
	mi, err := m1.AddMember(context.Background(), []string{u2})
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := testConfig(t.TempDir())
	cfg2.ID, cfg2.ClusterID, cfg2.PeerURLs, cfg2.Join, cfg2.InitialMembers = mi.ID, m1.ClusterID(), []string{u2}, true, m1.Members()
	m2 := startMember(t, cfg2) // its peer port is not served: it hears nothing
	if err := m2.Stop(); err != nil {
		t.Fatal(err)
	}
	if last, _ := m2.rs.LastIndex(); last != 0 {
		t.Fatalf("setup: the new member received entries up to %d before it stopped", last)
	}
	cfg2.ID, cfg2.ClusterID, cfg2.Join, cfg2.InitialMembers = 0, 0, false, nil
	m2 = startMember(t, cfg2)
	defer m2.Stop()
	serveMember(t, m2, ln2)
	waitFor(t, "the restarted new member joins and is promoted", func() bool {
		return m2.Joined() == nil && slices.Contains(m1.Conf().Voters, mi.ID)
	})
	if got := get(t, m2, "/a"); got != "1" {
		t.Fatalf("/a on the new member = %q", got)
	}
}

// A member that has not applied a member's addition (it is cut off from
// the others' Raft traffic) refuses that member's messages but asks the
// members it knows about it (their peer endpoint /members); once one
// lists it, it accepts it and answers it at the peer URL listed: a member
// that fell behind while members were added can follow one of them that
// leads. When it applies the addition, it knows it as any member.
func TestMemberAcceptsAStrangerAMemberItKnowsLists(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader()
	lag := uint64(1)
	for lag == l {
		lag++
	}
	c.isolate(lag)
	_, u := listen(t) // the new member never starts
	mi, err := c.members[l].AddMember(context.Background(), []string{u})
	if err != nil {
		t.Fatal(err)
	}
	m := c.members[lag]
	if m.isPeer(mi.ID) {
		t.Fatal("a member whose addition is not applied was accepted before anyone vouched for it")
	}
	waitFor(t, "the lagging member accepts the new one", func() bool { return m.isPeer(mi.ID) })
	if got := m.transport.Peers()[mi.ID]; got != u {
		t.Fatalf("the lagging member answers the new one at %q, want %q", got, u)
	}
	if _, ok := m.view.Load().members[mi.ID]; ok {
		t.Fatal("setup: the lagging member applied the addition while cut off")
	}
	c.isolate(0)
	waitFor(t, "the lagging member applies the addition", func() bool {
		_, ok := m.view.Load().members[mi.ID]
		return ok
	})
	if m.isVouched(mi.ID) || m.transport.Peers()[mi.ID] != u {
		t.Fatalf("after the addition: still vouched %v, peer URL %q", m.isVouched(mi.ID), m.transport.Peers()[mi.ID])
	}
}

// Adding a member whose peer URL another member has is refused when it is
// applied, whatever the proposer's (possibly stale) view said; so is
// adding a removed ID.
func TestRegistryRefusesDuplicatePeerURLAtApply(t *testing.T) {
	g := newRegistry()
	add := func(id uint64, url string) error {
		return g.applyConfChange(consensus.ConfChange{Type: consensus.AddLearner, NodeID: id}, MemberInfo{PeerURLs: []string{url}})
	}
	if err := add(1, "http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if err := add(2, "http://127.0.0.1:1"); !errors.Is(err, ErrPeerURLExists) {
		t.Fatalf("second member with the same URL: %v", err)
	}
	if _, ok := g.members[2]; ok {
		t.Fatal("the refused member was recorded")
	}
	// Promoting an existing member is not an add: no URL check.
	if err := g.applyConfChange(consensus.ConfChange{Type: consensus.AddVoter, NodeID: 1}, MemberInfo{PeerURLs: []string{"http://127.0.0.1:1"}}); err != nil {
		t.Fatalf("promotion: %v", err)
	}
	if err := g.applyConfChange(consensus.ConfChange{Type: consensus.RemoveNode, NodeID: 1}, MemberInfo{}); err != nil {
		t.Fatal(err)
	}
	if err := add(1, "http://127.0.0.1:9"); !errors.Is(err, ErrMemberRemoved) {
		t.Fatalf("re-adding a removed ID: %v", err)
	}
	if err := add(3, "http://127.0.0.1:1"); err != nil {
		t.Fatalf("the URL of a removed member is free again: %v", err)
	}
}

// urls returns n distinct peer URLs.
func urls(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("http://127.0.0.1:%d", 10000+i)
	}
	return out
}

// A member entry over the URL bounds is refused when applied, whoever
// proposed it: nothing is recorded.
func TestRegistryRefusesURLsOverTheBoundsAtApply(t *testing.T) {
	long := "http://127.0.0.1:1?" + strings.Repeat("x", MaxURLBytes)
	g := newRegistry()
	add := func(id uint64, mi MemberInfo) error {
		return g.applyConfChange(consensus.ConfChange{Type: consensus.AddLearner, NodeID: id}, mi)
	}
	for _, mi := range []MemberInfo{
		{PeerURLs: urls(MaxPeerURLs + 1)},
		{PeerURLs: []string{long}},
		{PeerURLs: urls(1), ClientURLs: urls(MaxPeerURLs + 1)},
	} {
		if err := add(1, mi); !errors.Is(err, ErrURLBounds) {
			t.Fatalf("adding %d peer URLs, %d client URLs: %v", len(mi.PeerURLs), len(mi.ClientURLs), err)
		}
	}
	if len(g.members) != 0 {
		t.Fatalf("recorded %+v", g.members)
	}
	if err := add(1, MemberInfo{PeerURLs: urls(MaxPeerURLs)}); err != nil {
		t.Fatalf("adding %d peer URLs (the bound): %v", MaxPeerURLs, err)
	}
	before := string(g.appendTo(nil))
	for _, op := range [][]byte{
		encodeMemberOp(0, opUpdatePeerURLs, 1, "", urls(MaxPeerURLs+1))[9:],
		encodeMemberOp(0, opUpdatePeerURLs, 1, "", []string{long})[9:],
		encodeMemberOp(0, opAttributes, 1, "a", urls(MaxPeerURLs+1))[9:],
	} {
		if err := g.applyMemberOp(op); !errors.Is(err, ErrURLBounds) {
			t.Fatalf("member op %d: %v", op[0], err)
		}
	}
	if string(g.appendTo(nil)) != before {
		t.Fatal("a refused member op changed the registry")
	}
	if err := g.applyMemberOp(encodeMemberOp(0, opUpdatePeerURLs, 1, "", []string{"http://127.0.0.1:1?" + strings.Repeat("x", MaxURLBytes-19)})[9:]); err != nil {
		t.Fatalf("a URL of %d bytes (the bound): %v", MaxURLBytes, err)
	}
}

// AddMember and UpdateMember refuse URLs over the bounds without
// proposing; an entry over them proposed all the same (as a member
// without these checks would) is refused when applied, its proposer is
// told, and the member goes on.
func TestMemberRefusesURLsOverTheBounds(t *testing.T) {
	ln, u := listen(t)
	cfg := testConfig(t.TempDir())
	cfg.Name, cfg.PeerURLs = "one", []string{u}
	m := startMember(t, cfg)
	defer m.Stop()
	serveMember(t, m, ln)
	waitFor(t, "member 1 leads and has published its name", func() bool {
		ms := m.Members()
		return m.lead.Load() == 1 && len(ms) == 1 && ms[0].Name == "one"
	})
	ctx := context.Background()
	set(t, m, "/a", "1")
	index := m.committed.Load()
	if _, err := m.AddMember(ctx, urls(MaxPeerURLs+1)); !errors.Is(err, ErrURLBounds) {
		t.Fatalf("AddMember with %d URLs: %v", MaxPeerURLs+1, err)
	}
	if err := m.UpdateMember(ctx, 1, urls(MaxPeerURLs+1)); !errors.Is(err, ErrURLBounds) {
		t.Fatalf("UpdateMember with %d URLs: %v", MaxPeerURLs+1, err)
	}
	if got := m.committed.Load(); got != index {
		t.Fatalf("refused requests were proposed: committed %d, was %d", got, index)
	}
	before := m.Members()

	reqID := m.nextID.Add(1)
	if _, err := m.await(ctx, proposal{id: reqID, data: encodeMemberOp(reqID, opUpdatePeerURLs, 1, "", urls(MaxPeerURLs+1))}); !errors.Is(err, ErrURLBounds) {
		t.Fatalf("an update entry over the bounds: %v", err)
	}
	reqID = m.nextID.Add(1)
	mi := MemberInfo{ID: 77, PeerURLs: urls(MaxPeerURLs + 1), ClientURLs: []string{}}
	cc := consensus.ConfChange{Type: consensus.AddLearner, NodeID: mi.ID, Context: encodeCCContext(reqID, mi)}
	if _, err := m.await(ctx, proposal{id: reqID, cc: &cc}); !errors.Is(err, ErrURLBounds) {
		t.Fatalf("an add over the bounds: %v", err)
	}
	if got := m.Members(); !slices.EqualFunc(got, before, func(a, b MemberInfo) bool {
		return a.ID == b.ID && slices.Equal(a.PeerURLs, b.PeerURLs)
	}) {
		t.Fatalf("members after refused entries: %+v, were %+v", got, before)
	}
	if cs := m.Conf(); len(cs.Voters) != 1 || len(cs.Learners) != 0 {
		t.Fatalf("the refused add reached the core: %+v", cs)
	}
	set(t, m, "/b", "2") // the member goes on
	if err := m.Err(); err != nil {
		t.Fatal(err)
	}
}
