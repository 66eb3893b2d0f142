package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/store"
)

func apply(t *testing.T, s *store.Store, r *store.Request) *store.Event {
	t.Helper()
	e, err := s.Apply(0, r)
	if err != nil {
		t.Fatalf("%s: %v", fmtReq(r), err)
	}
	return e
}

func applyCode(t *testing.T, s *store.Store, r *store.Request, code int) *store.Error {
	t.Helper()
	se := applyErr(t, s, r)
	if se.Code != code {
		t.Fatalf("%s: %v, want error %d", fmtReq(r), se, code)
	}
	return se
}

const lk = store.LocksDir + "/l"

func acquire(owner string, wait bool) *store.Request {
	return &store.Request{Op: store.OpAcquire, Path: lk, Value: owner, HasTTL: true, TTL: 10, Wait: wait, Time: t0}
}

// A lock is granted to the first waiter; a try on a held lock fails with
// the holder as cause; waiters are granted in arrival order with strictly
// increasing tokens; a fenced write succeeds only with the holder's token.
func TestLockGrantsInOrderWithIncreasingTokens(t *testing.T) {
	s := store.New(100)
	a := apply(t, s, acquire("a", false))
	if a.Action != store.ActionCreate || a.Node.Value != "a" || a.Node.Expiration == 0 {
		t.Fatalf("acquire: %+v %+v", a, a.Node)
	}
	if se := applyCode(t, s, acquire("b", false), store.EcodeLockHeld); se.Cause != a.Node.Key {
		t.Fatalf("held: cause %q, want the holder %q", se.Cause, a.Node.Key)
	}
	b := apply(t, s, acquire("b", true))
	rc := acquire("c", true)
	rc.Time = t0 + 5*sec // outlives b
	c := apply(t, s, rc)
	fenced := func(token uint64) *store.Request {
		return &store.Request{Op: store.OpSet, Path: "/register", Value: "x", FenceLock: lk, FenceToken: token, Time: t0}
	}
	apply(t, s, fenced(a.Node.CreatedIndex))
	if se := applyCode(t, s, fenced(b.Node.CreatedIndex), store.EcodeFenceFailed); se.Cause == "" {
		t.Fatal("no cause")
	}
	// a releases: b holds, a's token is refused, b's accepted.
	apply(t, s, rqDelete(a.Node.Key, false, false))
	applyCode(t, s, fenced(a.Node.CreatedIndex), store.EcodeFenceFailed)
	apply(t, s, fenced(b.Node.CreatedIndex))
	// b's TTL runs out: c holds.
	apply(t, s, rqExpire(t0+11*sec))
	applyCode(t, s, fenced(b.Node.CreatedIndex), store.EcodeFenceFailed)
	apply(t, s, fenced(c.Node.CreatedIndex))
	if !(a.Node.CreatedIndex < b.Node.CreatedIndex && b.Node.CreatedIndex < c.Node.CreatedIndex) {
		t.Fatalf("tokens %d %d %d do not increase", a.Node.CreatedIndex, b.Node.CreatedIndex, c.Node.CreatedIndex)
	}
	// Released entirely: every token fails, even the last holder's.
	apply(t, s, rqDelete(c.Node.Key, false, false))
	applyCode(t, s, fenced(c.Node.CreatedIndex), store.EcodeFenceFailed)
	applyCode(t, s, fenced(0), store.EcodeFenceFailed)
	if e := apply(t, s, acquire("d", false)); e.Node.CreatedIndex <= c.Node.CreatedIndex {
		t.Fatal("a new grant's token is not larger")
	}
}

const q = store.QueuesDir + "/q"

func enqueue(v string) *store.Request {
	return &store.Request{Op: store.OpEnqueue, Path: q, Value: v, Time: t0}
}

func dequeue(wait bool, ttl uint64) *store.Request {
	return &store.Request{Op: store.OpDequeue, Path: q, Wait: wait, HasTTL: ttl > 0, TTL: ttl, Time: t0}
}

// Items come out in order; an empty queue answers 122, or with Wait
// registers a waiter that the next enqueue answers in the same apply
// (no item is stored); waiters are served in order.
func TestQueueFIFOAndBlockedDequeuers(t *testing.T) {
	s := store.New(100)
	applyCode(t, s, dequeue(false, 0), store.EcodeQueueEmpty)
	apply(t, s, enqueue("1"))
	apply(t, s, enqueue("2"))
	for _, want := range []string{"1", "2"} {
		e := apply(t, s, dequeue(false, 0))
		if e.Action != store.ActionDequeue || e.PrevNode.Value != want {
			t.Fatalf("dequeue: %s %+v, want %s", e.Action, e.PrevNode, want)
		}
	}
	w1 := apply(t, s, dequeue(true, 5))
	w2 := apply(t, s, dequeue(true, 5))
	if w1.Action != store.ActionCreate || w1.Node.Key[:len(store.WaitersDir(q))] != store.WaitersDir(q) {
		t.Fatalf("blocked dequeue: %+v", w1.Node)
	}
	wt, err := s.Watch(w1.Node.Key, false, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := apply(t, s, enqueue("3"))
	if d.Action != store.ActionDeliver || d.Node.Key != w1.Node.Key || d.Node.Value != "3" {
		t.Fatalf("enqueue with a waiter: %s %+v", d.Action, d.Node)
	}
	if got := <-wt.C; got.Action != store.ActionDeliver || got.Node.Value != "3" {
		t.Fatalf("the waiter's watch saw %s %+v", got.Action, got.Node)
	}
	if d2 := apply(t, s, enqueue("4")); d2.Node.Key != w2.Node.Key {
		t.Fatalf("second enqueue went to %s, want the second waiter", d2.Node.Key)
	}
	applyCode(t, s, dequeue(false, 0), store.EcodeQueueEmpty) // nothing was stored
	// No waiters left: the next item is stored.
	if e := apply(t, s, enqueue("5")); e.Action != store.ActionCreate {
		t.Fatalf("enqueue without waiters: %s", e.Action)
	}
	// A waiter that expires (its member stopped refreshing) is not served.
	apply(t, s, dequeue(false, 0)) // takes "5"
	apply(t, s, dequeue(true, 1))
	apply(t, s, rqExpire(t0+2*sec))
	if e := apply(t, s, enqueue("6")); e.Action != store.ActionCreate {
		t.Fatalf("enqueue after the waiter expired: %s", e.Action)
	}
}

// A reservation gives the head item a TTL; later dequeues skip it; when
// the TTL runs out the item is back at the head with its value; an
// acknowledgement is a compare-and-delete on the reservation's index.
func TestQueueReservationsReturnToHead(t *testing.T) {
	s := store.New(100)
	apply(t, s, enqueue("a"))
	apply(t, s, enqueue("b"))
	r := apply(t, s, dequeue(false, 3))
	if r.Action != store.ActionReserve || r.Node.Value != "a" || r.Node.Expiration == 0 {
		t.Fatalf("reserve: %s %+v", r.Action, r.Node)
	}
	if e := apply(t, s, dequeue(false, 0)); e.PrevNode.Value != "b" {
		t.Fatalf("dequeue skipped to %+v, want b", e.PrevNode)
	}
	applyCode(t, s, dequeue(false, 0), store.EcodeQueueEmpty)
	apply(t, s, enqueue("c"))
	apply(t, s, rqExpire(t0+4*sec))
	// A blocking dequeue (Wait, with the waiter's TTL) takes an available
	// item; it does not reserve it.
	if e := apply(t, s, dequeue(true, 10)); e.Action != store.ActionDequeue || e.PrevNode.Value != "a" {
		t.Fatalf("blocking dequeue with an item: %s %+v", e.Action, e.PrevNode)
	}
	apply(t, s, &store.Request{Op: store.OpEnqueue, Path: q, Value: "a", Time: t0}) // "a" again, now last
	r = apply(t, s, dequeue(false, 3))                                              // reserve "c"
	apply(t, s, rqExpire(t0+8*sec))
	got, err := s.Get(r.Node.Key, false)
	if err != nil || got.Node.Value != "c" || got.Node.Expiration != 0 {
		t.Fatalf("after the reservation ran out: %+v %v", got, err)
	}
	// The old receipt (index of the reservation) no longer acknowledges.
	applyCode(t, s, rqCAD(r.Node.Key, "", r.Node.ModifiedIndex), store.EcodeTestFailed)
	r2 := apply(t, s, dequeue(false, 3))
	if r2.Node.Key != r.Node.Key {
		t.Fatalf("reserved %s after the return, want the head %s", r2.Node.Key, r.Node.Key)
	}
	apply(t, s, rqCAD(r2.Node.Key, "", r2.Node.ModifiedIndex))
	if e := apply(t, s, dequeue(false, 0)); e.PrevNode.Value != "a" {
		t.Fatalf("after the acknowledgement: %+v", e.PrevNode)
	}
}

// The new events survive persistence (their action codes are stored).
func TestCoordinationEventsPersist(t *testing.T) {
	s, db := openTemp(t)
	apply(t, s, enqueue("a"))
	apply(t, s, dequeue(false, 2))
	apply(t, s, rqExpire(t0+3*sec))
	apply(t, s, dequeue(false, 0))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s2 := reopen(t, db)
	var actions []string
	for i := uint64(1); i <= 4; i++ {
		w, err := s2.Watch(q, true, false, i)
		if err != nil {
			t.Fatal(err)
		}
		actions = append(actions, (<-w.C).Action)
		w.Remove()
	}
	want := []string{store.ActionCreate, store.ActionReserve, store.ActionRequeue, store.ActionDequeue}
	for i := range want {
		if actions[i] != want[i] {
			t.Fatalf("history after reopen: %v, want %v", actions, want)
		}
	}
}

func openTemp(t *testing.T) (*store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := store.OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(db, 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return s, path
}

func reopen(t *testing.T, path string) *store.Store {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "copy.db")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenDB(tmp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := store.Open(db, 100)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A reservation that runs out while a dequeuer is blocked hands the item
// to that dequeuer (in the expiry's apply) instead of leaving it in the
// queue beside a waiter.
func TestQueueRequeueGoesToABlockedDequeuer(t *testing.T) {
	s := store.New(100)
	apply(t, s, enqueue("a"))
	r := apply(t, s, dequeue(false, 1))
	w := apply(t, s, dequeue(true, 60)) // blocks: "a" is reserved
	if w.Action != store.ActionCreate {
		t.Fatalf("blocking dequeue: %s", w.Action)
	}
	wt, err := s.Watch(w.Node.Key, false, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, rqExpire(t0+2*sec))
	if got := <-wt.C; got.Action != store.ActionDeliver || got.Node.Value != "a" {
		t.Fatalf("the blocked dequeuer saw %s %+v", got.Action, got.Node)
	}
	if _, err := s.Get(r.Node.Key, false); err == nil {
		t.Fatal("the delivered item is still in the queue")
	}
	applyCode(t, s, dequeue(false, 0), store.EcodeQueueEmpty)
}
