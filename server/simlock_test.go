package server

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/simfs"
	"github.com/cairnkv/cairn/locks"
	"github.com/cairnkv/cairn/store"
)

// The simulator's lock workload: clients take one lock as package locks
// does, through store operations.
//
// An acquire runs on one member, as locks.Acquire does for the request it
// serves: it queues a waiter key (OpAcquire with Wait and a TTL), then, as
// locks.waitHead, reads the lock directory in the member's local state
// until no waiter is ahead of it, confirms with a linearizable read that
// its key still exists (then it holds the lock; the key's createdIndex is
// its fencing token), and meanwhile refreshes its key every TTL/4 (as
// locks.KeepAlive: OpUpdate with Refresh, each try bounded by TTL/3). When
// its key is gone, or its wait's timeout passes, locks.WaitEnded decides:
// join the line again, or leave it (delete the key) and answer. The
// holder, now a client on any member, makes fenced writes to a register,
// refreshes its key (as locks.Refresh), may hold longer than the TTL, and
// releases (deletes its key).
//
// A holding interval runs from the read that granted it to the release
// sent, cut at its lease's end: the call time of the acquire, or of the
// last refresh acknowledged, plus the TTL (the key cannot expire earlier,
// every clock being the simulator's). Checked: no two holding intervals
// overlap; the tokens of the fenced writes the store accepted never go
// down in commit order; and no waiting acquire is answered 100 (key not
// found) unless its key was deleted (only its own client deletes it here,
// after the answer): a waiter whose key expired joins the line again.

const (
	simLockers   = 3
	simLockDir   = store.LocksDir + "/sim"
	simLockReg   = "/lockreg" // the register the holders write, fenced
	simLockTTL   = 4          // seconds: lingering keys expire before the end of a run
	simLockEvery = simLockTTL * time.Second / 4
)

type simLockState uint8

const (
	slIdle      simLockState = iota
	slAcquiring              // the OpAcquire is pending (queueing, or queueing again)
	slWaiting                // queued: waiting for the head, on the acquire's member
	slLeaving                // the wait ended: deleting the waiter key before answering
	slHolding                // granted: fenced writes and refreshes
	slReleasing              // the release (delete) is pending
)

// simLockOp is what a locker's pending operation is.
type simLockOp uint8

const (
	sloAcquire simLockOp = iota + 1
	sloRefresh
	sloConfirm // the linearizable read of its own key at the head
	sloWrite
	sloDelete
)

type simLocker struct {
	n     int
	state simLockState
	// The acquire's member (and its incarnation): every operation of a
	// wait goes through it, as through the member serving the request.
	member, inc int
	key         string
	token       uint64
	index       uint64        // the store index the waiter was queued at
	waitUntil   time.Duration // the acquire's wait timeout (0: none)
	leaseEnd    time.Duration
	nextRefresh time.Duration
	holdUntil   time.Duration // a holder releases then
	leaderless  time.Duration // a confirming read found no leader since (0: a leader was known)
	hold        *simHold
	pending     *simOp
	pkind       simLockOp
	answer      error // a leaving waiter's answer to its caller
	rejoins     int
}

// simHold is one holding interval as its client saw it.
type simHold struct {
	client   int
	token    uint64
	from, to time.Duration
	open     bool
	writes   int // fenced writes accepted
}

// simFenced is a fenced write the store accepted.
type simFenced struct {
	client int
	token  uint64
	index  uint64
}

// simLockLog counts what the lockers went through.
type simLockLog struct {
	grants, rejoins, timeouts, refreshes, lost int
}

// lockStep is locker l's next move.
func (w *simWorld) lockStep(l *simLocker) {
	if l.state == slHolding && w.now >= l.leaseEnd {
		// The lease ended (refreshes failed): the lock may be someone
		// else's now. Stop, and release.
		if l.hold.open {
			w.endHold(l, l.leaseEnd)
		}
		l.state = slReleasing
	}
	if l.state == slWaiting || l.state == slLeaving || (l.state == slAcquiring && l.key != "") {
		if n := w.nodes[l.member]; n.m == nil || n.inc != l.inc || n.stopping {
			// The member serving the acquire went away, and the request
			// with it: the caller is told nothing certain. The key may
			// linger until its TTL.
			w.trace("locker %d: the acquire's member %d went away", l.n, l.member+1)
			l.pending, l.state, l.key = nil, slIdle, ""
			return
		}
	}
	if l.pending != nil {
		w.lockPendingStep(l)
		return
	}
	switch l.state {
	case slIdle:
		i, m := w.upMember()
		if m == nil {
			return
		}
		l.member, l.inc = i, w.nodes[i].inc
		l.key, l.waitUntil = "", 0
		if w.rng.IntN(2) == 0 {
			l.waitUntil = w.now + w.dur(3*time.Second, 12*time.Second)
		}
		l.state = slAcquiring
		w.lockPropose(l, l.member, sloAcquire, &store.Request{Op: store.OpAcquire, Path: simLockDir,
			Value: fmt.Sprintf("locker%d", l.n), Wait: true, HasTTL: true, TTL: simLockTTL})
	case slWaiting:
		w.waitStep(l)
	case slHolding:
		switch {
		case w.now >= l.nextRefresh:
			l.nextRefresh = w.now + simLockEvery
			i, m := w.upMember()
			if m != nil {
				w.lockPropose(l, i, sloRefresh, &store.Request{Op: store.OpUpdate, Path: l.key, Refresh: true, HasTTL: true, TTL: simLockTTL})
			}
		case w.now >= l.holdUntil:
			w.release(l)
		case w.rng.IntN(3) == 0:
			i, m := w.upMember()
			if m != nil {
				w.lockPropose(l, i, sloWrite, &store.Request{Op: store.OpSet, Path: simLockReg,
					Value: fmt.Sprintf("locker%d-%d", l.n, l.token), FenceLock: simLockDir, FenceToken: l.token})
			}
		}
	case slReleasing:
		w.release(l)
	}
}

// upMember picks a member for a client's next request: a random one, if
// it is up (nil otherwise).
func (w *simWorld) upMember() (int, *Member) {
	i := w.pickNode()
	n := w.nodes[i]
	if n.m == nil || n.stopping {
		return i, nil
	}
	return i, n.m
}

// waitStep is one move of a waiter, as locks.waitHead makes them: the
// refresh that falls due, or a look at the line in the local state.
func (w *simWorld) waitStep(l *simLocker) {
	m := w.nodes[l.member].m
	if l.waitUntil != 0 && w.now >= l.waitUntil {
		w.waitEnded(l, locks.WaitTimeout(l.index), true)
		return
	}
	if w.now >= l.nextRefresh {
		l.nextRefresh = w.now + simLockEvery
		w.lockPropose(l, l.member, sloRefresh, &store.Request{Op: store.OpUpdate, Path: l.key, Refresh: true, HasTTL: true, TTL: simLockTTL})
		return
	}
	// The local state includes our waiter (it was applied here).
	ev, err := m.Store().Get(simLockDir, true)
	pred, found := "", false
	if err == nil {
		for _, nd := range ev.Node.Nodes {
			if nd.Key == l.key {
				found = true
				break
			}
			pred = nd.Key
		}
	}
	switch {
	case !found:
		w.waitEnded(l, store.NewError(store.EcodeKeyNotFound, l.key, m.Store().Index()), false)
	case pred == "":
		// At the head here: confirm with a linearizable read.
		l.leaderless = 0
		op := &simOp{member: l.member, inc: l.inc, call: w.now}
		l.pending, l.pkind = op, sloConfirm
		if m.cfg.UnsafeLocalReads {
			w.confirmHead(l, m)
			return
		}
		op.read = make(chan struct{})
		w.step(l.member, event{kind: evRead, read: op.read})
	}
	// Otherwise a waiter is ahead: look again next time (locks.waitHead
	// watches it; the local state is what it would see).
}

// lockPendingStep gives up on a pending operation as its caller would:
// a refresh after TTL/3 (locks.KeepAlive), a confirming read once no
// leader was known for an election timeout or after the request timeout
// (Member.confirmRead), anything else after simOpTimeout; and a waiter's
// operation when its wait's timeout passes.
func (w *simWorld) lockPendingStep(l *simLocker) {
	op := l.pending
	age := w.now - op.call
	if l.state == slWaiting && l.waitUntil != 0 && w.now >= l.waitUntil {
		// The wait's context ends, and the operation with it.
		w.dropPending(l)
		w.waitEnded(l, locks.WaitTimeout(l.index), true)
		return
	}
	switch l.pkind {
	case sloConfirm:
		m := w.nodes[op.member].m
		if m.lead.Load() != 0 {
			l.leaderless = 0
		} else if l.leaderless == 0 {
			l.leaderless = w.now
		}
		if (l.leaderless != 0 && w.now-l.leaderless >= time.Duration(m.cfg.ElectionTicks)*m.cfg.HeartbeatInterval) ||
			age >= m.cfg.RequestTimeout {
			l.pending = nil // unconfirmed, still in line: ask again (and refresh) next time
		}
	case sloRefresh:
		if age >= simLockTTL*time.Second/3 {
			w.lockAbandon(l)
		}
	case sloDelete:
		limit := simOpTimeout // the client's release
		if l.state == slLeaving {
			// The member's own: leaving the line (10 s in locks.Acquire,
			// and Member.Do's request timeout).
			limit = min(10*time.Second, w.nodes[op.member].m.cfg.RequestTimeout)
		}
		if age >= limit {
			w.lockAbandon(l)
		}
	default:
		if age >= simOpTimeout {
			w.lockAbandon(l)
		}
	}
}

// lockAbandon gives up a pending proposal as Member.awaitResult does when
// its context ends: its answer if it came meanwhile, else outcome unknown.
func (w *simWorld) lockAbandon(l *simLocker) {
	op := l.pending
	res := result{err: ErrTimeout}
	if n := w.nodes[op.member]; n.m != nil && n.inc == op.inc {
		res = n.m.abandon(op.id, op.ch)
	}
	w.lockAnswer(l, res)
}

// dropPending gives up a pending operation and its answer (the wait it
// was part of ended).
func (w *simWorld) dropPending(l *simLocker) {
	op := l.pending
	l.pending = nil
	if op == nil || op.ch == nil {
		return
	}
	if n := w.nodes[op.member]; n.m != nil && n.inc == op.inc {
		n.m.abandon(op.id, op.ch)
	}
}

// lockPropose proposes r on member i for locker l.
func (w *simWorld) lockPropose(l *simLocker, i int, kind simLockOp, r *store.Request) {
	m := w.nodes[i].m
	r.Time = w.clock().UnixNano()
	op := &simOp{member: i, inc: w.nodes[i].inc, call: w.now}
	op.id = m.nextID.Add(1)
	op.ch = m.register(op.id)
	l.pending, l.pkind = op, kind
	w.step(i, event{kind: evPropose, props: []proposal{{id: op.id, data: encodeProposal(op.id, r)}}})
}

// waitEnded: a waiter's wait for the head ended with err; locks.WaitEnded
// decides, from how its key ended in the member's event history.
func (w *simWorld) waitEnded(l *simLocker, err error, waitOver bool) {
	if n := w.nodes[l.member]; n.m == nil || n.inc != l.inc || n.stopping {
		// The member serving the acquire went away, and the request
		// with it.
		w.dropPending(l)
		l.state, l.key = slIdle, ""
		return
	}
	m := w.nodes[l.member].m
	end, known := "", true
	if wt, werr := m.Store().Watch(l.key, false, false, l.token+1); werr != nil {
		// The history no longer holds the key's end (a short
		// EventHistory): the documented answer is then 100.
		known = false
	} else {
		select {
		case ev := <-wt.C:
			end = ev.Action
		default:
		}
		wt.Remove()
	}
	w.dropPending(l)
	rejoin, answer := locks.WaitEnded(err, false, waitOver, end, l.index)
	w.trace("locker %d: waiting for %s ended (%v, key end %q): rejoin %v, answer %v", l.n, l.key, err, end, rejoin, answer)
	if rejoin {
		w.lockLog.rejoins++
		l.rejoins++
		l.state = slAcquiring
		w.lockPropose(l, l.member, sloAcquire, &store.Request{Op: store.OpAcquire, Path: simLockDir,
			Value: fmt.Sprintf("locker%d", l.n), Wait: true, HasTTL: true, TTL: simLockTTL})
		return
	}
	var se *store.Error
	if errors.As(answer, &se) && se.Code == store.EcodeKeyNotFound && known {
		w.fail("locks: locker %d's waiting acquire was answered %v, but nobody deleted its key %s (its end: %q)", l.n, answer, l.key, end)
	}
	if errors.As(answer, &se) && se.Code == store.EcodeWaitTimeout {
		w.lockLog.timeouts++
	}
	// Leave the line, so we are never granted; then answer.
	l.state, l.answer = slLeaving, answer
	w.lockPropose(l, l.member, sloDelete, &store.Request{Op: store.OpDelete, Path: l.key})
}

func (w *simWorld) release(l *simLocker) {
	if l.hold != nil && l.hold.open {
		w.endHold(l, min(w.now, l.leaseEnd))
	}
	l.state = slReleasing
	i, m := w.upMember()
	if m == nil {
		return
	}
	w.lockPropose(l, i, sloDelete, &store.Request{Op: store.OpDelete, Path: l.key})
}

func (w *simWorld) endHold(l *simLocker, at time.Duration) {
	l.hold.to, l.hold.open = at, false
	w.trace("locker %d: holds token %d from %v to %v (%d fenced writes)", l.n, l.hold.token, l.hold.from, l.hold.to, l.hold.writes)
}

func (w *simWorld) grant(l *simLocker) {
	l.state = slHolding
	l.hold = &simHold{client: l.n, token: l.token, from: w.now, open: true}
	l.holdUntil = w.now + w.dur(0, 3*simLockTTL*time.Second)
	l.nextRefresh = w.now + simLockEvery
	w.holds = append(w.holds, l.hold)
	w.lockLog.grants++
	if w.now >= l.leaseEnd {
		w.endHold(l, w.now) // granted as its lease ended: nothing held
	}
}

// confirmHead takes the linearizable read of a waiter's own key at the
// head: it exists, and the lock is held; or it is gone.
func (w *simWorld) confirmHead(l *simLocker, m *Member) {
	l.pending = nil
	_, err := m.Store().Get(l.key, false)
	var se *store.Error
	switch {
	case err == nil:
		w.grant(l)
	case errors.As(err, &se) && se.Code == store.EcodeKeyNotFound:
		w.waitEnded(l, err, false)
	default:
		w.fail("read %s: %v", l.key, err)
	}
}

// lockAnswer takes the answer to a locker's proposal (unknown: it timed
// out, or failed without saying how).
func (w *simWorld) lockAnswer(l *simLocker, res result) {
	op, kind := l.pending, l.pkind
	l.pending = nil
	if !w.checkAnswer(res, fmt.Sprintf("locker %d", l.n)) {
		return // the run has failed
	}
	ev, err := res.ev, res.err
	var se *store.Error
	code := 0
	if errors.As(err, &se) {
		code = se.Code
	}
	switch kind {
	case sloAcquire:
		if err != nil {
			l.state, l.key = slIdle, "" // a waiter key may linger until its TTL
			return
		}
		l.key, l.token, l.index = ev.Node.Key, ev.Node.CreatedIndex, ev.Index
		l.leaseEnd = op.call + simLockTTL*time.Second
		l.nextRefresh = w.now + simLockEvery
		l.state = slWaiting
		if w.bug == "lock-double-grant" {
			w.grant(l) // as locks.UnsafeGrant: held as soon as queued
		}
	case sloRefresh:
		switch {
		case err == nil:
			l.leaseEnd = max(l.leaseEnd, op.call+simLockTTL*time.Second)
			w.lockLog.refreshes++
		case code == store.EcodeKeyNotFound && l.state == slWaiting:
			w.waitEnded(l, err, false)
		case code == store.EcodeKeyNotFound && l.state == slHolding:
			w.lockLog.lost++
			if l.hold.open {
				w.endHold(l, min(w.now, l.leaseEnd))
			}
			l.state, l.key = slIdle, ""
		}
		if l.state == slHolding && w.now >= l.leaseEnd && l.hold.open {
			w.endHold(l, l.leaseEnd)
		}
		// Any other failure is left for the next refresh.
	case sloWrite:
		if err == nil {
			if l.hold != nil {
				l.hold.writes++
			}
			w.fenced = append(w.fenced, simFenced{client: l.n, token: l.token, index: ev.Index})
		}
	case sloDelete:
		if l.state == slLeaving {
			w.trace("locker %d: left the line, answered %v", l.n, l.answer)
		}
		l.state, l.key = slIdle, ""
	}
}

func (w *simWorld) pollLocks() {
	for _, l := range w.lockers {
		op := l.pending
		if op == nil || w.loopBusy(op.member) {
			continue
		}
		n := w.nodes[op.member]
		if op.read != nil {
			select {
			case <-op.read:
				if n.m != nil && n.inc == op.inc {
					w.confirmHead(l, n.m)
				}
			default:
			}
			continue
		}
		select {
		case res := <-op.ch:
			w.lockAnswer(l, res)
		default:
		}
	}
}

// checkLocks: mutual exclusion. No two clients' holding intervals
// overlap, and the tokens of the fenced writes the store accepted never
// go down in commit order (one holder writes several times).
func (w *simWorld) checkLocks() error {
	for _, l := range w.lockers {
		if l.hold != nil && l.hold.open {
			w.endHold(l, min(w.now, l.leaseEnd))
		}
	}
	hs := slices.Clone(w.holds)
	slices.SortFunc(hs, func(a, b *simHold) int { return int(a.from - b.from) })
	for i, a := range hs {
		for _, b := range hs[i+1:] {
			if b.from >= a.to {
				break
			}
			if a.client != b.client && b.from < b.to {
				return fmt.Errorf("locks: two holders: locker %d held token %d from %v to %v (%d fenced writes), locker %d token %d from %v to %v (%d fenced writes)",
					a.client, a.token, a.from, a.to, a.writes, b.client, b.token, b.from, b.to, b.writes)
			}
		}
	}
	fs := slices.Clone(w.fenced)
	slices.SortFunc(fs, func(a, b simFenced) int { return int(a.index) - int(b.index) })
	for i := 1; i < len(fs); i++ {
		if fs[i].token < fs[i-1].token {
			return fmt.Errorf("locks: fenced writes out of token order: locker %d token %d at index %d after locker %d token %d at index %d",
				fs[i].client, fs[i].token, fs[i].index, fs[i-1].client, fs[i-1].token, fs[i-1].index)
		}
	}
	return nil
}

func (w *simWorld) lockSummary() string {
	var b strings.Builder
	ll := w.lockLog
	fmt.Fprintf(&b, "%d holds, %d fenced writes accepted, %d refreshes, %d rejoins, %d wait timeouts, %d holds lost",
		ll.grants, len(w.fenced), ll.refreshes, ll.rejoins, ll.timeouts, ll.lost)
	return b.String()
}

// TestSimLockWaiterCutOffRejoins cuts a waiting locker's member off from
// the others for longer than the waiter's TTL, in an otherwise calm
// world: its key expires while it waits. It must join the line again
// (locks.WaitEnded); a waiter answered 100 instead (the rule before the
// waiter rejoined) fails the run.
func TestSimLockWaiterCutOffRejoins(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		w := newSimWorld(t, seed, "", func(string, ...any) {})
		w.p = simParams{minDelay: time.Millisecond, maxDelay: 5 * time.Millisecond}
		w.wa.history = 0 // the default: the member's history holds how the key ended
		for _, n := range w.nodes {
			n.fs.SetFaults(simfs.Faults{})
			n.fs.SetLatency(simfs.Latency{})
		}
		var cut *simLocker
		var look func()
		look = func() {
			l := w.leader()
			for _, c := range w.lockers {
				if c.state == slWaiting && l >= 0 && c.member != l {
					cut = c
					break
				}
			}
			if cut == nil {
				w.at(50*time.Millisecond, &simEvent{kind: skScript, script: look})
				return
			}
			cut.waitUntil = 0 // it waits as long as it takes
			id := w.nodes[cut.member].id
			for _, n := range w.nodes {
				if n.id != id {
					w.cut[[2]uint64{id, n.id}] = true
					w.cut[[2]uint64{n.id, id}] = true
				}
			}
			w.at(simLockTTL*time.Second+3*time.Second, &simEvent{kind: skScript, script: func() { clear(w.cut) }})
		}
		w.at(time.Second, &simEvent{kind: skScript, script: look})
		err := w.run()
		w.close()
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if cut == nil || cut.rejoins == 0 {
			t.Fatalf("seed %d: no waiter was cut off and rejoined (cut off: %v)", seed, cut != nil)
		}
	}
}
