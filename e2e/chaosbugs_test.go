package e2e

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// Regression tests for product bugs the chaos harness found.

// Found by the soak (seed 16483217882447486772, a member-change during a
// slow disk on the leader): an add whose outcome was unknown, retried
// through a member that had not applied it yet, left two members with
// the same peer URL. AddMember checks the peer URL against the view of
// the member that serves the POST (which may lag), and applying an
// AddLearner does not check it again (etcd checks when it applies), so a
// member whose apply lags accepts, and the cluster commits, a second
// member with a peer URL another member already has. Fixed: applying an
// add refuses a peer URL another member has.
//
// Here: b's WAL fsyncs are made to stall (so b's applied state lags),
// a peer URL is added through the leader, and a second later (another
// ID) the same peer URL is added through b.
func TestChaosBugAddMemberDuplicatePeerURL(t *testing.T) {
	c := chStartCluster(t, 3, nil, nil)
	ld := c.leader(20 * time.Second)
	if ld == nil {
		t.Fatal("no leader within 20 s")
	}
	lag := c.members[(ld.idx+1)%3]
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	if err := chProbe(c.asUser(), hc, lag); err != nil {
		t.Fatal(err)
	}
	const peer = "http://127.0.0.1:9" // a URL nobody uses
	// lag's fsyncs stall for 3 s: a write makes it enter one.
	if err := os.WriteFile(lag.delayFile, []byte("3s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chProbe(c.asUser(), hc, ld); err != nil {
		t.Fatal(err)
	}
	code, body, err := chMembersCall(c.asRoot(), hc, ld, http.MethodPost, "", map[string][]string{"peerURLs": {peer}})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("adding %s through the leader %s: %d %s %v", peer, ld.name, code, body, err)
	}
	t.Logf("added through the leader %s: %s", ld.name, body)
	time.Sleep(1100 * time.Millisecond) // a new second: another member ID
	type answer struct {
		code int
		body string
		err  error
	}
	second := make(chan answer, 1)
	go func() {
		code, body, err := chMembersCall(c.asRoot(), hc, lag, http.MethodPost, "", map[string][]string{"peerURLs": {peer}})
		second <- answer{code, body, err}
	}()
	time.Sleep(300 * time.Millisecond)
	_ = os.Remove(lag.delayFile)
	a := <-second
	t.Logf("adding %s again through %s (its applied state behind): %d %s %v", peer, lag.name, a.code, a.body, a.err)
	// Every member, once caught up, lists the peer URL how many times?
	deadline := time.Now().Add(20 * time.Second)
	for {
		var counts []string
		worst := 0
		for _, m := range c.members {
			_ = chProbe(c.asUser(), hc, m) // caught up
			list, err := chListMembers(c.asUser(), hc, m)
			if err != nil {
				counts = append(counts, fmt.Sprintf("%s: %v", m.name, err))
				continue
			}
			var ids []string
			for _, mj := range list {
				if slices.Contains(mj.PeerURLs, peer) {
					ids = append(ids, mj.ID)
				}
			}
			worst = max(worst, len(ids))
			counts = append(counts, fmt.Sprintf("%s lists %s as %v", m.name, peer, ids))
		}
		if worst > 1 {
			t.Fatalf("two members with the same peer URL: %s", strings.Join(counts, "; "))
		}
		if time.Now().After(deadline) {
			t.Logf("no duplicate: %s", strings.Join(counts, "; "))
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}
