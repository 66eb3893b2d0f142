package locks

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/cairnkv/cairn/store"
)

// Backend is what locks need from a member (server.Member and
// server.Local provide it).
type Backend interface {
	Do(ctx context.Context, r *store.Request) (*store.Event, error)
	Get(ctx context.Context, p string, recursive, serializable bool) (*store.Event, error)
	Watch(p string, recursive, stream bool, since uint64) (*store.Watcher, error)
}

// Locks serves the locks of one member.
type Locks struct {
	be  Backend
	now func() time.Time
	// UnsafeGrant is a deliberate bug for testing the checkers: a waiting
	// caller is told it holds the lock as soon as it is queued, without
	// waiting for the waiters ahead of it to go. Never set it in
	// production (cairn sets it from CAIRN_UNSAFE_LOCK_GRANT=1).
	UnsafeGrant bool
}

// New returns the locks served through be; now is the proposer clock
// (time.Now when nil).
func New(be Backend, now func() time.Time) *Locks {
	if now == nil {
		now = time.Now
	}
	return &Locks{be: be, now: now}
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// ErrBadName is the error for a lock or queue name that is not one path
// element of letters, digits, '.', '_' and '-', starting with a letter or
// digit.
var ErrBadName = errors.New("invalid name")

// CheckName validates a lock or queue name.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("%w %q: want 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrBadName, name)
	}
	return nil
}

// Dir is the directory of lock name.
func Dir(name string) string { return store.LocksDir + "/" + name }

// Key is the waiter key that token names.
func Key(name string, token uint64) string { return fmt.Sprintf("%s/%020d", Dir(name), token) }

// Grant is a held lock.
type Grant struct {
	Event *store.Event // the waiter's creation (its node is the holder key)
	Token uint64
}

// waiterRefresh is how often a waiting caller's key is refreshed, as a
// fraction of its TTL.
const waiterRefresh = 3

// WaitTimeout is the error of a wait whose timeout passed
// (store.EcodeWaitTimeout).
func WaitTimeout(index uint64) error {
	return store.NewError(store.EcodeWaitTimeout, "timeout", index)
}

// Acquire takes lock name for owner with the given TTL (seconds). Without
// wait, a held lock answers store.EcodeLockHeld at once. With wait, the
// caller queues and Acquire returns once it holds the lock, or fails when
// ctx ends or timeout (if not 0) passes; its waiter key is then deleted:
// it is never granted. A waiter whose key expires while it waits (this
// member could not refresh it in time) joins the line again, at its end;
// one whose key is deleted fails with store.EcodeKeyNotFound. The timeout
// bounds only the wait, not the proposal that first queues the caller.
func (l *Locks) Acquire(ctx context.Context, name, owner string, ttl uint64, wait bool, timeout time.Duration) (*Grant, error) {
	dir := Dir(name)
	var wctx context.Context // the wait, from the first time in line
	for {
		e, err := l.be.Do(ctx, &store.Request{Op: store.OpAcquire, Path: dir, Value: owner, HasTTL: true, TTL: ttl, Wait: wait, Time: l.now().UnixNano()})
		if err != nil {
			return nil, err
		}
		g := &Grant{Event: e, Token: e.Node.CreatedIndex}
		if !wait || l.UnsafeGrant {
			return g, nil
		}
		if wctx == nil {
			wctx = ctx
			if timeout > 0 {
				var cancel context.CancelFunc
				wctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
		}
		now, err := l.waitHead(wctx, dir, e, ttl)
		if err == nil {
			// Answer the key as it is now (refreshed while waiting), not
			// as it was created.
			g.Event = &store.Event{Action: e.Action, Node: now.Node, Index: now.Index, Time: e.Time}
			return g, nil
		}
		end := ""
		if keyGone(err) && wctx.Err() == nil {
			end = l.keyEnd(e.Node.Key, e.Node.CreatedIndex)
		}
		rejoin, answer := WaitEnded(err, ctx.Err() != nil, wctx.Err() != nil, end, e.Index)
		if rejoin {
			continue
		}
		// Leave the line, so we are never granted. A fresh context: ctx
		// may be why we stopped.
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _ = l.be.Do(dctx, &store.Request{Op: store.OpDelete, Path: e.Node.Key, Time: l.now().UnixNano()})
		dcancel()
		return nil, answer
	}
}

// WaitEnded decides what a waiting acquire does once its wait for the head
// of the line ended with err (not nil) instead of a grant. It reads no
// clock and does no I/O: the caller says whether its caller went away
// (callerGone: the request's context ended), whether the wait's own
// timeout passed (waitOver: the wait's context ended), and, when err is
// store.EcodeKeyNotFound (the waiter key is gone), how the key ended:
// keyEnd is the action of the key's first event after its creation in
// this member's event history (refreshes notify no watcher, so that event
// is its end), "" when not known. index is the index the waiter was
// queued at.
//
// A waiter whose key expired while its caller still waits (this member
// could not refresh it in time: cut off from the leader for a TTL) joins
// the line again, at its end: rejoin is true. Otherwise the waiter leaves
// the line (its key is deleted, so it is never granted) and the caller is
// answered answer: WaitTimeout(index) when the wait's timeout passed with
// the caller still there, else err (store.EcodeKeyNotFound for a key
// deleted, or expired with its end unknown here).
func WaitEnded(err error, callerGone, waitOver bool, keyEnd string, index uint64) (rejoin bool, answer error) {
	if keyGone(err) && !waitOver && !callerGone && keyEnd == store.ActionExpire {
		return true, nil
	}
	if !callerGone && waitOver {
		return false, WaitTimeout(index)
	}
	return false, err
}

// keyGone reports whether err says a waiter key is gone.
func keyGone(err error) bool {
	var se *store.Error
	return errors.As(err, &se) && se.Code == store.EcodeKeyNotFound
}

// keyEnd is the action that ended waiter key me, created at index created
// and now gone, from this member's event history ("" when not known).
func (l *Locks) keyEnd(me string, created uint64) string {
	w, err := l.be.Watch(me, false, false, created+1)
	if err != nil {
		return ""
	}
	defer w.Remove()
	select {
	case ev, ok := <-w.C:
		if !ok {
			return ""
		}
		return ev.Action
	case <-time.After(time.Second):
		return ""
	}
}

// waitHead waits until the waiter e is the first in dir, watching only
// the waiter ahead of it and keeping its own key alive meanwhile; it
// returns the waiter's key as read then.
func (l *Locks) waitHead(ctx context.Context, dir string, e *store.Event, ttl uint64) (*store.Event, error) {
	me := e.Node.Key
	// Refreshes go out every TTL/4 and each may take up to TTL/3, so one
	// lost with a dead leader leaves time for the next before the TTL ends.
	every := time.Duration(ttl) * time.Second / (waiterRefresh + 1)
	refresh := time.NewTicker(max(every, 100*time.Millisecond))
	defer refresh.Stop()
	for {
		// The local state includes our waiter (it was applied here).
		// Waiters ahead of us only go away; none can arrive.
		list, err := l.be.Get(ctx, dir, true, true)
		if err != nil {
			return nil, err
		}
		pred, found := "", false
		for _, n := range list.Node.Nodes {
			if n.Key == me {
				found = true
				break
			}
			if !n.Dir && !hiddenKey(n.Key, dir) {
				pred = n.Key
			}
		}
		if !found {
			return nil, store.NewError(store.EcodeKeyNotFound, me+" (the waiter expired or was removed)", list.Index)
		}
		if pred == "" {
			// Head in this member's applied state. Confirm with a
			// linearizable read that the waiter still exists now (it
			// may have expired in entries not applied here yet), so a
			// grant is never answered for a key already gone.
			now, err := l.be.Get(ctx, me, false, false)
			if !unconfirmed(err) {
				return now, err
			}
			// Nobody could confirm the read just now (no leader: an
			// election, or this member is cut off). We are still in
			// line: keep our key alive and ask again while the caller
			// waits.
			if err := pause(ctx, refresh, me, ttl, l.be, l.now); err != nil {
				return nil, err
			}
			continue
		}
		w, err := l.be.Watch(pred, false, false, list.Index+1)
		if err != nil {
			return nil, err
		}
		err = l.waitGone(ctx, w, refresh, me, ttl)
		w.Remove()
		if err != nil {
			return nil, err
		}
	}
}

// unconfirmed reports whether err is a linearizable read that no leader
// confirmed (the read may succeed when asked again): server.ErrReadNoLeader
// and server.ErrReadTimeout say so with their ReadUnconfirmed method, so
// that this package need not import package server (whose simulator runs
// this package's rules).
func unconfirmed(err error) bool {
	var u interface{ ReadUnconfirmed() bool }
	return errors.As(err, &u) && u.ReadUnconfirmed()
}

// confirmRetry is the pause before a waiter at the head asks again for a
// read no leader confirmed.
const confirmRetry = 100 * time.Millisecond

// pause waits confirmRetry, refreshing the waiter key me if its refresh
// falls due; it fails when the key is gone or ctx ends.
func pause(ctx context.Context, refresh *time.Ticker, me string, ttl uint64, be Backend, now func() time.Time) error {
	t := time.NewTimer(confirmRetry)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-refresh.C:
		return KeepAlive(ctx, be, me, ttl, now)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitGone waits for a change to the watched predecessor, refreshing our
// own waiter key on every tick.
func (l *Locks) waitGone(ctx context.Context, w *store.Watcher, refresh *time.Ticker, me string, ttl uint64) error {
	for {
		select {
		case _, ok := <-w.C:
			if !ok && w.Err() != nil && !errors.Is(w.Err(), store.ErrWatcherCleared) {
				return w.Err()
			}
			return nil // changed (or the store was replaced): look again
		case <-refresh.C:
			if err := KeepAlive(ctx, l.be, me, ttl, l.now); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// KeepAlive refreshes a waiter key's TTL once, trying for at most a third
// of the TTL. It fails only when the key is gone (it expired or was
// removed: the waiter has lost its place); any other failure (no leader
// just now, a proposal lost with a dead leader) is left for the next
// refresh, which comes well before the TTL runs out.
func KeepAlive(ctx context.Context, be Backend, key string, ttl uint64, now func() time.Time) error {
	actx, cancel := context.WithTimeout(ctx, time.Duration(ttl)*time.Second/waiterRefresh)
	defer cancel()
	_, err := be.Do(actx, &store.Request{Op: store.OpUpdate, Path: key, Refresh: true, HasTTL: true, TTL: ttl, Time: now().UnixNano()})
	var se *store.Error
	if errors.As(err, &se) && se.Code == store.EcodeKeyNotFound {
		return err
	}
	return ctx.Err() // the caller's own end, or nil
}

func hiddenKey(key, dir string) bool {
	return len(key) > len(dir)+1 && key[len(dir)+1] == '_'
}

// Refresh extends the TTL of the waiter (normally the holder) that token
// names; store.EcodeKeyNotFound when it no longer exists.
func (l *Locks) Refresh(ctx context.Context, name string, token, ttl uint64) (*store.Event, error) {
	return l.be.Do(ctx, &store.Request{Op: store.OpUpdate, Path: Key(name, token), Refresh: true, HasTTL: true, TTL: ttl, Time: l.now().UnixNano()})
}

// Release gives up the lock (or the place in its queue) that token names.
func (l *Locks) Release(ctx context.Context, name string, token uint64) (*store.Event, error) {
	return l.be.Do(ctx, &store.Request{Op: store.OpDelete, Path: Key(name, token), Time: l.now().UnixNano()})
}

// Status lists lock name's holder (first) and waiters in order; an empty
// list when the lock is free. The read is linearizable.
func (l *Locks) Status(ctx context.Context, name string) (*store.Event, []*store.NodeView, error) {
	e, err := l.be.Get(ctx, Dir(name), true, false)
	var se *store.Error
	if errors.As(err, &se) && se.Code == store.EcodeKeyNotFound {
		return &store.Event{Action: store.ActionGet, Index: se.Index}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var out []*store.NodeView
	for _, n := range e.Node.Nodes {
		if !n.Dir && !hiddenKey(n.Key, Dir(name)) {
			out = append(out, n)
		}
	}
	return e, out, nil
}

// TokenOf parses a token parameter.
func TokenOf(s string) (uint64, error) {
	t, err := strconv.ParseUint(s, 10, 64)
	if err != nil || t == 0 {
		return 0, fmt.Errorf("invalid token %q", s)
	}
	return t, nil
}
