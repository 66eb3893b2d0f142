package store_test

// A model-based test of the store. model below is a deliberately naive
// reference of the v2 tree, written from API.md §1.3-1.10, §2.1-2.2 and §3:
// a flat map from path to node, an index counter and the list of every
// event. Random request sequences drive the model and a real Store side by
// side; after every step the returned event or error, the whole tree (a
// recursive Get of "/"), direct Gets, the expiry events (read back through
// the history) and a set of live watchers are compared.
//
// Failures print the seed of the failing sequence; rerun it alone with
//
//	CAIRN_MODEL_SEED=<seed> go test -run TestModel ./store

import (
	"fmt"
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/store"
)

// ---- the model --------------------------------------------------------

type mNode struct {
	value    string
	dir      bool
	created  uint64
	modified uint64 // for directories: the index they were created at, forever
	expire   int64  // Unix ns; 0 = permanent
}

type model struct {
	nodes    map[string]*mNode // every node by path; "/" is the root
	index    uint64
	histCap  int
	events   []*store.Event // every event ever; events[i].Index == i+1
	watchers []*mWatcher
}

func newModel(histCap int) *model {
	return &model{nodes: map[string]*mNode{"/": {dir: true}}, histCap: histCap}
}

func mElems(p string) []string {
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

func mJoin(d, name string) string {
	if d == "/" {
		return "/" + name
	}
	return d + "/" + name
}

func mParent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// key is p as a node's key: "" for the root (API.md §1.5).
func (m *model) key(p string) string {
	if p == "/" {
		return ""
	}
	return p
}

// dataBytes is what Store.DataBytes must say: every path but the root's,
// and every value.
func (m *model) dataBytes() int64 {
	var n int64
	for p, nd := range m.nodes {
		if p != "/" {
			n += int64(len(p) + len(nd.value))
		}
	}
	return n
}

func mBase(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// mBelow reports whether p is strictly below directory d.
func mBelow(p, d string) bool {
	if d == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, d+"/")
}

func mErr(code int, cause string, index uint64) *store.Error {
	return &store.Error{Code: code, Cause: cause, Index: index}
}

// paths returns every node path, sorted (the generator must not depend on
// map order, or a seed would not reproduce).
func (m *model) paths() []string {
	ps := make([]string, 0, len(m.nodes))
	for p := range m.nodes {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func (m *model) children(d string) []string {
	var out []string
	for p := range m.nodes {
		if p != "/" && mParent(p) == d {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// find walks to p element by element (§1.8): a key met on the way is
// error 104 naming that key; the first missing element is error 100
// naming that missing path.
func (m *model) find(p string) (*mNode, *store.Error) {
	cur, n := "/", m.nodes["/"]
	for _, name := range mElems(p) {
		if !n.dir {
			return nil, mErr(store.EcodeNotDir, cur, m.index)
		}
		next := mJoin(cur, name)
		c, ok := m.nodes[next]
		if !ok {
			return nil, mErr(store.EcodeKeyNotFound, next, m.index)
		}
		cur, n = next, c
	}
	return n, nil
}

func (m *model) view(p string, n *mNode, list, recursive bool) *store.NodeView {
	v := &store.NodeView{Dir: n.dir, Expiration: n.expire, ModifiedIndex: n.modified, CreatedIndex: n.created}
	if p != "/" {
		v.Key = p
	}
	if !n.dir {
		v.Value, v.HasValue = n.value, true
		return v
	}
	if list || recursive {
		for _, c := range m.children(p) {
			if strings.HasPrefix(mBase(c), "_") { // hidden: §1.8
				continue
			}
			v.Nodes = append(v.Nodes, m.view(c, m.nodes[c], false, recursive))
		}
	}
	return v
}

func (m *model) get(p string, recursive bool) (*store.Event, *store.Error) {
	n, err := m.find(p)
	if err != nil {
		return nil, err
	}
	return &store.Event{Action: store.ActionGet, Node: m.view(p, n, true, recursive), Index: m.index}, nil
}

// deadline computes Time + TTL seconds (§1.6). ok is false when it cannot
// be represented in int64 nanoseconds (Cairn answers 202, see "Where Cairn
// deliberately differs" 3). Before 2000-01-01 means no TTL.
func deadline(r *store.Request) (d int64, ok bool) {
	if !r.HasTTL {
		return 0, true
	}
	x := new(big.Int).Mul(new(big.Int).SetUint64(r.TTL), big.NewInt(1e9))
	if !x.IsInt64() {
		return 0, false
	}
	x.Add(x, big.NewInt(r.Time))
	if !x.IsInt64() {
		return 0, false
	}
	if x.Int64() < minExpire {
		return 0, true
	}
	return x.Int64(), true
}

func (m *model) errTTL() *store.Error {
	return mErr(store.EcodeTTLNaN, `invalid value for "ttl"`, m.index)
}

// mkParents creates the missing directories above p at index idx (§1.5:
// implicit parents get the child's createdIndex).
func (m *model) mkParents(p string, idx uint64) {
	for d := mParent(p); d != "/"; d = mParent(d) {
		if _, ok := m.nodes[d]; !ok {
			m.nodes[d] = &mNode{dir: true, created: idx, modified: idx}
		}
	}
}

// newEvent records an event at the next index. removed lists the paths
// that the event took out of the tree (for live watch matching).
func (m *model) newEvent(action string, node, prev *store.NodeView, r *store.Request, removed map[string]bool) *store.Event {
	m.index++
	e := &store.Event{Action: action, Node: node, PrevNode: prev, Index: m.index, Time: r.Time, Refresh: r.Refresh &&
		(action == store.ActionSet || action == store.ActionUpdate || action == store.ActionCompareAndSwap)}
	m.events = append(m.events, e)
	for _, w := range m.watchers {
		m.offerLive(w, e, removed)
	}
	return e
}

func (m *model) apply(r *store.Request) ([]*store.Event, *store.Error) {
	switch r.Op {
	case store.OpSet:
		return m.set(r)
	case store.OpCreate:
		return m.create(r, r.Path)
	case store.OpCreateInOrder:
		return m.create(r, mJoin(r.Path, fmt.Sprintf("%020d", m.index+1)))
	case store.OpUpdate, store.OpCompareAndSwap:
		return m.update(r)
	case store.OpDelete, store.OpCompareAndDelete:
		return m.del(r)
	case store.OpExpire:
		return m.expire(r), nil
	}
	panic("model: unknown op")
}

// set (§1.6): creates parents; replaces a key (new createdIndex); refuses
// a directory (102) and the root (107); refresh keeps the value and needs
// the key to exist.
func (m *model) set(r *store.Request) ([]*store.Event, *store.Error) {
	p := r.Path
	old, err := m.find(p)
	if err != nil && err.Code == store.EcodeNotDir {
		return nil, err
	}
	value := r.Value
	if r.Refresh {
		if old == nil {
			return nil, err
		}
		value = old.value
	}
	if p == "/" {
		return nil, mErr(store.EcodeRootROnly, "/", m.index)
	}
	if old != nil && old.dir {
		return nil, mErr(store.EcodeNotFile, p, m.index)
	}
	exp, ok := deadline(r)
	if !ok {
		return nil, m.errTTL()
	}
	var prev *store.NodeView
	if old != nil {
		prev = m.view(p, old, false, false)
	}
	idx := m.index + 1
	m.mkParents(p, idx)
	n := &mNode{dir: r.Dir, created: idx, modified: idx, expire: exp}
	if !r.Dir {
		n.value = value
	}
	m.nodes[p] = n
	return []*store.Event{m.newEvent(store.ActionSet, m.view(p, n, false, false), prev, r, nil)}, nil
}

// create (§1.6, §1.9): like set but an existing node is 105.
func (m *model) create(r *store.Request, p string) ([]*store.Event, *store.Error) {
	if p == "/" {
		return nil, mErr(store.EcodeRootROnly, "/", m.index)
	}
	old, err := m.find(p)
	if err != nil && err.Code == store.EcodeNotDir {
		return nil, err
	}
	if old != nil {
		return nil, mErr(store.EcodeNodeExist, p, m.index)
	}
	exp, ok := deadline(r)
	if !ok {
		return nil, m.errTTL()
	}
	idx := m.index + 1
	m.mkParents(p, idx)
	n := &mNode{dir: r.Dir, created: idx, modified: idx, expire: exp}
	if !r.Dir {
		n.value = r.Value
	}
	m.nodes[p] = n
	r2 := *r
	r2.Refresh = false
	return []*store.Event{m.newEvent(store.ActionCreate, m.view(p, n, false, false), nil, &r2, nil)}, nil
}

// compare is the CAS/CAD test and its cause formats (§1.6).
func compare(n *mNode, prevValue string, prevIndex uint64) (string, bool) {
	vOK := prevValue == "" || prevValue == n.value
	iOK := prevIndex == 0 || prevIndex == n.modified
	vCause := "[" + prevValue + " != " + n.value + "]"
	iCause := "[" + strconv.FormatUint(prevIndex, 10) + " != " + strconv.FormatUint(n.modified, 10) + "]"
	switch {
	case !vOK && !iOK:
		return vCause + " " + iCause, false
	case !vOK:
		return vCause, false
	case !iOK:
		return iCause, false
	}
	return "", true
}

// update and compareAndSwap (§1.6): keep createdIndex, take the TTL of
// the request (none if absent); a directory may only get a new TTL and
// keeps its stored modifiedIndex although the event reports the new index.
func (m *model) update(r *store.Request) ([]*store.Event, *store.Error) {
	p := r.Path
	if p == "/" {
		return nil, mErr(store.EcodeRootROnly, "/", m.index)
	}
	old, err := m.find(p)
	if err != nil {
		return nil, err
	}
	action := store.ActionUpdate
	if r.Op == store.OpCompareAndSwap {
		action = store.ActionCompareAndSwap
		if old.dir {
			return nil, mErr(store.EcodeNotFile, p, m.index)
		}
		if cause, ok := compare(old, r.PrevValue, r.PrevIndex); !ok {
			return nil, mErr(store.EcodeTestFailed, cause, m.index)
		}
	} else if old.dir && r.Value != "" {
		return nil, mErr(store.EcodeNotFile, p, m.index)
	}
	exp, ok := deadline(r)
	if !ok {
		return nil, m.errTTL()
	}
	idx := m.index + 1
	prev := m.view(p, old, false, false)
	n := *old
	n.expire = exp
	if !n.dir {
		n.modified = idx
		if !r.Refresh {
			n.value = r.Value
		}
	}
	m.nodes[p] = &n
	v := m.view(p, &n, false, false)
	v.ModifiedIndex = idx
	return []*store.Event{m.newEvent(action, v, prev, r, nil)}, nil
}

// del: delete and compareAndDelete (§1.7). The root is 107 for a delete;
// compare-and-delete finds it a directory: 102 with the root's key, "", as
// cause (etcd 3.4.23, by Cairn's differential test; docs/api.md §7).
func (m *model) del(r *store.Request) ([]*store.Event, *store.Error) {
	p := r.Path
	if p == "/" && r.Op == store.OpDelete {
		return nil, mErr(store.EcodeRootROnly, "/", m.index)
	}
	n, err := m.find(p)
	if err != nil {
		return nil, err
	}
	action := store.ActionDelete
	if r.Op == store.OpCompareAndDelete {
		action = store.ActionCompareAndDelete
		if n.dir {
			return nil, mErr(store.EcodeNotFile, m.key(p), m.index)
		}
		if cause, ok := compare(n, r.PrevValue, r.PrevIndex); !ok {
			return nil, mErr(store.EcodeTestFailed, cause, m.index)
		}
	} else if n.dir {
		if !r.Dir && !r.Recursive {
			return nil, mErr(store.EcodeNotFile, p, m.index)
		}
		if len(m.children(p)) > 0 && !r.Recursive {
			return nil, mErr(store.EcodeDirNotEmpty, p, m.index)
		}
	}
	return []*store.Event{m.remove(p, action, r)}, nil
}

// remove takes p and its subtree away in one event.
func (m *model) remove(p, action string, r *store.Request) *store.Event {
	n := m.nodes[p]
	prev := m.view(p, n, false, false)
	node := &store.NodeView{Key: p, Dir: n.dir, ModifiedIndex: m.index + 1, CreatedIndex: n.created}
	removed := map[string]bool{}
	for q := range m.nodes {
		if q == p || mBelow(q, p) {
			removed[q] = true
			delete(m.nodes, q)
		}
	}
	r2 := *r
	r2.Refresh = false
	return m.newEvent(action, node, prev, &r2, removed)
}

// expire removes, one event each, every node whose deadline is at or
// before r.Time, earliest deadline first, ties by path (§1.10; ttl's
// documented order). A directory takes its subtree with it.
func (m *model) expire(r *store.Request) []*store.Event {
	var out []*store.Event
	for {
		best := ""
		for _, p := range m.paths() {
			n := m.nodes[p]
			if n.expire == 0 || n.expire > r.Time {
				continue
			}
			if best == "" || n.expire < m.nodes[best].expire {
				best = p
			}
		}
		if best == "" {
			return out
		}
		out = append(out, m.remove(best, store.ActionExpire, r))
	}
}

// nextDeadline is the earliest deadline of any node.
func (m *model) nextDeadline() (int64, bool) {
	var d int64
	ok := false
	for _, n := range m.nodes {
		if n.expire != 0 && (!ok || n.expire < d) {
			d, ok = n.expire, true
		}
	}
	return d, ok
}

func (m *model) oldest() uint64 {
	if m.index <= uint64(m.histCap) {
		return 1
	}
	return m.index - uint64(m.histCap) + 1
}

// ---- watchers in the model (§2.1, §2.2) -------------------------------

type mWatcher struct {
	w         *store.Watcher
	path      string
	recursive bool
	stream    bool
	since     uint64
	listed    bool           // expected to be registered with the store
	ended     bool           // stream ended for falling behind
	queued    int            // events in C not yet drained
	next      uint64         // resume point after the last queued event
	expect    []*store.Event // events expected on C since the last drain
	desc      string
}

// hiddenBetween reports whether an element of key below watched path w
// starts with "_".
func hiddenBetween(w, key string) bool {
	for _, e := range mElems(key)[len(mElems(w)):] {
		if strings.HasPrefix(e, "_") {
			return true
		}
	}
	return false
}

func eventPath(e *store.Event) string {
	if e.Node.Key == "" {
		return "/"
	}
	return e.Node.Key
}

// match is §2.2. removed is nil for history scans, which (as in etcd)
// match the removal of any directory above the watched path; live matching
// requires the watched node to have been inside the removed subtree. The
// hidden rule is applied to history scans too: Cairn's choice (etcd
// does not, API.md §1.8 calls it an inconsistency).
func match(w *mWatcher, e *store.Event, removed map[string]bool, live bool) bool {
	if e.Refresh {
		return false
	}
	key := eventPath(e)
	if key == w.path {
		return true
	}
	if w.recursive && mBelow(key, w.path) && !hiddenBetween(w.path, key) {
		return true
	}
	if (e.Action == store.ActionDelete || e.Action == store.ActionExpire) && e.Node.Dir && mBelow(w.path, key) {
		return !live || removed[w.path]
	}
	return false
}

func (m *model) queue(w *mWatcher, e *store.Event) {
	if w.stream && w.queued == store.StreamBuffer {
		w.ended, w.listed = true, false
		return
	}
	w.expect = append(w.expect, e)
	w.queued++
	w.next = e.Index + 1
	if !w.stream {
		w.listed = false
	}
}

func (m *model) offerLive(w *mWatcher, e *store.Event, removed map[string]bool) {
	if w.listed && e.Index >= w.since && match(w, e, removed, true) {
		m.queue(w, e)
	}
}

// watch predicts Store.Watch.
func (m *model) watch(p string, recursive, stream bool, since uint64) (*mWatcher, *store.Error) {
	last := m.index
	if since == 0 {
		since = last + 1
	}
	w := &mWatcher{path: p, recursive: recursive, stream: stream, since: since, next: since, listed: true}
	if since <= last {
		if since < m.oldest() {
			return nil, mErr(store.EcodeEventIndexCleared,
				fmt.Sprintf("the requested history has been cleared [%d/%d]", m.oldest(), since), last)
		}
		for i := since; i <= last; i++ {
			e := m.events[i-1]
			if match(w, e, nil, false) {
				m.queue(w, e)
				if !w.listed {
					return w, nil
				}
			}
		}
		w.next = last + 1
	}
	return w, nil
}

func (m *model) listedWatchers() int {
	n := 0
	for _, w := range m.watchers {
		if w.listed {
			n++
		}
	}
	return n
}

// ---- random requests --------------------------------------------------

var (
	modelNames  = []string{"a", "b", "c", "_h"}
	modelValues = []string{"", "x", "y", "zz", "with space/and slash"}
	modelTTLs   = []uint64{0, 1, 1, 2, 3, 5, 8, 30}
)

type gen struct {
	r     *rand.Rand
	clock int64
}

func newGen(seed uint64) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), clock: t0}
}

func (g *gen) pct(p int) bool { return g.r.IntN(100) < p }

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) randomPath() string {
	p := ""
	for range 1 + g.r.IntN(3) {
		p += "/" + g.pick(modelNames)
	}
	return p
}

// path draws a path: often an existing node (or a child of one), so that
// operations hit something; sometimes the root; otherwise anything.
func (g *gen) path(m *model) string {
	x := g.r.IntN(100)
	switch {
	case x < 4:
		return "/"
	case x < 55 && len(m.nodes) > 1:
		ps := m.paths()[1:] // without "/"
		p := ps[g.r.IntN(len(ps))]
		if g.pct(25) {
			p = mJoin(p, g.pick(modelNames))
		}
		return p
	default:
		return g.randomPath()
	}
}

func (g *gen) ttl(r *store.Request) {
	if !g.pct(35) {
		return
	}
	r.HasTTL = true
	if g.pct(96) {
		r.TTL = modelTTLs[g.r.IntN(len(modelTTLs))]
		return
	}
	room := uint64(math.MaxInt64 - r.Time) // Time > 0 here
	r.TTL = []uint64{
		math.MaxUint64, 1 << 63, maxTTL + 1, maxTTL,
		room/1e9 + 1, // the first TTL that overflows at this Time
		room / 1e9,   // the last one that does not: a deadline in 2262
	}[g.r.IntN(6)]
}

func (g *gen) prevs(r *store.Request, m *model) {
	n := m.nodes[r.Path]
	switch x := g.r.IntN(10); {
	case x < 4:
		r.PrevValue = ""
	case x < 8 && n != nil:
		r.PrevValue = n.value
	default:
		r.PrevValue = g.pick(modelValues[1:])
	}
	switch x := g.r.IntN(10); {
	case x < 4:
		r.PrevIndex = 0
	case x < 8 && n != nil:
		r.PrevIndex = n.modified
	default:
		r.PrevIndex = g.r.Uint64N(m.index + 2)
	}
}

func (g *gen) request(m *model) *store.Request {
	g.clock += g.r.Int64N(1500) * 1e6
	r := &store.Request{Time: g.clock, Path: g.path(m)}
	if g.pct(5) {
		r.Time -= g.r.Int64N(3 * sec) // a proposer whose clock lags
	}
	switch x := g.r.IntN(100); {
	case x < 22:
		r.Op = store.OpSet
		r.Value = g.pick(modelValues)
		r.Dir = g.pct(15)
		g.ttl(r)
		if g.pct(12) {
			r.Refresh, r.Value, r.Dir = true, "", false
			g.ttl(r)
			r.HasTTL = true
		}
	case x < 31:
		r.Op = store.OpCreate
		r.Value = g.pick(modelValues)
		r.Dir = g.pct(20)
		g.ttl(r)
	case x < 41:
		r.Op = store.OpUpdate
		r.Value = g.pick(modelValues)
		if n := m.nodes[r.Path]; n != nil && n.dir && g.pct(70) {
			r.Value = "" // the legal form of a directory update
		}
		r.Dir = g.pct(10) // ignored by update (§1.6)
		g.ttl(r)
		if g.pct(15) {
			r.Refresh, r.Value, r.HasTTL, r.TTL = true, "", true, modelTTLs[g.r.IntN(len(modelTTLs))]
		}
	case x < 53:
		r.Op = store.OpCompareAndSwap
		r.Value = g.pick(modelValues)
		g.prevs(r, m)
		g.ttl(r)
		if g.pct(15) {
			r.Refresh, r.Value, r.HasTTL, r.TTL = true, "", true, modelTTLs[g.r.IntN(len(modelTTLs))]
		}
	case x < 65:
		r.Op = store.OpDelete
		r.Dir, r.Recursive = g.pct(40), g.pct(30)
	case x < 72:
		r.Op = store.OpCompareAndDelete
		r.Dir, r.Recursive = g.pct(20), g.pct(20) // ignored (§1.3)
		g.prevs(r, m)
	case x < 80:
		r.Op = store.OpCreateInOrder
		if g.pct(50) {
			r.Path = mParent(r.Path)
		}
		r.Value = g.pick(modelValues)
		r.Dir = g.pct(15)
		g.ttl(r)
	default:
		r.Op = store.OpExpire
		if g.pct(30) {
			g.clock += g.r.Int64N(10 * sec)
		}
		r.Path, r.Time = "/", g.clock
	}
	return r
}

// ---- the driver -------------------------------------------------------

// modelSeeds returns the seeds to run: CAIRN_MODEL_SEED alone when set,
// otherwise n seeds from a fresh base, so each run explores new sequences.
func modelSeeds(t *testing.T, n int) []uint64 {
	if s := os.Getenv("CAIRN_MODEL_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CAIRN_MODEL_SEED=%q: %v", s, err)
		}
		return []uint64{seed}
	}
	base := uint64(time.Now().UnixNano())
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = base + uint64(i)
	}
	return seeds
}

type modelRun struct {
	t     *testing.T
	seed  uint64
	step  int
	trail []string // recent steps, for the failure report
	m     *model
	s     *store.Store
	g     *gen
	stats map[string]int // outcome counts, e.g. "compareAndSwap:101"
}

func (mr *modelRun) note(format string, args ...any) {
	mr.trail = append(mr.trail, fmt.Sprintf("  step %d: ", mr.step)+fmt.Sprintf(format, args...))
	if len(mr.trail) > 25 {
		mr.trail = mr.trail[1:]
	}
}

func (mr *modelRun) fail(format string, args ...any) {
	mr.t.Helper()
	mr.t.Fatalf("seed %d (rerun: CAIRN_MODEL_SEED=%d go test -run 'TestModel$' ./store), history %d, step %d: %s\nlast steps:\n%s",
		mr.seed, mr.seed, mr.m.histCap, mr.step, fmt.Sprintf(format, args...), strings.Join(mr.trail, "\n"))
}

func sameErr(a *store.Error, b error) bool {
	return fmtErr(a) == fmtErr(b)
}

func TestModel(t *testing.T) {
	seqs, steps := 120, 300
	if testing.Short() {
		seqs = 30
	}
	seeds := modelSeeds(t, seqs)
	stats := map[string]int{}
	for _, seed := range seeds {
		runModel(t, seed, steps, stats)
	}
	keys := slices.Sorted(maps.Keys(stats))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, stats[k])
	}
	t.Logf("outcomes:%s", b.String())
	if len(seeds) == 1 {
		return // a single replayed seed need not reach everything
	}
	// The generator must keep reaching every op and every error the store
	// can return, or the comparison above proves little.
	for _, k := range []string{
		"set:ok", "set:refresh", "create:ok", "update:ok", "update:refresh", "compareAndSwap:ok",
		"compareAndSwap:refresh", "delete:ok", "compareAndDelete:ok", "createInOrder:ok", "expire:events",
		"set:102", "set:104", "set:107", "set:202", "create:105", "create:104", "update:100", "update:102",
		"compareAndSwap:101", "compareAndDelete:101", "compareAndDelete:102", "delete:102", "delete:108", "delete:107",
		"createInOrder:104", "watch:401", "watch:history-hit", "watch:fired", "watch:dir-removal",
	} {
		if stats[k] == 0 {
			t.Errorf("no %q outcome in %d sequences: the generator no longer covers it", k, len(seeds))
		}
	}
}

func runModel(t *testing.T, seed uint64, steps int, stats map[string]int) {
	t.Helper()
	g := newGen(seed)
	histCap := []int{3, 32, 1024}[g.r.IntN(3)]
	mr := &modelRun{t: t, seed: seed, m: newModel(histCap), s: store.New(histCap), g: g, stats: stats}
	for mr.step = 1; mr.step <= steps; mr.step++ {
		if g.pct(12) && len(mr.m.watchers) < 12 {
			mr.addWatcher()
		}
		mr.applyOne()
		mr.checkWatchers()
	}
	for _, w := range mr.m.watchers {
		w.w.Remove()
	}
	if n := mr.s.WatcherCount(); n != 0 {
		mr.fail("%d watchers still registered after removing all", n)
	}
}

func (mr *modelRun) addWatcher() {
	m, g := mr.m, mr.g
	p := g.path(m)
	recursive, stream := g.pct(50), g.pct(40)
	var since uint64
	switch x := g.r.IntN(100); {
	case x < 60:
	case x < 85:
		since = 1 + g.r.Uint64N(m.index+1)
	default:
		since = m.index + 1 + g.r.Uint64N(3)
	}
	desc := fmt.Sprintf("watch %q recursive=%v stream=%v since=%d", p, recursive, stream, since)
	mr.note("%s", desc)
	want, werr := m.watch(p, recursive, stream, since)
	switch {
	case werr != nil:
		mr.stats["watch:401"]++
	case len(want.expect) > 0:
		mr.stats["watch:history-hit"]++
	}
	w, err := mr.s.Watch(p, recursive, stream, since)
	if werr != nil || err != nil {
		if werr == nil || !sameErr(werr, err) {
			mr.fail("%s:\n got  %s\n want %s", desc, fmtErr(err), fmtErr(werr))
		}
		return
	}
	if w.StartIndex != m.index {
		mr.fail("%s: StartIndex %d, want %d", desc, w.StartIndex, m.index)
	}
	want.w, want.desc = w, desc
	m.watchers = append(m.watchers, want)
}

func (mr *modelRun) applyOne() {
	m, s := mr.m, mr.s
	r := mr.g.request(m)
	mr.note("%s", fmtReq(r))
	wantEvs, wantErr := m.apply(r)
	got, err := s.Apply(uint64(mr.step), r)

	if wantErr != nil || err != nil {
		if wantErr == nil || !sameErr(wantErr, err) {
			mr.fail("%s:\n got  %s\n want %s", fmtReq(r), fmtResult(got, err), fmtErr(wantErr))
		}
	} else if r.Op == store.OpExpire {
		if got != nil {
			mr.fail("%s: got event %s, want nil (expiry events go to the history)", fmtReq(r), fmtEvent(got))
		}
	} else if g, w := fmtEvent(got), fmtEvent(wantEvs[0]); g != w {
		mr.fail("%s:\n got  %s\n want %s", fmtReq(r), g, w)
	}
	for _, e := range wantEvs {
		mr.note("  -> %s", fmtEvent(e))
	}
	switch {
	case wantErr != nil:
		mr.note("  -> %s", fmtErr(wantErr))
		mr.stats[fmt.Sprintf("%v:%d", r.Op, wantErr.Code)]++
	case r.Op == store.OpExpire && len(wantEvs) > 0:
		mr.stats["expire:events"]++
	case r.Refresh && wantEvs[0].Refresh:
		mr.stats[fmt.Sprintf("%v:refresh", r.Op)]++
	case r.Op != store.OpExpire:
		mr.stats[fmt.Sprintf("%v:ok", r.Op)]++
	}

	if s.Index() != m.index {
		mr.fail("Index() = %d, want %d", s.Index(), m.index)
	}
	if s.RaftIndex() != uint64(mr.step) {
		mr.fail("RaftIndex() = %d, want %d", s.RaftIndex(), mr.step)
	}
	if got, want := s.DataBytes(), m.dataBytes(); got != want {
		mr.fail("DataBytes() = %d, want %d", got, want)
	}
	// The whole tree.
	mr.compareGet("/", true)
	// The node the request named, its parent, and some other path.
	mr.compareGet(r.Path, false)
	mr.compareGet(mParent(r.Path), mr.g.pct(50))
	mr.compareGet(mr.g.randomPath(), false)

	// Expiry events are not returned by Apply: read them back from the
	// history with a watch on the expired key at the event's index.
	if r.Op == store.OpExpire {
		for _, e := range wantEvs {
			if e.Index < m.oldest() {
				continue
			}
			w, err := s.Watch(e.Node.Key, false, false, e.Index)
			if err != nil {
				mr.fail("reading expire event %d back: %v", e.Index, err)
			}
			got := recv(w)
			w.Remove()
			if g, w := fmtEvent(got), fmtEvent(e); g != w {
				mr.fail("expire event in the history:\n got  %s\n want %s", g, w)
			}
		}
	}

	gd, gok := s.NextDeadline()
	wd, wok := m.nextDeadline()
	if gd != wd || gok != wok {
		mr.fail("NextDeadline() = %d,%v, want %d,%v", gd-t0, gok, wd-t0, wok)
	}
}

func (mr *modelRun) compareGet(p string, recursive bool) {
	want, werr := mr.m.get(p, recursive)
	got, err := mr.s.Get(p, recursive)
	var w, g string
	if werr != nil {
		w = fmtErr(werr)
	} else {
		w = fmtEvent(want)
	}
	g = fmtResult(got, err)
	if g != w {
		mr.fail("Get(%q, recursive=%v):\n got  %s\n want %s", p, recursive, g, w)
	}
	// Visit meets the nodes of that answer, in its order.
	var want2, got2 []string
	if err == nil {
		var flatten func(v *store.NodeView)
		flatten = func(v *store.NodeView) {
			cp := *v
			cp.Nodes = nil
			want2 = append(want2, fmtView(&cp))
			for _, c := range v.Nodes {
				flatten(c)
			}
		}
		flatten(got.Node)
	}
	verr := mr.s.Visit(p, recursive, func(v store.NodeView) bool {
		got2 = append(got2, fmtView(&v))
		return true
	})
	if fmt.Sprint(verr) != fmt.Sprint(err) || !slices.Equal(got2, want2) {
		mr.fail("Visit(%q, recursive=%v): %v\n got  %q\n want %q", p, recursive, verr, got2, want2)
	}
	if len(want2) > 1 {
		calls := 0
		_ = mr.s.Visit(p, recursive, func(store.NodeView) bool { calls++; return calls < 2 })
		if calls != 2 {
			mr.fail("Visit(%q) went on after f returned false: %d calls", p, calls)
		}
	}
}

// checkWatchers drains every watcher and compares what arrived with the
// model's prediction, then forgets finished watchers and removes a few
// stream watchers at random.
func (mr *modelRun) checkWatchers() {
	m := mr.m
	keep := m.watchers[:0]
	for _, w := range m.watchers {
		var got []string
		closed := false
	drain:
		for {
			select {
			case e, ok := <-w.w.C:
				if !ok {
					closed = true
					break drain
				}
				got = append(got, fmtEvent(e))
			default:
				break drain
			}
		}
		var want []string
		for _, e := range w.expect {
			want = append(want, fmtEvent(e))
		}
		if !slices.Equal(got, want) {
			mr.fail("%s received\n  %s\nwant\n  %s", w.desc, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		if closed != w.ended {
			mr.fail("%s: closed=%v (err %v), want closed=%v", w.desc, closed, w.w.Err(), w.ended)
		}
		if w.ended {
			if w.w.Err() != store.ErrWatcherTooSlow || w.w.NextIndex() != w.next {
				mr.fail("%s ended: Err()=%v NextIndex()=%d, want %v %d", w.desc, w.w.Err(), w.w.NextIndex(), store.ErrWatcherTooSlow, w.next)
			}
		}
		for _, e := range w.expect {
			mr.stats["watch:fired"]++
			if (e.Action == store.ActionDelete || e.Action == store.ActionExpire) && e.Node.Key != w.path {
				mr.stats["watch:dir-removal"]++
			}
		}
		if w.ended {
			mr.stats["watch:ended"]++
		}
		w.expect, w.queued = nil, 0
		switch {
		case !w.listed:
			w.w.Remove() // idempotent: must not disturb the count
		case w.stream && mr.g.pct(5):
			w.w.Remove()
			w.listed = false
			mr.note("remove %s", w.desc)
		default:
			keep = append(keep, w)
		}
	}
	m.watchers = keep
	if got, want := mr.s.WatcherCount(), m.listedWatchers(); got != want {
		mr.fail("WatcherCount() = %d, want %d", got, want)
	}
}

// ---- determinism ------------------------------------------------------

// randomSequence draws n requests from a model-guided generator.
func randomSequence(seed uint64, n int) []*store.Request {
	g := newGen(seed)
	m := newModel(1 << 20)
	out := make([]*store.Request, 0, n)
	for range n {
		r := g.request(m)
		m.apply(r)
		out = append(out, r)
	}
	return out
}

// TestDeterminism applies one random sequence to two stores directly and
// to a third through Marshal/Unmarshal: the outcomes and Hash must agree
// after every step, and Hash must change exactly when the state changes.
func TestDeterminism(t *testing.T) {
	for _, seed := range modelSeeds(t, 10) {
		reqs := randomSequence(seed, 400)
		a, b, c := store.New(64), store.New(64), store.New(64)
		prevHash, prevIndex := a.Hash(), a.Index()
		var buf []byte
		for i, r := range reqs {
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("seed %d (CAIRN_MODEL_SEED=%d) step %d %s: %s", seed, seed, i+1, fmtReq(r), fmt.Sprintf(format, args...))
			}
			buf = r.Marshal(buf[:0])
			var dec store.Request
			if err := dec.Unmarshal(buf); err != nil {
				fail("Unmarshal(Marshal(r)): %v", err)
			}
			if dec != *r {
				fail("decoded as %s", fmtReq(&dec))
			}
			ea, erra := a.Apply(uint64(i+1), r)
			eb, errb := b.Apply(uint64(i+1), r)
			ec, errc := c.Apply(uint64(i+1), &dec)
			ra, rb, rc := fmtResult(ea, erra), fmtResult(eb, errb), fmtResult(ec, errc)
			if ra != rb || ra != rc {
				fail("outcomes differ:\n a %s\n b %s\n c %s", ra, rb, rc)
			}
			ha, hb, hc := a.Hash(), b.Hash(), c.Hash()
			if ha != hb || ha != hc {
				fail("hashes differ: %x %x %x", ha, hb, hc)
			}
			// Every change takes an index; nothing else changes state.
			changed := a.Index() != prevIndex
			if changed == (ha == prevHash) {
				fail("index %d -> %d but hash %x -> %x", prevIndex, a.Index(), prevHash, ha)
			}
			prevHash, prevIndex = ha, a.Index()
		}
		if a.Index() == 0 {
			t.Fatalf("seed %d: the sequence changed nothing", seed)
		}
	}
}
