package store

import (
	"fmt"
	"strings"
)

// Coordination: the operations behind server-side locks and queues. Each
// is one Apply (one log entry, one index, one event), so nothing races:
//
//   - OpAcquire on a lock directory adds the caller as a waiter: an
//     in-order child with a TTL. Without Wait it does so only when the
//     lock is free, else it fails with EcodeLockHeld. The first visible
//     child holds the lock; its createdIndex is the fencing token.
//   - OpEnqueue on a queue directory hands Value to the oldest blocked
//     dequeuer (a child of the directory's _waiters), in the same apply,
//     or else adds it as an in-order child.
//   - OpDequeue removes and returns the first visible, unreserved child.
//     With Wait, an empty queue registers the caller as a blocked
//     dequeuer instead (an in-order child of _waiters with a TTL). With a
//     TTL and no Wait, it reserves the item instead of removing it: the
//     item gets the TTL, and when the TTL runs out the item is made
//     permanent again where it was, at the head (action "requeue").
//
// Requests may also carry a fence (FenceLock, FenceToken): the change is
// applied only if FenceToken is the token of the lock's current holder.

// The operations' numbers continue the list in request.go.
const (
	OpAcquire Op = 9
	OpEnqueue Op = 10
	OpDequeue Op = 11
)

// Actions of the coordination operations.
const (
	ActionDequeue = "dequeue" // an item removed by a dequeuer
	ActionReserve = "reserve" // an item reserved (given a TTL) by a consumer
	ActionDeliver = "deliver" // an item handed to a blocked dequeuer (the node is the waiter)
	ActionRequeue = "requeue" // a reservation ran out: the item is back at the head
)

// Error codes of the coordination operations (Cairn's own, beside etcd's).
const (
	EcodeLockHeld     = 120
	EcodeFenceFailed  = 121
	EcodeQueueEmpty   = 122
	waitersName       = "_waiters"
	reservedQueueRoot = "/_cairn/queues/"
)

// CairnDir holds Cairn's own state, the locks and the queues (hidden: a
// "_" name). Clients change it only through the coordination operations;
// the client API refuses keys writes into it.
const CairnDir = "/_cairn"

// QueuesDir and LocksDir hold the queues and locks.
const (
	QueuesDir = CairnDir + "/queues"
	LocksDir  = CairnDir + "/locks"
)

// WaitersDir is where a queue's blocked dequeuers wait.
func WaitersDir(queue string) string { return joinPath(queue, waitersName) }

// isQueueItem: an item of a queue (a file right under a queue directory,
// not a hidden one); its deadline is a reservation, not an expiry.
func isQueueItem(n *node) bool {
	if n.dir || !strings.HasPrefix(n.path, reservedQueueRoot) {
		return false
	}
	rest := n.path[len(reservedQueueRoot):]
	q, item, ok := strings.Cut(rest, "/")
	return ok && q != "" && item != "" && !strings.Contains(item, "/") && !hidden(item)
}

// first returns dir's first visible child accepted by ok, or nil.
func first(dir *node, ok func(*node) bool) *node {
	var found *node
	dir.each(func(c *node) bool {
		if !hidden(c.name) && ok(c) {
			found = c
			return false
		}
		return true
	})
	return found
}

func anyNode(*node) bool { return true }

// holder returns the holder of the lock at p, or nil when it is free.
func (a *applier) holder(p string) *node {
	dir, err := lookup(a.root, p, a.index)
	if err != nil || !dir.dir {
		return nil
	}
	return first(dir, anyNode)
}

// checkFence refuses a change whose fence token is not the lock holder's.
func (a *applier) checkFence() *Error {
	r := a.req
	if r.FenceLock == "" {
		return nil
	}
	var h uint64
	if n := a.holder(r.FenceLock); n != nil {
		h = n.created
	}
	if h != r.FenceToken || h == 0 {
		return NewError(EcodeFenceFailed, fmt.Sprintf("[%d != %d]", r.FenceToken, h), a.index)
	}
	return nil
}

func (a *applier) acquire() (*Event, error) {
	r := a.req
	if !r.Wait {
		if h := a.holder(r.Path); h != nil {
			return nil, NewError(EcodeLockHeld, h.path, a.index)
		}
	}
	return a.create(joinPath(r.Path, fmt.Sprintf("%020d", a.next())), true)
}

// waiter returns the oldest blocked dequeuer of queue q, or nil.
func (a *applier) waiter(q string) *node {
	ws, err := lookup(a.root, WaitersDir(q), a.index)
	if err != nil || !ws.dir {
		return nil
	}
	return first(ws, func(c *node) bool { return !c.dir })
}

// deliver hands value to the blocked dequeuer w: its registration goes,
// and the event (on its key) carries the value.
func (a *applier) deliver(w *node, value string) *Event {
	idx := a.next()
	nv := view(w, false, false)
	nv.Value, nv.ModifiedIndex, nv.Expiration = value, idx, 0
	e := a.event(ActionDeliver, nv, view(w, false, false))
	a.forgetTTLs(w)
	a.replace(w.path, nil, idx)
	return e
}

func (a *applier) enqueue() (*Event, *node, error) {
	r := a.req
	if w := a.waiter(r.Path); w != nil {
		return a.deliver(w, r.Value), w, nil
	}
	noTTL := *r
	noTTL.HasTTL = false // an item never expires
	a.req = &noTTL
	defer func() { a.req = r }()
	e, err := a.create(joinPath(r.Path, fmt.Sprintf("%020d", a.next())), true)
	return e, nil, err
}

func (a *applier) dequeue() (*Event, *node, error) {
	r := a.req
	dir, err := lookup(a.root, r.Path, a.index)
	if err != nil && err.Code != EcodeKeyNotFound {
		return nil, nil, err
	}
	if dir != nil && !dir.dir {
		return nil, nil, NewError(EcodeNotDir, r.Path, a.index)
	}
	var item *node
	if dir != nil {
		item = first(dir, func(c *node) bool { return !c.dir && c.permanent() })
	}
	switch {
	case item == nil && r.Wait:
		e, err := a.create(joinPath(WaitersDir(r.Path), fmt.Sprintf("%020d", a.next())), true)
		return e, nil, err
	case item == nil:
		return nil, nil, NewError(EcodeQueueEmpty, r.Path, a.index)
	case r.HasTTL && !r.Wait:
		exp, err := a.deadline()
		if err != nil {
			return nil, nil, err
		}
		idx := a.next()
		pv := view(item, false, false)
		cp := *item
		cp.expire, cp.modified = exp, idx
		a.replace(item.path, &cp, idx)
		a.setTTL(&cp)
		return a.event(ActionReserve, view(&cp, false, false), pv), nil, nil
	}
	return a.remove(item, ActionDequeue), item, nil
}

// requeue makes a reserved item whose reservation ran out permanent again
// in its place (the head, as it is older than every later item), or, when
// a dequeuer is blocked on the queue, hands it over: blocked dequeuers
// exist only while no item is available, and this one is available now.
func (a *applier) requeue(n *node) *Event {
	if w := a.waiter(parentPath(n.path)); w != nil {
		e := a.deliver(w, n.value)
		a.replace(n.path, nil, e.Index)
		return e
	}
	idx := a.next()
	pv := view(n, false, false)
	cp := *n
	cp.expire, cp.modified = 0, idx
	a.replace(n.path, &cp, idx)
	return a.event(ActionRequeue, view(&cp, false, false), pv)
}
