package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A backup taken with cairn snapshot save from a member of a three-member
// cluster under write load is a consistent cut at the store index cairn
// snapshot status reports: restored into three fresh data directories of
// a new three-member cluster (new ports, new token), every member serves
// exactly the keys at or before that index, with their values, including
// every acknowledged write there; the new cluster takes writes, and its
// members agree.
func TestSnapshotSaveUnderLoadRestoreIntoFreshCluster(t *testing.T) {
	c := startCluster(t, "a", "b", "c")
	leader := fltWaitLeader(t, c.procs, 15*time.Second)
	src := c.procs[0]
	if src == leader {
		src = c.procs[1] // back up from a follower
	}
	load := fltStartLoad(t, "/flt", fltURLs(c.procs...), 8)
	load.waitAcks(500, time.Time{}, 20*time.Second)

	backup := filepath.Join(t.TempDir(), "backup.db")
	saveStart := time.Now()
	out, err := exec.Command(binary, "snapshot", "save", "--endpoints", src.client, backup).CombinedOutput()
	saveEnd := time.Now()
	if err != nil {
		t.Fatalf("snapshot save from %s under load: %v\n%s", src.name, err, out)
	}
	t.Logf("snapshot save from %s took %v: %s", src.name, saveEnd.Sub(saveStart).Round(time.Millisecond), strings.TrimSpace(string(out)))
	load.waitAcks(100, saveEnd, 20*time.Second)
	during := load.ackedBetween(saveStart, saveEnd)

	out, err = exec.Command(binary, "snapshot", "status", backup).CombinedOutput()
	if err != nil {
		t.Fatalf("snapshot status: %v\n%s", err, out)
	}
	var st struct {
		StoreIndex uint64 `json:"storeIndex"`
		RaftIndex  uint64 `json:"raftIndex"`
		Keys       int    `json:"keys"`
	}
	if err := json.Unmarshal(out, &st); err != nil || st.StoreIndex == 0 {
		t.Fatalf("snapshot status: %v\n%s", err, out)
	}
	load.stop()
	t.Log(load.summary())

	// What the backup must hold: the keys written at or before its store
	// index (keys are never rewritten, so the old cluster's final state
	// cut there is exact).
	final, err := fltTree(src.client, "/flt", false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fltNode{}
	for k, n := range final {
		if n.ModifiedIndex <= st.StoreIndex {
			want[k] = n
		}
	}
	var acks []fltAck // acknowledged before the save began, within the cut
	later := 0
	for _, a := range load.acked() {
		if !a.at.Before(saveStart) {
			continue
		}
		if a.index <= st.StoreIndex {
			acks = append(acks, a)
		} else {
			later++
		}
	}
	if bad := fltMissing(want, acks); len(bad) > 0 {
		t.Fatalf("the old cluster lacks acknowledged writes: %s", strings.Join(bad[:min(len(bad), 10)], "; "))
	}
	t.Logf("backup at store index %d (raft index %d, %d keys): %d keys under /flt, %d acknowledged before the save began (%d more acknowledged before it had indexes past the cut); %d acknowledged during the save",
		st.StoreIndex, st.RaftIndex, st.Keys, len(want), len(acks), later, during)
	if len(acks) == 0 {
		t.Fatal("no acknowledged write falls within the backup")
	}
	for _, p := range c.procs {
		c.kill(p, syscall.SIGTERM)
	}

	// A new cluster: new names, ports, data directories and token.
	const token = "flt-restored-cluster"
	r := &cluster{t: t, extra: []string{"--initial-cluster-token", token}}
	var parts []string
	for _, n := range []string{"r1", "r2", "r3"} {
		p := &proc{name: n, dir: filepath.Join(t.TempDir(), n),
			client: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			peer:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
		r.procs = append(r.procs, p)
		parts = append(parts, n+"="+p.peer)
	}
	r.initial = strings.Join(parts, ",")
	t.Cleanup(func() {
		for _, p := range r.procs {
			r.kill(p, syscall.SIGTERM)
		}
	})
	for _, p := range r.procs {
		out, err := exec.Command(binary, "snapshot", "restore", backup, "--name", p.name, "--data-dir", p.dir,
			"--initial-cluster", r.initial, "--initial-advertise-peer-urls", p.peer,
			"--initial-cluster-token", token).CombinedOutput()
		if err != nil {
			t.Fatalf("snapshot restore for %s: %v\n%s", p.name, err, out)
		}
		t.Logf("restore %s: %s", p.name, strings.TrimSpace(string(out)))
	}
	for _, p := range r.procs {
		r.start(p)
	}
	fltWaitLeader(t, r.procs, 15*time.Second)
	for _, p := range r.procs {
		fltWaitHealthy(t, p, 15*time.Second)
	}
	fltVerify(t, r.procs, "/flt", acks)
	for _, p := range r.procs {
		got, err := fltTree(p.client, "/flt", true)
		if err != nil {
			t.Fatal(err)
		}
		if d := fltDiff(want, got); d != "" {
			t.Fatalf("%s does not hold the backup's keys exactly (backup vs restored): %s", p.name, d)
		}
	}

	// The new cluster takes writes through every member, past the
	// backup's indexes, and its members agree on everything.
	var writes []fltAck
	for i, p := range r.procs {
		key, value := fmt.Sprintf("/flt-after/k%d", i), fmt.Sprintf("from-%s", p.name)
		code, body := r.do(p, "PUT", "/v2/keys"+key, url.Values{"value": {value}})
		var resp fltResponse
		if code != http.StatusCreated || json.Unmarshal([]byte(body), &resp) != nil || resp.Node.ModifiedIndex <= st.StoreIndex {
			t.Fatalf("write through restored %s: %d %s (backup store index %d)", p.name, code, body, st.StoreIndex)
		}
		writes = append(writes, fltAck{key: key, value: value, index: resp.Node.ModifiedIndex})
	}
	fltVerify(t, r.procs, "/flt-after", writes)
	deadline := time.Now().Add(15 * time.Second)
	for {
		diff := ""
		first, err := fltTree(r.procs[0].client, "/", true)
		for _, p := range r.procs[1:] {
			if err != nil || diff != "" {
				break
			}
			var other map[string]fltNode
			if other, err = fltTree(p.client, "/", true); err == nil {
				if diff = fltDiff(first, other); diff != "" {
					diff = r.procs[0].name + " vs " + p.name + ": " + diff
				}
			}
		}
		if err == nil && diff == "" {
			t.Logf("restored members agree on %d keys", len(first))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restored members do not agree: %v %s", err, diff)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
