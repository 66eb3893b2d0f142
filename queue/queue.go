package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/locks"
	"github.com/cairnkv/cairn/store"
)

// Queues serves the queues of one member.
type Queues struct {
	be  locks.Backend
	now func() time.Time
	log zerolog.Logger
}

// New returns the queues served through be; now is the proposer clock
// (time.Now when nil).
func New(be locks.Backend, now func() time.Time, log zerolog.Logger) *Queues {
	if now == nil {
		now = time.Now
	}
	return &Queues{be: be, now: now, log: log}
}

// Dir is the directory of queue name.
func Dir(name string) string { return store.QueuesDir + "/" + name }

// WaiterTTL is the TTL of a blocked dequeuer's registration; the member
// serving it refreshes it three times as often.
const WaiterTTL = 10

// Enqueue appends value to queue name. The event is a create (the item
// was stored) or a deliver (it went straight to a blocked dequeuer).
func (q *Queues) Enqueue(ctx context.Context, name, value string) (*store.Event, error) {
	return q.be.Do(ctx, &store.Request{Op: store.OpEnqueue, Path: Dir(name), Value: value, Time: q.now().UnixNano()})
}

// List returns the items of queue name in order (linearizable), with the
// store index it was read at.
func (q *Queues) List(ctx context.Context, name string) ([]*store.NodeView, uint64, error) {
	e, err := q.be.Get(ctx, Dir(name), true, false)
	var se *store.Error
	if errors.As(err, &se) && se.Code == store.EcodeKeyNotFound {
		return nil, se.Index, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var out []*store.NodeView
	for _, n := range e.Node.Nodes {
		if !n.Dir && !strings.HasPrefix(n.Key[len(Dir(name))+1:], "_") {
			out = append(out, n)
		}
	}
	return out, e.Index, nil
}

// Item is a dequeued item: the key it had, its value, the index it was
// taken at.
type Item struct {
	Key   string
	Value string
	Index uint64 // the store index of the dequeue (or delivery)
}

// Dequeue removes and returns the head of queue name. Without wait an
// empty queue is store.EcodeQueueEmpty; with wait the caller blocks until
// an item is handed to it, ctx ends, or timeout (if not 0) passes
// (store.EcodeWaitTimeout). The timeout bounds only the wait, not the
// proposal that registers the caller.
func (q *Queues) Dequeue(ctx context.Context, name string, wait bool, timeout time.Duration) (*Item, error) {
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		wctx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	for {
		// The registration's value names this call, so that one whose
		// proposal had an unknown outcome can be found and removed.
		nonce := fmt.Sprintf("%016x", rand.Uint64())
		e, err := q.be.Do(ctx, &store.Request{Op: store.OpDequeue, Path: Dir(name), Wait: wait, HasTTL: wait, TTL: WaiterTTL,
			Value: nonce, Time: q.now().UnixNano()})
		if err != nil {
			var se *store.Error
			if wait && !errors.As(err, &se) {
				q.removeRegistration(name, nonce)
			}
			return nil, err
		}
		if e.Action == store.ActionDequeue {
			return &Item{Key: e.PrevNode.Key, Value: e.PrevNode.Value, Index: e.Index}, nil
		}
		it, again, err := q.await(wctx, e)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			// The wait's timeout passed and the registration is surely
			// gone without an item (GaveUp).
			return nil, locks.WaitTimeout(e.Index)
		}
		if !again {
			return it, err
		}
		// The registration expired under us (the member fell behind
		// refreshing it): register again.
	}
}

// removeRegistration removes a blocked dequeuer's registration whose
// proposal had an unknown outcome: left in place it would be handed the
// next item, which would then reach nobody. If it was applied and already
// served, the item is lost (at most once); the member logs it.
func (q *Queues) removeRegistration(name, nonce string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		e, err := q.be.Get(ctx, store.WaitersDir(Dir(name)), true, false)
		var se *store.Error
		if errors.As(err, &se) && se.Code == store.EcodeKeyNotFound {
			return
		}
		if err == nil {
			for _, n := range e.Node.Nodes {
				if n.Value == nonce {
					_, _ = q.be.Do(ctx, &store.Request{Op: store.OpCompareAndDelete, Path: n.Key, PrevValue: nonce, Time: q.now().UnixNano()})
					q.log.Warn().Str("waiter", n.Key).Msg("removed a blocked dequeuer whose registration had an unknown outcome")
				}
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// await waits for an item to be delivered to the waiter e registered.
func (q *Queues) await(ctx context.Context, e *store.Event) (*Item, bool, error) {
	me := e.Node.Key
	// lost is why there is no watch: it could not start (the history no
	// longer reaches the registration, on a busy member with a short
	// --event-history) or it ended (the member installed a snapshot, and
	// ended every watch). Then the registration is read again (rewatch).
	w, lost := q.be.Watch(me, false, false, e.Index+1)
	defer func() {
		if w != nil {
			w.Remove()
		}
	}()
	refresh := time.NewTicker(WaiterTTL * time.Second / 4)
	defer refresh.Stop()
	for {
		if lost != nil {
			var err error
			if w, err = q.rewatch(ctx, me, lost); err != nil {
				if ctx.Err() != nil {
					return q.giveUp(me, nil, ctx.Err())
				}
				return nil, false, err
			}
			lost = nil
		}
		select {
		case ev, ok := <-w.C:
			if !ok {
				if lost = w.Err(); lost == nil {
					lost = errWatchEnded
				}
				w.Remove()
				w = nil
				continue
			}
			if ev.Action == store.ActionDeliver {
				return &Item{Key: ev.Node.Key, Value: ev.Node.Value, Index: ev.Index}, false, nil
			}
			return nil, true, nil // expired or deleted: not ours any more
		case <-refresh.C:
			// A registration that is gone was served (the watch has the
			// item) or expired (the watch says so); other failures wait
			// for the next refresh.
			if err := locks.KeepAlive(ctx, q.be, me, WaiterTTL, q.now); err != nil && ctx.Err() != nil {
				return q.giveUp(me, w, ctx.Err())
			}
		case <-ctx.Done():
			return q.giveUp(me, w, ctx.Err())
		}
	}
}

// ErrRegistrationLeft is the error of a blocking dequeue whose wait
// ended (its timeout passed, or its caller went away) but whose
// registration could not be removed: the delete's outcome is unknown, or
// it was refused. The registration may outlive the call (until its TTL)
// and be handed an item, which then reaches nobody, so the caller is not
// told that nothing came: the outcome is unknown.
var ErrRegistrationLeft = errors.New("queue: the wait ended, but the blocked dequeuer's registration could not be removed: an item handed to it would reach nobody; outcome unknown")

// ErrDeliveryUnknown is the error of a blocking dequeue whose watch of
// its registration ended (or could not start, the event history having
// moved past it) and whose registration is then gone, or could not be
// read: it may have been handed an item that nobody will read, or have
// expired; the event that said which is no longer in the history. The
// outcome is unknown.
var ErrDeliveryUnknown = errors.New("queue: the blocked dequeuer lost the watch of its registration, which is gone: an item may have been handed to it; outcome unknown")

// errWatchEnded is why a watch that ended without saying why was lost.
var errWatchEnded = errors.New("queue: the watch of the registration ended")

// rewatch watches registration me again after its watch ended (why): a
// registration still there has not been served, and a watch from the
// index it was read at misses nothing of it; one that is gone was served
// or expired, and which is no longer known (ErrDeliveryUnknown).
func (q *Queues) rewatch(ctx context.Context, me string, why error) (*store.Watcher, error) {
	for range 3 {
		e, err := q.be.Get(ctx, me, false, false)
		if err != nil {
			q.log.Warn().Str("waiter", me).AnErr("watch", why).Err(err).Msg("a blocked dequeuer lost the watch of its registration, and it is gone or unreadable: an item handed to it would reach nobody")
			return nil, fmt.Errorf("%w (%w)", ErrDeliveryUnknown, err)
		}
		w, err := q.be.Watch(me, false, false, e.Index+1)
		if err == nil {
			return w, nil
		}
		why = err
	}
	return nil, fmt.Errorf("%w (%w)", ErrDeliveryUnknown, why)
}

// giveUp removes the registration; if an item was handed over first, it
// is returned after all (the caller may still take it). GaveUp decides.
// w is the registration's watch, nil if it had none.
func (q *Queues) giveUp(me string, w *store.Watcher, cause error) (*Item, bool, error) {
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := q.be.Do(dctx, &store.Request{Op: store.OpDelete, Path: me, Time: q.now().UnixNano()})
	var ended *store.Event
	var se *store.Error
	if errors.As(err, &se) && se.Code == store.EcodeKeyNotFound && w != nil {
		// Gone already: delivered (or expired). The event is at or
		// before the current index, so the watcher has it or gets it at
		// once.
		select {
		case ev, ok := <-w.C:
			if ok {
				ended = ev
			}
		case <-dctx.Done():
		}
	}
	it, answer := GaveUp(cause, err, ended)
	switch {
	case it != nil && errors.Is(cause, context.Canceled):
		// The caller is gone: the item reached nobody. Blocking dequeue
		// is at most once; reservations are for callers that may vanish.
		q.log.Warn().Str("waiter", me).Uint64("index", it.Index).Msg("an item was handed to a dequeuer that went away")
	case errors.Is(answer, ErrRegistrationLeft):
		q.log.Warn().Str("waiter", me).Err(err).Msg("could not remove a blocked dequeuer's registration: an item handed to it would reach nobody")
	}
	return it, false, answer
}

// GaveUp decides, with no clock and no I/O, what a blocked dequeuer whose
// wait ended (cause: its timeout passed, or its caller went away) is
// answered, once the delete of its registration returned delErr and, if
// the registration was gone already, its watch showed the event that
// ended it (ended; nil if none came: the watch ended first). It gets the
// item that was handed over first, if one was; it is told its wait's
// cause if its registration is surely gone without an item (deleted now,
// or expired); it is told ErrRegistrationLeft (wrapping delErr) when the
// registration may still be there, to be handed an item that would reach
// nobody, and ErrDeliveryUnknown when it is gone and nothing says how.
func GaveUp(cause, delErr error, ended *store.Event) (*Item, error) {
	var se *store.Error
	switch {
	case delErr == nil:
		return nil, cause
	case errors.As(delErr, &se) && se.Code == store.EcodeKeyNotFound:
		switch {
		case ended == nil:
			// Gone, and the watch ended before it said how.
			return nil, fmt.Errorf("%w (%w)", ErrDeliveryUnknown, delErr)
		case ended.Action == store.ActionDeliver:
			return &Item{Key: ended.Node.Key, Value: ended.Node.Value, Index: ended.Index}, nil
		}
		return nil, cause
	default:
		return nil, fmt.Errorf("%w (%w)", ErrRegistrationLeft, delErr)
	}
}

// Reservation is a reserved item and the receipt that acknowledges it.
type Reservation struct {
	Event   *store.Event // the reserve event: the item, its expiration
	Receipt string
}

// Reserve gives the head of queue name a visibility timeout of ttl
// seconds and returns it with its receipt; store.EcodeQueueEmpty when
// there is nothing to reserve.
func (q *Queues) Reserve(ctx context.Context, name string, ttl uint64) (*Reservation, error) {
	e, err := q.be.Do(ctx, &store.Request{Op: store.OpDequeue, Path: Dir(name), HasTTL: true, TTL: ttl, Time: q.now().UnixNano()})
	if err != nil {
		return nil, err
	}
	return &Reservation{Event: e, Receipt: fmt.Sprintf("%d-%d", e.Node.CreatedIndex, e.Node.ModifiedIndex)}, nil
}

// ErrBadReceipt is the error for a receipt Reserve cannot have issued.
var ErrBadReceipt = errors.New("invalid receipt")

// Ack removes the item a reservation holds. It fails (store.EcodeTestFailed
// or EcodeKeyNotFound) once the reservation has run out, even if the item
// was reserved again since.
func (q *Queues) Ack(ctx context.Context, name, receipt string) (*store.Event, error) {
	c, m, ok := strings.Cut(receipt, "-")
	created, err1 := strconv.ParseUint(c, 10, 64)
	modified, err2 := strconv.ParseUint(m, 10, 64)
	if !ok || err1 != nil || err2 != nil || created == 0 || modified == 0 {
		return nil, fmt.Errorf("%w %q", ErrBadReceipt, receipt)
	}
	return q.be.Do(ctx, &store.Request{Op: store.OpCompareAndDelete, Path: fmt.Sprintf("%s/%020d", Dir(name), created),
		PrevIndex: modified, Time: q.now().UnixNano()})
}
