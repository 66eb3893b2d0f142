package e2e

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The in-order append workload, a check that does not depend on the
// register model: appenders POST unique values to chAppendDir (etcd's
// in-order keys: the key is named after the index of its creation). At
// the end the directory is read (sorted, linearizable) and
//   - every acknowledged append is there exactly once, with the key and
//     createdIndex it was acknowledged with;
//   - no append answered "not applied" is there, nor any value nobody
//     sent, and no value twice;
//   - the listing is in createdIndex order;
//   - the order of the indexes agrees with real time: an append
//     acknowledged before another was invoked has the smaller index (for
//     an append whose outcome was unknown and that is there, its
//     invocation counts).

const chAppendDir = "/chaos-appends"

// chAppendOp is one append.
type chAppendOp struct {
	Client  int       `json:"client"`
	Value   string    `json:"value"`
	Member  string    `json:"member"`
	Call    int64     `json:"call"`   // ns since the run started
	Return  int64     `json:"return"` // -1: outcome unknown
	Outcome chOutcome `json:"outcome"`
	Key     string    `json:"key,omitempty"`   // acknowledged: the key created
	Index   uint64    `json:"index,omitempty"` // acknowledged: its createdIndex
	Detail  string    `json:"detail,omitempty"`
}

// chAppends runs the appenders.
type chAppends struct {
	n       int
	members func() []*chMember
	start   time.Time
	seed    uint64
	timeout time.Duration
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu         sync.Mutex
	ops        []chAppendOp
	unexpected []string
}

func chNewAppends(n int, members func() []*chMember, start time.Time, seed uint64, timeout time.Duration) *chAppends {
	return &chAppends{n: n, members: members, start: start, seed: seed, timeout: timeout, cancel: func() {}}
}

// run starts the appenders; their requests carry the credentials ctx
// carries.
func (a *chAppends) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	for i := range a.n {
		a.wg.Add(1)
		go a.client(ctx, i)
	}
}

func (a *chAppends) stop() {
	a.cancel()
	a.wg.Wait()
}

func (a *chAppends) history() []chAppendOp {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.ops)
}

func (a *chAppends) client(ctx context.Context, id int) {
	defer a.wg.Done()
	rng := rand.New(rand.NewPCG(a.seed, 0x617070656e64+uint64(id)))
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: a.timeout}
	for seq := 0; ctx.Err() == nil; seq++ {
		ms := a.members()
		m := ms[rng.IntN(len(ms))]
		op := chAppendOp{Client: id, Value: fmt.Sprintf("a%d-%d", id, seq), Member: m.name}
		op.Call = int64(time.Since(a.start))
		a.do(ctx, hc, m, &op)
		op.Return = int64(time.Since(a.start))
		if ctx.Err() != nil && op.Outcome != chOK {
			op.Outcome, op.Detail = chUnknown, "cancelled at the end of the run"
		}
		if op.Outcome == chUnknown {
			op.Return = -1
		}
		a.mu.Lock()
		a.ops = append(a.ops, op)
		a.mu.Unlock()
		pause := time.Duration(2+rng.IntN(8)) * time.Millisecond
		if op.Outcome != chOK {
			pause += 20 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// do POSTs the append and sets its outcome.
func (a *chAppends) do(ctx context.Context, hc *http.Client, m *chMember, op *chAppendOp) {
	res := coDo(ctx, hc, http.MethodPost, m.client+"/v2/keys"+chAppendDir, url.Values{"value": {op.Value}})
	if res.err != nil {
		op.Outcome, op.Detail = chUnknown, res.err.Error()
		if res.notSent() {
			op.Outcome = chNotApplied
		}
		return
	}
	ev, short := res.r, fmt.Sprintf("%d %.200s", res.code, res.body)
	switch {
	case res.code == http.StatusCreated && ev.Node != nil:
		op.Outcome, op.Key, op.Index = chOK, ev.Node.Key, ev.Node.CreatedIndex
		if ev.Action != "create" || ev.Node.Value != op.Value || !strings.HasPrefix(ev.Node.Key, chAppendDir+"/") ||
			ev.Node.CreatedIndex == 0 || ev.Node.ModifiedIndex != ev.Node.CreatedIndex {
			a.note(fmt.Sprintf("append %q at %s acknowledged with another node: %s", op.Value, m.name, short))
		}
	case res.code == http.StatusInternalServerError && strings.Contains(res.body, "not applied"):
		op.Outcome, op.Detail = chNotApplied, ev.Cause
	case res.code == http.StatusInternalServerError:
		op.Outcome, op.Detail = chUnknown, ev.Cause
	default:
		op.Outcome, op.Detail = chUnknown, short
		a.note(fmt.Sprintf("append %q at %s: %s", op.Value, m.name, short))
	}
}

func (a *chAppends) note(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.unexpected) < 20 {
		a.unexpected = append(a.unexpected, s)
	}
}

// chReadDir reads dir (sorted, linearizable) through a member that
// answers: its children.
func chReadDir(c *chCluster, dir string, within time.Duration) ([]chNode, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	return chFromAny(c, within, func(m *chMember, _ time.Time) ([]chNode, error) {
		n, err := chGetTree(c.asUser(), hc, m, dir)
		return n.Nodes, err
	})
}

// chFromAny asks the running members in turn, until one answers without
// an error or within passes (then the last error is returned).
func chFromAny[T any](c *chCluster, within time.Duration, ask func(m *chMember, deadline time.Time) (T, error)) (T, error) {
	deadline := time.Now().Add(within)
	var zero T
	var lastErr error
	for time.Now().Before(deadline) {
		for _, m := range c.current() {
			if !m.running() {
				continue
			}
			v, err := ask(m, deadline)
			if err == nil {
				return v, nil
			}
			lastErr = fmt.Errorf("%s: %w", m.name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return zero, lastErr
}

// chAppendCheck is the verdict on the appends.
type chAppendCheck struct {
	ops, acked, notApplied int
	unknownIn, unknownOut  int // unknown outcomes present in the listing, and absent
	listed                 int
	violations             []string
}

func (k chAppendCheck) details() string {
	return fmt.Sprintf("%d appends: %d acknowledged, %d not applied, %d unknown outcomes (%d present, %d absent); %d listed; %d violations",
		k.ops, k.acked, k.notApplied, k.unknownIn+k.unknownOut, k.unknownIn, k.unknownOut, k.listed, len(k.violations))
}

// chCheckAppends checks the appends against the directory's listing.
func chCheckAppends(ops []chAppendOp, listing []chNode) chAppendCheck {
	k := chAppendCheck{ops: len(ops), listed: len(listing)}
	bad := func(format string, args ...any) {
		if len(k.violations) < 50 {
			k.violations = append(k.violations, fmt.Sprintf(format, args...))
		} else if len(k.violations) == 50 {
			k.violations = append(k.violations, "(more left out)")
		}
	}
	byValue := map[string][]chNode{}
	for i, n := range listing {
		byValue[n.Value] = append(byValue[n.Value], n)
		if i > 0 && (n.Key <= listing[i-1].Key || n.CreatedIndex <= listing[i-1].CreatedIndex) {
			bad("listing out of order: %s (createdIndex %d) after %s (createdIndex %d)",
				n.Key, n.CreatedIndex, listing[i-1].Key, listing[i-1].CreatedIndex)
		}
		if n.Dir || n.ModifiedIndex != n.CreatedIndex || n.Key != fmt.Sprintf("%s/%020d", chAppendDir, n.CreatedIndex) {
			bad("listed node %+v is not an in-order key as created", n)
		}
	}
	sent := map[string]bool{}
	// The appends known to be in the log at an index, with the real time
	// from which (invocation) and by which (response; -1: unknown) they
	// were.
	type placed struct {
		op    chAppendOp
		index uint64
	}
	var in []placed
	for _, op := range ops {
		sent[op.Value] = true
		nodes := byValue[op.Value]
		if len(nodes) > 1 {
			bad("append %q (%s) is listed %d times: %+v", op.Value, op.Outcome, len(nodes), nodes)
		}
		switch op.Outcome {
		case chOK:
			k.acked++
			switch {
			case len(nodes) == 0:
				bad("append %q acknowledged as %s (index %d) through %s at %.3fs is missing",
					op.Value, op.Key, op.Index, op.Member, sec(op.Return))
			case nodes[0].Key != op.Key || nodes[0].CreatedIndex != op.Index:
				bad("append %q acknowledged as %s (index %d) is listed as %s (index %d)",
					op.Value, op.Key, op.Index, nodes[0].Key, nodes[0].CreatedIndex)
			}
			in = append(in, placed{op, op.Index})
		case chNotApplied:
			k.notApplied++
			if len(nodes) > 0 {
				bad("append %q answered not applied (%s) through %s is listed as %s", op.Value, op.Detail, op.Member, nodes[0].Key)
			}
		default:
			if len(nodes) > 0 {
				k.unknownIn++
				in = append(in, placed{op, nodes[0].CreatedIndex})
			} else {
				k.unknownOut++
			}
		}
	}
	for v, nodes := range byValue {
		if !sent[v] {
			bad("listed value %q was never sent (%s)", v, nodes[0].Key)
		}
	}
	// Real-time order: by response time, the highest index acknowledged
	// so far; every append invoked later must have a higher one.
	var done []placed
	for _, p := range in {
		if p.op.Return >= 0 {
			done = append(done, p)
		}
	}
	slices.SortFunc(done, func(a, b placed) int { return cmp.Compare(a.op.Return, b.op.Return) })
	best := make([]int, len(done)) // best[i]: the position in done[:i+1] of the highest index
	for i := range done {
		best[i] = i
		if i > 0 && done[best[i-1]].index > done[i].index {
			best[i] = best[i-1]
		}
	}
	for _, p := range in {
		n, _ := slices.BinarySearchFunc(done, p.op.Call, func(x placed, t int64) int {
			if x.op.Return < t {
				return -1
			}
			return 1
		})
		if n == 0 {
			continue
		}
		if q := done[best[n-1]]; q.index >= p.index {
			bad("append %q (%s, index %d, invoked at %.3fs through %s) is before append %q (index %d), acknowledged at %.3fs through %s",
				p.op.Value, p.op.Outcome, p.index, sec(p.op.Call), p.op.Member, q.op.Value, q.index, sec(q.op.Return), q.op.Member)
		}
	}
	return k
}
