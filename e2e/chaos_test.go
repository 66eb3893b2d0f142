package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Chaos: member processes behind fault proxies, concurrent clients doing
// register operations on a few keys, faults chosen from a seed (kill -9
// and restart, SIGSTOP and SIGCONT, partitions of several shapes, a slow
// disk under the leader, a member removed and a fresh one added, alone or
// during another fault), and porcupine checking that the history is
// linearizable. Besides, appenders POST in-order keys (chaosappend_test.go:
// each acknowledged append is there once, in an order that agrees with
// real time) and watchers follow the keys with waitIndex, reconnecting to
// random members (chaoswatch_test.go: each saw exactly the committed
// history), lockers cycle on a lock with fenced writes and a queue is
// fed, consumed and drained (chaoscoord_test.go: mutual exclusion,
// fencing, every acknowledged item delivered once, FIFO). The clients
// learn the members from /v2/members.
//
// Each run prints a summary line:
//
//	chaos seed=1 duration=28.1s ops=16408 unknown=57 faults={kill-leader:1 ... member-change:1} appends=3255 ok watchers=3 events=17247 ok grants=583 ok items=3089/3089 ok violations=0
//
// where violations counts the keys porcupine rejects and the violations
// of the append, watch, lock and queue checks (items is delivered/
// acknowledged). With auth on (chaosauth_test.go), the line also says
// how many requests auth refused to a prober (auth=N refused ok), and
// violations counts the ones it let through.
//
//	go test -run 'TestChaos$' -v ./e2e                          # CI: a few fixed seeds
//	go test -run 'TestChaos$' -v ./e2e -chaos.seed=7            # one seed (the fault schedule; timing varies)
//	go test -run 'TestChaos$' -v -timeout 0 ./e2e -chaos.soak=1h -chaos.out=/tmp/chaos
//	go test -run 'TestChaosWithAuth$' -v ./e2e                  # the same with v2 auth on (or -chaos.auth)
//
// A seed fixes the schedule (which fault, on which members, for how long)
// and every client's choices; the interleaving of real processes does not
// repeat exactly.

var (
	chSeedFlag     = flag.Uint64("chaos.seed", 0, "chaos: run this seed only (0: the CI seeds, or random seeds with -chaos.soak)")
	chDurationFlag = flag.Duration("chaos.duration", 0, "chaos: how long faults are injected per run (0: 25s, or 60s with -chaos.soak)")
	chSoakFlag     = flag.Duration("chaos.soak", 0, "chaos: run seeds one after another for this long, stopping at a violation")
	chOutFlag      = flag.String("chaos.out", "", "chaos: where evidence of a violation is written (default: a new directory under $TMPDIR)")
	chMembersFlag  = flag.Int("chaos.members", 3, "chaos: members per cluster")
	chClientsFlag  = flag.Int("chaos.clients", 12, "chaos: concurrent clients")
	chAppendFlag   = flag.Int("chaos.appenders", 3, "chaos: clients doing in-order appends")
	chWatchFlag    = flag.Int("chaos.watchers", 3, "chaos: watchers following the keys with waitIndex")
	chLockersFlag  = flag.Int("chaos.lockers", 4, "chaos: clients cycling on a lock with fenced writes")
	chQueueFlag    = flag.Int("chaos.producers", 2, "chaos: queue producers (as many blocking dequeuers, and a reserver)")
	chKeepFlag     = flag.Bool("chaos.keep", false, "chaos: write the evidence of every run, not only of runs that failed")
	chAuthFlag     = flag.Bool("chaos.auth", false, "chaos: enable v2 auth before the faults: every client sends credentials, guests get nothing, and a prober checks that auth stays enforced")
)

// chCISeeds are the seeds TestChaos runs by default.
var chCISeeds = []uint64{1, 2, 3}

const (
	chKeysDir  = "/chaos"      // the registers (/chaos/k0, ...), which the watchers follow
	chProbeDir = "/chaosprobe" // chProbe's keys, one per member
)

// chFault is a kind of fault.
type chFault string

const (
	chKillLeader chFault = "kill-leader" // SIGKILL the leader; restart it at the heal
	chKill       chFault = "kill"        // SIGKILL a random member; restart it at the heal
	chPause      chFault = "pause"       // SIGSTOP a random member; SIGCONT at the heal
	chPartition  chFault = "partition"   // a minority cut off from the majority, both ways
	chBridge     chFault = "bridge"      // two groups cut from each other, both reaching a bridge member
	chOneWay     chFault = "one-way"     // requests from A to B cut, B to A flowing
	chSlowDisk   chFault = "slow-disk"   // the leader's WAL fsyncs stall (300 ms to 1.5 s each)
	// chMemberChange removes a random member and adds a fresh one, half
	// the time during another fault.
	chMemberChange chFault = "member-change"
)

var chAllFaults = []chFault{chKillLeader, chKill, chPause, chPartition, chBridge, chOneWay, chSlowDisk, chMemberChange}

// chOptions configures a run.
type chOptions struct {
	seed     uint64
	duration time.Duration // how long faults are injected
	members  int
	clients  int
	keys     int
	env      []string // for every member
	mix      []chFault
	readFrac float64
	// appenders do in-order appends (POST) to chAppendDir; watchers
	// follow /chaos with waitIndex; lockers cycle on a lock, producers
	// feed a queue (chaoscoord_test.go).
	appenders, watchers, lockers, producers int
	// leaderBias is the probability that a partition or a one-way cut is
	// aimed at the leader (cut off, or cut from B); targetFrac is the
	// probability that a read goes to the member a fault isolates.
	leaderBias, targetFrac float64
	// auth: v2 auth is enabled before the faults, and the clients send
	// credentials (chaosauth_test.go).
	auth bool
	// expectKeys, expectLocks: keys that are not linearizable, or
	// violations of mutual exclusion, are the expected result (evidence
	// is still written, and the test does not fail for them).
	expectKeys, expectLocks bool
}

func chDefaults(seed uint64, duration time.Duration) chOptions {
	return chOptions{seed: seed, duration: duration, members: *chMembersFlag, clients: *chClientsFlag,
		keys: 5, mix: chAllFaults, readFrac: 0.5, leaderBias: 0.5, targetFrac: 0,
		appenders: *chAppendFlag, watchers: *chWatchFlag, lockers: *chLockersFlag, producers: *chQueueFlag, auth: *chAuthFlag}
}

// chResult sums up a run.
type chResult struct {
	ops, unknown, violations int // violations: of every check
	keyViolations            int // keys porcupine found not linearizable
	appendViolations         int
	watchViolations          int
	lockViolations           int // of mutual exclusion, fencing or the protocol
	queueViolations          int
	authViolations           int // requests auth should have refused that it let through
	inconclusive             int // keys the checker could not decide in time
	faults                   map[chFault]int
	summary, evidence        string
	elapsed                  time.Duration
}

// chTimeline logs what the schedule did, relative to the run's start.
type chTimeline struct {
	start time.Time
	mu    sync.Mutex
	lines []string
}

func (tl *chTimeline) add(format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.lines = append(tl.lines, fmt.Sprintf("t=%7.3fs ", time.Since(tl.start).Seconds())+fmt.Sprintf(format, args...))
}

func (tl *chTimeline) all() []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]string(nil), tl.lines...)
}

// chRun starts a cluster, runs the workload and the fault schedule, heals,
// checks the history and reports. It fails t on a violation unless one is
// expected, and on anything that keeps the check from being meaningful.
func chRun(t *testing.T, o chOptions) chResult {
	t.Helper()
	if o.members < 3 {
		t.Fatalf("chaos: %d members; the faults need at least 3", o.members)
	}
	extra := []string{"--event-history", "1000000"}
	if o.auth {
		extra = append(extra, "--auth-guest", "none") // once auth is on, a request without credentials may do nothing
	}
	c := chStartCluster(t, o.members, o.env, extra)
	sched := rand.New(rand.NewPCG(o.seed, 0x6368616f73)) // the fault schedule
	start := time.Now()
	tl := &chTimeline{start: start}
	tl.add("cluster %s; seed %d", c.initial, o.seed)
	if o.auth {
		chEnableAuth(t, c, tl)
	}
	// Every client of the workload sends its requests with ctx, which
	// carries the workload's credentials (none when auth is off).
	ctx := c.asUser()

	var keys []string
	for i := range o.keys {
		keys = append(keys, fmt.Sprintf("%s/k%d", chKeysDir, i))
	}
	target := &atomic.Int64{}
	target.Store(-1)
	// The clients learn the members from /v2/members.
	eps := chNewEndpoints(c, o.seed)
	load := chNewLoad(chLoadConfig{clients: o.clients, keys: keys, readFrac: o.readFrac,
		timeout: time.Second, target: target, targetFrac: o.targetFrac}, eps.get, start, o.seed)
	chInitKeys(t, c, load, keys)
	appends := chNewAppends(o.appenders, eps.get, start, o.seed, time.Second)
	watchers := chNewWatchers(o.watchers, chKeysDir, eps.get, o.seed)
	tl.add("keys created; workload starts (%d clients, %d appenders, %d watchers, %d lockers, %d producers)",
		o.clients, o.appenders, o.watchers, o.lockers, o.producers)
	eps.run(ctx, tl)
	load.run(ctx)
	appends.run(ctx)
	watchers.run(ctx)
	coord := chStartCoord(t, ctx, o.lockers, o.producers, eps.get)
	prober := chStartAuthProber(c, o.seed, tl) // does nothing without auth
	t.Cleanup(prober.stop)
	t.Cleanup(coord.stop)
	t.Cleanup(eps.stop)
	t.Cleanup(load.stop)
	t.Cleanup(appends.stop)
	t.Cleanup(watchers.stop)

	faults := map[chFault]int{}
	faultStart := time.Now()
	var deck []chFault // the mix, shuffled; dealt until empty, then shuffled again
	for time.Since(faultStart) < o.duration {
		if len(deck) == 0 {
			for _, i := range sched.Perm(len(o.mix)) {
				deck = append(deck, o.mix[i])
			}
		}
		f := deck[0]
		deck = deck[1:]
		hold := time.Second + time.Duration(sched.Int64N(int64(2*time.Second)))
		heal := chInject(c, sched, tl, f, o, target)
		faults[f]++
		time.Sleep(hold)
		heal()
		target.Store(-1)
		time.Sleep(time.Second) // settle
	}
	c.healAll()
	tl.add("faults over; everything healed")
	faultTime := time.Since(faultStart)
	err := chWaitRecovered(c, tl, 60*time.Second)
	if err == nil && len(c.current()) < o.members {
		// A member-change could not add its member: the cluster is made
		// whole again.
		for len(c.current()) < o.members {
			if _, err := c.addMember(tl, 30*time.Second); err != nil {
				t.Logf("chaos seed=%d: %d members at the end; adding one failed: %v", o.seed, len(c.current()), err)
				break
			}
		}
		err = chWaitRecovered(c, tl, 60*time.Second)
	}
	if err != nil {
		t.Errorf("chaos seed=%d: the cluster did not recover within 60 s of the faults being healed: %v", o.seed, err)
		for _, m := range c.current() {
			t.Logf("log of %s:\n%s", m.name, chTail(m.log, 20))
		}
		tl.add("the cluster did not recover: %v", err)
	} else {
		tl.add("cluster answers on every member (%s)", chNames(c.current()))
	}
	if rep := c.membershipReport(); rep != "" {
		// Not a violation of what is checked; worth a look.
		tl.add("membership anomaly: %s", rep)
		t.Logf("chaos seed=%d: membership anomaly after the recovery: %s", o.seed, rep)
	}
	for _, m := range c.lingering() {
		if !c.waitExit(m, 20*time.Second) {
			t.Errorf("chaos seed=%d: %s was removed from the cluster but still runs, 20 s after everything was healed:\n%s",
				o.seed, m.name, chTail(m.log, 10))
			tl.add("%s, removed, still runs; killed", m.name)
			c.kill(m)
		}
	}
	// Auth, after the faults as during them: every member refuses what
	// the prober sends.
	prober.stop()
	if err := prober.sweep(c, 30*time.Second); err != nil {
		t.Errorf("chaos seed=%d: %v", o.seed, err)
	}
	if prober.enabled() {
		tl.add("auth probed (%s)", prober.details())
	}
	load.stop()
	appends.stop()
	tl.add("workload stopped")
	// The lockers finish their cycles, the queue is drained; both are
	// checked against the cluster's history.
	ccheck, cerrs := coord.finish(c, 60*time.Second)
	for _, err := range cerrs {
		t.Errorf("chaos seed=%d: %v", o.seed, err)
	}
	for _, v := range ccheck.coverage {
		t.Errorf("chaos seed=%d: the lock run exercised too little: %s", o.seed, v)
	}
	tl.add("locks and queue checked")
	if u := c.unexpectedExits(); len(u) > 0 {
		t.Errorf("chaos seed=%d: members exited by themselves: %s", o.seed, strings.Join(u, "; "))
	}
	raw := load.history()
	history, last, evErr := chEvents(c, chKeysDir, 60*time.Second)
	if evErr != nil {
		t.Logf("chaos seed=%d: event history not read (%v): unknown outcomes stay unknown", o.seed, evErr)
	}
	checked, res := chResolve(raw, chEventSet(history, evErr))

	// The watchers catch up with the history, and are compared with it.
	watchers.finish(last, 60*time.Second)
	eps.stop()
	var wcheck chWatchCheck
	if evErr == nil {
		wcheck = chCheckWatchers(watchers.ws, history, chKeysDir, last)
	} else if o.watchers > 0 {
		t.Errorf("chaos seed=%d: the watchers cannot be checked without the event history: %v", o.seed, evErr)
	}
	tl.add("watchers stopped (%s)", wcheck.summary())

	// The appends, read back from a member (sorted, linearizable).
	aops := appends.history()
	var acheck chAppendCheck
	listing, lerr := chReadDir(c, chAppendDir, 60*time.Second)
	if lerr == nil {
		acheck = chCheckAppends(aops, listing)
	} else if o.appenders > 0 {
		t.Errorf("chaos seed=%d: the appends cannot be checked: reading %s: %v", o.seed, chAppendDir, lerr)
	}

	checkStart := time.Now()
	checks := chCheck(checked, 2*time.Minute)
	checkTime := time.Since(checkStart)

	r := chResult{ops: len(raw), unknown: load.unknown, faults: faults, elapsed: time.Since(start)}
	var bad []string
	for _, k := range checks {
		switch k.result {
		case porcupine.Illegal:
			r.keyViolations++
			bad = append(bad, k.key)
		case porcupine.Unknown:
			r.inconclusive++
		}
	}
	r.appendViolations = len(acheck.violations)
	r.watchViolations = len(wcheck.violations)
	r.lockViolations = ccheck.lockViolations
	r.queueViolations = ccheck.queueViolations
	r.authViolations = len(prober.bypassed())
	r.violations = r.keyViolations + r.appendViolations + r.watchViolations + r.lockViolations + r.queueViolations + r.authViolations
	// With auth on, the members refused nobody but the prober: the
	// workload's role covers what it does (else its checks would pass
	// on requests that were all refused).
	if n, eg := prober.othersRefused(c); n > 0 {
		t.Errorf("chaos seed=%d: with auth on, the members refused %d requests that were not the prober's, e.g.\n  %s",
			o.seed, n, strings.Join(eg, "\n  "))
	}
	var fs []string
	for _, f := range chAllFaults {
		fs = append(fs, fmt.Sprintf("%s:%d", f, faults[f]))
	}
	verdict := func(checked bool, n int) string {
		switch {
		case !checked:
			return "unchecked"
		case n > 0:
			return fmt.Sprintf("BAD(%d)", n)
		}
		return "ok"
	}
	r.summary = fmt.Sprintf("chaos seed=%d duration=%s ops=%d unknown=%d faults={%s} appends=%d %s watchers=%d events=%d %s %s%s violations=%d",
		o.seed, faultTime.Round(100*time.Millisecond), r.ops, r.unknown, strings.Join(fs, " "),
		acheck.acked, verdict(lerr == nil, r.appendViolations), len(watchers.ws), wcheck.events,
		verdict(evErr == nil, r.watchViolations), coord.summary(ccheck), prober.summary(), r.violations)
	t.Log(r.summary)
	t.Logf("chaos seed=%d details: ok: %d reads, %d writes, %d cas (and %d cas compare failed); "+
		"unknown outcomes: %d in the event history, %d not (left out), %d unresolved; "+
		"%d reads failed (left out); %d writes refused before sending; proxies %s; check %v; run %v",
		o.seed, load.counts.readOK, load.counts.writeOK, load.counts.casOK, load.counts.casFailed,
		res.applied, res.dropped, res.unresolved, load.readErrs, load.refused, c.net.counters(),
		checkTime.Round(time.Millisecond), r.elapsed.Round(time.Second))
	t.Logf("chaos seed=%d appends: %s", o.seed, acheck.details())
	t.Logf("chaos seed=%d watchers: %s", o.seed, watchers.details(last))
	t.Logf("chaos seed=%d clients' member lists: %s", o.seed, eps.details())
	if prober.enabled() {
		t.Logf("chaos seed=%d auth probes: %s", o.seed, prober.details())
	}
	t.Logf("chaos seed=%d members at the end: %s (of %d started); fault timeline:\n%s",
		o.seed, chNames(c.current()), len(c.everyMember()), strings.Join(tl.all(), "\n"))
	for _, u := range append(load.unexpected, appends.unexpected...) {
		t.Logf("chaos seed=%d: unexpected answer: %s", o.seed, u)
	}
	for _, v := range acheck.violations {
		t.Logf("chaos seed=%d: append violation: %s", o.seed, v)
	}
	for _, v := range wcheck.violations {
		t.Logf("chaos seed=%d: watch violation: %s", o.seed, v)
	}
	for _, v := range prober.bypassed() {
		t.Logf("chaos seed=%d: auth bypassed: %s", o.seed, v)
	}
	for _, s := range append(ccheck.lock.summary, ccheck.queue.summary...) {
		t.Logf("chaos seed=%d locks and queue: %s", o.seed, s)
	}
	for i, v := range ccheck.lock.violations {
		if i == 20 {
			t.Logf("chaos seed=%d: ... %d lock violations in all: %v", o.seed, len(ccheck.lock.violations), coCountViolations(ccheck.lock.violations))
			break
		}
		t.Logf("chaos seed=%d: lock violation: %s", o.seed, v)
	}
	for i, v := range ccheck.queue.violations {
		if i == 20 {
			t.Logf("chaos seed=%d: ... %d queue violations in all", o.seed, len(ccheck.queue.violations))
			break
		}
		t.Logf("chaos seed=%d: queue violation: %s", o.seed, v)
	}
	expected := 0
	if o.expectKeys {
		expected += r.keyViolations
	}
	if o.expectLocks {
		expected += len(ccheck.lock.of(coExclusion))
	}
	unexpected := r.violations - expected
	if r.violations > 0 || r.inconclusive > 0 || t.Failed() || *chKeepFlag {
		scratch := (o.expectKeys || o.expectLocks) && r.inconclusive == 0 && !t.Failed() && unexpected == 0
		extra := map[string]any{
			"appends.json":       map[string]any{"ops": aops, "listing": listing, "violations": acheck.violations},
			"watchers.json":      map[string]any{"watchers": watchers.ws, "violations": wcheck.violations},
			"event-history.json": map[string]any{"last": last, "events": history},
		}
		maps.Copy(extra, coord.evidence(ccheck))
		if prober.enabled() {
			extra["auth.json"] = prober.evidence()
		}
		dir, err := chEvidence(t, scratch, o.seed, raw, checked, tl.all(), checks, c, extra)
		if scratch && *chOutFlag == "" {
			dir += " (removed when the test ends; -chaos.out keeps it)"
		}
		r.evidence = dir
		if err != nil {
			t.Errorf("chaos seed=%d: writing evidence to %s: %v", o.seed, dir, err)
		}
		var htmls []string
		for _, k := range checks {
			if k.html != "" {
				htmls = append(htmls, k.html)
			}
		}
		msg := fmt.Sprintf("chaos seed=%d: %d keys not linearizable %v, %d undecided, %d append violations, %d watch violations, %d lock violations, %d queue violations, %d auth bypasses; evidence in %s (%s)",
			o.seed, r.keyViolations, bad, r.inconclusive, r.appendViolations, r.watchViolations, r.lockViolations, r.queueViolations, r.authViolations, dir, strings.Join(htmls, " "))
		for _, k := range bad {
			if w := chStaleWitness(checked, k); w != "" {
				msg += "\n  e.g. " + w
			}
		}
		others := append(append(append(slices.Clone(acheck.violations), wcheck.violations...), ccheck.queue.violations...), prober.bypassed()...)
		for _, v := range ccheck.lock.violations {
			others = append(others, v.String())
		}
		for _, v := range others[:min(8, len(others))] {
			msg += "\n  " + v
		}
		switch {
		case r.inconclusive > 0:
			t.Errorf("%s: the checker ran out of time", msg)
		case (o.expectKeys || o.expectLocks) && unexpected == 0:
			t.Log(msg)
		case r.violations > 0:
			t.Errorf("%s\nfault timeline:\n%s", msg, strings.Join(tl.all(), "\n"))
		default:
			t.Logf("%s", msg)
		}
	}
	return r
}

// chInitKeys creates every key with the value "init" (prevExist=false, so
// that a retried create cannot overwrite anything) and records each as a
// write from its first attempt to its success.
func chInitKeys(t *testing.T, c *chCluster, l *chLoad, keys []string) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	for i, k := range keys {
		op := chOp{Process: int(l.procs.Add(1) - 1), Input: chInput{Op: "write", Key: k, Value: "init"},
			Output: chOutput{Outcome: chOK}, Call: l.now(), Meta: chMeta{Member: "init", Client: -1}}
		deadline := time.Now().Add(30 * time.Second)
		for attempt := 0; ; attempt++ {
			ms := c.current()
			m := ms[(i+attempt)%len(ms)]
			form := url.Values{"value": {"init"}, "prevExist": {"false"}}
			req, _ := http.NewRequestWithContext(c.asUser(), http.MethodPut, m.client+"/v2/keys"+k, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			coAuthorize(req)
			resp, err := hc.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var ev chEvent
				_ = json.Unmarshal(body, &ev)
				if resp.StatusCode == http.StatusCreated || (resp.StatusCode == http.StatusPreconditionFailed && ev.ErrorCode == 105) {
					break // created now, or by an earlier attempt
				}
				err = fmt.Errorf("%d %s", resp.StatusCode, body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("chaos: creating %s: %v", k, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		op.Return = l.now()
		l.record(op)
	}
}

// chInject starts a fault and returns what heals it. Members are drawn
// by their position in the current membership; the network knows them by
// idx.
func chInject(c *chCluster, rng *rand.Rand, tl *chTimeline, f chFault, o chOptions, target *atomic.Int64) (heal func()) {
	c.reap(tl)
	ms := c.current()
	n := len(ms)
	pick := func() *chMember { return ms[rng.IntN(n)] }
	// The leader's position, asked only when the schedule wants it (the
	// schedule's draws do not depend on the answer).
	aimAtLeader := func() int {
		if rng.Float64() >= o.leaderBias {
			return -1
		}
		ld := c.leader(time.Second)
		if ld == nil {
			return -1
		}
		tl.add("aiming at the leader, %s", ld.name)
		return slices.Index(ms, ld)
	}
	mode := chRefuse
	if rng.IntN(2) == 1 {
		mode = chBlackhole
	}
	if ld := c.leader(0); ld != nil {
		tl.add("%s starts; %s leads; members %s", f, ld.name, chNames(ms))
	} else {
		tl.add("%s starts; no leader known; members %s", f, chNames(ms))
	}
	if n < 3 && (f == chPartition || f == chBridge) {
		// A member-change could not add its member yet.
		tl.add("%s: only %d members; skipped", f, n)
		return func() {}
	}
	switch f {
	case chKillLeader, chKill:
		m := pick()
		what := "random member"
		if f == chKillLeader {
			if ld := c.leader(2 * time.Second); ld != nil {
				m, what = ld, "leader"
			} else {
				what = "random member (no leader found)"
			}
		}
		c.kill(m)
		tl.add("%s: SIGKILL %s, the %s", f, m.name, what)
		return func() {
			c.start(m)
			tl.add("heal: restarted %s", m.name)
		}
	case chPause:
		m := pick()
		if !c.pause(m) {
			tl.add("pause: %s is not running; nothing stopped", m.name)
			return func() {}
		}
		tl.add("pause: SIGSTOP %s", m.name)
		return func() {
			c.resume(m)
			tl.add("heal: SIGCONT %s", m.name)
		}
	case chPartition:
		perm := rng.Perm(n)
		minority := perm[:(n-1)/2]
		if ld := aimAtLeader(); ld >= 0 && !slices.Contains(minority, ld) {
			minority[0] = ld
		}
		var pairs []chPair
		for a := range n {
			for b := range n {
				if slices.Contains(minority, a) != slices.Contains(minority, b) {
					pairs = append(pairs, chPair{ms[a].idx, ms[b].idx})
				}
			}
		}
		cut := c.net.block(mode, pairs...)
		target.Store(int64(ms[minority[0]].idx))
		tl.add("partition (%s): %s | rest; %d requests in flight cut", mode, chNames(chAt(ms, minority)), cut)
		return func() {
			c.net.heal()
			tl.add("heal: partition lifted")
		}
	case chBridge:
		perm := rng.Perm(n)
		bridge, rest := perm[0], perm[1:]
		split := 1 + rng.IntN(len(rest)-1)
		x, y := rest[:split], rest[split:]
		var pairs []chPair
		for _, a := range x {
			for _, b := range y {
				pairs = append(pairs, chPair{ms[a].idx, ms[b].idx}, chPair{ms[b].idx, ms[a].idx})
			}
		}
		cut := c.net.block(mode, pairs...)
		tl.add("bridge (%s): %s | %s cut from each other, both reach %s; %d requests in flight cut",
			mode, chNames(chAt(ms, x)), chNames(chAt(ms, y)), ms[bridge].name, cut)
		return func() {
			c.net.heal()
			tl.add("heal: bridge lifted")
		}
	case chOneWay:
		perm := rng.Perm(n)
		a, b := perm[0], perm[1]
		if ld := aimAtLeader(); ld >= 0 {
			a = ld
			if b == a {
				b = perm[0]
			}
		}
		cut := c.net.block(mode, chPair{ms[a].idx, ms[b].idx})
		target.Store(int64(ms[b].idx))
		tl.add("one-way (%s): %s -> %s cut (%s -> %s flows); %d requests in flight cut",
			mode, ms[a].name, ms[b].name, ms[b].name, ms[a].name, cut)
		return func() {
			c.net.heal()
			tl.add("heal: one-way cut lifted")
		}
	case chSlowDisk:
		// Half the time below the election timeout (500 ms), half above.
		delay := 300*time.Millisecond + time.Duration(rng.Int64N(int64(200*time.Millisecond)))
		if rng.IntN(2) == 1 {
			delay = 500*time.Millisecond + time.Duration(rng.Int64N(int64(time.Second)))
		}
		delay = delay.Round(time.Millisecond)
		m, what := pick(), "leader"
		if ld := c.leader(2 * time.Second); ld != nil {
			m = ld
		} else {
			what = "random member (no leader found)"
		}
		if err := os.WriteFile(m.delayFile, []byte(delay.String()), 0o644); err != nil {
			c.t.Errorf("chaos: %v", err)
		}
		tl.add("slow-disk: every WAL fsync of %s, the %s, takes %v more", m.name, what, delay)
		return func() {
			_ = os.Remove(m.delayFile)
			tl.add("heal: %s's fsyncs at full speed", m.name)
		}
	case chMemberChange:
		// Half the time during another fault (any but a member-change).
		var during []chFault
		for _, g := range o.mix {
			if g != chMemberChange {
				during = append(during, g)
			}
		}
		healOther := func() {}
		if len(during) > 0 && rng.IntN(2) == 1 {
			g := during[rng.IntN(len(during))]
			tl.add("member-change during %s", g)
			healOther = chInject(c, rng, tl, g, o, target)
		}
		_, healChange := c.memberChange(rng, tl, o.members)
		return func() {
			healOther()
			healChange()
		}
	}
	panic("unknown fault " + f)
}

// chAt returns the members at the positions.
func chAt(ms []*chMember, pos []int) []*chMember {
	var out []*chMember
	for _, p := range pos {
		out = append(out, ms[p])
	}
	return out
}

func chNames(ms []*chMember) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.name)
	}
	return "{" + strings.Join(out, ",") + "}"
}

// chWaitRecovered waits until a write and a linearizable read succeed
// through every member (a member whose removal applied late, and that
// stopped for it, is dropped from the members).
func chWaitRecovered(c *chCluster, tl *chTimeline, within time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(within)
	c.reap(tl)
	for _, m := range c.current() {
		for {
			err := chProbe(c.asUser(), hc, m)
			if err == nil {
				break
			}
			if c.reap(tl); !slices.Contains(c.current(), m) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %v", m.name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// chProbe writes and reads a key of its own through m, with the
// credentials ctx carries.
func chProbe(ctx context.Context, hc *http.Client, m *chMember) error {
	key := m.client + "/v2/keys" + chProbeDir + "/" + m.name
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, key, strings.NewReader("value=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	coAuthorize(req)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT: %d %.200s", resp.StatusCode, body)
	}
	resp, err = chGet(ctx, hc, key)
	if err != nil {
		return err
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET: %d %.200s", resp.StatusCode, body)
	}
	return nil
}

// TestChaos runs the fault schedule of each CI seed (or -chaos.seed, or
// random seeds for -chaos.soak) against a three-member cluster and fails
// on any history porcupine finds not linearizable.
func TestChaos(t *testing.T) {
	chRunSeeds(t, chCISeeds, func(*chOptions) {})
}

// chRunSeeds runs chRun for each of ciSeeds (or -chaos.seed, or random
// seeds for -chaos.soak), with the default options as set changes them.
func chRunSeeds(t *testing.T, ciSeeds []uint64, set func(*chOptions)) {
	run := func(t *testing.T, seed uint64, dur time.Duration) {
		o := chDefaults(seed, dur)
		set(&o)
		chRun(t, o)
	}
	dur := *chDurationFlag
	if *chSoakFlag > 0 {
		if dur == 0 {
			dur = time.Minute
		}
		end := time.Now().Add(*chSoakFlag)
		for i := 0; time.Now().Before(end); i++ {
			seed := *chSeedFlag
			if seed == 0 || i > 0 {
				seed = rand.Uint64()
			}
			ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				run(t, seed, dur)
			})
			if !ok {
				t.Fatalf("chaos soak: seed %d failed (after %d runs)", seed, i+1)
			}
		}
		return
	}
	if dur == 0 {
		dur = 25 * time.Second
	}
	seeds := ciSeeds
	if *chSeedFlag != 0 {
		seeds = []uint64{*chSeedFlag}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			run(t, seed, dur)
		})
	}
}

// TestChaosCatchesStaleReads proves that the harness can fail: with
// CAIRN_UNSAFE_LOCAL_READS=1 every member answers "linearizable" reads
// from its own replica without a ReadIndex round. Partitions that cut off
// the leader, and one-way cuts that leave a follower behind, while most
// reads go to the member cut off, must produce a history porcupine
// rejects, within a few attempts.
func TestChaosCatchesStaleReads(t *testing.T) {
	const attempts = 3
	dur := *chDurationFlag
	if dur == 0 {
		dur = 12 * time.Second
	}
	for i := range attempts {
		seed := uint64(100 + i)
		if *chSeedFlag != 0 {
			seed = *chSeedFlag + uint64(i)
		}
		o := chDefaults(seed, dur)
		o.env = []string{"CAIRN_UNSAFE_LOCAL_READS=1"}
		o.mix = []chFault{chPartition, chPartition, chOneWay}
		o.readFrac, o.leaderBias, o.targetFrac = 0.8, 1, 0.7
		o.appenders, o.watchers = 0, 0 // the register checker is what is tested
		o.lockers, o.producers = 0, 0
		o.expectKeys = true
		var r chResult
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r = chRun(t, o)
		})
		if r.keyViolations > 0 {
			t.Logf("stale reads caught on attempt %d (seed %d); evidence in %s", i+1, seed, r.evidence)
			return
		}
	}
	t.Fatalf("no violation found in %d runs with CAIRN_UNSAFE_LOCAL_READS=1: the checker does not catch stale reads", attempts)
}

// TestChaosCatchesUnsafeLockGrant proves that the lock checker can fail
// inside the harness: with CAIRN_UNSAFE_LOCK_GRANT=1 every member tells a
// waiting caller it holds the lock as soon as it is queued. Under the
// fault mix, the run must report violations of mutual exclusion, and no
// other kind (the store's fencing is not affected by the bug).
func TestChaosCatchesUnsafeLockGrant(t *testing.T) {
	dur := *chDurationFlag
	if dur == 0 {
		dur = 8 * time.Second
	}
	seed := uint64(200)
	if *chSeedFlag != 0 {
		seed = *chSeedFlag
	}
	o := chDefaults(seed, dur)
	o.env = []string{"CAIRN_UNSAFE_LOCK_GRANT=1"}
	o.mix = []chFault{chKillLeader, chPause, chPartition}
	o.clients, o.appenders, o.watchers, o.producers = 2, 0, 0, 0 // the lock checker is what is tested
	o.lockers = 8
	o.expectLocks = true
	var r chResult
	t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
		r = chRun(t, o)
	})
	if r.lockViolations == 0 {
		t.Fatalf("no lock violation found with CAIRN_UNSAFE_LOCK_GRANT=1: the checker does not catch unsafe grants")
	}
	t.Logf("unsafe grants caught: %d lock violations (seed %d); evidence in %s", r.lockViolations, seed, r.evidence)
}
