package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cairnkv/cairn/internal/regmodel"
)

// chModel is the registers' sequential model (internal/regmodel).
var chModel = regmodel.Model

// chKeyCheck is the verdict for one key.
type chKeyCheck struct {
	key    string
	ops    int
	result porcupine.CheckResult
	html   string // the visualisation, once written
	info   porcupine.LinearizationInfo
}

// chCheck checks each key's operations on its own (a history is
// linearizable if and only if each key's is).
func chCheck(ops []chOp, timeout time.Duration) []chKeyCheck {
	byKey := map[string][]chOp{}
	for _, op := range ops {
		byKey[op.Input.Key] = append(byKey[op.Input.Key], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []chKeyCheck
	for _, k := range keys {
		res, info := porcupine.CheckOperationsVerbose(chModel, chOperations(byKey[k]), timeout)
		out = append(out, chKeyCheck{key: k, ops: len(byKey[k]), result: res, info: info})
	}
	return out
}

// chResolution is what the event history told about the operations whose
// outcome was unknown.
type chResolution struct {
	applied, dropped, unresolved int
}

// chResolve settles unknown writes with the cluster's own event history
// (every change, read back with waitIndex once the faults are over): an
// unknown write or cas whose unique value appears there took effect; one
// whose value never appears did not, and is left out. Leaving out an
// operation that had no effect is sound; if the history lied about it,
// whatever observed its value has no write to explain it any more, which
// is a violation. An unknown write that took effect at index i returns,
// for the checker, when the first acknowledged write or cas applied after
// i (on any key: the log is one) returned: it was applied before that
// one, which was applied before its answer. Without that bound it would
// return "never", overlapping everything after it, and the checker's
// search grows with every such operation. Without an event history
// (events nil) nothing changes.
func chResolve(ops []chOp, events map[string]uint64) ([]chOp, chResolution) {
	var r chResolution
	if events == nil {
		for _, op := range ops {
			if op.Output.Outcome == chUnknown {
				r.unresolved++
			}
		}
		return ops, r
	}
	// The acknowledged writes by index, and the earliest answer among
	// those applied at or after each of them.
	type acked struct {
		index uint64
		ret   int64
	}
	var ws []acked
	for _, op := range ops {
		if op.Input.Op != "read" && op.Output.Outcome == chOK && op.Return >= 0 {
			if idx, ok := events[op.Input.Key+"\x00"+op.Input.Value]; ok {
				ws = append(ws, acked{idx, op.Return})
			}
		}
	}
	slices.SortFunc(ws, func(a, b acked) int { return cmp.Compare(a.index, b.index) })
	for k := len(ws) - 2; k >= 0; k-- {
		ws[k].ret = min(ws[k].ret, ws[k+1].ret)
	}
	out := make([]chOp, 0, len(ops))
	for _, op := range ops {
		if op.Output.Outcome == chUnknown && op.Input.Op != "read" {
			idx, ok := events[op.Input.Key+"\x00"+op.Input.Value]
			if !ok {
				r.dropped++
				continue
			}
			r.applied++
			op.Output = chOutput{Outcome: chOK, Detail: "outcome was unknown; in the event history"}
			if k, _ := slices.BinarySearchFunc(ws, idx+1, func(a acked, t uint64) int { return cmp.Compare(a.index, t) }); k < len(ws) {
				op.Return = ws[k].ret
				op.Output.Detail += fmt.Sprintf(" at %d; returns when a later write's answer came", idx)
			}
		}
		out = append(out, op)
	}
	return out, r
}

// chHistEvent is one change of the event history: its index (the node's
// modifiedIndex), key, action and value.
type chHistEvent struct {
	Index  uint64 `json:"index"`
	Key    string `json:"key"`
	Action string `json:"action"`
	Value  string `json:"value,omitempty"`
}

// chEventSet maps key and value (joined by NUL) to the index of its event
// (nil if the history could not be read: nothing is settled).
func chEventSet(events []chHistEvent, err error) map[string]uint64 {
	if err != nil {
		return nil
	}
	set := map[string]uint64{}
	for _, ev := range events {
		set[ev.Key+"\x00"+ev.Value] = ev.Index
	}
	return set
}

// chEvents reads every change under dir from the event history of a
// member that answers, from index 1 to the last change under dir (last).
func chEvents(c *chCluster, dir string, within time.Duration) (events []chHistEvent, last uint64, err error) {
	deadline := time.Now().Add(within)
	var lastErr error
	for time.Now().Before(deadline) {
		cleared := 0
		ms := c.current()
		for _, m := range ms {
			if !m.running() {
				continue
			}
			ev, last, err := chEventsFrom(c.asUser(), m, dir, deadline)
			if err == nil {
				return ev, last, nil
			}
			lastErr = fmt.Errorf("%s: %w", m.name, err)
			if errors.Is(err, errChCleared) {
				cleared++
			}
		}
		if cleared == len(ms) {
			return nil, 0, lastErr
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, 0, lastErr
}

// errChCleared: the event history no longer reaches back far enough.
var errChCleared = errors.New("the event history was cleared (raise --event-history)")

// chNode is a node of a keys API answer.
type chNode struct {
	Key           string   `json:"key"`
	Value         string   `json:"value,omitempty"`
	Dir           bool     `json:"dir,omitempty"`
	ModifiedIndex uint64   `json:"modifiedIndex"`
	CreatedIndex  uint64   `json:"createdIndex"`
	Nodes         []chNode `json:"nodes,omitempty"`
}

// maxModified is the highest modifiedIndex in the tree.
func (n chNode) maxModified() uint64 {
	hi := n.ModifiedIndex
	for _, k := range n.Nodes {
		hi = max(hi, k.maxModified())
	}
	return hi
}

// chDirURL is the URL of dir at m for a recursive request (a read or a
// watch of the subtree): with a trailing slash, which the store ignores,
// so that under v2 auth a role's "dir/*" pattern covers it (a recursive
// request needs a "*" pattern that is a prefix of the path as sent:
// docs/auth.md).
func chDirURL(m *chMember, dir string) string {
	return m.client + "/v2/keys" + dir + "/"
}

// chGet sends a GET with the credentials ctx carries.
func chGet(ctx context.Context, hc *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	coAuthorize(req)
	return hc.Do(req)
}

// chGetTree reads dir (recursive, sorted, linearizable) at m; a dir that
// does not exist is an empty node.
func chGetTree(ctx context.Context, hc *http.Client, m *chMember, dir string) (chNode, error) {
	resp, err := chGet(ctx, hc, chDirURL(m, dir)+"?recursive=true&sorted=true")
	if err != nil {
		return chNode{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return chNode{}, err
	}
	var a struct {
		Node      chNode `json:"node"`
		ErrorCode int    `json:"errorCode"`
	}
	jerr := json.Unmarshal(body, &a)
	switch {
	case resp.StatusCode == http.StatusOK && jerr == nil:
		return a.Node, nil
	case resp.StatusCode == http.StatusNotFound && a.ErrorCode == 100:
		return chNode{Key: dir, Dir: true}, nil
	}
	return chNode{}, fmt.Errorf("GET %s: %d %.200s", dir, resp.StatusCode, body)
}

func chEventsFrom(ctx context.Context, m *chMember, dir string, deadline time.Time) ([]chHistEvent, uint64, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	// A linearizable read first: this member has applied everything
	// committed before it, and the highest modifiedIndex under dir is the
	// last change there (the workload deletes nothing). (X-Etcd-Index is
	// the last change anywhere: a wait for a later change under dir
	// would block.)
	tree, err := chGetTree(ctx, hc, m, dir)
	if err != nil {
		return nil, 0, err
	}
	last := tree.maxModified()
	var events []chHistEvent
	for next := uint64(1); next <= last; {
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("reading the event history: still at index %d of %d", next, last)
		}
		q := url.Values{"wait": {"true"}, "recursive": {"true"}, "waitIndex": {strconv.FormatUint(next, 10)}}
		resp, err := chGet(ctx, hc, chDirURL(m, dir)+"?"+q.Encode())
		if err != nil {
			return nil, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, 0, err
		}
		var ev chEvent
		if jerr := json.Unmarshal(body, &ev); jerr == nil && ev.ErrorCode == 401 {
			return nil, 0, fmt.Errorf("waitIndex %d: %w: %s", next, errChCleared, ev.Cause)
		}
		if err := json.Unmarshal(body, &ev); err != nil || resp.StatusCode != http.StatusOK || ev.Node.ModifiedIndex < next {
			return nil, 0, fmt.Errorf("waitIndex %d: %d %.300s", next, resp.StatusCode, body)
		}
		events = append(events, chHistEvent{Index: ev.Node.ModifiedIndex, Key: ev.Node.Key, Action: ev.Action, Value: ev.Node.Value})
		next = ev.Node.ModifiedIndex + 1
	}
	return events, last, nil
}

// chEvidence writes what a run leaves to look at: the histories (raw and
// checked), the fault timeline, a visualisation per key that is not
// linearizable, the extra files (JSON; the appends, the watchers) and
// the logs of every member the run had. It returns the directory.
// Unless -chaos.out is given, it is a new directory under $TMPDIR, kept
// after the test, or, with scratch, a directory of the test's own
// (removed when it ends: for a violation that was expected).
func chEvidence(t *testing.T, scratch bool, seed uint64, raw, checked []chOp, timeline []string, checks []chKeyCheck, c *chCluster, extra map[string]any) (string, error) {
	var dir string
	var err error
	switch {
	case *chOutFlag == "" && scratch:
		dir = t.TempDir()
	case *chOutFlag != "":
		dir = filepath.Join(*chOutFlag, fmt.Sprintf("seed-%d-%s", seed, time.Now().Format("20060102-150405.000")))
		err = os.MkdirAll(dir, 0o755)
	default:
		dir, err = os.MkdirTemp("", fmt.Sprintf("cairn-chaos-seed%d-", seed))
	}
	if err != nil {
		return "", err
	}
	write := func(name string, v any) error {
		b, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	if err := write("history.json", checked); err != nil {
		return dir, err
	}
	if err := write("history-raw.json", raw); err != nil {
		return dir, err
	}
	if err := os.WriteFile(filepath.Join(dir, "faults.txt"), []byte(strings.Join(timeline, "\n")+"\n"), 0o644); err != nil {
		return dir, err
	}
	for i := range checks {
		if checks[i].result == porcupine.Ok {
			continue
		}
		name := strings.NewReplacer("/", "_").Replace(strings.TrimPrefix(checks[i].key, "/")) + ".html"
		p := filepath.Join(dir, name)
		if err := porcupine.VisualizePath(chModel, checks[i].info, p); err != nil {
			return dir, err
		}
		checks[i].html = p
	}
	for name, v := range extra {
		if err := write(name, v); err != nil {
			return dir, err
		}
	}
	for _, m := range c.everyMember() {
		if b, err := os.ReadFile(m.log); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "member-"+m.name+".log"), b, 0o644)
		}
	}
	return dir, nil
}

// chStaleWitness looks for the plainest evidence of a violation on key: a
// read that returned a value although a later write had been
// acknowledged before the read was sent. It describes the first such read
// and counts them per member ("" if there is none: the violation is
// subtler, see the visualisation).
func chStaleWitness(ops []chOp, key string) string {
	writer := map[string]chOp{}
	var writes, reads []chOp
	for _, op := range ops {
		if op.Input.Key != key || op.Output.Outcome != chOK {
			continue
		}
		if op.Input.Op == "read" {
			reads = append(reads, op)
			continue
		}
		writer[op.Input.Value] = op
		if op.Return >= 0 {
			writes = append(writes, op)
		}
	}
	// The writes by response time, and for each prefix the one invoked
	// last: the latest write known to precede a read that starts at t.
	slices.SortFunc(writes, func(a, b chOp) int { return cmp.Compare(a.Return, b.Return) })
	latest := make([]int, len(writes))
	for i := range writes {
		latest[i] = i
		if i > 0 && writes[latest[i-1]].Call > writes[i].Call {
			latest[i] = latest[i-1]
		}
	}
	slices.SortFunc(reads, func(a, b chOp) int { return cmp.Compare(a.Call, b.Call) })
	first := ""
	perMember := map[string]int{}
	total := 0
	for _, r := range reads {
		w, ok := writer[r.Output.Value]
		if !ok || r.Output.Missing || w.Return < 0 {
			continue
		}
		n, _ := slices.BinarySearchFunc(writes, r.Call, func(x chOp, t int64) int { return cmp.Compare(x.Return, t) })
		if n == 0 {
			continue
		}
		x := writes[latest[n-1]]
		if x.Call <= w.Return {
			continue
		}
		total++
		perMember[r.Meta.Member]++
		if first == "" {
			first = fmt.Sprintf("read %s at member %s [%.3fs, %.3fs] returned %q (written [%.3fs, %.3fs]), "+
				"but %s %q had been acknowledged at %.3fs through member %s",
				key, r.Meta.Member, sec(r.Call), sec(r.Return), r.Output.Value, sec(w.Call), sec(w.Return),
				x.Input.Op, x.Input.Value, sec(x.Return), x.Meta.Member)
		}
	}
	if total == 0 {
		return ""
	}
	var members []string
	for m, n := range perMember {
		members = append(members, fmt.Sprintf("%s:%d", m, n))
	}
	slices.Sort(members)
	return fmt.Sprintf("%s (%d such stale reads, by member %s)", first, total, strings.Join(members, " "))
}

func sec(ns int64) float64 { return float64(ns) / 1e9 }
