package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cairnkv/cairn/internal/regmodel"
)

// The workload: concurrent clients doing register operations (read,
// write, compare-and-swap) on a few keys through random members, each
// operation recorded with its invocation and response times for
// porcupine.

// The registers' types and model are shared with the whole-cluster
// simulator (internal/regmodel).
type (
	chInput   = regmodel.Input
	chOutcome = regmodel.Outcome
	chOutput  = regmodel.Output
	chMeta    = regmodel.Meta
)

const (
	chOK            = regmodel.OK
	chCompareFailed = regmodel.CompareFailed
	chNotApplied    = regmodel.NotApplied
	chUnknown       = regmodel.Unknown
)

// chOp is an operation of the history.
type chOp struct {
	Process int      `json:"process"` // porcupine's ClientId
	Input   chInput  `json:"input"`
	Output  chOutput `json:"output"`
	Call    int64    `json:"call"`   // ns since the run started
	Return  int64    `json:"return"` // -1: unknown outcome, returns "never"
	Meta    chMeta   `json:"meta"`
}

// chLoadConfig configures the workload.
type chLoadConfig struct {
	clients  int
	keys     []string // e.g. /chaos/k0
	readFrac float64  // share of reads; the rest is half writes, half cas
	timeout  time.Duration
	// target, when it holds a member's idx >= 0, receives a read with
	// probability targetFrac (the side of a fault where stale reads would
	// show); otherwise members are picked uniformly.
	target     *atomic.Int64
	targetFrac float64
}

// chLoad runs the clients and keeps the history.
type chLoad struct {
	cfg     chLoadConfig
	members func() []*chMember // the current members
	start   time.Time
	seed    uint64
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	procs   atomic.Int64 // next porcupine ClientId

	mu         sync.Mutex
	ops        []chOp
	unknown    int // operations with an unknown outcome
	readErrs   int // reads that failed (dropped: a read has no effect)
	refused    int // connection refused before sending (not applied)
	counts     struct{ readOK, writeOK, casOK, casFailed int }
	latest     map[string]string // the value last seen per key, by any client
	unexpected []string
}

// now is the time since the run started, in ns (monotonic).
func (l *chLoad) now() int64 { return int64(time.Since(l.start)) }

func chNewLoad(cfg chLoadConfig, members func() []*chMember, start time.Time, seed uint64) *chLoad {
	l := &chLoad{cfg: cfg, members: members, start: start, seed: seed, cancel: func() {}}
	l.procs.Store(int64(cfg.clients))
	return l
}

// run starts the clients; their requests carry the credentials ctx
// carries.
func (l *chLoad) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	l.cancel = cancel
	for i := range l.cfg.clients {
		l.wg.Add(1)
		go l.client(ctx, i)
	}
}

// stop ends the workload and waits for every client.
func (l *chLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *chLoad) record(op chOp) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, op)
	switch op.Output.Outcome {
	case chUnknown:
		l.unknown++
	case chCompareFailed:
		l.counts.casFailed++
	case chOK:
		if l.latest == nil {
			l.latest = map[string]string{}
		}
		if op.Input.Op == "read" && !op.Output.Missing {
			l.latest[op.Input.Key] = op.Output.Value
		} else if op.Input.Op != "read" {
			l.latest[op.Input.Key] = op.Input.Value
		}
		switch op.Input.Op {
		case "read":
			l.counts.readOK++
		case "write":
			l.counts.writeOK++
		case "cas":
			l.counts.casOK++
		}
	}
}

func (l *chLoad) client(ctx context.Context, id int) {
	defer l.wg.Done()
	rng := rand.New(rand.NewPCG(l.seed, uint64(id)+1))
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: l.cfg.timeout}
	process := id
	last := map[string]string{} // the value this client last saw per key
	for seq := 0; ctx.Err() == nil; seq++ {
		key := l.cfg.keys[rng.IntN(len(l.cfg.keys))]
		ms := l.members()
		m := ms[rng.IntN(len(ms))]
		in := chInput{Key: key}
		switch r := rng.Float64(); {
		case r < l.cfg.readFrac:
			in.Op = "read"
			if l.cfg.target != nil {
				if tg := l.cfg.target.Load(); tg >= 0 && rng.Float64() < l.cfg.targetFrac {
					for _, x := range ms {
						if x.idx == int(tg) {
							m = x
						}
					}
				}
			}
		case r < l.cfg.readFrac+(1-l.cfg.readFrac)/2:
			in.Op, in.Value = "write", fmt.Sprintf("c%d-%d", id, seq)
		default:
			in.Op, in.Value = "cas", fmt.Sprintf("c%d-%d", id, seq)
			// Mostly the latest value any client saw (likely to succeed),
			// sometimes this client's own (likelier to fail).
			in.Prev = last[key]
			if rng.IntN(4) != 0 {
				in.Prev = l.latestValue(key)
			}
			if in.Prev == "" {
				in.Prev = "init"
			}
		}
		op := chOp{Process: process, Input: in, Meta: chMeta{Member: m.name, Client: id}}
		op.Call = l.now()
		out, keep := l.do(ctx, hc, m, in)
		op.Return = l.now()
		op.Output = out
		if ctx.Err() != nil && out.Outcome != chOK && out.Outcome != chCompareFailed {
			// Cancelled by the end of the run: a write may still apply.
			if in.Op == "read" {
				keep = false
			} else {
				op.Output = chOutput{Outcome: chUnknown, Detail: "cancelled at the end of the run"}
				keep = true
			}
		}
		// A little jitter keeps the clients from moving in lockstep; a
		// failure (a member down, stopped or cut off) waits a little
		// longer, so that clients do not spin on it.
		pause := time.Duration(rng.IntN(3)) * time.Millisecond
		if !keep || (op.Output.Outcome != chOK && op.Output.Outcome != chCompareFailed) {
			pause += 20 * time.Millisecond
		}
		if keep {
			l.keep(&op, &process, last)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func (l *chLoad) latestValue(key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.latest[key]
}

// keep records op and updates what the client knows.
func (l *chLoad) keep(op *chOp, process *int, last map[string]string) {
	in, out := op.Input, op.Output
	key := in.Key
	switch out.Outcome {
	case chOK:
		switch in.Op {
		case "read":
			if !out.Missing {
				last[key] = out.Value
			}
		default:
			last[key] = in.Value
		}
	case chUnknown:
		op.Return = -1
		// Like a crashed process: the client goes on as a new one, so
		// that its operations never overlap in a lane.
		*process = int(l.procs.Add(1) - 1)
	}
	l.record(*op)
}

type chEvent struct {
	Action string `json:"action"`
	Node   struct {
		Key           string `json:"key"`
		Value         string `json:"value"`
		ModifiedIndex uint64 `json:"modifiedIndex"`
		CreatedIndex  uint64 `json:"createdIndex"`
	} `json:"node"`
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause"`
}

// do performs one operation; keep is false for an operation to leave out
// of the history (a read that failed).
func (l *chLoad) do(ctx context.Context, hc *http.Client, m *chMember, in chInput) (out chOutput, keep bool) {
	u := m.client + "/v2/keys" + in.Key
	var res coResult
	switch in.Op {
	case "read":
		res = coDo(ctx, hc, http.MethodGet, u, nil)
	default:
		form := url.Values{"value": {in.Value}}
		if in.Op == "cas" {
			form.Set("prevValue", in.Prev)
		}
		res = coDo(ctx, hc, http.MethodPut, u, form)
	}
	if err := res.err; err != nil {
		if in.Op == "read" {
			l.mu.Lock()
			l.readErrs++
			l.mu.Unlock()
			return chOutput{}, false
		}
		if res.notSent() {
			l.mu.Lock()
			l.refused++
			l.mu.Unlock()
			return chOutput{Outcome: chNotApplied, Detail: err.Error()}, true
		}
		return chOutput{Outcome: chUnknown, Detail: err.Error()}, true
	}
	ev, short := res.r, fmt.Sprintf("%d %.200s", res.code, res.body)
	switch {
	case in.Op == "read" && res.code == http.StatusOK && ev.Node != nil:
		return chOutput{Outcome: chOK, Value: ev.Node.Value}, true
	case in.Op == "read" && res.code == http.StatusNotFound && ev.ErrorCode == 100:
		return chOutput{Outcome: chOK, Missing: true}, true
	case in.Op == "read":
		if res.code != http.StatusInternalServerError {
			l.noteUnexpected(in, m, short)
		}
		l.mu.Lock()
		l.readErrs++
		l.mu.Unlock()
		return chOutput{}, false
	case (res.code == http.StatusOK || res.code == http.StatusCreated) && ev.Node != nil:
		if ev.Node.Value != in.Value || ev.Node.Key != in.Key {
			l.noteUnexpected(in, m, "acknowledged with another node: "+short)
		}
		return chOutput{Outcome: chOK}, true
	case in.Op == "cas" && res.code == http.StatusPreconditionFailed && ev.ErrorCode == 101:
		return chOutput{Outcome: chCompareFailed, Detail: ev.Cause}, true
	case in.Op == "cas" && res.code == http.StatusNotFound && ev.ErrorCode == 100:
		return chOutput{Outcome: chCompareFailed, Missing: true, Detail: "key not found"}, true
	case res.code == http.StatusInternalServerError && strings.Contains(res.body, "not applied"):
		return chOutput{Outcome: chNotApplied, Detail: ev.Cause}, true
	case res.code == http.StatusInternalServerError:
		// "outcome unknown", or a member stopping: it may apply.
		return chOutput{Outcome: chUnknown, Detail: ev.Cause}, true
	}
	l.noteUnexpected(in, m, short)
	return chOutput{Outcome: chUnknown, Detail: short}, true
}

func (l *chLoad) noteUnexpected(in chInput, m *chMember, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.unexpected) < 20 {
		l.unexpected = append(l.unexpected, fmt.Sprintf("%s %s at %s: %s", in.Op, in.Key, m.name, what))
	}
}

// history returns the recorded operations.
func (l *chLoad) history() []chOp {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]chOp(nil), l.ops...)
}

// chOperations converts the history for porcupine: an operation whose
// outcome is unknown returns after everything else (it may take effect at
// any time after its invocation).
func chOperations(ops []chOp) []porcupine.Operation {
	var end int64
	for _, op := range ops {
		end = max(end, op.Call, op.Return)
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		ret := op.Return
		if ret < 0 {
			ret = end + 1
		}
		out = append(out, porcupine.Operation{ClientId: op.Process, Input: op.Input, Call: op.Call,
			Output: op.Output, Return: ret, Metadata: op.Meta})
	}
	return out
}
