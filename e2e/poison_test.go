package e2e

import (
	"bytes"
	enc "encoding/binary"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/peer"
	"github.com/cairnkv/cairn/store"
)

// psnEntries are entry data no member can apply: an entry kind this
// version does not know, a store request that does not decode, a key
// bbolt could not hold (40 KiB), a membership entry that does not decode.
func psnEntries() []consensus.Entry {
	withID := func(kind byte, rest []byte) consensus.Entry {
		b := enc.BigEndian.AppendUint64([]byte{kind}, uint64(time.Now().UnixNano()))
		return consensus.Entry{Data: append(b, rest...)}
	}
	big := (&store.Request{Op: store.OpSet, Path: "/" + strings.Repeat("k", 40<<10), Value: "v", Time: 1}).Marshal(nil)
	return []consensus.Entry{
		withID(9, []byte("from a later version")),
		withID(1, []byte{1, 250, 0}),
		withID(1, big),
		withID(2, []byte{7, 1}),
	}
}

// psnForge sends msgs to member to's peer port as member from would.
func psnForge(t *testing.T, to *proc, cluster, from, toID string, msgs ...consensus.Message) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, to.peer+peer.RaftPath, bytes.NewReader(peer.MarshalMessages(msgs...)))
	req.Header.Set(peer.HeaderCluster, cluster)
	req.Header.Set(peer.HeaderFrom, from)
	req.Header.Set(peer.HeaderTo, toID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("forging a message to %s: %v", to.name, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// psnSetup starts three members and returns them, the leader, the cluster
// ID and every member's ID by name.
func psnSetup(t *testing.T) (*cluster, *proc, string, map[string]string) {
	c := startCluster(t, "a", "b", "c")
	if code, body := c.do(c.procs[0], "PUT", "/v2/keys/before", url.Values{"value": {"1"}}); code != http.StatusCreated {
		t.Fatalf("first write: %d %s", code, body)
	}
	ids := mbMemberIDs(t, c, c.procs[0])
	lead := fltWaitLeader(t, c.procs, 15*time.Second)
	resp, err := http.Get(lead.client + "/v2/keys/before")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c, lead, resp.Header.Get("X-Etcd-Cluster-Id"), ids
}

// psnProposal is a forged MsgProp from member from to member to.
func psnProposal(from, to string, ents []consensus.Entry) consensus.Message {
	f, _ := strconv.ParseUint(from, 16, 64)
	d, _ := strconv.ParseUint(to, 16, 64)
	return consensus.Message{Type: consensus.MsgProp, From: f, To: d, Entries: ents}
}

// psnCheckUp fails unless every member answers a write and a read, and
// is still the process it was.
func psnCheckUp(t *testing.T, c *cluster, key string) {
	t.Helper()
	for _, p := range c.procs {
		if p.cmd.ProcessState != nil {
			t.Fatalf("%s exited:\n%s", p.name, fltTail(p.dir+".log", 20))
		}
		if code, body := c.do(p, "PUT", "/v2/keys/"+key+"-"+p.name, url.Values{"value": {"ok"}}); code != http.StatusCreated {
			t.Fatalf("write through %s: %d %s\n%s", p.name, code, body, fltTail(p.dir+".log", 20))
		}
	}
	for _, p := range c.procs {
		fltWaitHealthy(t, p, 15*time.Second)
	}
}

// A member's peer port refuses messages from a member ID that is not in
// the cluster (404, counted), and the leader keeps out of the log every
// proposal that apply could not take, forwarded by a member of the
// cluster (here forged in its name): nothing is appended, the refusals
// are counted, and every member stays up and serves.
func TestPeerPortCannotPoisonTheLog(t *testing.T) {
	c, lead, cid, ids := psnSetup(t)
	var follower string
	for name, id := range ids {
		if name != lead.name {
			follower = id
		}
	}
	// A stranger with the right cluster ID is refused.
	stranger := "1234abcd"
	if code := psnForge(t, lead, cid, stranger, ids[lead.name], psnProposal(stranger, ids[lead.name], psnEntries())); code != http.StatusNotFound {
		t.Fatalf("a stranger's message: %d, want 404", code)
	}
	if n := fltMetric(t, lead, "cairn_network_peer_refused_total", `reason="stranger"`); n < 1 {
		t.Fatalf("stranger refusals counted: %v", n)
	}
	index := fltMetric(t, lead, "cairn_server_proposals_applied_total", "")
	for i, e := range psnEntries() {
		code := psnForge(t, lead, cid, follower, ids[lead.name], psnProposal(follower, ids[lead.name], []consensus.Entry{e}))
		if code != http.StatusNoContent {
			t.Fatalf("forged proposal %d: %d", i, code)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for fltMetric(t, lead, "cairn_server_proposals_refused_total", "") < float64(len(psnEntries())) {
		if time.Now().After(deadline) {
			t.Fatalf("the leader refused %v of %d poisoned proposals", fltMetric(t, lead, "cairn_server_proposals_refused_total", ""), len(psnEntries()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if now := fltMetric(t, lead, "cairn_server_proposals_applied_total", ""); now != index {
		t.Errorf("applied index moved from %v to %v: something entered the log", index, now)
	}
	psnCheckUp(t, c, "after")
}

// With the leader's check switched off (a test-only bug), the poisoned
// proposals enter the log: every member applies each as a refusal, none
// stops, all agree, and every member restarts after kill -9 on its data
// directory, replaying the entries.
func TestPoisonedLogEntriesDoNotStopMembers(t *testing.T) {
	t.Setenv("CAIRN_UNSAFE_SKIP_PROPOSAL_CHECK", "1")
	c, lead, cid, ids := psnSetup(t)
	var follower string
	for name, id := range ids {
		if name != lead.name {
			follower = id
		}
	}
	ents := psnEntries()
	if code := psnForge(t, lead, cid, follower, ids[lead.name], psnProposal(follower, ids[lead.name], ents)); code != http.StatusNoContent {
		t.Fatalf("forged proposal: %d", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		refused := 0.0
		for _, p := range c.procs {
			refused += min(fltMetric(t, p, "cairn_server_entries_refused_total", ""), float64(len(ents)))
		}
		if refused == float64(3*len(ents)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entries refused on apply, summed over members: %v, want %d", refused, 3*len(ents))
		}
		time.Sleep(50 * time.Millisecond)
	}
	psnCheckUp(t, c, "after")
	for _, p := range c.procs {
		c.kill(p, syscall.SIGKILL)
	}
	for _, p := range c.procs {
		fltRestart(c, p)
	}
	psnCheckUp(t, c, "restarted")
	for _, p := range c.procs {
		code, body, err := fltGet(p.client + "/v2/keys/before?serializable=true")
		if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"value":"1"`) {
			t.Fatalf("%s after restart: %d %s %v", p.name, code, body, err)
		}
	}
}
