package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// readFrom times a linearizable read of p on member id.
func (c *testCluster) readFrom(id uint64, p string) (time.Duration, error) {
	start := time.Now()
	_, err := c.members[id].Get(context.Background(), p, false, false)
	return time.Since(start), err
}

// A linearizable read on a member that has lost its quorum answers once
// the member has known no leader for an election timeout, with
// ErrReadNoLeader, whose cause is a read's (not a write's "outcome
// unknown"): a follower cut off from the others, then a leader whose
// followers stopped. It does not wait out the request timeout; a
// serializable read still answers from the local copy.
func TestReadWithoutQuorumSaysNoLeader(t *testing.T) {
	// Election timeout 300 ms (30 ticks of 10 ms); request timeout 5 s.
	c := newTestClusterWith(t, 3, func(cfg *MemberConfig) { cfg.ElectionTicks = 30 })
	timeout := c.cfgs[1].RequestTimeout
	l := c.leader()
	c.set(l, "/k", "v")
	wantNoLeader := func(what string, took time.Duration, err error) {
		t.Helper()
		if !errors.Is(err, ErrReadNoLeader) || errors.Is(err, ErrTimeout) {
			t.Fatalf("%s: %v, want ErrReadNoLeader", what, err)
		}
		if !strings.HasPrefix(err.Error(), "no leader could confirm the read") || !strings.Contains(err.Error(), "serializable=true") {
			t.Fatalf("%s: cause %q does not say what happened to the read", what, err)
		}
		// Generous: the point is not waiting out the request timeout.
		if took >= timeout {
			t.Fatalf("%s: answered after %v, the whole request timeout", what, took)
		}
		t.Logf("%s: %v after %v", what, err, took)
	}

	var f uint64
	for id := range c.members {
		if id != l {
			f = id
			break
		}
	}
	waitFor(t, "the follower to apply /k", func() bool {
		e, err := c.members[f].Get(context.Background(), "/k", false, true)
		return err == nil && e.Node.Value == "v"
	})
	c.isolate(f)
	took, err := c.readFrom(f, "/k")
	wantNoLeader("cut-off follower", took, err)
	// Asked again while still without a leader: it answers after an
	// election timeout.
	took, err = c.readFrom(f, "/k")
	wantNoLeader("cut-off follower, asked again", took, err)
	if e, err := c.members[f].Get(context.Background(), "/k", false, true); err != nil || e.Node.Value != "v" {
		t.Fatalf("serializable read on the cut-off follower: %v %v", e, err)
	}
	c.isolate(0)

	l = c.leader()
	c.set(l, "/k", "v2")
	for id := range c.members {
		if id != l {
			c.stop(id)
		}
	}
	took, err = c.readFrom(l, "/k")
	wantNoLeader("leader without followers", took, err)
}

// A read that a known leader does not confirm within the request timeout
// says so, in a read's words, naming the time allowed.
func TestReadNotConfirmedInTimeSaysSo(t *testing.T) {
	// A long election timeout (2 s) keeps the leader leading after its
	// followers stop; the request timeout (500 ms) passes first.
	c := newTestClusterWith(t, 3, func(cfg *MemberConfig) {
		cfg.ElectionTicks, cfg.RequestTimeout = 200, 500*time.Millisecond
	})
	l := c.leader()
	c.set(l, "/k", "v")
	for id := range c.members {
		if id != l {
			c.stop(id)
		}
	}
	_, err := c.readFrom(l, "/k")
	var rt *ReadTimeoutError
	if !errors.Is(err, ErrReadTimeout) || !errors.As(err, &rt) || rt.Waited != 500*time.Millisecond {
		t.Fatalf("read on a leader without its followers: %v, want a ReadTimeoutError of 500ms", err)
	}
	if want := "the leader did not confirm the read within 500ms; serializable=true reads the local copy"; err.Error() != want {
		t.Fatalf("cause %q, want %q", err, want)
	}
	// A caller's shorter deadline is named instead; a caller that gives
	// up gets its context's error.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err = c.members[l].Get(ctx, "/k", false, false)
	cancel()
	if !errors.As(err, &rt) || rt.Waited < 150*time.Millisecond || rt.Waited > 250*time.Millisecond {
		t.Fatalf("read with a 200ms deadline: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err = c.members[l].Get(ctx, "/k", false, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("read whose caller gave up: %v, want context.Canceled", err)
	}
}
