package store_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/cairnkv/cairn/store"
)

func mustWatch(t testing.TB, s *store.Store, p string, recursive, stream bool, since uint64) *store.Watcher {
	t.Helper()
	w, err := s.Watch(p, recursive, stream, since)
	if err != nil {
		t.Fatalf("watch %s: %v", p, err)
	}
	return w
}

// TestLongPollOneEvent: a long-poll watcher gets exactly one event and is
// then unregistered; its channel is never closed.
func TestLongPollOneEvent(t *testing.T) {
	s := store.New(100)
	w := mustWatch(t, s, "/k", false, false, 0)
	if w.StartIndex != 0 || s.WatcherCount() != 1 {
		t.Fatalf("StartIndex %d count %d", w.StartIndex, s.WatcherCount())
	}
	mustApply(t, s, rqSet("/k", "1"), rqSet("/k", "2"), rqDelete("/k", false, false))
	e := wantEvent(t, w, "set", "/k", 1)
	if e.Node.Value != "1" {
		t.Fatalf("got %s", fmtEvent(e))
	}
	wantNothing(t, w, "after the first event")
	if s.WatcherCount() != 0 || w.Err() != nil || w.NextIndex() != 2 {
		t.Fatalf("count %d err %v next %d", s.WatcherCount(), w.Err(), w.NextIndex())
	}
}

// TestWatchFromHistory: a waitIndex in the past returns the first
// matching event at or after it, at once (API.md §2.1).
func TestWatchFromHistory(t *testing.T) {
	s := store.New(100)
	mustApply(t, s, rqSet("/a", "1"), rqSet("/b", "1"), rqSet("/a", "2"), rqSet("/b", "2")) // 1-4
	w := mustWatch(t, s, "/b", false, false, 1)
	wantEvent(t, w, "set", "/b", 2)
	if w.StartIndex != 4 || s.WatcherCount() != 0 {
		t.Fatalf("StartIndex %d (want the current index 4), count %d", w.StartIndex, s.WatcherCount())
	}
	w = mustWatch(t, s, "/b", false, false, 3)
	wantEvent(t, w, "set", "/b", 4)
	w = mustWatch(t, s, "/a", false, false, 4) // nothing at or after 4: waits
	wantNothing(t, w, "no match in history")
	if s.WatcherCount() != 1 {
		t.Fatalf("count %d", s.WatcherCount())
	}
	mustApply(t, s, rqSet("/b", "3"), rqSet("/a", "3")) // 5, 6
	wantEvent(t, w, "set", "/a", 6)
	w = mustWatch(t, s, "/", true, false, 5)
	wantEvent(t, w, "set", "/b", 5)
	// waitIndex == current+1 is the same as 0.
	w = mustWatch(t, s, "/a", false, false, 7)
	wantNothing(t, w, "waitIndex = current+1")
	mustApply(t, s, rqSet("/a", "4"))
	wantEvent(t, w, "set", "/a", 7)
}

// TestWatchFuture: a waitIndex beyond the current index skips matching
// events before it.
func TestWatchFuture(t *testing.T) {
	s := store.New(100)
	mustApply(t, s, rqSet("/k", "0"), rqSet("/k", "1")) // 1, 2
	w := mustWatch(t, s, "/k", false, false, 5)
	st := mustWatch(t, s, "/k", false, true, 5)
	if w.StartIndex != 2 {
		t.Fatalf("StartIndex %d", w.StartIndex)
	}
	mustApply(t, s, rqSet("/k", "3"), rqSet("/k", "4"))
	wantNothing(t, w, "before waitIndex")
	wantNothing(t, st, "before waitIndex (stream)")
	mustApply(t, s, rqSet("/k", "5"), rqSet("/k", "6"))
	wantEvent(t, w, "set", "/k", 5)
	wantEvent(t, st, "set", "/k", 5)
	wantEvent(t, st, "set", "/k", 6)
	st.Remove()
}

// TestWatchRecursive (API.md §2.2).
func TestWatchRecursive(t *testing.T) {
	s := store.New(100)
	mustApply(t, s, rqSet("/other", "x")) // 1
	plain := mustWatch(t, s, "/dir", false, true, 0)
	rec := mustWatch(t, s, "/dir", true, true, 0)
	sib := mustWatch(t, s, "/di", true, true, 0) // a name prefix, not a parent

	mustApply(t, s, rqSet("/dir/x", "1")) // 2: implicit /dir
	wantNothing(t, plain, "implicit creation of the watched dir")
	wantEvent(t, rec, "set", "/dir/x", 2)
	mustApply(t, s, rqSet("/dir/y/z", "1")) // 3
	wantEvent(t, rec, "set", "/dir/y/z", 3)
	mustApply(t, s, ttl(rqUpdate("/dir", ""), 10)) // 4: dir TTL update
	wantEvent(t, plain, "update", "/dir", 4)
	wantEvent(t, rec, "update", "/dir", 4)
	mustApply(t, s, rqSet("/dirx", "1"), rqSet("/other", "y")) // 5, 6
	wantNothing(t, plain, "unrelated keys")
	wantNothing(t, rec, "unrelated keys")
	wantNothing(t, sib, "/di is not a parent of /dir/...")
	mustApply(t, s, rqDelete("/dir/y/z", false, false)) // 7
	wantEvent(t, rec, "delete", "/dir/y/z", 7)
	wantNothing(t, plain, "child delete")

	// Explicit mkdir notifies a non-recursive watcher on it.
	mk := mustWatch(t, s, "/newdir", false, false, 0)
	mustApply(t, s, rqMkdir("/newdir")) // 8
	wantEvent(t, mk, "set", "/newdir", 8)
	for _, w := range []*store.Watcher{plain, rec, sib} {
		w.Remove()
	}
}

// TestWatchHidden: a recursive watcher is not told of changes below a
// path element starting with "_"; a watcher placed on the hidden node is
// (API.md §1.8, §2.2).
func TestWatchHidden(t *testing.T) {
	s := store.New(100)
	mustApply(t, s, rqMkdir("/a")) // 1
	rec := mustWatch(t, s, "/a", true, true, 0)
	onDir := mustWatch(t, s, "/a/_h", true, true, 0)
	onKey := mustWatch(t, s, "/a/_k", false, true, 0)
	under := mustWatch(t, s, "/a/_h/sub", true, true, 0)

	mustApply(t, s, rqSet("/a/_k", "1")) // 2
	wantNothing(t, rec, "hidden key below the watched dir")
	wantEvent(t, onKey, "set", "/a/_k", 2)
	mustApply(t, s, rqSet("/a/_h/x", "1")) // 3
	wantNothing(t, rec, "key in a hidden dir")
	wantEvent(t, onDir, "set", "/a/_h/x", 3)
	mustApply(t, s, rqSet("/a/_h/sub/y", "1")) // 4
	wantNothing(t, rec, "deeper key in a hidden dir")
	wantEvent(t, onDir, "set", "/a/_h/sub/y", 4)
	wantEvent(t, under, "set", "/a/_h/sub/y", 4) // nothing hidden below /a/_h/sub
	mustApply(t, s, rqSet("/a/v/_w", "1"))       // 5
	wantNothing(t, rec, "hidden leaf deeper down")
	mustApply(t, s, rqSet("/a/x_", "1"), rqSet("/a/v/w", "2")) // 6, 7
	wantEvent(t, rec, "set", "/a/x_", 6)
	wantEvent(t, rec, "set", "/a/v/w", 7)
	mustApply(t, s, rqDelete("/a/_h", false, true)) // 8
	wantNothing(t, rec, "delete of a hidden dir")
	wantEvent(t, onDir, "delete", "/a/_h", 8)
	wantEvent(t, under, "delete", "/a/_h", 8) // it was inside
	wantNothing(t, onKey, "other hidden node deleted")
	for _, w := range []*store.Watcher{rec, onDir, onKey, under} {
		w.Remove()
	}
}

// TestWatchRootRecursiveIgnoresHiddenKeys: the hidden rule applies to a
// recursive watcher on "/" too: in etcd the client root is "/1", so
// "/1/_x" has "/_x" below it, which is hidden.
func TestWatchRootRecursiveIgnoresHiddenKeys(t *testing.T) {
	s := store.New(100)
	for _, stream := range []bool{false, true} {
		w := mustWatch(t, s, "/", true, stream, 0)
		mustApply(t, s, rqSet("/_x", "secret"))
		wantNothing(t, w, fmt.Sprintf("stream=%v: set of /_x", stream))
		mustApply(t, s, rqSet("/_d/k", "secret"))
		wantNothing(t, w, fmt.Sprintf("stream=%v: set of /_d/k", stream))
		w.Remove()
	}
}

// TestWatchParentRemoved: deleting or expiring a directory wakes, exactly
// once, watchers on nodes that were inside it (non-recursive too), with
// the directory's event (API.md §2.2).
func TestWatchParentRemoved(t *testing.T) {
	for _, how := range []string{"delete", "expire"} {
		t.Run(how, func(t *testing.T) {
			s := store.New(100)
			mustApply(t, s,
				ttl(rqMkdir("/d"), 5),   // 1
				rqSet("/d/a/x", "1"),    // 2
				rqSet("/d/b", "1"),      // 3
				rqMkdir("/d/e"),         // 4
				rqSet("/d/_h/k", "1"),   // 5
				rqSet("/dx", "sibling"), // 6
			)
			type wcase struct {
				name      string
				path      string
				recursive bool
				woken     bool
			}
			cases := []wcase{
				{"key", "/d/a/x", false, true},
				{"key rec", "/d/a/x", true, true},
				{"subdir", "/d/a", false, true},
				{"empty dir", "/d/e", false, true},
				{"hidden key inside", "/d/_h/k", false, true},
				{"dir itself", "/d", false, true},
				{"dir itself rec", "/d", true, true},
				{"root rec", "/", true, true},
				{"root plain", "/", false, false},
				{"missing inside", "/d/nothing", false, false},
				{"missing below key", "/d/b/c", true, false},
				{"name-prefix sibling", "/dx", true, false},
			}
			var ws []*store.Watcher
			for _, c := range cases {
				for _, stream := range []bool{false, true} {
					ws = append(ws, mustWatch(t, s, c.path, c.recursive, stream, 0))
				}
			}
			action := "delete"
			if how == "delete" {
				mustApply(t, s, rqDelete("/d", false, true))
			} else {
				action = "expire"
				mustApply(t, s, rqExpire(t0+5*sec))
			}
			if s.Index() != 7 {
				t.Fatalf("index %d, want 7", s.Index())
			}
			for i, c := range cases {
				for j, stream := range []bool{false, true} {
					w := ws[2*i+j]
					what := fmt.Sprintf("%s (stream=%v)", c.name, stream)
					if c.woken {
						e := wantEvent(t, w, action, "/d", 7)
						if !e.Node.Dir {
							t.Fatalf("%s: %s", what, fmtEvent(e))
						}
					}
					wantNothing(t, w, what) // and exactly once
					w.Remove()
				}
			}
			if s.WatcherCount() != 0 {
				t.Fatalf("count %d after removing all", s.WatcherCount())
			}

			// The same through the history: a plain path test, so also for
			// paths that did not exist; not for name-prefix siblings.
			for _, p := range []string{"/d/a/x", "/d/nothing", "/d"} {
				w := mustWatch(t, s, p, false, false, 7)
				wantEvent(t, w, action, "/d", 7)
			}
			w := mustWatch(t, s, "/dx", false, false, 7)
			wantNothing(t, w, "history: /dx is not inside /d")
			w.Remove()
		})
	}
}

// TestStreamSeesDeleteOnce: Cairn does not reproduce etcd's double delete
// (API.md "Where Cairn deliberately differs" 3).
func TestStreamSeesDeleteOnce(t *testing.T) {
	s := store.New(100)
	ws := []*store.Watcher{
		mustWatch(t, s, "/s1", false, true, 0),
		mustWatch(t, s, "/s1", true, true, 0),
	}
	mustApply(t, s, rqSet("/s1", "1"), ttl(rqSet("/s1", "2"), 9), refresh(rqSet("/s1", ""), 9), rqDelete("/s1", false, false))
	for _, w := range ws {
		wantEvent(t, w, "set", "/s1", 1)
		wantEvent(t, w, "set", "/s1", 2)
		wantEvent(t, w, "delete", "/s1", 4)
		wantNothing(t, w, "after the delete")
		w.Remove()
	}
	d := mustWatch(t, s, "/dd", false, true, 0)
	mustApply(t, s, rqMkdir("/dd"), rqSet("/dd/x", "1"), rqDelete("/dd", false, true))
	wantEvent(t, d, "set", "/dd", 5)
	wantEvent(t, d, "delete", "/dd", 7)
	wantNothing(t, d, "after the dir delete")
	d.Remove()
}

// TestStreamFromHistoryKeepsStreaming: unlike etcd, a stream watch that
// starts in the history is registered for what follows.
func TestStreamFromHistoryKeepsStreaming(t *testing.T) {
	s := store.New(100)
	mustApply(t, s, rqSet("/s", "1"), rqSet("/t", "1"), rqSet("/s", "2")) // 1-3
	w := mustWatch(t, s, "/s", false, true, 1)
	wantEvent(t, w, "set", "/s", 1)
	wantEvent(t, w, "set", "/s", 3)
	wantNothing(t, w, "history drained")
	if s.WatcherCount() != 1 || w.NextIndex() != 4 {
		t.Fatalf("count %d next %d", s.WatcherCount(), w.NextIndex())
	}
	mustApply(t, s, rqSet("/s", "3"), rqSet("/s", "4"))
	wantEvent(t, w, "set", "/s", 4)
	wantEvent(t, w, "set", "/s", 5)
	w.Remove()
}

// TestStreamTooSlow: a stream watcher that does not read is ended once
// StreamBuffer events are waiting: C delivers them, is closed, Err says
// why and NextIndex says where to resume. Nothing is lost.
func TestStreamTooSlow(t *testing.T) {
	s := store.New(1000)
	w := mustWatch(t, s, "/k", false, true, 0)
	other := mustWatch(t, s, "/k", false, true, 0) // a reader that keeps up
	var seen []uint64
	for i := 1; i <= store.StreamBuffer; i++ {
		mustApply(t, s, rqSet("/k", strconv.Itoa(i)))
		seen = append(seen, recv(other).Index)
	}
	if w.Err() != nil || s.WatcherCount() != 2 {
		t.Fatalf("ended early: %v, count %d", w.Err(), s.WatcherCount())
	}
	mustApply(t, s, rqSet("/unrelated", "x"))                     // StreamBuffer+1: not for w
	mustApply(t, s, rqSet("/k", "overflow"), rqSet("/k", "more")) // +2, +3
	seen = append(seen, recv(other).Index, recv(other).Index)
	if s.WatcherCount() != 1 {
		t.Fatalf("count %d, want only the reader left", s.WatcherCount())
	}
	got, closed := drainIndexes(w)
	if !closed {
		t.Fatalf("C not closed after %d events: the slow watcher was not ended", len(got))
	}
	if len(got) != store.StreamBuffer || got[0] != 1 || got[len(got)-1] != uint64(store.StreamBuffer) {
		t.Fatalf("received %d events %v..., want 1..%d", len(got), got[:min(len(got), 3)], store.StreamBuffer)
	}
	if w.Err() != store.ErrWatcherTooSlow {
		t.Fatalf("Err() = %v", w.Err())
	}
	next := w.NextIndex()
	if next != uint64(store.StreamBuffer)+1 {
		t.Fatalf("NextIndex() = %d, want %d", next, store.StreamBuffer+1)
	}
	w.Remove() // harmless after the end
	// Resuming from NextIndex delivers exactly what was not received.
	r := mustWatch(t, s, "/k", false, true, next)
	for _, want := range seen[store.StreamBuffer:] {
		if e := recv(r); e == nil || e.Index != want {
			t.Fatalf("resumed stream got %v, want index %d", e, want)
		}
	}
	wantNothing(t, r, "resumed stream")
	r.Remove()
	other.Remove()
	if s.WatcherCount() != 0 {
		t.Fatalf("count %d", s.WatcherCount())
	}
}

// drainIndexes takes what is queued on w without blocking and reports
// whether C was closed after it.
func drainIndexes(w *store.Watcher) (idx []uint64, closed bool) {
	for {
		select {
		case e, ok := <-w.C:
			if !ok {
				return idx, true
			}
			idx = append(idx, e.Index)
		default:
			return idx, false
		}
	}
}

// TestStreamTooSlowFromHistory: the history alone can overflow the buffer.
func TestStreamTooSlowFromHistory(t *testing.T) {
	s := store.New(1000)
	n := store.StreamBuffer + 20
	for i := range n {
		mustApply(t, s, rqSet("/k", strconv.Itoa(i)))
	}
	w := mustWatch(t, s, "/k", false, true, 1)
	got, closed := drainIndexes(w)
	count := len(got)
	if !closed || count != store.StreamBuffer || w.Err() != store.ErrWatcherTooSlow || w.NextIndex() != uint64(store.StreamBuffer)+1 {
		t.Fatalf("got %d events, err %v, next %d", count, w.Err(), w.NextIndex())
	}
	if s.WatcherCount() != 0 {
		t.Fatalf("count %d", s.WatcherCount())
	}
	mustApply(t, s, rqSet("/k", "after")) // must not write to the closed channel
	// Exactly StreamBuffer matching events fit.
	w = mustWatch(t, s, "/k", false, true, uint64(n+1-store.StreamBuffer+1))
	if w.Err() != nil || s.WatcherCount() != 1 {
		t.Fatalf("err %v count %d", w.Err(), s.WatcherCount())
	}
	w.Remove()
}

// TestRemove: Remove is idempotent, safe after the watcher fired or was
// ended, safe from many goroutines, and takes away only its own watcher.
func TestRemove(t *testing.T) {
	s := store.New(100)
	a := mustWatch(t, s, "/k", false, true, 0)
	b := mustWatch(t, s, "/k", false, true, 0)
	c := mustWatch(t, s, "/k", true, false, 0)
	if s.WatcherCount() != 3 {
		t.Fatalf("count %d", s.WatcherCount())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(a.Remove)
	}
	wg.Wait()
	a.Remove()
	if s.WatcherCount() != 2 {
		t.Fatalf("count %d after removing one watcher repeatedly", s.WatcherCount())
	}
	mustApply(t, s, rqSet("/k", "1"))
	wantNothing(t, a, "removed watcher")
	wantEvent(t, b, "set", "/k", 1)
	wantEvent(t, c, "set", "/k", 1)
	c.Remove() // after firing
	c.Remove()
	b.Remove()
	b.Remove()
	if s.WatcherCount() != 0 {
		t.Fatalf("count %d", s.WatcherCount())
	}
	d := mustWatch(t, s, "/k", false, false, 0)
	if s.WatcherCount() != 1 {
		t.Fatalf("count %d: earlier Removes were counted twice", s.WatcherCount())
	}
	mustApply(t, s, rqSet("/k", "2"))
	wantEvent(t, d, "set", "/k", 2)
}

// TestWatchRace runs Get, Watch and Remove concurrently with Apply. Run it
// with -race. Readers check that every version they see is consistent;
// watchers that re-watch with waitIndex = last+1, and a stream watcher
// that resumes when ended, must see every change of /counter in order.
func TestWatchRace(t *testing.T) {
	const writes = 1500
	s := store.New(store.DefaultEventHistory)
	done := make(chan struct{})
	var wg sync.WaitGroup

	// Readers: /counter's value is always the index it was written at.
	for range 3 {
		wg.Go(func() {
			var last uint64
			for {
				select {
				case <-done:
					return
				default:
				}
				e, err := s.Get("/", true)
				if err != nil {
					t.Error(err)
					return
				}
				if e.Index < last {
					t.Errorf("Get went back from index %d to %d", last, e.Index)
					return
				}
				last = e.Index
				for _, n := range e.Node.Nodes {
					if n.Key == "/counter" && (n.Value != strconv.FormatUint(n.ModifiedIndex, 10) || n.ModifiedIndex > e.Index) {
						t.Errorf("torn read at %d: %s", e.Index, fmtView(n))
						return
					}
				}
				if g, err := s.Get("/counter", false); err == nil && g.Node.Value != strconv.FormatUint(g.Node.ModifiedIndex, 10) {
					t.Errorf("torn read: %s", fmtEvent(g))
					return
				}
			}
		})
	}
	// Churn: watchers come and go on paths the writer touches.
	wg.Go(func() {
		r := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-done:
				return
			default:
			}
			w, err := s.Watch(fmt.Sprintf("/dir/k%d", r.IntN(20)), r.IntN(2) == 0, r.IntN(2) == 0, 0)
			if err != nil {
				t.Error(err)
				return
			}
			recv(w)
			_ = s.WatcherCount()
			w.Remove()
		}
	})
	// Followers of /counter: they stop by themselves once they have seen
	// the last change (final, published by closing writesDone).
	writesDone := make(chan struct{})
	var final uint64
	followers := make([][]uint64, 3)
	var fwg sync.WaitGroup
	for i := range followers {
		fwg.Go(func() {
			stream := i == 0
			next := uint64(1)
			finished := false
			for !finished || next <= final {
				w, err := s.Watch("/counter", false, stream, next)
				if err != nil {
					t.Error(err)
					return
				}
				for {
					var e *store.Event
					var ok bool
					if finished {
						if next > final {
							break
						}
						e, ok = <-w.C // the events up to final exist: no wait forever
					} else {
						select {
						case e, ok = <-w.C:
						case <-writesDone:
							finished = true
							continue
						}
					}
					if !ok {
						next = w.NextIndex() // ended for being slow: resume there
						break
					}
					followers[i] = append(followers[i], e.Index)
					next = e.Index + 1
					if !stream {
						break
					}
				}
				w.Remove()
			}
		})
	}

	var want []uint64
	for i := range writes {
		var r *store.Request
		switch i % 5 {
		case 0, 1:
			r = rqSet("/counter", strconv.FormatUint(s.Index()+1, 10))
			want = append(want, s.Index()+1)
		case 2:
			r = ttl(rqSet(fmt.Sprintf("/dir/k%d", i%20), "v"), uint64(i%3))
		case 3:
			r = rqExpire(t0 + int64(i%4)*sec)
		case 4:
			if i%20 == 4 {
				r = rqDelete("/dir", true, true)
			} else {
				r = rqSet(fmt.Sprintf("/dir/k%d/sub", i%20), "v")
			}
		}
		s.Apply(uint64(i+1), r) // errors (e.g. a key in the way) are expected
	}
	final = want[len(want)-1]
	close(writesDone)
	fwg.Wait()
	close(done)
	wg.Wait()
	for i, got := range followers {
		if !slices.Equal(got, want) {
			t.Fatalf("follower %d (stream=%v) saw %d changes of /counter, want all %d in order", i, i == 0, len(got), len(want))
		}
	}
}

// EndWatchers ends every registered watcher (a member replacing its store
// with a snapshot): C is closed and Err says why; a long-poll watcher that
// already holds its event keeps it.
func TestEndWatchers(t *testing.T) {
	s := store.New(10)
	live, err := s.Watch("/a", true, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	done, err := s.Watch("/b", false, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(1, &store.Request{Op: store.OpSet, Path: "/b", Value: "v", Time: 1}); err != nil {
		t.Fatal(err)
	}
	s.EndWatchers()
	if _, ok := <-live.C; ok {
		t.Fatal("stream watcher still open")
	}
	if !errors.Is(live.Err(), store.ErrWatcherCleared) {
		t.Fatalf("Err = %v", live.Err())
	}
	if e := <-done.C; e == nil || e.Node.Key != "/b" {
		t.Fatalf("delivered event lost: %v", e)
	}
	if n := s.WatcherCount(); n != 0 {
		t.Fatalf("%d watchers left", n)
	}
}
