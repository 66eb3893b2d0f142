package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/peer"
	"github.com/cairnkv/cairn/store"
)

// testCluster runs members that talk over real HTTP on loopback.
type testCluster struct {
	t       *testing.T
	cfgs    map[uint64]MemberConfig
	members map[uint64]*Member
	servers map[uint64]*http.Server
	lns     map[uint64]net.Listener
	urls    map[uint64]string // peer URLs
	// cut, when not 0, is a member cut off from the others: its peer
	// requests, and the others' requests to it, are refused.
	cut   atomic.Uint64
	mu    sync.Mutex
	conns map[net.Conn]bool // open peer connections, of every member
}

// isolate cuts member id off from the others (0: heals), breaking the
// connections open now: streams reconnect through the cut.
func (c *testCluster) isolate(id uint64) {
	c.cut.Store(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.conns {
		_ = conn.Close()
	}
}

func newTestCluster(t *testing.T, n int) *testCluster {
	return newTestClusterWith(t, n, nil)
}

func newTestClusterWith(t *testing.T, n int, tweak func(*MemberConfig)) *testCluster {
	c := &testCluster{t: t, cfgs: map[uint64]MemberConfig{}, members: map[uint64]*Member{},
		servers: map[uint64]*http.Server{}, lns: map[uint64]net.Listener{}, urls: map[uint64]string{}}
	urls := c.urls
	var ids []uint64
	for i := range n {
		id := uint64(i + 1)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.lns[id] = ln
		urls[id] = "http://" + ln.Addr().String()
		ids = append(ids, id)
	}
	for _, id := range ids {
		peers := map[uint64]string{}
		for o, u := range urls {
			if o != id {
				peers[o] = u
			}
		}
		cfg := testConfig(t.TempDir())
		cfg.ID, cfg.Voters, cfg.Peers, cfg.PeerURLs = id, ids, peers, []string{urls[id]}
		if tweak != nil {
			tweak(&cfg)
		}
		c.cfgs[id] = cfg
		c.start(id)
	}
	t.Cleanup(func() {
		for id := range c.members {
			c.stop(id)
		}
	})
	return c
}

func (c *testCluster) start(id uint64) {
	m := startMember(c.t, c.cfgs[id])
	ln := c.lns[id]
	if ln == nil { // a restart: listen on the same address again
		var err error
		if ln, err = net.Listen("tcp", strings.TrimPrefix(c.urls[id], "http://")); err != nil {
			c.t.Fatal(err)
		}
	}
	h := m.PeerHandler()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cut := c.cut.Load(); cut != 0 && (cut == id || r.Header.Get(peer.HeaderFrom) == strconv.FormatUint(cut, 16)) {
			http.Error(w, "cut off (test)", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}), ConnState: func(conn net.Conn, st http.ConnState) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.conns == nil {
			c.conns = map[net.Conn]bool{}
		}
		if st == http.StateClosed || st == http.StateHijacked {
			delete(c.conns, conn)
		} else {
			c.conns[conn] = true
		}
	}}
	go srv.Serve(ln)
	c.members[id], c.servers[id], c.lns[id] = m, srv, nil
}

func (c *testCluster) stop(id uint64) {
	if m := c.members[id]; m != nil {
		_ = c.servers[id].Close()
		_ = m.Stop()
		delete(c.members, id)
	}
}

// leader waits for a member that leads, among those running.
func (c *testCluster) leader() uint64 {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for id, m := range c.members {
			if m.lead.Load() == id {
				return id
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader within 15 s")
	return 0
}

func (c *testCluster) set(id uint64, p, v string) {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := c.members[id].Do(ctx, &store.Request{Op: store.OpSet, Path: p, Value: v})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("set %s at %d: %v", p, id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A write acknowledged by any member is read back, linearizably, from
// every member; with the leader stopped the others elect a new one and
// go on; the stopped member catches up when it returns.
func TestClusterReplicatesAndFailsOver(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader()
	for id := range c.members {
		c.set(id, fmt.Sprintf("/from%d", id), "x")
	}
	for id := range c.members {
		for w := uint64(1); w <= 3; w++ {
			if got := get(t, c.members[id], fmt.Sprintf("/from%d", w)); got != "x" {
				t.Fatalf("member %d reads /from%d = %q", id, w, got)
			}
		}
	}
	c.stop(l)
	l2 := c.leader()
	if l2 == l {
		t.Fatalf("stopped leader %d still leads", l)
	}
	for id := range c.members {
		c.set(id, "/after", fmt.Sprint(id))
	}
	c.start(l)
	deadline := time.Now().Add(15 * time.Second)
	for {
		e, err := c.members[l].Get(context.Background(), "/after", false, false)
		if err == nil && e.Node.Value != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted member %d never caught up: %v", l, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var se *store.Error
	if _, err := c.members[l].Get(context.Background(), "/nothing", false, false); !errors.As(err, &se) {
		t.Fatalf("read of a missing key: %v", err)
	}
}

// A leader that is stopped hands leadership over first: when Stop
// returns, another member already leads.
func TestGracefulStopHandsOverLeadership(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader()
	c.set(l, "/k", "v")
	c.stop(l)
	led := false
	for _, m := range c.members {
		if lead := m.lead.Load(); lead != 0 && lead != l {
			led = true
		}
	}
	if !led {
		t.Fatal("no other member led when the stopped leader's Stop returned")
	}
}

// A member that returns after the leader compacted the entries it needs
// receives the leader's applied state as a snapshot, installs it, and
// catches up; watches on the installed state work.
func TestLaggingMemberCatchesUpFromSnapshot(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *MemberConfig) {
		cfg.SnapshotCount, cfg.CatchUpEntries, cfg.FlushEntries = 20, 5, 5
	})
	l := c.leader()
	var lag uint64
	for id := range c.members {
		if id != l {
			lag = id
			break
		}
	}
	c.set(l, "/before", "x")
	c.stop(lag)
	for i := range 200 {
		c.set(l, fmt.Sprintf("/k%d", i%50), fmt.Sprint(i))
	}
	first, _ := c.members[l].rs.FirstIndex()
	if first < 20 {
		t.Fatalf("leader did not compact its log (first index %d)", first)
	}
	c.start(lag)
	m := c.members[lag]
	deadline := time.Now().Add(20 * time.Second)
	for {
		e, err := m.Get(context.Background(), "/k49", false, false)
		if err == nil && e.Node.Value == "199" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lagging member did not catch up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if first, _ := m.rs.FirstIndex(); first < 20 {
		t.Fatalf("caught up without a snapshot (first index %d)", first)
	}
	if got := get(t, m, "/before"); got != "x" {
		t.Fatalf("/before = %q after the snapshot", got)
	}
	w2, err := m.Watch("/k0", false, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.set(l, "/k0", "again")
	select {
	case e, ok := <-w2.C:
		if !ok || e.Node.Value != "again" {
			t.Fatalf("watch after the snapshot: %v %v", e, ok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch after the snapshot never fired")
	}
}

// /v2/stats/self's figures: the leader says it leads and has sent
// appends; followers name it and have received them. While writes go
// on, the leader reports send rates and the followers receive rates
// (each only its own direction); once they stop, the rates are gone.
func TestSelfStats(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader()
	c.set(l, "/k", "v")
	stop := make(chan struct{})
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = c.members[l].Do(ctx, &store.Request{Op: store.OpSet, Path: "/k", Value: strconv.Itoa(i)})
			cancel()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// A follower may hear of the write a moment after the quorum did.
	deadline := time.Now().Add(10 * time.Second)
	for id, m := range c.members {
		for {
			s := m.SelfStats()
			ok := s.ID == hex(id) && s.LeaderInfo.Leader == hex(l)
			if id == l {
				ok = ok && s.State == "StateLeader" && s.SendAppendRequestCnt > 0 &&
					s.SendPkgRate > 0 && s.SendBandwidthRate > s.SendPkgRate && s.RecvPkgRate == 0 && s.RecvBandwidthRate == 0
			} else {
				ok = ok && s.State == "StateFollower" && s.RecvAppendRequestCnt > 0 &&
					s.RecvPkgRate > 0 && s.RecvBandwidthRate > s.RecvPkgRate && s.SendPkgRate == 0 && s.SendBandwidthRate == 0
			}
			if ok {
				t.Logf("member %d: %+v", id, s)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member %d (leader %d): %+v", id, l, s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	close(stop)
	<-writing
	time.Sleep(rateMaxAge + 100*time.Millisecond)
	for id, m := range c.members {
		if s := m.SelfStats(); s.RecvPkgRate != 0 || s.RecvBandwidthRate != 0 || s.SendPkgRate != 0 || s.SendBandwidthRate != 0 {
			t.Errorf("member %d, idle: %+v", id, s)
		}
	}
}

// Keys keep expiring whoever leads. A leader cut off from the others
// proposes expiries it cannot commit (a TTL passes while it still thinks
// it leads); the next leader drops them. When that member leads again it
// must not wait for them: here the leader is cut off again and again,
// short-lived keys are written all along, and after every change of
// leader a fresh key must expire.
func TestExpiryGoesOnAcrossLeaderChanges(t *testing.T) {
	// An election timeout of 1 s: a cut-off leader steps down 1 to 2 s
	// after the cut.
	c := newTestClusterWith(t, 3, func(cfg *MemberConfig) { cfg.ElectionTicks = 100 })
	ctx := context.Background()
	ttlSet := func(id uint64, p string) error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := c.members[id].Do(cctx, &store.Request{Op: store.OpSet, Path: p, Value: "x", HasTTL: true, TTL: 1, Time: time.Now().UnixNano()})
		return err
	}
	led := map[uint64]int{}
	for round := range 4 {
		l := c.leader()
		led[l]++
		// Keys whose TTL (1 s) passes while the leader is cut off: its
		// next expiry check (every SyncInterval) comes before it steps
		// down.
		for i := range 5 {
			_ = ttlSet(l, fmt.Sprintf("/pre/%d/%d", round, i))
		}
		time.Sleep(900 * time.Millisecond)
		c.isolate(l)
		deadline := time.Now().Add(15 * time.Second)
		for c.members[l].lead.Load() == l && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		c.isolate(0)
		next := c.leader()
		key := fmt.Sprintf("/probe/%d", round)
		for err := ttlSet(next, key); err != nil; err = ttlSet(c.leader(), key) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: writing %s: %v", round, key, err)
			}
		}
		waitFor(t, fmt.Sprintf("round %d: %s to expire (leader %d; leaders so far %v)", round, key, c.leader(), led), func() bool {
			_, err := c.members[c.leader()].Get(ctx, key, false, true)
			var se *store.Error
			return errors.As(err, &se) && se.Code == store.EcodeKeyNotFound
		})
	}
	t.Logf("leaders by round: %v", led)
}
