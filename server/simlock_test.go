package server

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairnkv/cairn/store"
)

// The simulator's lock workload: clients take one lock as package locks
// does, through store operations. A client queues a waiter key (OpAcquire
// with Wait and a TTL), polls the lock directory with ReadIndex reads
// until its key is the first child (then it holds the lock; the key's
// createdIndex is its fencing token), makes one fenced write to a
// register, and releases (deletes its key). Its holding interval runs from
// the read that showed it first to the release it sent, cut at its
// lease's end (the acquire's time plus the TTL: the key cannot expire
// earlier, every clock being the simulator's).

const (
	simLockers = 3
	simLockDir = store.LocksDir + "/sim"
	simLockReg = "/lockreg" // the register the holders write, fenced
	simLockTTL = 4          // seconds: lingering keys expire before the end of a run
)

type simLockState uint8

const (
	slIdle      simLockState = iota
	slAcquiring              // the OpAcquire is pending
	slWaiting                // queued: polling the lock directory
	slHolding                // granted: the fenced write next
	slReleasing              // the fenced write answered: the release next
)

type simLocker struct {
	n        int
	state    simLockState
	key      string
	token    uint64
	leaseEnd time.Duration
	hold     *simHold
	pending  *simOp
}

// simHold is one holding interval as its client saw it.
type simHold struct {
	client   int
	token    uint64
	from, to time.Duration
	open     bool
	write    string // the fenced write's outcome: "", "ok", "fence refused", "unknown"
}

// simFenced is a fenced write the store accepted.
type simFenced struct {
	client int
	token  uint64
	index  uint64
}

// lockStep is locker l's next move.
func (w *simWorld) lockStep(l *simLocker) {
	if l.hold != nil && l.hold.open && w.now >= l.leaseEnd {
		w.endHold(l, l.leaseEnd)
	}
	if l.pending != nil {
		if w.now-l.pending.call >= simOpTimeout {
			w.lockAnswer(l, nil, nil, true)
		}
		return
	}
	i := w.pickNode()
	n := w.nodes[i]
	if n.m == nil {
		return
	}
	m := n.m
	op := &simOp{member: i, inc: n.inc, call: w.now}
	var req *store.Request
	switch l.state {
	case slIdle:
		req = &store.Request{Op: store.OpAcquire, Path: simLockDir, Value: fmt.Sprintf("locker%d", l.n), Wait: true, HasTTL: true, TTL: simLockTTL}
		l.state = slAcquiring
	case slWaiting:
		if w.now >= l.leaseEnd {
			l.state = slIdle // our key expired: start again
			return
		}
		l.pending = op
		if m.cfg.UnsafeLocalReads {
			w.lockRead(l, m)
			return
		}
		op.read = make(chan struct{})
		w.step(i, event{kind: evRead, read: op.read})
		return
	case slHolding:
		req = &store.Request{Op: store.OpSet, Path: simLockReg, Value: fmt.Sprintf("locker%d-%d", l.n, l.token),
			FenceLock: simLockDir, FenceToken: l.token}
	case slReleasing:
		if l.hold != nil && l.hold.open {
			w.endHold(l, min(w.now, l.leaseEnd))
		}
		req = &store.Request{Op: store.OpDelete, Path: l.key}
	default:
		return
	}
	req.Time = w.clock().UnixNano()
	l.pending = op
	id := m.nextID.Add(1)
	op.ch = m.register(id)
	w.step(i, event{kind: evPropose, props: []proposal{{id: id, data: encodeProposal(id, req)}}})
}

func (w *simWorld) endHold(l *simLocker, at time.Duration) {
	l.hold.to, l.hold.open = at, false
	w.trace("locker %d: holds token %d from %v to %v (fenced write: %s)", l.n, l.hold.token, l.hold.from, l.hold.to, l.hold.write)
}

func (w *simWorld) grant(l *simLocker) {
	l.state = slHolding
	l.hold = &simHold{client: l.n, token: l.token, from: w.now, open: true}
	w.holds = append(w.holds, l.hold)
}

// lockRead answers a locker's read of the lock directory from m's store.
func (w *simWorld) lockRead(l *simLocker, m *Member) {
	l.pending = nil
	var keys []string
	ev, err := m.Store().Get(simLockDir, false)
	var se *store.Error
	switch {
	case err == nil:
		for _, nd := range ev.Node.Nodes {
			keys = append(keys, nd.Key)
		}
	case errors.As(err, &se) && se.Code == store.EcodeKeyNotFound:
	default:
		w.fail("read %s: %v", simLockDir, err)
		return
	}
	slices.Sort(keys) // zero-padded indexes: in the order queued
	switch {
	case !slices.Contains(keys, l.key):
		l.state = slIdle // expired: start again
	case keys[0] == l.key && w.now < l.leaseEnd:
		w.grant(l)
	}
}

// lockAnswer takes the answer to a locker's proposal (unknown: it timed
// out or failed without saying how).
func (w *simWorld) lockAnswer(l *simLocker, ev *store.Event, err error, unknown bool) {
	op := l.pending
	l.pending = nil
	if op.read != nil {
		return // a read that never answered: poll again
	}
	var se *store.Error
	code := 0
	if errors.As(err, &se) {
		code = se.Code
	}
	switch l.state {
	case slAcquiring:
		if unknown || err != nil {
			l.state = slIdle // a waiter key may linger until its TTL
			return
		}
		l.key, l.token = ev.Node.Key, ev.Node.CreatedIndex
		l.leaseEnd = op.call + simLockTTL*time.Second
		l.state = slWaiting
		if w.bug == "lock-double-grant" {
			w.grant(l) // as locks.UnsafeGrant: held as soon as queued
		}
	case slHolding:
		switch {
		case unknown || (err != nil && code != store.EcodeFenceFailed):
			l.hold.write = "unknown"
		case err != nil:
			l.hold.write = "fence refused"
		default:
			l.hold.write = "ok"
			w.fenced = append(w.fenced, simFenced{client: l.n, token: l.token, index: ev.Index})
		}
		l.state = slReleasing
	case slReleasing:
		l.state = slIdle
	}
}

func (w *simWorld) pollLocks() {
	for _, l := range w.lockers {
		op := l.pending
		if op == nil {
			continue
		}
		n := w.nodes[op.member]
		if op.read != nil {
			select {
			case <-op.read:
				if n.m != nil && n.inc == op.inc {
					w.lockRead(l, n.m)
				}
			default:
			}
			continue
		}
		select {
		case res := <-op.ch:
			var se *store.Error
			unknown := res.err != nil && !errors.As(res.err, &se)
			w.lockAnswer(l, res.ev, res.err, unknown)
		default:
		}
	}
}

// checkLocks: mutual exclusion. No two clients' holding intervals
// overlap, and the tokens of the fenced writes the store accepted
// strictly increase in commit order.
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
				return fmt.Errorf("locks: two holders: locker %d held token %d from %v to %v (fenced write: %s), locker %d token %d from %v to %v (fenced write: %s)",
					a.client, a.token, a.from, a.to, a.write, b.client, b.token, b.from, b.to, b.write)
			}
		}
	}
	fs := slices.Clone(w.fenced)
	slices.SortFunc(fs, func(a, b simFenced) int { return int(a.index) - int(b.index) })
	for i := 1; i < len(fs); i++ {
		if fs[i].token <= fs[i-1].token {
			return fmt.Errorf("locks: fenced writes out of token order: locker %d token %d at index %d after locker %d token %d at index %d",
				fs[i].client, fs[i].token, fs[i].index, fs[i-1].client, fs[i-1].token, fs[i-1].index)
		}
	}
	return nil
}

func (w *simWorld) lockSummary() string {
	var b strings.Builder
	ok := 0
	for _, h := range w.holds {
		if h.write == "ok" {
			ok++
		}
	}
	fmt.Fprintf(&b, "%d holds, %d fenced writes accepted", len(w.holds), ok)
	return b.String()
}
