package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Faults under load: members killed (SIGKILL) or stopped (SIGTERM) while
// concurrent clients write, and a member so far behind that it needs a
// snapshot. Every write a member acknowledged (2xx) must survive, with its
// value, on every member.

// fltAck is one acknowledged write.
type fltAck struct {
	key, value string
	index      uint64 // the modifiedIndex the member answered
	at         time.Time
}

// fltLoad runs concurrent writers, each writing unique keys with unique
// values to random members, and records every acknowledged write.
type fltLoad struct {
	t      *testing.T
	prefix string
	urls   []string
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	acks     []fltAck
	attempts int // requests sent
	unknown  int // answered "outcome unknown" (500, errorCode 300)
	refused  int // answered "not applied" (500, errorCode 300)
	failed   int // no answer (connection refused or reset, client timeout)
	given    int // keys given up on after every member failed
}

// fltStartLoad starts writers goroutines writing keys under prefix (a
// directory path such as "/flt") through the members at urls.
func fltStartLoad(t *testing.T, prefix string, urls []string, writers int) *fltLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &fltLoad{t: t, prefix: prefix, urls: urls, cancel: cancel}
	for g := range writers {
		l.wg.Add(1)
		go l.writer(ctx, g)
	}
	t.Cleanup(l.stop)
	return l
}

func (l *fltLoad) writer(ctx context.Context, g int) {
	defer l.wg.Done()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	for i := 0; ctx.Err() == nil; i++ {
		key := fmt.Sprintf("%s/w%d-%d", l.prefix, g, i)
		value := fmt.Sprintf("g%d-i%d-%016x", g, i, rand.Uint64())
		first := rand.IntN(len(l.urls))
		done := false
		// Retry on other members; the same key and value each time, so
		// whichever attempt is applied leaves the same state.
		for attempt := 0; attempt < 3*len(l.urls) && ctx.Err() == nil && !done; attempt++ {
			u := l.urls[(first+attempt)%len(l.urls)]
			status, body, err := fltPut(ctx, client, u, key, value)
			l.mu.Lock()
			l.attempts++
			switch {
			case err != nil:
				l.failed++
			case status == http.StatusOK || status == http.StatusCreated:
				var r fltResponse
				if jerr := json.Unmarshal([]byte(body), &r); jerr != nil || r.Node.Key != key || r.Node.Value != value {
					l.t.Errorf("PUT %s%s answered %d %s", u, key, status, body)
				}
				l.acks = append(l.acks, fltAck{key: key, value: value, index: r.Node.ModifiedIndex, at: time.Now()})
				done = true
			case status == http.StatusInternalServerError && strings.Contains(body, "outcome unknown"):
				l.unknown++
			case status == http.StatusInternalServerError && strings.Contains(body, "not applied"):
				l.refused++
			case status == http.StatusInternalServerError:
				l.failed++ // e.g. the member is stopping
			default:
				l.t.Errorf("PUT %s%s: unexpected %d %s", u, key, status, body)
			}
			l.mu.Unlock()
			if !done {
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
		if !done && ctx.Err() == nil {
			l.mu.Lock()
			l.given++
			l.mu.Unlock()
		}
	}
}

// stop ends the load and waits for every writer (idempotent).
func (l *fltLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

// acked returns the acknowledged writes so far.
func (l *fltLoad) acked() []fltAck {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acks)
}

// ackedBetween counts writes acknowledged in [from, to).
func (l *fltLoad) ackedBetween(from, to time.Time) int {
	n := 0
	for _, a := range l.acked() {
		if !a.at.Before(from) && a.at.Before(to) {
			n++
		}
	}
	return n
}

// waitAcks waits until n writes have been acknowledged since from.
func (l *fltLoad) waitAcks(n int, from time.Time, within time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for l.ackedBetween(from, time.Now().Add(time.Hour)) < n {
		if time.Now().After(deadline) {
			l.t.Fatalf("fewer than %d writes acknowledged in %v (%s)", n, within, l.summary())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *fltLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d requests: %d acknowledged, %d outcome unknown, %d not applied, %d unanswered; %d keys given up",
		l.attempts, len(l.acks), l.unknown, l.refused, l.failed, l.given)
}

type fltNode struct {
	Key           string    `json:"key"`
	Value         string    `json:"value"`
	Dir           bool      `json:"dir"`
	ModifiedIndex uint64    `json:"modifiedIndex"`
	Nodes         []fltNode `json:"nodes"`
}

type fltResponse struct {
	Node      fltNode `json:"node"`
	ErrorCode int     `json:"errorCode"`
	Message   string  `json:"message"`
}

func fltPut(ctx context.Context, client *http.Client, base, key, value string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v2/keys"+key,
		strings.NewReader(url.Values{"value": {value}}.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// fltGet does one GET with a short timeout.
func fltGet(u string) (int, []byte, error) {
	client := &http.Client{Timeout: 3 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(u)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// fltTree reads every key under dir (recursively) from the member at
// base: with serializable, the member's local replica; otherwise a
// linearizable read (quorum=true). It maps key to node.
func fltTree(base, dir string, serializable bool) (map[string]fltNode, error) {
	q := "?recursive=true&quorum=true"
	if serializable {
		q = "?recursive=true&serializable=true"
	}
	code, body, err := fltGet(base + "/v2/keys" + dir + q)
	if err != nil {
		return nil, err
	}
	tree := map[string]fltNode{}
	if code == http.StatusNotFound {
		return tree, nil
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %.300s", dir, code, body)
	}
	var r fltResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	var walk func(n fltNode)
	walk = func(n fltNode) {
		if !n.Dir {
			tree[n.Key] = fltNode{Key: n.Key, Value: n.Value, ModifiedIndex: n.ModifiedIndex}
		}
		for _, c := range n.Nodes {
			walk(c)
		}
	}
	walk(r.Node)
	return tree, nil
}

// fltMissing lists the acknowledged writes tree lacks or holds with
// another value.
func fltMissing(tree map[string]fltNode, acks []fltAck) []string {
	var bad []string
	for _, a := range acks {
		n, ok := tree[a.key]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s (index %d) missing", a.key, a.index))
		case n.Value != a.value:
			bad = append(bad, fmt.Sprintf("%s = %q, acknowledged %q (index %d)", a.key, n.Value, a.value, a.index))
		}
	}
	return bad
}

// fltVerify checks that every acknowledged write is read back, with its
// value, from every member's replica (once they have converged), that the
// members' replicas are the same, and that a linearizable read through the
// first member sees them all too.
func fltVerify(t *testing.T, procs []*proc, dir string, acks []fltAck) {
	t.Helper()
	if len(acks) == 0 {
		t.Fatal("no write was acknowledged")
	}
	deadline := time.Now().Add(30 * time.Second)
	var trees []map[string]fltNode
	for _, p := range procs {
		for {
			tree, err := fltTree(p.client, dir, true)
			var bad []string
			if err == nil {
				if bad = fltMissing(tree, acks); len(bad) == 0 {
					trees = append(trees, tree)
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: of %d acknowledged writes, %d are not read back (err %v): %s\nlog %s:\n%s",
					p.name, len(acks), len(bad), err, strings.Join(bad[:min(len(bad), 10)], "; "),
					p.dir+".log", fltTail(p.dir+".log", 15))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// In-flight writes whose outcome was unknown may land a little later:
	// wait until the replicas agree.
	for {
		diff := ""
		for i := 1; i < len(trees) && diff == ""; i++ {
			diff = fltDiff(trees[0], trees[i])
			if diff != "" {
				diff = procs[0].name + " and " + procs[i].name + ": " + diff
			}
		}
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas differ: %s", diff)
		}
		time.Sleep(100 * time.Millisecond)
		for i, p := range procs {
			if tree, err := fltTree(p.client, dir, true); err == nil {
				trees[i] = tree
			}
		}
	}
	tree, err := fltTree(procs[0].client, dir, false)
	if err != nil {
		t.Fatalf("linearizable read at %s: %v", procs[0].name, err)
	}
	if bad := fltMissing(tree, acks); len(bad) > 0 {
		t.Fatalf("linearizable read at %s: %d of %d acknowledged writes not read back: %s",
			procs[0].name, len(bad), len(acks), strings.Join(bad[:min(len(bad), 10)], "; "))
	}
	t.Logf("%d acknowledged writes read back from each of %d members (%d keys on each)", len(acks), len(procs), len(trees[0]))
}

// fltDiff describes how two trees differ ("" if they do not).
func fltDiff(a, b map[string]fltNode) string {
	for k, n := range a {
		if m, ok := b[k]; !ok || m.Value != n.Value || m.ModifiedIndex != n.ModifiedIndex {
			return fmt.Sprintf("%s: %+v vs %+v (present: %v)", k, n, m, ok)
		}
	}
	for k, m := range b {
		if _, ok := a[k]; !ok {
			return fmt.Sprintf("%s only in the second: %+v", k, m)
		}
	}
	return ""
}

type fltSelf struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	State      string `json:"state"`
	LeaderInfo struct {
		Leader string `json:"leader"`
	} `json:"leaderInfo"`
}

func fltStats(p *proc) (fltSelf, error) {
	var s fltSelf
	code, body, err := fltGet(p.client + "/v2/stats/self")
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("%d %s", code, body)
	}
	if err == nil {
		err = json.Unmarshal(body, &s)
	}
	return s, err
}

// fltWaitLeader waits until exactly one of procs says it leads and the
// others that answer name it as their leader; it returns the leader.
func fltWaitLeader(t *testing.T, procs []*proc, within time.Duration) *proc {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var leader *proc
		var leaderID string
		leaders, agree := 0, true
		var known []string
		for _, p := range procs {
			s, err := fltStats(p)
			if err != nil {
				agree = false
				continue
			}
			known = append(known, s.LeaderInfo.Leader)
			if s.State == "StateLeader" {
				leaders++
				leader, leaderID = p, s.ID
			}
		}
		for _, k := range known {
			agree = agree && k == leaderID
		}
		if leaders == 1 && agree {
			return leader
		}
		if time.Now().After(deadline) {
			t.Fatalf("no single leader among %d members within %v (%d say they lead; leaders known: %v)",
				len(procs), within, leaders, known)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fltWaitHealthy waits until the member's /health says true.
func fltWaitHealthy(t *testing.T, p *proc, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body, err := fltGet(p.client + "/health")
		if err == nil && code == http.StatusOK && strings.Contains(string(body), `"health":"true"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy within %v: %d %s %v\nlog:\n%s", p.name, within, code, body, err, fltTail(p.dir+".log", 15))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fltWaitCaughtUp writes a marker through via and waits until p's own
// replica holds it: p has applied everything committed before.
func fltWaitCaughtUp(t *testing.T, c *cluster, p, via *proc, within time.Duration) {
	t.Helper()
	key := fmt.Sprintf("/fltmark/%s-%d", p.name, time.Now().UnixNano())
	if code, body := c.do(via, "PUT", "/v2/keys"+key, url.Values{"value": {"m"}}); code != http.StatusCreated {
		t.Fatalf("marker write through %s: %d %s", via.name, code, body)
	}
	deadline := time.Now().Add(within)
	for {
		code, body, err := fltGet(p.client + "/v2/keys" + key + "?serializable=true")
		if err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not catch up within %v: %d %s %v\nlog:\n%s", p.name, within, code, body, err, fltTail(p.dir+".log", 15))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fltRestart starts p again from its data directory, keeping the log of
// its previous run beside the new one.
func fltRestart(c *cluster, p *proc) {
	_ = os.Rename(p.dir+".log", fmt.Sprintf("%s.log.%d", p.dir, time.Now().UnixNano()))
	c.start(p)
}

// fltMetric sums the samples of the named metric whose labels contain
// label ("" for any), as served on /metrics.
func fltMetric(t *testing.T, p *proc, name, label string) float64 {
	t.Helper()
	code, body, err := fltGet(p.client + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s /metrics: %d %v", p.name, code, err)
	}
	var sum float64
	for line := range strings.SplitSeq(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest == "" || (rest[0] != ' ' && rest[0] != '{')) {
			continue
		}
		if label != "" && !strings.Contains(rest, label) {
			continue
		}
		f := strings.Fields(rest)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// fltLogIndexes returns the "index" of every log line of the file whose
// message is msg.
func fltLogIndexes(path, msg string) []uint64 {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []uint64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Message string `json:"message"`
			Index   uint64 `json:"index"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == msg {
			out = append(out, line.Index)
		}
	}
	return out
}

// fltTail returns the last n lines of a file.
func fltTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func fltURLs(procs ...*proc) []string {
	var out []string
	for _, p := range procs {
		out = append(out, p.client)
	}
	return out
}

// Three members under concurrent write load; the leader is killed
// (SIGKILL) mid-load. A survivor is elected within a few election
// timeouts, writes go on being acknowledged, and once the killed member is
// back every acknowledged write is on every member with its value.
func TestKillLeaderUnderWriteLoad(t *testing.T) {
	c := startCluster(t, "a", "b", "c")
	fltWaitLeader(t, c.procs, 15*time.Second)
	load := fltStartLoad(t, "/flt", fltURLs(c.procs...), 8)
	load.waitAcks(300, time.Time{}, 20*time.Second)

	// Kill whoever leads now, mid-load.
	leader := fltWaitLeader(t, c.procs, 10*time.Second)
	killedAt := time.Now()
	c.kill(leader, syscall.SIGKILL)
	var survivors []*proc
	for _, p := range c.procs {
		if p != leader {
			survivors = append(survivors, p)
		}
	}
	// Several election timeouts (500 ms each); generous for a loaded
	// machine.
	newLeader := fltWaitLeader(t, survivors, 10*time.Second)
	t.Logf("killed leader %s; %s leads %v later", leader.name, newLeader.name, time.Since(killedAt).Round(time.Millisecond))
	load.waitAcks(300, time.Now(), 20*time.Second)
	t.Logf("%d writes acknowledged since the kill", load.ackedBetween(killedAt, time.Now()))

	fltRestart(c, leader)
	fltWaitHealthy(t, leader, 15*time.Second)
	load.waitAcks(100, time.Now(), 20*time.Second)
	load.stop()
	t.Log(load.summary())
	fltVerify(t, []*proc{leader, survivors[0], survivors[1]}, "/flt", load.acked())
}

// With --snapshot-count small, a member stopped (SIGKILL) while the
// others write so many entries that the leader's log no longer holds what
// it misses catches up by receiving a snapshot, and then has every key.
func TestLaggingMemberCatchesUpBySnapshot(t *testing.T) {
	// The leader compacts every 1000 entries but keeps 5000 behind the
	// snapshot for followers a little behind: a follower is sent a
	// snapshot only once the snapshot index is more than 5000 past it.
	const catchUpEntries = 5000
	c := startClusterWith(t, []string{"--snapshot-count", "1000"}, "a", "b", "c")
	leader := fltWaitLeader(t, c.procs, 15*time.Second)
	for i := range 10 {
		if code, body := c.do(c.procs[i%3], "PUT", fmt.Sprintf("/v2/keys/flt/before%d", i), url.Values{"value": {"x"}}); code != http.StatusCreated {
			t.Fatalf("PUT: %d %s", code, body)
		}
	}
	var victim *proc
	var survivors []*proc
	for _, p := range c.procs {
		if p != leader && victim == nil {
			victim = p
		} else {
			survivors = append(survivors, p)
		}
	}
	fltWaitCaughtUp(t, c, victim, leader, 10*time.Second)
	vs, err := fltStats(victim)
	if err != nil {
		t.Fatal(err)
	}
	c.kill(victim, syscall.SIGKILL)
	// No write is in flight: the victim's log ends at or before the
	// commit index now.
	var victimPos uint64
	for _, p := range survivors {
		victimPos = max(victimPos, uint64(fltMetric(t, p, "cairn_server_proposals_committed_total", "")))
	}

	load := fltStartLoad(t, "/flt", fltURLs(survivors...), 16)
	deadline := time.Now().Add(40 * time.Second)
	for {
		// Every survivor (whichever leads) must have compacted past the
		// victim's last entry.
		compacted := true
		var seen []uint64
		for _, p := range survivors {
			idx := fltLogIndexes(p.dir+".log", "snapshot taken")
			last := uint64(0)
			if len(idx) > 0 {
				last = idx[len(idx)-1]
			}
			seen = append(seen, last)
			compacted = compacted && last > victimPos+catchUpEntries+100
		}
		if compacted {
			t.Logf("victim %s stopped at index %d; survivors' last snapshots at %v", victim.name, victimPos, seen)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("survivors did not snapshot past %d in time (last snapshots %v; %s)", victimPos+catchUpEntries, seen, load.summary())
		}
		time.Sleep(100 * time.Millisecond)
	}
	load.stop()
	t.Log(load.summary())

	fltRestart(c, victim)
	fltWaitHealthy(t, victim, 20*time.Second)
	acks := append(load.acked(), fltAck{key: "/flt/before0", value: "x"})
	fltVerify(t, []*proc{victim, survivors[0], survivors[1]}, "/flt", acks)

	if n := fltMetric(t, victim, "cairn_network_snapshot_receive_success", ""); n < 1 {
		t.Fatalf("%s caught up without receiving a snapshot (cairn_network_snapshot_receive_success %v)\nlog:\n%s",
			victim.name, n, fltTail(victim.dir+".log", 20))
	}
	installed := fltLogIndexes(victim.dir+".log", "installed a snapshot from the leader")
	if len(installed) == 0 || installed[0] <= victimPos {
		t.Fatalf("%s: no snapshot past %d installed (log: %v)", victim.name, victimPos, installed)
	}
	var sent float64
	for _, p := range survivors {
		sent += fltMetric(t, p, "cairn_network_snapshot_send_success", `To="`+vs.ID+`"`)
	}
	if sent < 1 {
		t.Fatalf("no survivor reports a snapshot sent to %s (%s)", victim.name, vs.ID)
	}
	t.Logf("%s installed snapshots at %v; survivors sent %v", victim.name, installed, sent)
}

// Three members under concurrent write load are restarted in turn
// (SIGTERM, exit, start, healthy and caught up). Writes are acknowledged
// while each one is down, and none acknowledged is lost on any member.
func TestRollingRestartUnderWriteLoad(t *testing.T) {
	c := startCluster(t, "a", "b", "c")
	fltWaitLeader(t, c.procs, 15*time.Second)
	load := fltStartLoad(t, "/flt", fltURLs(c.procs...), 8)
	load.waitAcks(200, time.Time{}, 20*time.Second)
	for i, p := range c.procs {
		other := c.procs[(i+1)%len(c.procs)]
		c.kill(p, syscall.SIGTERM) // waits for the exit
		down := time.Now()
		load.waitAcks(100, down, 20*time.Second)
		up := time.Now()
		// Counted between the exit and the new start: the member cannot
		// have acknowledged any of these.
		n := load.ackedBetween(down, up)
		fltRestart(c, p)
		fltWaitHealthy(t, p, 15*time.Second)
		fltWaitCaughtUp(t, c, p, other, 15*time.Second)
		t.Logf("%s down for %v, %d writes acknowledged meanwhile; healthy and caught up %v after its start",
			p.name, up.Sub(down).Round(time.Millisecond), n, time.Since(up).Round(time.Millisecond))
		if n == 0 {
			t.Fatalf("no write acknowledged while %s was down", p.name)
		}
	}
	load.waitAcks(100, time.Now(), 20*time.Second)
	load.stop()
	t.Log(load.summary())
	fltVerify(t, c.procs, "/flt", load.acked())
}

// A write sent to a follower just after the leader is killed is not lost:
// the follower's streams to the dead leader broke, so it holds the write
// until a leader it can reach is elected instead of forwarding it into
// the void, and the client gets 201 (before, it waited out the request
// timeout and got 500 "outcome unknown"). Three rounds, a leader killed
// in each and started again after.
func TestWriteThroughFollowerAfterLeaderKill(t *testing.T) {
	c := startCluster(t, "a", "b", "c")
	hc := &http.Client{Timeout: 30 * time.Second}
	for round := range 3 {
		lead := mbLeader(t, c, c.procs)
		var follower *proc
		for _, p := range c.procs {
			if p != lead {
				follower = p
				break
			}
		}
		fltWaitHealthy(t, follower, 30*time.Second)
		fltWaitCaughtUp(t, c, follower, lead, 10*time.Second)
		c.kill(lead, syscall.SIGKILL)
		time.Sleep(100 * time.Millisecond) // the client's retry, say
		key := fmt.Sprintf("/v2/keys/afterkill/%d", round)
		code, body, _, err := pxDo(hc, "PUT", follower.client+key, url.Values{"value": {"x"}})
		if err != nil || code != http.StatusCreated {
			t.Fatalf("round %d: PUT through %s just after the leader %s was killed: %d %s %v\nits log:\n%s", round, follower.name, lead.name, code, strings.TrimSpace(body), err, fltTail(follower.dir+".log", 12))
		}
		c.start(lead)
		fltWaitHealthy(t, lead, 30*time.Second)
		if code, body := c.do(lead, "GET", key, nil); code != http.StatusOK {
			t.Fatalf("round %d: GET at the restarted %s: %d %s", round, lead.name, code, body)
		}
	}
}
