package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Membership changes during faults (the member-change fault): a random
// member is removed through DELETE /v2/members/<id> on another member;
// it stops by itself (exit status 1, "removed" in its log: expected, not
// a crash). Then a fresh member (new directory, new ports, a new proxy)
// is added with POST /v2/members and started with
// --initial-cluster-state existing; it joins as a learner and the leader
// promotes it. The clients learn the member list from /v2/members
// (chEndpoints); the harness knows it as c.current(). Every call is retried
// within bounds; what cannot be done is logged and left (a later
// member-change, or the end of the run, adds what is missing).

// chMembersTimeout bounds a membership call: a little more than a
// member's own bound on a proposal (5 s and two election timeouts), so
// that it answers whether the change was applied.
const chMembersTimeout = 7 * time.Second

// chMemberJSON is one member as /v2/members lists it.
type chMemberJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// chMembersCall sends a membership request to m: its status and body.
// Changes need root once auth is on: ctx carries the credentials.
func chMembersCall(ctx context.Context, hc *http.Client, m *chMember, method, path string, body any) (int, string, error) {
	return chCall(ctx, hc, method, m.client+"/v2/members"+path, body)
}

// chCall sends a request with body (if any) as JSON and the credentials
// ctx carries (coAuthorize): its status and body.
func chCall(ctx context.Context, hc *http.Client, method, u string, body any) (int, string, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	coAuthorize(req)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// chListMembers reads m's member list (its own view: not linearizable).
func chListMembers(ctx context.Context, hc *http.Client, m *chMember) ([]chMemberJSON, error) {
	code, body, err := chMembersCall(ctx, hc, m, http.MethodGet, "", nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /v2/members at %s: %d %.200s", m.name, code, body)
	}
	var l struct {
		Members []chMemberJSON `json:"members"`
	}
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		return nil, fmt.Errorf("GET /v2/members at %s: %v", m.name, err)
	}
	return l.Members, nil
}

// chFindMember returns the ID of the listed member with peer URL peer, or
// that has ID id (0 if there is none).
func chFindMember(list []chMemberJSON, peer string, id uint64) uint64 {
	for _, mj := range list {
		mid, err := strconv.ParseUint(mj.ID, 16, 64)
		if err != nil {
			continue
		}
		if (id != 0 && mid == id) || (peer != "" && slices.Contains(mj.PeerURLs, peer)) {
			return mid
		}
	}
	return 0
}

// others returns the running members other than not (or, if none runs,
// all of them: they may come back).
func (c *chCluster) others(not *chMember) []*chMember {
	var up, down []*chMember
	for _, m := range c.current() {
		switch {
		case m == not:
		case m.running():
			up = append(up, m)
		default:
			down = append(down, m)
		}
	}
	if len(up) > 0 {
		return up
	}
	return down
}

// chChange is what a member-change fault did.
type chChange struct {
	victim  *chMember // removed (nil: nothing was removed)
	added   *chMember // started (nil: none yet)
	skipped string    // why the change stopped short ("": it did not)
}

// removeMember removes victim through another member, retrying until
// within passes. It reports whether the removal is certain (the member
// is then out of c.members).
func (c *chCluster) removeMember(victim *chMember, tl *chTimeline, rng *rand.Rand, within time.Duration) bool {
	hc := &http.Client{Timeout: chMembersTimeout}
	defer hc.CloseIdleConnections()
	victim.mu.Lock()
	victim.removing = true // from now on it may be removed at any time
	victim.mu.Unlock()
	deadline := time.Now().Add(within)
	path := "/" + strconv.FormatUint(victim.id, 16)
	var lastErr string
	tries := 0
	off := rng.IntN(8)
	for ; ; tries++ {
		others := c.others(victim)
		if len(others) == 0 {
			lastErr = "no other member"
			break
		}
		via := others[(off+tries)%len(others)]
		code, body, err := chMembersCall(c.asRoot(), hc, via, http.MethodDelete, path, nil)
		switch {
		case err == nil && code == http.StatusNoContent:
			c.dropMember(victim)
			tl.add("member-change: removed %s (%x) through %s (attempt %d)", victim.name, victim.id, via.name, tries+1)
			return true
		case err == nil && code == http.StatusGone:
			// An earlier attempt (answered as failed or not at all) applied.
			c.dropMember(victim)
			tl.add("member-change: %s (%x) already removed (410 through %s, attempt %d)", victim.name, victim.id, via.name, tries+1)
			return true
		case err != nil:
			lastErr = fmt.Sprintf("%s: %v", via.name, err)
		default:
			lastErr = fmt.Sprintf("%s: %d %.200s", via.name, code, body)
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Not confirmed: a member that no longer lists it has applied its
	// removal (the lists change in log order). A removal that applies
	// later is found by reap when the member stops for it.
	for _, via := range c.others(victim) {
		if list, err := chListMembers(c.asRoot(), hc, via); err == nil && chFindMember(list, "", victim.id) == 0 {
			c.dropMember(victim)
			tl.add("member-change: %s (%x) is no longer listed by %s: removed (after %d attempts; last: %s)",
				victim.name, victim.id, via.name, tries+1, lastErr)
			return true
		}
	}
	tl.add("member-change: removing %s (%x) not confirmed after %d attempts (last: %s); it stays (it may be removed later), and the change is skipped",
		victim.name, victim.id, tries+1, lastErr)
	return false
}

// dropMember takes m out of the current members.
func (c *chCluster) dropMember(m *chMember) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = slices.DeleteFunc(c.members, func(x *chMember) bool { return x == m })
}

// reap drops the current members that exited because they were removed
// (a removal that was not confirmed but applied later).
func (c *chCluster) reap(tl *chTimeline) {
	for _, m := range c.current() {
		m.mu.Lock()
		gone := m.removedExit && m.cmd == nil
		m.mu.Unlock()
		if gone {
			c.dropMember(m)
			tl.add("member-change: %s exited after its removal applied late; dropped from the members", m.name)
		}
	}
}

// waitExit waits until m's process has ended.
func (c *chCluster) waitExit(m *chMember, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for !m.exited() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// addMember adds a fresh member (or the one an earlier attempt left
// pending), starts it joining the cluster and makes it current. It gives
// up (leaving it pending) when within passes.
func (c *chCluster) addMember(tl *chTimeline, within time.Duration) (*chMember, error) {
	hc := &http.Client{Timeout: chMembersTimeout}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(within)
	m := c.pending
	if m == nil {
		var err error
		if m, err = c.newMember(); err != nil {
			return nil, err
		}
		c.pending = m
	}
	if m.id == 0 {
		id, err := c.registerMember(hc, m, deadline)
		if err != nil {
			tl.add("member-change: adding %s (peer URL %s) failed: %v", m.name, m.advPeer, err)
			return nil, err
		}
		c.mu.Lock()
		m.id = id // read by the clients' member list (everyMember)
		c.mu.Unlock()
		c.net.setID(id, m.idx)
		tl.add("member-change: %s added as %x (peer URL %s)", m.name, m.id, m.advPeer)
	}
	var parts []string
	for _, x := range c.current() {
		parts = append(parts, x.name+"="+x.advPeer)
	}
	parts = append(parts, m.name+"="+m.advPeer)
	m.initial, m.state = strings.Join(parts, ","), "existing"
	// The joiner asks the first member that answers for the list: wait
	// (a little) until every running member lists it.
	for wait := time.Now().Add(5 * time.Second); ; {
		all := true
		for _, x := range c.current() {
			if !x.running() {
				continue
			}
			list, err := chListMembers(c.asRoot(), hc, x)
			all = all && err == nil && chFindMember(list, "", m.id) != 0
		}
		if all || time.Now().After(wait) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for attempt := 1; ; attempt++ {
		c.start(m)
		// Up (it answers), or ended (a join refused: start again).
		for !m.exited() && time.Now().Before(deadline) {
			if _, err := chStats(m, time.Second); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		m.mu.Lock()
		exited, joinFailed := m.cmd == nil, m.joinFailed
		m.mu.Unlock()
		if !exited {
			break
		}
		if !joinFailed {
			return nil, fmt.Errorf("%s exited at its start:\n%s", m.name, chTail(m.log, 10))
		}
		tl.add("member-change: %s could not join (attempt %d): %s", m.name, attempt, chLastLine(m.log))
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s could not join in %d attempts", m.name, attempt)
		}
		time.Sleep(500 * time.Millisecond)
	}
	c.pending = nil
	c.mu.Lock()
	c.members = append(c.members, m)
	c.mu.Unlock()
	tl.add("member-change: %s started, joining (--initial-cluster %s)", m.name, m.initial)
	return m, nil
}

// registerMember POSTs m's peer URL until an answer gives its ID. Before
// each POST the member lists (of every member that runs: one may lag)
// say whether an earlier attempt, whose outcome was unknown, applied. (A
// POST through a member that has not applied an earlier add of the same
// URL adds it again: see TestChaosBugAddMemberDuplicatePeerURL.)
func (c *chCluster) registerMember(hc *http.Client, m *chMember, deadline time.Time) (uint64, error) {
	var lastErr string
	for tries := 0; ; tries++ {
		others := c.others(nil)
		if len(others) == 0 {
			return 0, errors.New("no member")
		}
		via := others[tries%len(others)]
		for _, x := range others {
			if list, err := chListMembers(c.asRoot(), hc, x); err == nil {
				if id := chFindMember(list, m.advPeer, 0); id != 0 {
					return id, nil
				}
			}
		}
		code, body, err := chMembersCall(c.asRoot(), hc, via, http.MethodPost, "", map[string][]string{"peerURLs": {m.advPeer}})
		switch {
		case err == nil && code == http.StatusCreated:
			var mj chMemberJSON
			if jerr := json.Unmarshal([]byte(body), &mj); jerr != nil {
				return 0, fmt.Errorf("POST through %s: %v: %s", via.name, jerr, body)
			}
			id, perr := strconv.ParseUint(mj.ID, 16, 64)
			if perr != nil || id == 0 {
				return 0, fmt.Errorf("POST through %s: id %q", via.name, mj.ID)
			}
			return id, nil
		case err == nil && code == http.StatusConflict:
			lastErr = fmt.Sprintf("%s: %d %.200s", via.name, code, body) // listed: found on the next round
		case err != nil:
			lastErr = fmt.Sprintf("%s: %v", via.name, err)
		default:
			lastErr = fmt.Sprintf("%s: %d %.200s", via.name, code, body)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("after %d attempts: %s", tries+1, lastErr)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// promoted tells whether m's log shows it applied its own promotion to
// voter.
func (m *chMember) promoted() bool {
	b, err := os.ReadFile(m.log)
	if err != nil {
		return false
	}
	want := fmt.Sprintf(`"member-id":"%x"`, m.id)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"change":"AddVoter"`) && strings.Contains(line, want) {
			return true
		}
	}
	return false
}

// waitPromoted waits until m applied its promotion.
func (c *chCluster) waitPromoted(m *chMember, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for !m.promoted() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// chLastLine is the last line of a file.
func chLastLine(path string) string {
	return strings.TrimSpace(chTail(path, 1))
}

// memberChange is the member-change fault: during the faults the caller
// started (if any), remove a random member and add a fresh one. heal
// finishes what the faults kept from finishing: the removed member
// stops, a member missing is added, and the new one is promoted.
func (c *chCluster) memberChange(rng *rand.Rand, tl *chTimeline, size int) (mc *chChange, heal func()) {
	mc = &chChange{}
	c.reap(tl)
	ms := c.current()
	pick := rng.IntN(len(ms)) // drawn whatever happens next
	if len(ms) < size || c.pending != nil {
		mc.skipped = fmt.Sprintf("%d members of %d: adding first", len(ms), size)
		tl.add("member-change: %s", mc.skipped)
	} else {
		victim := ms[pick]
		what := "a follower"
		if s, err := chStats(victim, 300*time.Millisecond); err == nil && s.State == "StateLeader" {
			what = "the leader"
		}
		tl.add("member-change: removing %s (%x), %s", victim.name, victim.id, what)
		if !c.removeMember(victim, tl, rng, 8*time.Second) {
			mc.skipped = "removal not confirmed"
			return mc, func() {}
		}
		mc.victim = victim
		if c.waitExit(victim, 5*time.Second) {
			tl.add("member-change: %s stopped by itself", victim.name)
		} else {
			tl.add("member-change: %s still running 5 s after its removal", victim.name)
		}
	}
	if m, err := c.addMember(tl, 5*time.Second); err == nil {
		mc.added = m
	} else if mc.skipped == "" {
		mc.skipped = "add: " + err.Error()
	}
	return mc, func() {
		if v := mc.victim; v != nil && !v.exited() {
			if c.waitExit(v, 20*time.Second) {
				tl.add("heal: %s (removed) stopped by itself", v.name)
			} else {
				tl.add("heal: %s (removed) still running 20 s after the heal", v.name)
			}
		}
		for len(c.current()) < size {
			m, err := c.addMember(tl, 20*time.Second)
			if err != nil {
				tl.add("heal: no member added: %v; %d members", err, len(c.current()))
				break
			}
			mc.added = m
		}
		if m := mc.added; m != nil {
			if c.waitPromoted(m, 20*time.Second) {
				tl.add("heal: %s promoted to voter", m.name)
			} else {
				tl.add("heal: %s not promoted to voter within 20 s", m.name)
			}
		}
	}
}

// lingering lists the removed members still running.
func (c *chCluster) lingering() []*chMember {
	cur := c.current()
	var out []*chMember
	for _, m := range c.everyMember() {
		m.mu.Lock()
		removing, up := m.removing, m.cmd != nil
		m.mu.Unlock()
		if removing && up && !slices.Contains(cur, m) {
			out = append(out, m)
		}
	}
	return out
}

// chEndpoints is the member list the clients use, learnt from the
// cluster: /v2/members, asked of a random member they know every
// syncEvery. Each member listed is reached at the client URL it
// published, or, until it has (a member publishes once it knows a leader,
// and that can take a while under faults), at the one the harness gave it.
// The list starts with the cluster's initial members; a failed sync keeps
// it.
type chEndpoints struct {
	c         *chCluster
	seed      uint64
	mu        sync.Mutex
	list      []*chMember
	syncs     int // answered
	failures  int
	changes   []string // what changed, and when
	cancel    context.CancelFunc
	done      chan struct{}
	syncEvery time.Duration
}

func chNewEndpoints(c *chCluster, seed uint64) *chEndpoints {
	return &chEndpoints{c: c, seed: seed, list: c.current(), cancel: func() {}, done: make(chan struct{}),
		syncEvery: 300 * time.Millisecond}
}

// get returns the members the clients know.
func (e *chEndpoints) get() []*chMember {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.list
}

// run reads the member list every syncEvery, with ctx (and the
// credentials it carries), until stop.
func (e *chEndpoints) run(ctx context.Context, tl *chTimeline) {
	ctx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
	go func() {
		defer close(e.done)
		rng := rand.New(rand.NewPCG(e.seed, 0x73796e63))
		hc := &http.Client{Timeout: time.Second}
		defer hc.CloseIdleConnections()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(e.syncEvery):
			}
			known := e.get()
			list, err := chListMembers(ctx, hc, known[rng.IntN(len(known))])
			if err != nil {
				e.mu.Lock()
				e.failures++
				e.mu.Unlock()
				continue
			}
			byURL, byID := map[string]*chMember{}, map[string]*chMember{}
			e.c.mu.Lock()
			for _, m := range e.c.all {
				byURL[m.client] = m
				if m.id != 0 {
					byID[strconv.FormatUint(m.id, 16)] = m
				}
			}
			e.c.mu.Unlock()
			var next []*chMember
			for _, mj := range list {
				m := byID[mj.ID]
				for _, u := range mj.ClientURLs {
					m = byURL[u]
				}
				if m != nil && !slices.Contains(next, m) {
					next = append(next, m)
				}
			}
			e.mu.Lock()
			e.syncs++
			if len(next) > 0 && !slices.Equal(next, e.list) {
				e.changes = append(e.changes, chNames(next))
				e.list = next
				e.mu.Unlock()
				tl.add("clients: the members are %s", chNames(next))
				continue
			}
			e.mu.Unlock()
		}
	}()
}

func (e *chEndpoints) stop() {
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
	}
}

func (e *chEndpoints) details() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprintf("%d member lists read (%d failed), %d changes", e.syncs, e.failures, len(e.changes))
}

// membershipReport compares, once the cluster has recovered, the member
// list of every current member with the members the harness made: ""
// when they agree, else what differs (a member listed that should not be,
// one missing, a peer URL listed twice).
func (c *chCluster) membershipReport() string {
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	cur := c.current()
	want := map[uint64]string{}
	for _, m := range cur {
		want[m.id] = m.name
	}
	var out []string
	for _, m := range cur {
		list, err := chListMembers(c.asUser(), hc, m)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", m.name, err))
			continue
		}
		seen := map[uint64]bool{}
		urls := map[string]int{}
		for _, mj := range list {
			id, _ := strconv.ParseUint(mj.ID, 16, 64)
			seen[id] = true
			if _, ok := want[id]; !ok {
				out = append(out, fmt.Sprintf("%s lists %s (name %q, peer URLs %v), not a member", m.name, mj.ID, mj.Name, mj.PeerURLs))
			}
			for _, u := range mj.PeerURLs {
				if urls[u]++; urls[u] == 2 {
					out = append(out, fmt.Sprintf("%s lists peer URL %s twice", m.name, u))
				}
			}
		}
		for id, name := range want {
			if !seen[id] {
				out = append(out, fmt.Sprintf("%s does not list %s (%x)", m.name, name, id))
			}
		}
	}
	return strings.Join(out, "; ")
}
