package server

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/queue"
	"github.com/cairnkv/cairn/store"
)

// The simulator's queue workload: producers and consumers use one FIFO
// queue as package queue does, through store operations.
//
// A producer enqueues unique values (OpEnqueue). A consumer dequeues in
// one of three ways, as queue.Queues does:
//   - a plain dequeue (OpDequeue): the head item, or none;
//   - a blocking dequeue, on one member, as the request that member
//     serves: OpDequeue with Wait registers the consumer in the queue's
//     _waiters when the queue is empty (its value a nonce); it then
//     watches its registration in the member's event history, refreshes
//     it every WaiterTTL/4 (locks.KeepAlive's rule), registers again if it
//     expired, and on its wait's timeout deletes it, taking the item
//     after all if one was handed over first (queue.giveUp). A
//     registration whose proposal had an unknown outcome is looked up by
//     its nonce and removed (queue.removeRegistration);
//   - a reservation (OpDequeue with a TTL), processed for a while (at
//     times longer than the TTL), then acknowledged by its receipt: a
//     compare-and-delete on the item's modifiedIndex (queue.Ack).
//
// The checker replays the committed log (every member applied the same
// entries, checkApplied) into a fresh store and watches the queue there:
// the ground truth, every event with the proposal that caused it. On it:
//   - the queue is FIFO: a dequeue or reservation takes the oldest item
//     not reserved; an enqueue goes to the oldest blocked dequeuer if
//     there is one (and is stored only if there is none); an item whose
//     reservation ran out goes back to the head, or to the oldest blocked
//     dequeuer;
//   - an acknowledgement takes the item only while the acknowledging
//     consumer's reservation is the item's current one: otherwise the
//     item was delivered to two consumers (the one holding the current
//     reservation, and this one);
//   - every item whose enqueue was acknowledged was stored or handed over
//     (one whose enqueue failed was not), and is, at the end, still in the
//     queue or taken once, by the operation of a consumer that was told
//     so, or that was told nothing certain (its request timed out or its
//     member went away: blocking dequeue is at most once when its caller
//     is gone); and every item a consumer was told it got was taken by
//     that consumer's operation. Items an enqueue of unknown outcome may
//     have stored are allowed either way.

const (
	simProducers = 2
	simConsumers = 3
	simQueueDir  = store.QueuesDir + "/sim"
)

var simWaitersDir = store.WaitersDir(simQueueDir)

// errSimWaitOver is a blocking dequeue's wait's end, its timeout.
var errSimWaitOver = errors.New("wait timed out")

// simQState is where a queue actor is.
type simQState uint8

const (
	sqIdle      simQState = iota
	sqEnqueue             // a producer's enqueue is pending
	sqDequeue             // a plain dequeue is pending
	sqRegister            // a blocking dequeue's OpDequeue is pending
	sqAwait               // registered: waiting for an item
	sqRefresh             // registered: refreshing the registration
	sqGiveUp              // the wait's timeout passed: deleting the registration
	sqFindReg             // removing a registration of unknown outcome: reading _waiters
	sqRemoveReg           // ...and deleting it
	sqRewatch             // its watch ended (or could not start): reading its registration
	sqReserve             // a reservation's OpDequeue is pending
	sqProcess             // processing a reserved item
	sqAck                 // the acknowledgement is pending
)

type simQActor struct {
	n        int // its index in simQueueWork.actors
	producer bool
	k        int // its number among producers or consumers
	state    simQState
	pending  *simOp
	call     *simQCall
	seq      int
	// A blocking dequeue's member (and incarnation), nonce and
	// registration.
	member, inc int
	nonce       string
	reg         string
	watch       *store.Watcher
	nextRefresh time.Duration
	waitUntil   time.Duration
	// A reservation: the item's key, receipt and when processing ends.
	rkey      string
	processTo time.Duration
}

func (a *simQActor) name() string {
	if a.producer {
		return fmt.Sprintf("producer %d", a.k)
	}
	return fmt.Sprintf("consumer %d", a.k)
}

// simQOutcome is what a call's caller was told.
type simQOutcome uint8

const (
	sqoPending simQOutcome = iota
	sqoOK                  // success: an enqueue stored or handed over; a dequeue got Value, or nothing
	sqoFailed              // a definite failure (a store error): nothing changed
	sqoUnknown             // timed out, or the member went away: nothing certain
)

func (o simQOutcome) String() string {
	return [...]string{"pending", "ok", "failed", "unknown"}[o]
}

// simQCall is one enqueue or dequeue call, as its caller saw it.
type simQCall struct {
	actor   *simQActor
	kind    string // "enqueue", "dequeue", "blocking", "reserve"
	value   string // an enqueue's value; a dequeue's item ("" none)
	outcome simQOutcome
	detail  string
	receipt uint64 // a reservation's modifiedIndex, as its ack compares
}

func (c *simQCall) String() string {
	return fmt.Sprintf("%s's %s (told: %s %q%s)", c.actor.name(), c.kind, c.outcome, c.value, c.detail)
}

type simQueueWork struct {
	actors []*simQActor
	calls  []*simQCall
	// byID is the call each proposal belongs to (looked up, never
	// iterated).
	byID map[uint64]*simQCall
	// The ground truth's counts, for the trace.
	stored, handed, dequeued, acked, requeued int
}

func (w *simWorld) initQueue() {
	w.queue.byID = map[uint64]*simQCall{}
	for i := range simProducers + simConsumers {
		w.queue.actors = append(w.queue.actors, &simQActor{n: i, producer: i < simProducers, k: i % simProducers})
		if i >= simProducers {
			w.queue.actors[i].k = i - simProducers
		}
	}
}

func (w *simWorld) startQueue() {
	for _, a := range w.queue.actors {
		w.at(w.dur(0, 100*time.Millisecond), &simEvent{kind: skQueue, client: a.n})
	}
}

// queuePropose proposes r on member i as part of actor a's call.
func (w *simWorld) queuePropose(a *simQActor, i int, st simQState, r *store.Request) {
	m := w.nodes[i].m
	r.Time = w.clock().UnixNano()
	op := &simOp{member: i, inc: w.nodes[i].inc, call: w.now}
	op.id = m.nextID.Add(1)
	op.ch = m.register(op.id)
	a.pending, a.state = op, st
	w.queue.byID[op.id] = a.call
	w.step(i, event{kind: evPropose, props: []proposal{{id: op.id, data: encodeProposal(op.id, r)}}})
}

// queueRead asks member i for a linearizable read for actor a.
func (w *simWorld) queueRead(a *simQActor, i int, st simQState) {
	op := &simOp{member: i, inc: w.nodes[i].inc, call: w.now, read: make(chan struct{})}
	a.pending, a.state = op, st
	if w.nodes[i].m.cfg.UnsafeLocalReads {
		close(op.read)
		return
	}
	w.step(i, event{kind: evRead, read: op.read})
}

func (w *simWorld) newCall(a *simQActor, kind string) *simQCall {
	c := &simQCall{actor: a, kind: kind}
	a.call = c
	w.queue.calls = append(w.queue.calls, c)
	return c
}

// endCall tells the call's caller its outcome.
func (w *simWorld) endCall(a *simQActor, o simQOutcome, value, detail string) {
	c := a.call
	c.outcome, c.detail = o, detail
	if c.kind != "enqueue" {
		c.value = value
	}
	w.trace("%s", c)
	if a.watch != nil {
		a.watch.Remove()
		a.watch = nil
	}
	a.call, a.pending, a.state, a.reg = nil, nil, sqIdle, ""
}

// sticky reports whether a blocking dequeue's member is still the one it
// runs on.
func (w *simWorld) sticky(a *simQActor) bool {
	n := w.nodes[a.member]
	return n.m != nil && n.inc == a.inc && !n.stopping
}

// queuePause is the time to actor k's next move: producers are slower
// than consumers, so that the queue is at times empty and dequeuers block.
func (w *simWorld) queuePause(k int) time.Duration {
	if w.queue.actors[k].producer {
		return w.dur(50*time.Millisecond, 800*time.Millisecond)
	}
	return w.dur(10*time.Millisecond, 200*time.Millisecond)
}

// queueStep is actor a's next move.
func (w *simWorld) queueStep(k int) {
	a := w.queue.actors[k]
	blocking := a.call != nil && a.call.kind == "blocking"
	if blocking && !w.sticky(a) {
		// The member serving the request went away, and the request
		// with it: its registration may linger until its TTL.
		w.endCall(a, sqoUnknown, "", ": its member went away")
		return
	}
	if a.pending != nil {
		w.queuePendingStep(a)
		return
	}
	switch a.state {
	case sqIdle:
		i, m := w.upMember()
		if m == nil {
			return
		}
		if a.producer {
			a.seq++
			c := w.newCall(a, "enqueue")
			c.value = fmt.Sprintf("p%d-%d", a.k, a.seq)
			w.queuePropose(a, i, sqEnqueue, &store.Request{Op: store.OpEnqueue, Path: simQueueDir, Value: c.value})
			return
		}
		switch r := w.rng.IntN(10); {
		case r < 4:
			w.newCall(a, "dequeue")
			w.queuePropose(a, i, sqDequeue, &store.Request{Op: store.OpDequeue, Path: simQueueDir})
		case r < 7:
			w.newCall(a, "blocking")
			a.member, a.inc = i, w.nodes[i].inc
			a.waitUntil = w.now + w.dur(500*time.Millisecond, 6*time.Second)
			w.register(a)
		default:
			w.newCall(a, "reserve")
			w.queuePropose(a, i, sqReserve, &store.Request{Op: store.OpDequeue, Path: simQueueDir, HasTTL: true, TTL: uint64(w.rng.IntN(2) + 1)})
		}
	case sqAwait:
		w.awaitStep(a)
	case sqProcess:
		if w.now < a.processTo {
			return
		}
		i, m := w.upMember()
		if m == nil {
			return
		}
		r := &store.Request{Op: store.OpCompareAndDelete, Path: a.rkey, PrevIndex: a.call.receipt}
		if w.bug == "queue-double-delivery" {
			r.PrevIndex = 0 // the ack takes the item whoever holds it now
		}
		w.queuePropose(a, i, sqAck, r)
	}
}

// register makes a blocking dequeue's OpDequeue (first, or again after
// its registration expired), with a fresh nonce.
func (w *simWorld) register(a *simQActor) {
	a.seq++
	a.nonce = fmt.Sprintf("c%d-%d", a.k, a.seq)
	w.queuePropose(a, a.member, sqRegister, &store.Request{Op: store.OpDequeue, Path: simQueueDir, Wait: true,
		HasTTL: true, TTL: queue.WaiterTTL, Value: a.nonce})
}

// awaitStep is a registered dequeuer's move (queue.await): an item handed
// over, its registration gone, its wait over, or a refresh due.
func (w *simWorld) awaitStep(a *simQActor) {
	select {
	case ev, ok := <-a.watch.C:
		switch {
		case !ok:
			// The member installed a snapshot: look again (queue.rewatch).
			a.watch.Remove()
			a.watch = nil
			w.queueRead(a, a.member, sqRewatch)
		case ev.Action == store.ActionDeliver:
			w.endCall(a, sqoOK, ev.Node.Value, "")
		default:
			// Expired or deleted: not ours any more. Register again.
			a.watch.Remove()
			a.watch, a.reg = nil, ""
			w.register(a)
		}
		return
	default:
	}
	switch {
	case w.now >= a.waitUntil:
		w.queuePropose(a, a.member, sqGiveUp, &store.Request{Op: store.OpDelete, Path: a.reg})
	case w.now >= a.nextRefresh:
		a.nextRefresh = w.now + queue.WaiterTTL*time.Second/4
		w.queuePropose(a, a.member, sqRefresh, &store.Request{Op: store.OpUpdate, Path: a.reg, Refresh: true, HasTTL: true, TTL: queue.WaiterTTL})
	}
}

// queuePendingStep gives up on a pending operation as its caller would.
func (w *simWorld) queuePendingStep(a *simQActor) {
	op := a.pending
	age := w.now - op.call
	limit := simOpTimeout // the client's
	switch a.state {
	case sqRefresh:
		limit = queue.WaiterTTL * time.Second / 3 // locks.KeepAlive
	case sqGiveUp, sqFindReg, sqRemoveReg:
		// The member's own (queue.giveUp, removeRegistration: 10 s, and
		// Member.Do's request timeout).
		if n := w.nodes[op.member]; n.m != nil {
			limit = min(10*time.Second, n.m.cfg.RequestTimeout)
		}
	}
	if age < limit {
		return
	}
	if op.read != nil {
		// removeRegistration or rewatch could not read the
		// registrations: the registration stays (until its TTL, if
		// nobody refreshes it).
		w.endCall(a, sqoUnknown, "", ": its registration may linger")
		return
	}
	res := result{err: ErrTimeout}
	if n := w.nodes[op.member]; n.m != nil && n.inc == op.inc {
		res = n.m.abandon(op.id, op.ch)
	}
	w.queueAnswer(a, res)
}

func (w *simWorld) pollQueue() {
	for _, a := range w.queue.actors {
		op := a.pending
		if op == nil || w.loopBusy(op.member) {
			continue
		}
		if op.read != nil {
			select {
			case <-op.read:
				if n := w.nodes[op.member]; n.m != nil && n.inc == op.inc {
					if a.state == sqRewatch {
						w.rewatch(a, n.m)
					} else {
						w.findRegistration(a, n.m)
					}
				}
			default:
			}
			continue
		}
		select {
		case res := <-op.ch:
			w.queueAnswer(a, res)
		default:
		}
	}
}

// queueAnswer takes the answer to an actor's proposal (ErrTimeout when
// it gave up).
func (w *simWorld) queueAnswer(a *simQActor, res result) {
	a.pending = nil
	if !w.checkAnswer(res, a.name()) {
		return // the run has failed
	}
	ev, err := res.ev, res.err
	var se *store.Error
	code := 0
	if errors.As(err, &se) {
		code = se.Code
	}
	unknown := err != nil && code == 0
	switch a.state {
	case sqEnqueue:
		switch {
		case unknown:
			w.endCall(a, sqoUnknown, "", "")
		case err != nil:
			w.endCall(a, sqoFailed, "", fmt.Sprintf(": %v", err))
		default:
			w.endCall(a, sqoOK, "", "")
		}
	case sqDequeue:
		switch {
		case unknown:
			w.endCall(a, sqoUnknown, "", "")
		case code == store.EcodeQueueEmpty:
			w.endCall(a, sqoOK, "", ": empty")
		case err != nil:
			w.endCall(a, sqoFailed, "", fmt.Sprintf(": %v", err))
		default:
			w.endCall(a, sqoOK, ev.PrevNode.Value, "")
		}
	case sqRegister:
		switch {
		case unknown && !w.sticky(a):
			w.endCall(a, sqoUnknown, "", ": its member went away")
		case unknown:
			// queue.removeRegistration: find it by its nonce, remove it.
			w.queueRead(a, a.member, sqFindReg)
		case err != nil:
			w.endCall(a, sqoFailed, "", fmt.Sprintf(": %v", err))
		case ev.Action == store.ActionDequeue:
			w.endCall(a, sqoOK, ev.PrevNode.Value, "")
		case !w.sticky(a):
			// Registered, but the member went away before it could
			// watch: the registration may linger until its TTL.
			w.endCall(a, sqoUnknown, "", ": its member went away")
		default:
			a.reg = ev.Node.Key
			a.nextRefresh = w.now + queue.WaiterTTL*time.Second/4
			wt, werr := w.nodes[a.member].m.Store().Watch(a.reg, false, false, ev.Index+1)
			if werr != nil {
				// The history has moved past the registration (a short
				// EventHistory): look again (queue.rewatch).
				w.queueRead(a, a.member, sqRewatch)
				return
			}
			a.watch, a.state = wt, sqAwait
		}
	case sqRefresh:
		// A registration that is gone was served (the watch has the
		// item) or expired (the watch says so); other failures wait for
		// the next refresh.
		a.state = sqAwait
	case sqGiveUp:
		var ended *store.Event
		if code == store.EcodeKeyNotFound {
			// Gone already: delivered (or expired). The watch has it.
			select {
			case wev, ok := <-a.watch.C:
				if ok {
					ended = wev
				}
			default:
			}
		}
		it, answer := queue.GaveUp(errSimWaitOver, err, ended)
		switch {
		case it != nil:
			w.endCall(a, sqoOK, it.Value, "")
		case errors.Is(answer, errSimWaitOver):
			w.endCall(a, sqoOK, "", ": wait timed out")
		default:
			w.endCall(a, sqoUnknown, "", fmt.Sprintf(": %v", answer))
		}
	case sqRemoveReg:
		w.endCall(a, sqoUnknown, "", fmt.Sprintf(": registration removed: %v", err))
	case sqReserve:
		switch {
		case unknown:
			w.endCall(a, sqoUnknown, "", "")
		case code == store.EcodeQueueEmpty:
			w.endCall(a, sqoOK, "", ": empty")
		case err != nil:
			w.endCall(a, sqoFailed, "", fmt.Sprintf(": %v", err))
		default:
			a.rkey, a.call.receipt = ev.Node.Key, ev.Node.ModifiedIndex
			a.call.value = ev.Node.Value // reserved; delivered once acknowledged
			ttl := max(time.Duration(ev.Node.Expiration-w.clock().UnixNano()), 0)
			if w.rng.IntN(3) == 0 {
				a.processTo = w.now + ttl + w.dur(0, 2*time.Second) // too slow: the reservation runs out
			} else {
				a.processTo = w.now + w.dur(0, ttl/2)
			}
			a.state = sqProcess
		}
	case sqAck:
		switch {
		case unknown:
			w.endCall(a, sqoUnknown, a.call.value, ": the ack's outcome is unknown")
		case err != nil:
			w.endCall(a, sqoOK, "", fmt.Sprintf(": the reservation ran out (%v)", err))
		default:
			w.endCall(a, sqoOK, a.call.value, "")
		}
	}
}

// findRegistration removes the registration whose proposal had an
// unknown outcome, found by its nonce (queue.removeRegistration).
func (w *simWorld) findRegistration(a *simQActor, m *Member) {
	a.pending = nil
	ev, err := m.Store().Get(simWaitersDir, true)
	if err == nil {
		for _, nd := range ev.Node.Nodes {
			if nd.Value == a.nonce {
				w.queuePropose(a, a.member, sqRemoveReg, &store.Request{Op: store.OpCompareAndDelete, Path: nd.Key, PrevValue: a.nonce})
				return
			}
		}
	}
	w.endCall(a, sqoUnknown, "", ": its registration was not found")
}

// rewatch watches a blocked dequeuer's registration again once a
// linearizable read is done (queue.rewatch): from the index read if it is
// still there; if it is gone, it was served or expired, and nothing says
// which any more.
func (w *simWorld) rewatch(a *simQActor, m *Member) {
	a.pending = nil
	ev, err := m.Store().Get(a.reg, false)
	if err != nil {
		w.endCall(a, sqoUnknown, "", fmt.Sprintf(": %v", fmt.Errorf("%w (%w)", queue.ErrDeliveryUnknown, err)))
		return
	}
	wt, err := m.Store().Watch(a.reg, false, false, ev.Index+1)
	if err != nil {
		w.fail("%s: watching its registration %s again from %d: %v", a.name(), a.reg, ev.Index+1, err)
		return
	}
	a.watch, a.state = wt, sqAwait
}

// simQEvent is a ground-truth event and the proposal it came from (0: an
// expiry).
type simQEvent struct {
	ev *store.Event
	id uint64
}

// queueTruth replays the committed log, as every member applied it, into
// a fresh store and returns every event of the queue and its waiters, in
// order, and the store at the end.
func (w *simWorld) queueTruth() ([]simQEvent, *store.Store, error) {
	s := store.New(1)
	items, err := s.Watch(simQueueDir, true, true, 0)
	if err != nil {
		return nil, nil, err
	}
	waiters, err := s.Watch(simWaitersDir, true, true, 0)
	if err != nil {
		return nil, nil, err
	}
	var last uint64
	for i := range w.applied {
		last = max(last, i)
	}
	var out []simQEvent
	for i := uint64(1); i <= last; i++ {
		a, ok := w.applied[i]
		if !ok {
			return nil, nil, fmt.Errorf("queues: no member applied index %d (of %d)", i, last)
		}
		d := decodeEntry(consensus.Entry{Index: i, Term: a.term, Type: a.typ, Data: a.data})
		if d.err == nil && d.cc == nil && d.kind == entryRequest && store.CheckLimits(d.req) == nil {
			_, _ = s.Apply(i, d.req)
		} else {
			s.MarkApplied(i)
		}
		var got []simQEvent
		for _, wt := range []*store.Watcher{items, waiters} {
			for more := true; more; {
				select {
				case ev, ok := <-wt.C:
					if !ok {
						return nil, nil, fmt.Errorf("queues: the ground truth's watch ended: %v", wt.Err())
					}
					got = append(got, simQEvent{ev: ev, id: d.id})
				default:
					more = false
				}
			}
		}
		slices.SortFunc(got, func(x, y simQEvent) int { return int(x.ev.Index) - int(y.ev.Index) })
		out = append(out, got...)
	}
	return out, s, nil
}

// simQItem is an item of the model queue.
type simQItem struct {
	key, value string
	reserved   bool
	mod        uint64    // its modifiedIndex (a reservation's receipt)
	reserver   *simQCall // the call whose reservation it is under
}

// simQFate is how an item left the queue: by whose call, and how.
type simQFate struct {
	how   string // "dequeue", "ack", "deliver"
	call  *simQCall
	index uint64
	reg   string
}

// checkQueue runs the queue checkers on the ground truth (see the top of
// this file).
func (w *simWorld) checkQueue() error {
	// Calls still running at the end: a blocked dequeuer takes the item
	// its watch holds; the others are told nothing certain.
	for _, a := range w.queue.actors {
		if a.call == nil {
			continue
		}
		if a.watch != nil {
			select {
			case ev, ok := <-a.watch.C:
				if ok && ev.Action == store.ActionDeliver {
					w.endCall(a, sqoOK, ev.Node.Value, "")
					continue
				}
			default:
			}
		}
		w.endCall(a, sqoUnknown, "", ": still running at the end")
	}
	truth, s, err := w.queueTruth()
	if err != nil {
		return err
	}
	q := &w.queue
	var items []*simQItem           // in order: oldest first
	var waiters []string            // registrations, oldest first
	owner := map[string]*simQCall{} // registration → its call
	seen := map[string]bool{}       // values stored or handed over
	fate := map[string]simQFate{}
	find := func(key string) int {
		return slices.IndexFunc(items, func(it *simQItem) bool { return it.key == key })
	}
	head := func() int { return slices.IndexFunc(items, func(it *simQItem) bool { return !it.reserved }) }
	for _, t := range truth {
		ev, c := t.ev, q.byID[t.id]
		key := ev.Node.Key
		isWaiter := strings.HasPrefix(key, simWaitersDir+"/")
		switch {
		case isWaiter && ev.Action == store.ActionCreate:
			waiters = append(waiters, key)
			owner[key] = c
		case isWaiter && ev.Action == store.ActionDeliver:
			v := ev.Node.Value
			if len(waiters) == 0 || waiters[0] != key {
				return fmt.Errorf("queues: FIFO: item %q handed at index %d to %s, but the oldest blocked dequeuer is %v", v, ev.Index, key, waiters)
			}
			waiters = waiters[1:]
			if j := slices.IndexFunc(items, func(it *simQItem) bool { return it.value == v }); j >= 0 {
				// A reservation ran out, and the item went to a waiter.
				if !items[j].reserved {
					return fmt.Errorf("queues: item %q handed at index %d to %s from the queue, but it was not reserved", v, ev.Index, key)
				}
				items = slices.Delete(items, j, j+1)
			} else {
				seen[v] = true
				q.handed++
			}
			fate[v] = simQFate{how: "deliver", call: owner[key], index: ev.Index, reg: key}
		case isWaiter:
			// Deleted (its dequeuer gave up), removed by its nonce, or
			// expired.
			waiters = slices.DeleteFunc(waiters, func(k string) bool { return k == key })
		case ev.Action == store.ActionCreate:
			if len(waiters) > 0 {
				return fmt.Errorf("queues: FIFO: item %q stored at index %d while %s waits", ev.Node.Value, ev.Index, waiters[0])
			}
			items = append(items, &simQItem{key: key, value: ev.Node.Value, mod: ev.Node.ModifiedIndex})
			seen[ev.Node.Value] = true
			q.stored++
		default:
			j := find(key)
			if j < 0 {
				return fmt.Errorf("queues: %s of %s at index %d, not an item in the queue", ev.Action, key, ev.Index)
			}
			it := items[j]
			switch ev.Action {
			case store.ActionDequeue, store.ActionReserve:
				if h := head(); h != j {
					return fmt.Errorf("queues: FIFO: %s took %s (%q) at index %d, but the oldest item not reserved is %s", ev.Action, key, it.value, ev.Index, items[h].key)
				}
				if ev.Action == store.ActionDequeue {
					items = slices.Delete(items, j, j+1)
					fate[it.value] = simQFate{how: "dequeue", call: c, index: ev.Index}
					q.dequeued++
				} else {
					it.reserved, it.mod, it.reserver = true, ev.Node.ModifiedIndex, c
				}
			case store.ActionRequeue:
				it.reserved, it.mod, it.reserver = false, ev.Node.ModifiedIndex, nil
				q.requeued++
			case store.ActionCompareAndDelete:
				if c == nil || c.kind != "reserve" {
					return fmt.Errorf("queues: item %s (%q) deleted at index %d by %v, not an acknowledgement", key, it.value, ev.Index, c)
				}
				switch {
				case it.reserved && it.mod != c.receipt:
					return fmt.Errorf("queues: item %q delivered to two consumers: %v acknowledged its reservation (index %d) at index %d, after it ran out, while %v held it (reserved at index %d)",
						it.value, c, c.receipt, ev.Index, it.reserver, it.mod)
				case !it.reserved:
					return fmt.Errorf("queues: item %q taken by a stale acknowledgement: %v acknowledged its reservation (index %d) at index %d, after it ran out and the item was back in the queue (an ack fails once its reservation has run out)",
						it.value, c, c.receipt, ev.Index)
				}
				items = slices.Delete(items, j, j+1)
				fate[it.value] = simQFate{how: "ack", call: c, index: ev.Index}
				q.acked++
			default:
				return fmt.Errorf("queues: item %s (%q): unexpected %s at index %d", key, it.value, ev.Action, ev.Index)
			}
		}
	}
	// The model's queue is the store's, and the members'.
	left := map[string]bool{}
	var want []string
	for _, it := range items {
		left[it.value] = true
		want = append(want, it.value)
	}
	for _, st := range []*store.Store{s, w.nodes[w.leader()].m.Store()} {
		var got []string
		if ev, err := st.Get(simQueueDir, true); err == nil {
			for _, nd := range ev.Node.Nodes {
				got = append(got, nd.Value)
			}
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("queues: the queue at the end is %q, the model's %q", got, want)
		}
	}
	// Every call's caller was told the truth.
	for _, c := range q.calls {
		if c.kind == "enqueue" {
			switch {
			case c.outcome == sqoOK && !seen[c.value]:
				return fmt.Errorf("queues: %v: acknowledged, never stored nor handed over", c)
			case c.outcome == sqoFailed && seen[c.value]:
				return fmt.Errorf("queues: %v: failed, yet stored or handed over", c)
			}
			continue
		}
		if c.value == "" || c.outcome != sqoOK {
			continue
		}
		if f, ok := fate[c.value]; !ok || f.call != c {
			where := "still in the queue"
			if ok {
				where = fmt.Sprintf("taken by %s of %v at index %d", f.how, f.call, f.index)
			} else if !left[c.value] {
				where = "nowhere"
			}
			return fmt.Errorf("queues: %v: got item %q, but the store has it %s", c, c.value, where)
		}
	}
	for _, c := range q.calls {
		if c.kind != "enqueue" || !seen[c.value] {
			continue
		}
		f, ok := fate[c.value]
		if !ok {
			continue // still in the queue
		}
		got := f.call
		if got == nil {
			return fmt.Errorf("queues: item %q (%v) taken by %s at index %d by no consumer's call", c.value, c, f.how, f.index)
		}
		if (got.outcome == sqoOK && got.value == c.value) || got.outcome == sqoUnknown {
			continue
		}
		return fmt.Errorf("queues: item %q lost: taken by %s at index %d for %v", c.value, f.how, f.index, got)
	}
	w.trace("queues: %d calls; %d items stored, %d handed to blocked dequeuers, %d dequeued, %d acknowledged, %d requeued, %d left",
		len(q.calls), q.stored, q.handed, q.dequeued, q.acked, q.requeued, len(items))
	return nil
}
