package server

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/cairnkv/cairn/store"
)

// The simulator's watch workload and its checker: watches see the
// committed history.
//
// Watch clients behave as etcd v2 clients do. Each keeps one watch open
// through Member.Watch (the call behind the v2 keys API), stream or
// long-poll, and resumes with waitIndex = the last event's modifiedIndex
// + 1: after each long-poll event, when a stream is ended, when its
// member crashes or installs a snapshot, or when it gives up on a member
// and moves on; it resumes on a random live member. An answer "event
// index cleared" (401) is the one allowed gap: the client records it,
// from its waitIndex to the index in the answer, and watches on from
// there. The simulator polls their channels after every step, in a fixed
// order, without blocking.
//
// The reference history is what the members' stores publish. Every
// change a store applies is published once, in index order, and a
// recursive stream watch on "/" receives every one of them that a watch
// on a key below it can match (not refreshes, not hidden keys: neither
// can match the watched keys). The simulator holds such a tap on each
// store from the moment the store is opened (a start, or a snapshot
// installed, both before anything is applied to it) and drains it before
// each entry is applied and after each step, so it never falls behind,
// and before a crash, so nothing published is lost. Each index's event
// is recorded by the first member to publish it, and every member that
// publishes it again (a follower, a member replaying its log after a
// restart) must publish the same event: the members' histories agree.
// Taps are registered with no waitIndex and so never read a store's
// history, the part of the store that watchers resuming from the past
// rely on and that the checker therefore must not trust.
//
// The checker: every event a watcher receives equals the reference event
// at its index and matches its watch; a watcher's indexes strictly
// increase across its whole life (across resumes and members); no event
// the watch matches is missed between two it received, or between where
// it resumed and the next, except in a recorded 401 gap; and at the end,
// after healing, each watcher has received every matching event up to
// the last one committed (liveness).

// simWatchSpecs are the watches: the registers (recursive), one register
// alone, and the TTL keys' directory (so expirations are watched).
var simWatchSpecs = []struct {
	path      string
	recursive bool
}{{"/r", true}, {"/r/a", false}, {"/ttl", true}}

// simWatches is the watch workload's state.
type simWatches struct {
	// rng draws the watchers' choices. It is seeded from the world's seed
	// but apart from w.rng, so that the watchers, which change nothing in
	// the cluster, leave every seed's cluster run as it was without them.
	rng *rand.Rand
	// history is MemberConfig.EventHistory (0: the default). Some seeds
	// keep a short history, so that resumes meet "event index cleared".
	history  int
	watchers []*simWatcher
	taps     []*simTap // by node
	// ref is the reference history: each store index's event.
	ref map[uint64]simRef
}

type simRef struct {
	member uint64
	ev     *store.Event
}

// simTap is the simulator's recursive stream watch on "/" of one store.
type simTap struct {
	st *store.Store
	wt *store.Watcher
}

type simWatcher struct {
	n         int
	path      string
	recursive bool
	stream    bool
	// The open watch (wt nil: none); member is where the next watch
	// goes (-1: a random live member).
	member int
	inc    int
	st     *store.Store
	wt     *store.Watcher
	// next is the waitIndex of the next watch: the last event's
	// modifiedIndex + 1 (1 at first: the whole history).
	next    uint64
	got     []simWatchGot
	gaps    []simGap // "event index cleared": from..to were not delivered
	watches int
	// away: until then the client reads nothing (a slow or stalled
	// reader: its stream fills up, its waitIndex falls behind).
	away time.Duration
}

type simWatchGot struct {
	member uint64
	ev     *store.Event
}

type simGap struct{ from, to uint64 }

func newSimWatches(seed uint64) *simWatches {
	wa := &simWatches{rng: rand.New(rand.NewPCG(seed, 0x3a7c4e5)), ref: map[uint64]simRef{}}
	if wa.rng.IntN(3) == 0 {
		wa.history = 8 + wa.rng.IntN(120)
	}
	for i, s := range simWatchSpecs {
		wa.watchers = append(wa.watchers, &simWatcher{n: i, path: s.path, recursive: s.recursive,
			stream: wa.rng.IntN(2) == 0, member: -1, next: 1})
	}
	wa.taps = make([]*simTap, simMembers)
	return wa
}

// startWatchers schedules the watchers' first moves.
func (w *simWorld) startWatchers() {
	w.trace("watchers: event history %d (0: the default)", w.wa.history)
	for _, wc := range w.wa.watchers {
		w.at(w.wa.dur(0, 100*time.Millisecond), &simEvent{kind: skWatch, client: wc.n})
	}
}

func (wa *simWatches) dur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(wa.rng.Int64N(int64(hi-lo)+1))
}

// tapStart taps member i's store just opened, before it applies anything.
func (w *simWorld) tapStart(i int) {
	m := w.nodes[i].m
	st := m.Store()
	wt, err := st.Watch("/", true, true, 0)
	if err != nil {
		w.fail("member %d: tapping the store: %v", w.nodes[i].id, err)
		return
	}
	for len(w.wa.taps) <= i { // a member added by the operator
		w.wa.taps = append(w.wa.taps, nil)
	}
	w.wa.taps[i] = &simTap{st: st, wt: wt}
}

// tapSync records what member i's store has published and, when the
// member installed a snapshot since (a new store), taps the new store.
// It runs before each entry the member applies and after each step.
func (w *simWorld) tapSync(i int) {
	if i >= len(w.wa.taps) {
		return
	}
	m := w.nodes[i].m
	t := w.wa.taps[i]
	if m == nil || t == nil {
		return
	}
	w.tapDrain(i)
	if m.Store() != t.st {
		w.tapStart(i)
	}
}

// tapDrain records the events waiting on member i's tap.
func (w *simWorld) tapDrain(i int) {
	if i >= len(w.wa.taps) {
		return
	}
	t := w.wa.taps[i]
	if t == nil || t.wt == nil {
		return
	}
	for {
		select {
		case ev, ok := <-t.wt.C:
			if ok {
				w.recordRef(w.nodes[i].id, ev)
				continue
			}
			if errors.Is(t.wt.Err(), store.ErrWatcherTooSlow) {
				// (Unlikely: it is drained before each entry is applied.)
				wt, err := t.st.Watch("/", true, true, t.wt.NextIndex())
				if err != nil {
					w.fail("member %d: the reference tap fell behind and cannot resume: %v", w.nodes[i].id, err)
					t.wt = nil
					return
				}
				t.wt = wt
				continue
			}
			t.wt = nil // the store was replaced: tapSync taps the new one
			return
		default:
			return
		}
	}
}

// recordRef adds ev, published by member id, to the reference history,
// or checks it against the event already there.
func (w *simWorld) recordRef(id uint64, ev *store.Event) {
	r, ok := w.wa.ref[ev.Index]
	if !ok {
		w.wa.ref[ev.Index] = simRef{member: id, ev: ev}
		return
	}
	if !simSameEvent(r.ev, ev) {
		w.fail("watch history: member %d published at index %d %s, member %d %s",
			id, ev.Index, simEventString(ev), r.member, simEventString(r.ev))
	}
}

// tapCrash records what member i published before it goes down.
func (w *simWorld) tapCrash(i int) {
	w.tapDrain(i)
	if i < len(w.wa.taps) {
		w.wa.taps[i] = nil
	}
}

// watchStep is watcher n's own move: open a watch if it has none; while
// faults last, now and then give up on its member (a request timed out,
// a connection broke) and resume on another, or stall for a while.
func (w *simWorld) watchStep(n int) {
	wc := w.wa.watchers[n]
	if !w.calm && w.now >= wc.away {
		switch r := w.wa.rng.IntN(12); {
		case r < 2 && wc.wt != nil:
			w.trace("watcher %d: leaves member %d", wc.n, w.nodes[wc.member].id)
			wc.wt.Remove()
			wc.wt, wc.member = nil, -1
		case r == 2:
			// (At most 12 s: a watcher stalled as the faults stop is
			// back well before the end, for the liveness check.)
			wc.away = w.now + w.wa.dur(500*time.Millisecond, 12*time.Second)
			w.trace("watcher %d: stalls until %v", wc.n, wc.away)
		}
	}
	w.pollWatcher(wc)
}

// pollWatches collects what the taps and the watchers received.
func (w *simWorld) pollWatches() {
	for i := range w.nodes {
		w.tapSync(i)
	}
	for _, wc := range w.wa.watchers {
		w.pollWatcher(wc)
	}
}

// pollWatcher takes the events waiting for wc and resumes its watch when
// it has none or lost it.
func (w *simWorld) pollWatcher(wc *simWatcher) {
	if wc.wt != nil {
		if n := w.nodes[wc.member]; n.m == nil || n.inc != wc.inc {
			// The member went down: the connection broke, with whatever
			// was buffered on it.
			w.trace("watcher %d: member %d went down", wc.n, n.id)
			wc.wt, wc.member = nil, -1
		}
	}
	if w.now < wc.away {
		return
	}
	for w.failure == nil {
		if wc.wt == nil && !w.openWatch(wc) {
			return
		}
		select {
		case ev, ok := <-wc.wt.C:
			if !ok {
				w.trace("watcher %d: ended by member %d: %v", wc.n, w.nodes[wc.member].id, wc.wt.Err())
				wc.wt, wc.member = nil, -1
				continue
			}
			w.delivered(wc, ev)
			if !wc.stream {
				// A long-poll answer: the next one from the same member.
				wc.wt = nil
			}
		default:
			if n := w.nodes[wc.member]; n.m.Store() != wc.st {
				// Replace ends the old store's watchers as it installs.
				w.fail("watcher %d: member %d installed a snapshot and left the watch open on the old store", wc.n, n.id)
			}
			return
		}
	}
}

// openWatch opens wc's watch at waitIndex wc.next on its member, or on a
// random live member; it reports whether one is open.
func (w *simWorld) openWatch(wc *simWatcher) bool {
	i := wc.member
	if i < 0 || w.nodes[i].m == nil {
		var live []int
		for j, n := range w.nodes {
			if n.m != nil {
				live = append(live, j)
			}
		}
		if len(live) == 0 {
			return false
		}
		i = live[w.wa.rng.IntN(len(live))]
	}
	n := w.nodes[i]
	wc.watches++
	for {
		st := n.m.Store()
		wt, err := n.m.Watch(wc.path, wc.recursive, wc.stream, wc.next)
		var se *store.Error
		if errors.As(err, &se) && se.Code == store.EcodeEventIndexCleared {
			if why := w.wa.clearedWrongly(wc.next, se); why != "" {
				w.fail("watcher %d: member %d answered waitIndex %d with event index cleared (%q, index %d): %s",
					wc.n, n.id, wc.next, se.Cause, se.Index, why)
				return false
			}
			// The one allowed gap: etcd clients watch on from the
			// store's index.
			w.trace("watcher %d: member %d cleared %d..%d", wc.n, n.id, wc.next, se.Index)
			wc.gaps = append(wc.gaps, simGap{from: wc.next, to: se.Index})
			wc.next = se.Index + 1
			continue
		}
		if err != nil {
			w.fail("watcher %d: watch %s from %d on member %d: %v", wc.n, wc.path, wc.next, n.id, err)
			return false
		}
		wc.member, wc.inc, wc.st, wc.wt = i, n.inc, st, wt
		return true
	}
}

// clearedWrongly says what is wrong with a 401 answer to waitIndex since,
// if anything. The history holds the last EventHistory events, across
// restarts and snapshots (the applied-state file keeps them), so only a
// waitIndex before those may be cleared, and the cause names the oldest
// held.
func (wa *simWatches) clearedWrongly(since uint64, se *store.Error) string {
	c := uint64(wa.history)
	if c == 0 {
		c = store.DefaultEventHistory
	}
	if se.Index < c || since > se.Index-c {
		return fmt.Sprintf("a history of %d events at index %d holds it", c, se.Index)
	}
	var oldest, req uint64
	at := strings.LastIndexByte(se.Cause, '[')
	if at < 0 {
		at = len(se.Cause)
	}
	if _, err := fmt.Sscanf(se.Cause[at:], "[%d/%d]", &oldest, &req); err != nil ||
		oldest != se.Index-c+1 || req != since {
		return fmt.Sprintf("the cause should read [%d/%d]", se.Index-c+1, since)
	}
	return ""
}

// delivered takes one event a watcher received.
func (w *simWorld) delivered(wc *simWatcher, ev *store.Event) {
	id := w.nodes[wc.member].id
	switch {
	case ev.Node == nil || ev.Node.ModifiedIndex != ev.Index:
		w.fail("watcher %d: member %d delivered an event at index %d whose node is %+v", wc.n, id, ev.Index, ev.Node)
	case ev.Index < wc.next:
		w.fail("watcher %d: member %d delivered index %d, waitIndex was %d (last delivered %d)", wc.n, id, ev.Index, wc.next, wc.last())
	case !simWatchMatches(wc.path, wc.recursive, ev):
		w.fail("watcher %d on %s (recursive %v): member %d delivered %s", wc.n, wc.path, wc.recursive, id, simEventString(ev))
	}
	wc.got = append(wc.got, simWatchGot{member: id, ev: ev})
	wc.next = ev.Node.ModifiedIndex + 1
}

func (wc *simWatcher) last() uint64 {
	if len(wc.got) == 0 {
		return 0
	}
	return wc.got[len(wc.got)-1].ev.Index
}

// checkWatches is the checker, at the end of a run.
func (w *simWorld) checkWatches() error {
	w.pollWatches()
	if w.failure != nil {
		return w.failure
	}
	idx := slices.Sorted(maps.Keys(w.wa.ref))
	for _, wc := range w.wa.watchers {
		w.trace("watcher %d on %s (recursive %v, stream %v): %d events, last %d, %d watches, gaps %v",
			wc.n, wc.path, wc.recursive, wc.stream, len(wc.got), wc.last(), wc.watches, wc.gaps)
		if wc.wt == nil {
			return fmt.Errorf("watch liveness: watcher %d has no watch open after healing", wc.n)
		}
		for _, g := range wc.got {
			r, ok := w.wa.ref[g.ev.Index]
			if !ok {
				return fmt.Errorf("watch history: watcher %d got from member %d at index %d %s, an event no member published",
					wc.n, g.member, g.ev.Index, simEventString(g.ev))
			}
			if !simSameEvent(r.ev, g.ev) {
				return fmt.Errorf("watch history: watcher %d got from member %d at index %d %s, the history has %s (member %d)",
					wc.n, g.member, g.ev.Index, simEventString(g.ev), simEventString(r.ev), r.member)
			}
		}
		// Every matching event, outside the recorded gaps, was delivered.
		k := 0 // into wc.got
		for _, i := range idx {
			ev := w.wa.ref[i].ev
			if !simWatchMatches(wc.path, wc.recursive, ev) || wc.inGap(i) {
				continue
			}
			for k < len(wc.got) && wc.got[k].ev.Index < i {
				k++
			}
			if k < len(wc.got) && wc.got[k].ev.Index == i {
				continue
			}
			if k == len(wc.got) {
				return fmt.Errorf("watch liveness: watcher %d on %s has not caught up after healing: last delivered %d, missing %s (and any later)",
					wc.n, wc.path, wc.last(), simEventString(ev))
			}
			prev := uint64(0)
			if k > 0 {
				prev = wc.got[k-1].ev.Index
			}
			return fmt.Errorf("watch gap: watcher %d on %s missed %s between index %d and %d (from member %d)",
				wc.n, wc.path, simEventString(ev), prev, wc.got[k].ev.Index, wc.got[k].member)
		}
	}
	return nil
}

func (wc *simWatcher) inGap(i uint64) bool {
	for _, g := range wc.gaps {
		if i >= g.from && i <= g.to {
			return true
		}
	}
	return false
}

// simWatchMatches is whether a watch on path (recursive or not) is to see
// ev, by the rules of the v2 API, written out here apart from the store's
// own: the node itself; with recursive, any node below it with no hidden
// element below the watched path; a deleted or expired directory that
// held it. Refreshes wake no watcher.
func simWatchMatches(path string, recursive bool, ev *store.Event) bool {
	if ev.Refresh || ev.Node == nil {
		return false
	}
	key := ev.Node.Key
	if key == "" {
		key = "/"
	}
	if key == path {
		return true
	}
	if recursive && strings.HasPrefix(key, path+"/") && !strings.Contains(key[len(path):], "/_") {
		return true
	}
	gone := ev.Action == store.ActionDelete || ev.Action == store.ActionExpire
	return gone && ev.Node.Dir && (key == "/" || strings.HasPrefix(path, key+"/"))
}

// simSameEvent compares everything a client sees of an event.
func simSameEvent(a, b *store.Event) bool {
	return a.Action == b.Action && a.Index == b.Index && a.Time == b.Time && a.Refresh == b.Refresh &&
		simSameNode(a.Node, b.Node) && simSameNode(a.PrevNode, b.PrevNode)
}

func simSameNode(a, b *store.NodeView) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Key == b.Key && a.Value == b.Value && a.HasValue == b.HasValue && a.Dir == b.Dir &&
		a.Expiration == b.Expiration && a.ModifiedIndex == b.ModifiedIndex && a.CreatedIndex == b.CreatedIndex &&
		len(a.Nodes) == 0 && len(b.Nodes) == 0
}

func simEventString(ev *store.Event) string {
	node := func(v *store.NodeView) string {
		if v == nil {
			return "none"
		}
		return fmt.Sprintf("{%s %q dir=%v exp=%d mod=%d created=%d}", v.Key, v.Value, v.Dir, v.Expiration, v.ModifiedIndex, v.CreatedIndex)
	}
	return fmt.Sprintf("%d:%s %s prev %s", ev.Index, ev.Action, node(ev.Node), node(ev.PrevNode))
}
