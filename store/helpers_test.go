package store_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/store"
)

// t0 is a realistic proposer clock (2023-11-14), Unix nanoseconds. Every
// test request carries a Time at or after it unless it tests the clock.
var t0 = time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC).UnixNano()

// sec is one second in the Unix-nanosecond unit of Request.Time.
const sec int64 = 1e9

// minExpire is 2000-01-01T00:00:00Z: a deadline before it means "no TTL"
// (API.md §1.6).
var minExpire = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// ---- request builders -------------------------------------------------

func rqSet(p, v string) *store.Request {
	return &store.Request{Op: store.OpSet, Path: p, Value: v, Time: t0}
}

func rqMkdir(p string) *store.Request {
	return &store.Request{Op: store.OpSet, Path: p, Dir: true, Time: t0}
}

func rqCreate(p, v string) *store.Request {
	return &store.Request{Op: store.OpCreate, Path: p, Value: v, Time: t0}
}

func rqUpdate(p, v string) *store.Request {
	return &store.Request{Op: store.OpUpdate, Path: p, Value: v, Time: t0}
}

func rqCAS(p, v, prevValue string, prevIndex uint64) *store.Request {
	return &store.Request{Op: store.OpCompareAndSwap, Path: p, Value: v,
		PrevValue: prevValue, PrevIndex: prevIndex, Time: t0}
}

func rqDelete(p string, dir, recursive bool) *store.Request {
	return &store.Request{Op: store.OpDelete, Path: p, Dir: dir, Recursive: recursive, Time: t0}
}

func rqCAD(p, prevValue string, prevIndex uint64) *store.Request {
	return &store.Request{Op: store.OpCompareAndDelete, Path: p,
		PrevValue: prevValue, PrevIndex: prevIndex, Time: t0}
}

func rqInOrder(p, v string) *store.Request {
	return &store.Request{Op: store.OpCreateInOrder, Path: p, Value: v, Time: t0}
}

func rqExpire(at int64) *store.Request {
	return &store.Request{Op: store.OpExpire, Path: "/", Time: at}
}

// ttl returns r with a TTL of n seconds.
func ttl(r *store.Request, n uint64) *store.Request {
	r.HasTTL, r.TTL = true, n
	return r
}

// refresh returns r marked as a TTL refresh of n seconds.
func refresh(r *store.Request, n uint64) *store.Request {
	r.Refresh = true
	return ttl(r, n)
}

// at returns r with its Time set to t.
func at(r *store.Request, t int64) *store.Request {
	r.Time = t
	return r
}

// dir returns r with Dir set.
func dir(r *store.Request) *store.Request {
	r.Dir = true
	return r
}

// ---- applying ---------------------------------------------------------

// mustApply applies every request and fails the test on any error.
func mustApply(t testing.TB, s *store.Store, reqs ...*store.Request) *store.Event {
	t.Helper()
	var last *store.Event
	for _, r := range reqs {
		e, err := s.Apply(0, r)
		if err != nil {
			t.Fatalf("apply %s: %v", fmtReq(r), err)
		}
		last = e
	}
	return last
}

// applyErr applies r, which must fail with a *store.Error.
func applyErr(t testing.TB, s *store.Store, r *store.Request) *store.Error {
	t.Helper()
	e, err := s.Apply(0, r)
	if err == nil {
		t.Fatalf("apply %s: want an error, got event %s", fmtReq(r), fmtEvent(e))
	}
	var se *store.Error
	if !errors.As(err, &se) {
		t.Fatalf("apply %s: error %v (%T) is not a *store.Error", fmtReq(r), err, err)
	}
	return se
}

func mustGet(t testing.TB, s *store.Store, p string, recursive bool) *store.Event {
	t.Helper()
	e, err := s.Get(p, recursive)
	if err != nil {
		t.Fatalf("get %s: %v", p, err)
	}
	return e
}

// ---- canonical renderings, for comparisons and readable failures -----

func fmtReq(r *store.Request) string {
	if r == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v %q", r.Op, r.Path)
	if r.Value != "" {
		fmt.Fprintf(&b, " value=%q", r.Value)
	}
	if r.Dir {
		b.WriteString(" dir")
	}
	if r.Recursive {
		b.WriteString(" recursive")
	}
	if r.PrevValue != "" {
		fmt.Fprintf(&b, " prevValue=%q", r.PrevValue)
	}
	if r.PrevIndex != 0 {
		fmt.Fprintf(&b, " prevIndex=%d", r.PrevIndex)
	}
	if r.HasTTL {
		fmt.Fprintf(&b, " ttl=%d", r.TTL)
	}
	if r.Refresh {
		b.WriteString(" refresh")
	}
	fmt.Fprintf(&b, " t=%+d", r.Time-t0)
	return b.String()
}

// fmtView renders v and its children (sorted by key, so that the
// rendering does not depend on listing order).
func fmtView(v *store.NodeView) string {
	if v == nil {
		return "nil"
	}
	var b strings.Builder
	writeView(&b, v)
	return b.String()
}

func writeView(b *strings.Builder, v *store.NodeView) {
	fmt.Fprintf(b, "{key=%q", v.Key)
	if v.HasValue {
		fmt.Fprintf(b, " value=%q", v.Value)
	} else if v.Value != "" {
		fmt.Fprintf(b, " STRAY-value=%q", v.Value)
	}
	if v.Dir {
		b.WriteString(" dir")
	}
	if v.Expiration != 0 {
		fmt.Fprintf(b, " exp=%+d", v.Expiration-t0)
	}
	fmt.Fprintf(b, " mod=%d cre=%d", v.ModifiedIndex, v.CreatedIndex)
	if v.Nodes != nil {
		kids := slices.Clone(v.Nodes)
		slices.SortFunc(kids, func(x, y *store.NodeView) int { return strings.Compare(x.Key, y.Key) })
		b.WriteString(" nodes=[")
		for i, c := range kids {
			if i > 0 {
				b.WriteString(" ")
			}
			writeView(b, c)
		}
		b.WriteString("]")
	}
	b.WriteString("}")
}

func fmtEvent(e *store.Event) string {
	if e == nil {
		return "<nil event>"
	}
	s := fmt.Sprintf("%s@%d t=%+d node=%s prev=%s", e.Action, e.Index, e.Time-t0, fmtView(e.Node), fmtView(e.PrevNode))
	if e.Refresh {
		s += " refresh"
	}
	return s
}

func fmtErr(err error) string {
	var se *store.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("error %d cause=%q index=%d", se.Code, se.Cause, se.Index)
	}
	return fmt.Sprintf("non-store error %v", err)
}

// fmtResult renders the outcome of an Apply or Get.
func fmtResult(e *store.Event, err error) string {
	if err != nil {
		return fmtErr(err)
	}
	return fmtEvent(e)
}

// wantErr checks err against a code, cause and index.
func wantErr(t testing.TB, err error, code int, cause string, index uint64) {
	t.Helper()
	want := fmt.Sprintf("error %d cause=%q index=%d", code, cause, index)
	if err == nil {
		t.Fatalf("got no error, want %s", want)
	}
	if got := fmtErr(err); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// recv returns the next event queued on w without blocking, or nil.
func recv(w *store.Watcher) *store.Event {
	select {
	case e, ok := <-w.C:
		if !ok {
			return nil
		}
		return e
	default:
		return nil
	}
}

// wantNothing fails if w has an event queued or was closed.
func wantNothing(t testing.TB, w *store.Watcher, what string) {
	t.Helper()
	select {
	case e, ok := <-w.C:
		if !ok {
			t.Fatalf("%s: watcher closed (err %v), want it open and idle", what, w.Err())
		}
		t.Fatalf("%s: got %s, want no event", what, fmtEvent(e))
	default:
	}
}

// wantEvent fails unless w has an event queued with the given action,
// key and index, and returns it.
func wantEvent(t testing.TB, w *store.Watcher, action, key string, index uint64) *store.Event {
	t.Helper()
	select {
	case e, ok := <-w.C:
		if !ok {
			t.Fatalf("watcher closed (err %v), want %s %s@%d", w.Err(), action, key, index)
		}
		if e.Action != action || e.Node.Key != key || e.Index != index {
			t.Fatalf("got %s, want %s %s@%d", fmtEvent(e), action, key, index)
		}
		return e
	default:
		t.Fatalf("no event queued, want %s %s@%d", action, key, index)
	}
	return nil
}

// maxTTL is the largest TTL whose length in nanoseconds fits an int64.
const maxTTL = uint64(math.MaxInt64 / int64(1e9))
