package httpapi_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEtcdDiff sends the same random sequences of v2 keys-API requests to
// a real etcd 3.4.23 and to Cairn's handler and compares the answers after
// normalisation (etcddiff_norm_test.go). Differences that Cairn makes on
// purpose are avoided by the generator or normalised away; each is listed
// with its reason in docs/compat.md.
//
// Environment:
//
//	CAIRN_DIFF_OPS=n       operations in total (default 2500), split over
//	                       the default seeds
//	CAIRN_DIFF_SEED=s      run one sequence of CAIRN_DIFF_OPS operations
//	                       from seed s ("random" draws one and prints it)
//	CAIRN_DIFF_MAXDIFF=n   report at most n differences per sequence (10)
//	CAIRN_DIFF_AGAINST=etcd compare etcd with a second etcd (checks the
//	                       harness itself: no differences expected)
//	CAIRN_REQUIRE_ETCD=1   fail instead of skipping when etcd is missing
//	CAIRN_DIFF_VERBOSE=1   log every request and both answers
//	CAIRN_DIFF_SKIP=k,..   do not send operations of these generator rules
//	                       (get, set, create, update, cas, refresh, post,
//	                       delete, watch, bad, unclean, method, route,
//	                       form), e.g. while a known difference is fixed;
//	                       the rest of the sequence is drawn as before
func TestEtcdDiff(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd processes; skipped with -short")
	}
	bin := requireEtcd(t)
	total := diffEnvInt(t, "CAIRN_DIFF_OPS", 2500)
	seeds := []uint64{1, 2, 3, 4}
	perSeq := (total + len(seeds) - 1) / len(seeds)
	if s := os.Getenv("CAIRN_DIFF_SEED"); s != "" {
		seed := rand.Uint64()
		if s != "random" {
			var err error
			if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
				t.Fatalf("CAIRN_DIFF_SEED=%q: %v", s, err)
			}
		}
		t.Logf("seed %d", seed)
		seeds, perSeq = []uint64{seed}, total
	}
	other := func(t *testing.T) *diffTarget { return startCairn(t) }
	if os.Getenv("CAIRN_DIFF_AGAINST") == "etcd" {
		other = func(t *testing.T) *diffTarget {
			tg := startEtcd(t, bin)
			tg.name = "etcd2"
			return tg
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runSequence(t, bin, seed, perSeq, other)
		})
	}
	t.Run("scenarios", func(t *testing.T) {
		t.Parallel()
		runScenarios(t, bin, other)
	})
}

// diffEnvInt reads a count from the environment.
func diffEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", name, s)
	}
	return n
}

// differ compares answers and reports differences.
type differ struct {
	t        *testing.T
	etcd     *diffTarget
	other    *diffTarget
	seed     uint64
	reported int
	max      int
	verbose  bool
	skip     map[string]bool // generator rules not sent (CAIRN_DIFF_SKIP)
	diverged bool            // a write had a different outcome: states differ
	repro    string          // when set, the command that reproduces a difference
}

func newDiffer(t *testing.T, etcd, other *diffTarget, seed uint64) *differ {
	d := &differ{
		t: t, etcd: etcd, other: other, seed: seed,
		max:     diffEnvInt(t, "CAIRN_DIFF_MAXDIFF", 10),
		verbose: os.Getenv("CAIRN_DIFF_VERBOSE") == "1",
		skip:    make(map[string]bool),
	}
	for _, k := range strings.Split(os.Getenv("CAIRN_DIFF_SKIP"), ",") {
		d.skip[strings.TrimSpace(k)] = true
	}
	return d
}

// exec sends op to both servers and compares. It returns etcd's answer.
func (d *differ) exec(step int, op *diffOp) wireResponse {
	timeout := opTimeout
	if op.watch {
		timeout = watchTimeout
	}
	ew := op.wire(d.etcd.base)
	ow := op.wire(d.other.base)
	er := d.etcd.do(ew, timeout)
	or := d.other.do(ow, timeout)
	what := op.String()
	if op.kind != "" {
		what = "(" + op.kind + ") " + what
	}
	if !d.check(step, what, er, or, op.sorted) && op.method != "GET" && op.method != "HEAD" {
		// A write that went differently leaves different states behind;
		// what follows would only repeat this difference.
		en, on := normaliser{base: d.etcd.base}, normaliser{base: d.other.base}
		ok := func(w wireResponse) bool { return w.status/100 == 2 }
		d.diverged = ok(er) != ok(or) ||
			en.relIndex(er.header.Get("X-Etcd-Index")) != on.relIndex(or.header.Get("X-Etcd-Index"))
	}
	return er
}

// check compares two answers to the same request.
func (d *differ) check(step int, what string, er, or wireResponse, sorted bool) bool {
	ev, ov := compareResponses(er, or, d.etcd.base, d.other.base, sorted)
	if d.verbose {
		d.t.Logf("#%d %s\n  %s: %s\n  %s: %s", step, what, d.etcd.name, rawView(er), d.other.name, rawView(or))
	}
	if ev == ov {
		return true
	}
	d.reported++
	if d.reported > d.max {
		return false
	}
	skip := ""
	if s := os.Getenv("CAIRN_DIFF_SKIP"); s != "" {
		skip = "CAIRN_DIFF_SKIP=" + s + " "
	}
	repro := fmt.Sprintf("CAIRN_REQUIRE_ETCD=1 %sCAIRN_DIFF_SEED=%d CAIRN_DIFF_OPS=%d go test -race -count=1 -run 'TestEtcdDiff/seed=%d$' ./httpapi", skip, d.seed, step+1, d.seed)
	if step < 0 {
		repro = "CAIRN_REQUIRE_ETCD=1 go test -race -count=1 -run 'TestEtcdDiff/scenarios$' ./httpapi"
	}
	if d.repro != "" {
		repro = d.repro
	}
	d.t.Errorf("difference at step %d: %s\n--- %s (normalised)\n%s--- %s (normalised)\n%s--- raw\n  %s: %s\n  %s: %s\nreproduce: %s",
		step, what, d.etcd.name, indentLines(ev), d.other.name, indentLines(ov),
		d.etcd.name, rawView(er), d.other.name, rawView(or), repro)
	return false
}

// indentLines indents every line of s by two spaces.
func indentLines(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

// runSequence runs n generated operations from seed on a fresh pair.
func runSequence(t *testing.T, bin string, seed uint64, n int, other func(*testing.T) *diffTarget) {
	etcd := startEtcd(t, bin)
	d := newDiffer(t, etcd, other(t), seed)
	g := newDiffGen(seed)
	start := time.Now()
	for step := range n {
		op := g.next()
		if d.skip[op.kind] {
			continue
		}
		er := d.exec(step, op)
		g.observe(op, er, etcd.base)
		if d.diverged {
			t.Errorf("seed %d: the servers' states differ after step %d; stopped (a later difference would only repeat it)", seed, step)
			return
		}
		if d.reported > d.max {
			t.Errorf("seed %d: more than %d differences; stopped at step %d of %d", seed, d.max, step, n)
			return
		}
	}
	t.Logf("seed %d: %d operations in %v, %d events, %d differences", seed, n, time.Since(start).Round(time.Millisecond), len(g.events), d.reported)
}
