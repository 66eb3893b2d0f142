package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mbLeader returns the member every running member names as leader.
func mbLeader(t *testing.T, c *cluster, procs []*proc) *proc {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var lead *proc
		agree := true
		for _, p := range procs {
			_, body := c.do(p, "GET", "/v2/stats/self", nil)
			if strings.Contains(body, `"state":"StateLeader"`) {
				lead = p
			}
			if !strings.Contains(body, `"leader":"`) || strings.Contains(body, `"leader":""`) {
				agree = false
			}
		}
		if lead != nil && agree {
			return lead
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader that every member agrees on")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mbWaitExit waits for a member process to end on its own.
func mbWaitExit(t *testing.T, p *proc, within time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
		p.cmd = nil
	case <-time.After(within):
		t.Fatalf("%s did not stop after its removal", p.name)
	}
}

var mbIDLine = regexp.MustCompile(`(?m)^([0-9a-f]+): name=(\S*) peerURLs=(\S+) clientURLs=(\S*) isLeader=(true|false)$`)

// Members added and removed at runtime with etcdctl (v2 mode) through
// /v2/members: a fourth member joins with --initial-cluster-state
// existing, catches up and serves; then the leader is removed: it stops,
// the others elect a new leader and keep every key, and cluster-health
// reports the three that remain.
func TestMembersAddAndRemoveAtRuntime(t *testing.T) {
	etcdctl := clEtcdctlPath(t)
	c := startCluster(t, "a", "b", "c")
	for i := range 20 {
		if code, body := c.do(c.procs[i%3], "PUT", fmt.Sprintf("/v2/keys/pre/%d", i), url.Values{"value": {"v"}}); code != http.StatusCreated {
			t.Fatalf("PUT: %d %s", code, body)
		}
	}
	ep := c.procs[1].client
	// Each member publishes its name and client URL once it knows a
	// leader; until then the list shows it without them.
	var out string
	for deadline := time.Now().Add(15 * time.Second); ; {
		_, out, _ = clRun(t, etcdctl, ep, "member", "list")
		all := len(mbIDLine.FindAllString(out, -1)) == 3
		for _, p := range c.procs {
			all = all && strings.Contains(out, "name="+p.name+" peerURLs="+p.peer+" clientURLs="+p.client+" ")
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member list does not show the three members with their URLs:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Add d, then start it joining the running cluster.
	d := &proc{name: "d", dir: filepath.Join(t.TempDir(), "d"),
		client: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), peer: fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
	code, out, errOut := clRun(t, etcdctl, ep, "member", "add", "d", d.peer)
	if code != 0 || !strings.Contains(out, `ETCD_INITIAL_CLUSTER_STATE="existing"`) {
		t.Fatalf("member add: %d %s %s", code, out, errOut)
	}
	initial := regexp.MustCompile(`ETCD_INITIAL_CLUSTER="([^"]+)"`).FindStringSubmatch(out)
	if initial == nil || !strings.Contains(initial[1], "d="+d.peer) {
		t.Fatalf("member add printed no initial cluster with d:\n%s", out)
	}
	c.join(d, initial[1])
	if code, body := c.do(d, "PUT", "/v2/keys/from-d", url.Values{"value": {"d"}}); code != http.StatusCreated {
		t.Fatalf("write through the new member: %d %s", code, body)
	}
	for i := range 20 {
		if _, body := c.do(d, "GET", fmt.Sprintf("/v2/keys/pre/%d?serializable=true", i), nil); !strings.Contains(body, `"value":"v"`) {
			t.Fatalf("new member lacks /pre/%d: %s", i, body)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, out, _ = clRun(t, etcdctl, ep, "member", "list")
		if strings.Contains(out, "name=d peerURLs="+d.peer+" clientURLs="+d.client+" ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new member's name and client URL never appeared:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// /v2/machines lists every client URL.
	_, machines := c.do(c.procs[0], "GET", "/v2/machines", nil)
	for _, p := range c.procs {
		if !strings.Contains(machines, p.client) {
			t.Fatalf("/v2/machines %q lacks %s", machines, p.client)
		}
	}

	// Remove the leader.
	lead := mbLeader(t, c, c.procs)
	var rest []*proc
	for _, p := range c.procs {
		if p != lead {
			rest = append(rest, p)
		}
	}
	var leadID string
	for _, m := range mbIDLine.FindAllStringSubmatch(out, -1) {
		if m[2] == lead.name {
			leadID = m[1]
		}
	}
	if code, out, errOut := clRun(t, etcdctl, rest[0].client, "member", "remove", leadID); code != 0 || !strings.Contains(out, "Removed member "+leadID) {
		t.Fatalf("member remove %s (%s, the leader): %d %s %s", leadID, lead.name, code, out, errOut)
	}
	mbWaitExit(t, lead, 15*time.Second)
	newLead := mbLeader(t, c, rest)
	if newLead == lead {
		t.Fatal("the removed member still leads")
	}
	if code, body := c.do(rest[0], "PUT", "/v2/keys/after-removal", url.Values{"value": {"x"}}); code != http.StatusCreated {
		t.Fatalf("write after removing the leader: %d %s", code, body)
	}
	for _, p := range rest {
		for _, k := range []string{"/v2/keys/from-d", "/v2/keys/after-removal", "/v2/keys/pre/19"} {
			if code, body := c.do(p, "GET", k, nil); code != http.StatusOK {
				t.Fatalf("%s at %s: %d %s", k, p.name, code, body)
			}
		}
	}
	_, out, _ = clRun(t, etcdctl, rest[0].client, "member", "list")
	if n := len(mbIDLine.FindAllString(out, -1)); n != 3 || strings.Contains(out, "name="+lead.name+" ") {
		t.Fatalf("member list after removing %s:\n%s", lead.name, out)
	}
	if code, out, errOut := clRun(t, etcdctl, rest[0].client, "cluster-health"); code != 0 || !strings.Contains(out, "cluster is healthy") {
		t.Fatalf("cluster-health: %d %s %s", code, out, errOut)
	}
	// Removing it again: 410 from the API, an error from etcdctl.
	if code, _, _ := clRun(t, etcdctl, rest[0].client, "member", "remove", leadID); code == 0 {
		t.Fatal("removing a removed member succeeded")
	}
	// The removed member's data directory cannot rejoin: it stops again.
	c.start(lead)
	mbWaitExit(t, lead, 15*time.Second)
}

// mbMemberIDs maps each member's name to its ID, from /v2/members.
func mbMemberIDs(t *testing.T, c *cluster, via *proc) map[string]string {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; {
		_, body := c.do(via, "GET", "/v2/members", nil)
		var list struct {
			Members []struct{ ID, Name string }
		}
		ids := map[string]string{}
		if err := json.Unmarshal([]byte(body), &list); err == nil {
			for _, m := range list.Members {
				if m.Name != "" {
					ids[m.Name] = m.ID
				}
			}
		}
		if len(ids) == len(c.procs) {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("members not all published: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mbDelete sends DELETE /v2/members/id through p once.
func mbDelete(t *testing.T, p *proc, id string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, p.client+"/v2/members/"+id, nil)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("DELETE /v2/members/%s through %s: %v", id, p.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// With one of three members down, removing one of the two that are up
// would leave a cluster of two with one up: it could not commit until the
// dead member came back. The removal is refused (500, saying why; etcd's
// strict reconfiguration check), nothing changes, and removing the dead
// member is allowed, after which the two commit.
func TestMembersRemovalRefusedWithoutQuorum(t *testing.T) {
	c := startCluster(t, "a", "b", "c")
	a, b, dead := c.procs[0], c.procs[1], c.procs[2]
	ids := mbMemberIDs(t, c, a)
	if code, body := c.do(a, "PUT", "/v2/keys/before", url.Values{"value": {"x"}}); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, body)
	}
	c.kill(dead, syscall.SIGKILL)
	// The streams to the killed member break at once; give the members a
	// moment to see it.
	time.Sleep(time.Second)

	code, body := mbDelete(t, a, ids["b"])
	if code != http.StatusInternalServerError || !strings.Contains(body, "re-configuration refused") || !strings.Contains(body, "2 voters, 1 of them up, fewer than the 2 a quorum needs") {
		t.Fatalf("removing b (up) with c down: %d %s", code, body)
	}
	t.Logf("refused: %d %s", code, strings.TrimSpace(body))
	if n := len(mbMemberIDs(t, c, a)); n != 3 {
		t.Fatalf("%d members listed after the refusal", n)
	}
	if code, body := mbDelete(t, b, ids["c"]); code != http.StatusNoContent {
		t.Fatalf("removing c (down): %d %s", code, body)
	}
	if code, body := c.do(b, "PUT", "/v2/keys/after", url.Values{"value": {"x"}}); code != http.StatusCreated {
		t.Fatalf("PUT after removing the dead member: %d %s", code, body)
	}
}

// A member asked to remove itself (etcdctl member remove, sent to the
// member removed) answers 204 and stops: the removal took place. It may
// never apply its removal (the leader stops replicating to it once it
// has) and learn of it only from a peer's refusal; the answer is success
// all the same, not "member stopped". The two left go on writing.
func TestMembersRemoveThroughItself(t *testing.T) {
	for round := range 3 {
		c := startCluster(t, "a", "b", "c")
		ids := mbMemberIDs(t, c, c.procs[0])
		victim := c.procs[round%3]
		// Until it has applied its own addition it refuses with 503.
		fltWaitHealthy(t, victim, 30*time.Second)
		if code, body := mbDelete(t, victim, ids[victim.name]); code != http.StatusNoContent {
			t.Fatalf("round %d: removing %s through itself: %d %s\nits log:\n%s", round, victim.name, code, body, fltTail(victim.dir+".log", 20))
		}
		mbWaitExit(t, victim, 15*time.Second)
		left := c.procs[(round+1)%3]
		if code, body := c.do(left, "PUT", "/v2/keys/after", url.Values{"value": {"x"}}); code != http.StatusCreated {
			t.Fatalf("round %d: PUT after the removal: %d %s", round, code, body)
		}
		if code, body := c.do(left, "GET", "/v2/members", nil); code != http.StatusOK || strings.Count(body, `"id"`) != 2 || strings.Contains(body, ids[victim.name]) {
			t.Fatalf("round %d: members after the removal: %d %s", round, code, body)
		}
	}
}
