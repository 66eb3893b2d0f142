package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/locks"
	"github.com/cairnkv/cairn/queue"
)

// Auth in the fault mix (-chaos.auth; TestChaosWithAuth): before the
// faults, the root user and a user chaos are created, chaos with a role
// that covers exactly what the workload touches (chAuthPerms), and v2 auth
// is enabled on members started with --auth-guest none, so that a
// request without credentials may do nothing. From then on every client
// of the harness sends HTTP basic credentials: the workload (registers,
// appenders, watchers, lockers, the queue's clients, the member-list
// reader) and the readers of the histories the checkers use as chaos,
// the membership changes as root. The credentials travel in the context
// each request is made with (coAs; coDo and coAuthorize send them): the
// workloads and checkers are the same code with and without auth.
//
// That auth stays enforced is checked by a prober: every second or two
// it sends, to a random running member (a member joining the cluster
// included), requests that auth must refuse: a write without
// credentials, a write by chaos outside its role, a membership change by
// chaos (root only), a write with a wrong password. An answer other than
// 401 is a violation ("auth bypassed"); no answer or a 5xx is no evidence
// either way. After the faults every member must refuse each of them.
// (A member that joins lets requests through for a moment: an open bug,
// see TestChaosBugJoinerIgnoresAuth; the prober hits it only by chance.)
// Last, the members' logs must show no refusal but the prober's: the
// workload, with the right credentials, was never refused (a workload
// refused everything would leave its checks nothing to check).

// chAuthCISeeds are the seeds TestChaosWithAuth runs by default.
var chAuthCISeeds = []uint64{1}

// TestChaosWithAuth is TestChaos with v2 auth on (as -chaos.auth): the
// checkers must find nothing, and auth must refuse every probe during
// and after the faults.
func TestChaosWithAuth(t *testing.T) {
	chRunSeeds(t, chAuthCISeeds, func(o *chOptions) { o.auth = true })
}

// The workload's user and role.
const (
	chAuthUser = "chaos"
	chAuthRole = "chaos"
)

// chAuthPerms are the patterns the workload's role reads and writes:
// what the workload touches, and nothing else. A lock or queue request
// takes the permission of the lock's or queue's hidden directory itself
// (httpapi's coordHandler.allowed: the exact path, not a "dir/*"
// pattern); the recursive reads and watches are sent with a trailing
// slash (chDirURL), which "dir/*" covers.
func chAuthPerms() (read, write []string) {
	lock, q := locks.Dir(chLockName), queue.Dir(chQueueName)
	read = []string{
		chKeysDir + "/*",   // the registers; the watchers and the event history read /chaos/
		chAppendDir + "/*", // the appends' listing
		chLockDir + "/*",   // the lock's register's history
		q,                  // the queue's listing (coFinishQueue)
		q + "/*",           // the queue's and its waiters' histories
		chProbeDir + "/*",  // chProbe
	}
	write = []string{
		chKeysDir + "/*",
		chAppendDir,                // the appends (POST /v2/keys/chaos-appends)
		chLockDir + "/*",           // the fenced writes, and the end mark
		lock,                       // acquire and release
		q,                          // enqueue, dequeue, reserve, acknowledge
		"/" + chQueueName + "-end", // the queue's end mark (coFinishQueue)
		chProbeDir + "/*",
	}
	return read, write
}

// chEnableAuth sets up auth as an operator would, through the members
// (retried while none answers): root, the workload's role and user, then
// enable (guests get nothing: the members run with --auth-guest none).
// It waits until every member enforces it.
func chEnableAuth(t *testing.T, c *chCluster, tl *chTimeline) {
	t.Helper()
	c.auth = chAuth{root: coCreds{"root", "chaos-root-pw"}, user: coCreds{chAuthUser, "chaos-user-pw"}}
	read, write := chAuthPerms()
	hc := coClient(10 * time.Second)
	defer hc.CloseIdleConnections()
	// Root's credentials go with every step: not looked at while auth is
	// off, needed once it is on.
	ctx := c.asRoot()
	for _, step := range []struct {
		path string
		body any
	}{
		{"/v2/auth/users/root", map[string]any{"user": "root", "password": c.auth.root.password}},
		{"/v2/auth/roles/" + chAuthRole, map[string]any{"role": chAuthRole,
			"permissions": map[string]any{"kv": map[string]any{"read": read, "write": write}}}},
		{"/v2/auth/users/" + chAuthUser, map[string]any{"user": chAuthUser, "password": c.auth.user.password, "roles": []string{chAuthRole}}},
		{"/v2/auth/enable", nil},
	} {
		deadline := time.Now().Add(30 * time.Second)
		for i := 0; ; i++ {
			ms := c.current()
			m := ms[i%len(ms)]
			code, body, err := chCall(ctx, hc, http.MethodPut, m.client+step.path, step.body)
			// 409 on a retry: an earlier attempt, answered as failed or
			// not at all, was applied (what it did is checked below).
			if err == nil && (code/100 == 2 || i > 0 && code == http.StatusConflict) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("chaos: setting up auth: PUT %s through %s: %d %s %v", step.path, m.name, code, body, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range c.current() {
		for {
			err := chAuthEnforced(c, hc, m, read, write)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("chaos: auth enabled, but %s does not enforce it as set up: %v", m.name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	tl.add("auth enabled: users root and %s (role %s: read %v, write %v), guests nothing; every member enforces it",
		chAuthUser, chAuthRole, read, write)
}

// chAuthEnforced checks that m has applied the auth set-up: enabled, the
// guest role empty, the user with exactly its role's permissions, the
// user let in where the role allows, and every probe refused.
func chAuthEnforced(c *chCluster, hc *http.Client, m *chMember, read, write []string) error {
	type role struct {
		Role        string `json:"role"`
		Permissions struct {
			KV struct {
				Read  []string `json:"read"`
				Write []string `json:"write"`
			} `json:"kv"`
		} `json:"permissions"`
	}
	get := func(path string, v any) error {
		code, body, err := chCall(c.asRoot(), hc, http.MethodGet, m.client+path, nil)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%d %.200s", code, body)
		}
		if err == nil {
			err = json.Unmarshal([]byte(body), v)
		}
		if err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		return nil
	}
	var enabled struct {
		Enabled bool `json:"enabled"`
	}
	if err := get("/v2/auth/enable", &enabled); err != nil {
		return err
	}
	if !enabled.Enabled {
		return errors.New("auth not enabled")
	}
	var guest role
	if err := get("/v2/auth/roles/guest", &guest); err != nil {
		return err
	}
	if len(guest.Permissions.KV.Read)+len(guest.Permissions.KV.Write) > 0 {
		return fmt.Errorf("the guest role has %+v", guest.Permissions.KV)
	}
	var user struct {
		Roles []role `json:"roles"`
	}
	if err := get("/v2/auth/users/"+chAuthUser, &user); err != nil {
		return err
	}
	if len(user.Roles) != 1 || user.Roles[0].Role != chAuthRole ||
		!slices.Equal(user.Roles[0].Permissions.KV.Read, read) || !slices.Equal(user.Roles[0].Permissions.KV.Write, write) {
		return fmt.Errorf("user %s has roles %+v", chAuthUser, user.Roles)
	}
	if err := chProbe(c.asUser(), hc, m); err != nil {
		return fmt.Errorf("user %s: %w", chAuthUser, err)
	}
	for _, p := range chAuthProbes(c.auth) {
		if out, detail := p.send(context.Background(), hc, m); out != chProbeRefused {
			return fmt.Errorf("%s: %s", p.what, detail)
		}
	}
	return nil
}

// chAuthProbe is a request auth must refuse.
type chAuthProbe struct {
	what         string
	method, path string
	creds        coCreds
	form         url.Values
}

// chAuthProbes are the prober's requests. The key written without
// credentials, or with a wrong password, is one chaos may write.
func chAuthProbes(a chAuth) []chAuthProbe {
	value := url.Values{"value": {"probe"}}
	return []chAuthProbe{
		{"write without credentials", http.MethodPut, "/v2/keys" + chProbeDir + "/guest", coCreds{}, value},
		{"write outside the role", http.MethodPut, "/v2/keys/chaos-forbidden/x", a.user, value},
		{"membership change by a user without the root role", http.MethodDelete, "/v2/members/1", a.user, nil},
		{"write with a wrong password", http.MethodPut, "/v2/keys" + chProbeDir + "/wrong-password",
			coCreds{a.user.user, "not-" + a.user.password}, value},
	}
}

// logged is how a member logs the probe's refusal: user, method and
// resource.
func (p chAuthProbe) logged() string {
	user := p.creds.user
	if user == "" {
		user = "(guest)"
	}
	resource := p.path
	if k, ok := strings.CutPrefix(p.path, "/v2/keys"); ok {
		resource = k
	}
	return user + " " + p.method + " " + resource
}

type chProbeOutcome int

const (
	chProbeNoEvidence chProbeOutcome = iota // no answer, or a 5xx
	chProbeRefused                          // 401
	chProbeBypassed                         // anything else: auth let it through
)

// send sends the probe to m.
func (p chAuthProbe) send(ctx context.Context, hc *http.Client, m *chMember) (chProbeOutcome, string) {
	res := coDo(coAs(ctx, p.creds), hc, p.method, m.client+p.path, p.form)
	detail := fmt.Sprintf("%s %s at %s: %s", p.method, p.path, m.name, res)
	switch {
	case res.err != nil || res.code >= 500:
		return chProbeNoEvidence, detail
	case res.code == http.StatusUnauthorized:
		return chProbeRefused, detail
	}
	return chProbeBypassed, detail
}

// chAuthProber probes auth during a run (chStartAuthProber) and after
// it (sweep). Without auth it does nothing and says nothing.
type chAuthProber struct {
	c      *chCluster
	tl     *chTimeline
	probes []chAuthProbe
	first  int // members with an idx from first on joined during the run
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	refused  map[string]int // by probe
	noAnswer map[string]int // by probe: no evidence
	bypasses []string
	swept    []string // the members that refused every probe after the faults
}

// chStartAuthProber starts probing random running members, every one
// to two seconds, until stop.
func chStartAuthProber(c *chCluster, seed uint64, tl *chTimeline) *chAuthProber {
	p := &chAuthProber{c: c, tl: tl, refused: map[string]int{}, noAnswer: map[string]int{}, done: make(chan struct{}),
		first: len(c.everyMember())}
	if c.auth.user.user == "" {
		close(p.done)
		return p
	}
	p.probes = chAuthProbes(c.auth)
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		defer close(p.done)
		rng := rand.New(rand.NewPCG(seed, 0x61757468))
		hc := coClient(3 * time.Second)
		defer hc.CloseIdleConnections()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second + time.Duration(rng.Int64N(int64(time.Second)))):
			}
			var up []*chMember // every member process that runs: one joining, or removed, too
			for _, m := range c.everyMember() {
				if m.running() {
					up = append(up, m)
				}
			}
			if len(up) == 0 {
				continue
			}
			m := up[rng.IntN(len(up))]
			for _, pr := range p.probes {
				out, detail := pr.send(ctx, hc, m)
				if ctx.Err() != nil {
					return
				}
				p.record(pr, m, out, detail)
			}
		}
	}()
	return p
}

func (p *chAuthProber) enabled() bool { return p.probes != nil }

func (p *chAuthProber) record(pr chAuthProbe, m *chMember, out chProbeOutcome, detail string) {
	if out == chProbeBypassed && m.idx >= p.first {
		detail += fmt.Sprintf(" (%s joined the cluster during the run: a joining member serves requests before it has applied the auth state, see TestChaosBugJoinerIgnoresAuth)", m.name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch out {
	case chProbeRefused:
		p.refused[pr.what]++
	case chProbeNoEvidence:
		p.noAnswer[pr.what]++
	case chProbeBypassed:
		p.bypasses = append(p.bypasses, pr.what+": "+detail)
		p.tl.add("AUTH BYPASSED: %s: %s", pr.what, detail)
	}
}

// stop ends the probing and waits for it.
func (p *chAuthProber) stop() {
	p.once.Do(func() {
		if p.cancel != nil {
			p.cancel()
		}
	})
	<-p.done
}

// sweep sends every probe to every current member, each until it is
// answered (or within passes: then an error).
func (p *chAuthProber) sweep(c *chCluster, within time.Duration) error {
	if !p.enabled() {
		return nil
	}
	hc := coClient(3 * time.Second)
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(within)
	var errs []error
	for _, m := range c.current() {
		all := true
		for _, pr := range p.probes {
			for {
				out, detail := pr.send(context.Background(), hc, m)
				if out != chProbeNoEvidence {
					p.record(pr, m, out, detail)
					all = all && out == chProbeRefused
					break
				}
				if time.Now().After(deadline) {
					errs = append(errs, fmt.Errorf("auth not probed on %s after the faults: %s: %s", m.name, pr.what, detail))
					all = false
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		if all {
			p.mu.Lock()
			p.swept = append(p.swept, m.name)
			p.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

// bypassed lists the probes auth let through.
func (p *chAuthProber) bypassed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.bypasses)
}

// summary is the summary line's part about auth ("" without auth).
func (p *chAuthProber) summary() string {
	if !p.enabled() {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, k := range p.refused {
		n += k
	}
	verdict := "ok"
	switch {
	case len(p.bypasses) > 0:
		verdict = fmt.Sprintf("BAD(%d)", len(p.bypasses))
	case n == 0:
		verdict = "unchecked"
	}
	return fmt.Sprintf(" auth=%d refused %s", n, verdict)
}

// details says, per probe, how often it was refused and unanswered.
func (p *chAuthProber) details() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for _, pr := range p.probes {
		parts = append(parts, fmt.Sprintf("%s: %d refused, %d no answer", pr.what, p.refused[pr.what], p.noAnswer[pr.what]))
	}
	return fmt.Sprintf("%s; %d bypassed; after the faults every probe refused by %v",
		strings.Join(parts, "; "), len(p.bypasses), p.swept)
}

// evidence is what a failed run keeps of the probing.
func (p *chAuthProber) evidence() map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return map[string]any{"refused": p.refused, "noAnswer": p.noAnswer, "bypassed": p.bypasses, "sweptMembers": p.swept}
}

// othersRefused reads every member's log for the requests auth refused
// ("auth: request refused", at most five a second are logged) and
// returns how many were not the prober's, with a few of them.
func (p *chAuthProber) othersRefused(c *chCluster) (int, []string) {
	if !p.enabled() {
		return 0, nil
	}
	probes := map[string]bool{}
	for _, pr := range p.probes {
		probes[pr.logged()] = true
	}
	n := 0
	var eg []string
	for _, m := range c.everyMember() {
		f, err := os.Open(m.log)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, "auth: request refused") {
				continue
			}
			var l struct{ User, Method, Resource string }
			if json.Unmarshal([]byte(line), &l) == nil && probes[l.User+" "+l.Method+" "+l.Resource] {
				continue
			}
			n++
			if len(eg) < 5 {
				eg = append(eg, m.name+": "+line)
			}
		}
		f.Close()
	}
	return n, eg
}

// A bug the prober found (a write without credentials acknowledged
// by a member that had just joined, in a run with a broken role that let
// an append through the same way): a member that joins the cluster
// serves client requests from the moment it listens, and checks them
// against its own auth state, which is empty (auth off) until it has
// applied the log up to the auth set-up. A request it accepts then waits
// for a leader and is proposed: a write without credentials, or outside
// the user's role, is committed although auth is on. etcd does not serve
// clients before its member has published itself (which it applies after
// everything before its join). The chaos prober hits this window only by
// chance (a probe round every 1-2 s, the window well under a second);
// here requests without credentials, and the other probes, are sent
// every few milliseconds to a member from before it starts until it is
// promoted: every one must be refused or fail. It failed every time until
// members refused client requests before applying their own addition
// (httpapi's joinedOnly).
func TestChaosBugJoinerIgnoresAuth(t *testing.T) {
	c := chStartCluster(t, 3, nil, []string{"--auth-guest", "none"})
	tl := &chTimeline{start: time.Now()}
	chEnableAuth(t, c, tl)
	m, err := c.newMember()
	if err != nil {
		t.Fatal(err)
	}
	c.pending = m // addMember adds it
	ctx, cancel := context.WithCancel(context.Background())
	var bypasses []string
	sent := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		hc := coClient(time.Second)
		defer hc.CloseIdleConnections()
		probes := chAuthProbes(c.auth)
		for ctx.Err() == nil {
			p := probes[sent%len(probes)]
			sent++
			if out, detail := p.send(ctx, hc, m); out == chProbeBypassed && ctx.Err() == nil {
				tl.add("bypassed: %s: %s", p.what, detail)
				bypasses = append(bypasses, p.what+": "+detail)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	if _, err := c.addMember(tl, 30*time.Second); err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	promoted := c.waitPromoted(m, 20*time.Second)
	cancel()
	<-done
	if !promoted {
		t.Fatalf("%s not promoted within 20 s", m.name)
	}
	if len(bypasses) > 0 {
		t.Fatalf("%s, joining a cluster with auth on, let %d of %d requests through that auth refuses:\n%s",
			m.name, len(bypasses), sent, strings.Join(tl.all(), "\n"))
	}
	t.Logf("%s refused all %d requests while it joined", m.name, sent)
}
