package store_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/cairnkv/cairn/store"
)

// fixture is the tree most error cases start from:
//
//	/f            key "one"        index 1
//	/d            empty dir        index 2
//	/nd/child     key "c"          index 3 (/nd created at 3)
//	/ttlkey       key "v", ttl 10  index 4
func fixture(t *testing.T) *store.Store {
	t.Helper()
	s := store.New(100)
	mustApply(t, s,
		rqSet("/f", "one"),
		rqMkdir("/d"),
		rqSet("/nd/child", "c"),
		ttl(rqSet("/ttlkey", "v"), 10),
	)
	return s
}

// TestErrors checks every error code Apply can return, with its exact
// cause and index (API.md §1.6-1.9, §3.2), and that a failed request
// changes nothing.
func TestErrors(t *testing.T) {
	const cur = 4 // the fixture's index
	room := uint64(math.MaxInt64-t0) / 1e9
	cases := []struct {
		name  string
		req   *store.Request
		code  int
		cause string
	}{
		// 100: the cause is the first missing path (§1.8).
		{"update missing", rqUpdate("/nope", "x"), 100, "/nope"},
		{"update below missing", rqUpdate("/nope/a/b", "x"), 100, "/nope"},
		{"update missing in a dir", rqUpdate("/nd/x/y", "x"), 100, "/nd/x"},
		{"cas missing", rqCAS("/nope", "x", "a", 0), 100, "/nope"},
		{"delete missing", rqDelete("/nope", false, false), 100, "/nope"},
		{"cad missing", rqCAD("/nope", "a", 0), 100, "/nope"},
		{"refresh missing", refresh(rqSet("/nope", ""), 5), 100, "/nope"},
		{"refresh below missing", refresh(rqSet("/nope/a", ""), 5), 100, "/nope"},
		// 101: the three cause formats (§1.6), for CAS and CAD.
		{"cas value", rqCAS("/f", "x", "three", 0), 101, "[three != one]"},
		{"cas index", rqCAS("/f", "x", "", 23), 101, "[23 != 1]"},
		{"cas both", rqCAS("/f", "x", "three", 23), 101, "[three != one] [23 != 1]"},
		{"cas value right index wrong", rqCAS("/f", "x", "one", 2), 101, "[2 != 1]"},
		{"cas below missing", rqCAS("/d2/e", "x", "q", 0), 100, "/d2"},
		{"cad value", rqCAD("/f", "three", 0), 101, "[three != one]"},
		{"cad index", rqCAD("/f", "", 23), 101, "[23 != 1]"},
		{"cad both", rqCAD("/f", "three", 23), 101, "[three != one] [23 != 1]"},
		{"refresh cas compares", refresh(rqCAS("/ttlkey", "", "no", 0), 5), 101, "[no != v]"},
		// 102
		{"set on dir", rqSet("/d", "x"), 102, "/d"},
		{"set dir=true on dir", rqMkdir("/d"), 102, "/d"},
		{"set on dir with children", rqSet("/nd", "x"), 102, "/nd"},
		{"refresh set on dir", refresh(rqSet("/d", ""), 5), 102, "/d"},
		{"update dir with value", rqUpdate("/d", "x"), 102, "/d"},
		{"cas on dir", rqCAS("/d", "x", "", 1), 102, "/d"},
		{"delete dir plain", rqDelete("/d", false, false), 102, "/d"},
		{"cad on dir", rqCAD("/d", "x", 0), 102, "/d"},
		{"cad on dir with dir flags", &store.Request{Op: store.OpCompareAndDelete, Path: "/d", PrevIndex: 2, Dir: true, Recursive: true, Time: t0}, 102, "/d"},
		// 104: the cause is the key in the way (§1.8).
		{"set below key", rqSet("/f/sub", "x"), 104, "/f"},
		{"set deep below key", rqSet("/f/a/b/c", "x"), 104, "/f"},
		{"set below nested key", rqSet("/nd/child/x", "x"), 104, "/nd/child"},
		{"create below key", rqCreate("/f/sub", "x"), 104, "/f"},
		{"update below key", rqUpdate("/f/sub", "x"), 104, "/f"},
		{"cas below key", rqCAS("/f/sub", "x", "a", 0), 104, "/f"},
		{"delete below key", rqDelete("/f/sub", true, true), 104, "/f"},
		{"cad below key", rqCAD("/f/sub", "a", 0), 104, "/f"},
		{"in-order on key", rqInOrder("/f", "x"), 104, "/f"},
		{"in-order below key", rqInOrder("/f/q", "x"), 104, "/f"},
		{"mkdir below key", rqMkdir("/f/d"), 104, "/f"},
		// 105
		{"create existing key", rqCreate("/f", "x"), 105, "/f"},
		{"create existing dir", rqCreate("/d", "x"), 105, "/d"},
		{"create dir over key", dir(rqCreate("/f", "")), 105, "/f"},
		{"create existing refresh", refresh(rqCreate("/ttlkey", ""), 5), 105, "/ttlkey"},
		// 107
		{"set root", rqSet("/", "x"), 107, "/"},
		{"mkdir root", rqMkdir("/"), 107, "/"},
		{"refresh root", refresh(rqSet("/", ""), 5), 107, "/"},
		{"create root", rqCreate("/", "x"), 107, "/"},
		{"update root", rqUpdate("/", ""), 107, "/"},
		{"cas root", rqCAS("/", "x", "a", 0), 107, "/"},
		{"delete root", rqDelete("/", true, true), 107, "/"},
		// compare-and-delete on the root finds a directory: 102 with the
		// root's empty key as cause, as etcd (docs/api.md §7, compat.md §3).
		{"cad root", rqCAD("/", "a", 0), 102, ""},
		{"cad root by index", rqCAD("/", "", 3), 102, ""},
		{"cad root with dir flags", &store.Request{Op: store.OpCompareAndDelete, Path: "/", PrevValue: "a", Dir: true, Recursive: true, Time: t0}, 102, ""},
		// 108
		{"delete non-empty dir=true", rqDelete("/nd", true, false), 108, "/nd"},
		// 202: a deadline that does not fit int64 nanoseconds.
		{"ttl max uint64", ttl(rqSet("/new", "x"), math.MaxUint64), 202, `invalid value for "ttl"`},
		{"ttl 1<<63", ttl(rqSet("/new", "x"), 1<<63), 202, `invalid value for "ttl"`},
		{"ttl beyond int64 ns at time 0", at(ttl(rqSet("/new", "x"), maxTTL+1), 0), 202, `invalid value for "ttl"`},
		{"ttl overflows with time", ttl(rqSet("/new", "x"), room+1), 202, `invalid value for "ttl"`},
		{"ttl overflow create", ttl(rqCreate("/new", "x"), room+1), 202, `invalid value for "ttl"`},
		{"ttl overflow in-order", ttl(rqInOrder("/q", "x"), room+1), 202, `invalid value for "ttl"`},
		{"ttl overflow update", ttl(rqUpdate("/f", "x"), room+1), 202, `invalid value for "ttl"`},
		{"ttl overflow update dir", ttl(rqUpdate("/d", ""), room+1), 202, `invalid value for "ttl"`},
		{"ttl overflow cas", ttl(rqCAS("/f", "x", "one", 0), room+1), 202, `invalid value for "ttl"`},
		{"ttl overflow refresh", refresh(rqSet("/ttlkey", ""), room+1), 202, `invalid value for "ttl"`},
		{"ttl overflow mkdir", ttl(rqMkdir("/newdir"), math.MaxUint64), 202, `invalid value for "ttl"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := fixture(t)
			before, index := s.Hash(), s.Index()
			err := applyErr(t, s, tc.req)
			wantErr(t, err, tc.code, tc.cause, cur)
			if err.Message() != store.Message(tc.code) || err.Message() == "" {
				t.Errorf("Message() = %q", err.Message())
			}
			if s.Index() != index || s.Hash() != before {
				t.Errorf("a failed request changed the store: index %d -> %d", index, s.Index())
			}
		})
	}
}

// TestTTLBoundary: the largest representable deadline is accepted, one
// second more is 202.
func TestTTLBoundary(t *testing.T) {
	s := store.New(10)
	room := uint64(math.MaxInt64-t0) / 1e9
	e := mustApply(t, s, ttl(rqSet("/k", "v"), room))
	if want := t0 + int64(room)*sec; e.Node.Expiration != want {
		t.Fatalf("expiration %d, want %d", e.Node.Expiration, want)
	}
	wantErr(t, applyErr(t, s, ttl(rqSet("/k", "v"), room+1)), 202, `invalid value for "ttl"`, 1)
	// At time 0 every TTL up to MaxInt64/1e9 seconds fits.
	e = mustApply(t, s, at(ttl(rqSet("/k0", "v"), maxTTL), 0))
	if want := int64(maxTTL) * sec; e.Node.Expiration != want {
		t.Fatalf("expiration %d, want %d", e.Node.Expiration, want)
	}
}

func TestGetErrors(t *testing.T) {
	s := fixture(t)
	cases := []struct {
		path  string
		code  int
		cause string
	}{
		{"/nope", 100, "/nope"},
		{"/nope/a/b", 100, "/nope"},
		{"/nd/x/y", 100, "/nd/x"},
		{"/f/sub", 104, "/f"},
		{"/f/a/b", 104, "/f"},
		{"/nd/child/x", 104, "/nd/child"},
	}
	for _, tc := range cases {
		for _, rec := range []bool{false, true} {
			_, err := s.Get(tc.path, rec)
			wantErr(t, err, tc.code, tc.cause, 4)
		}
	}
}

// TestWatchHistoryCleared: 401 with cause [oldest/requested] and the
// current index (API.md §2.1).
func TestWatchHistoryCleared(t *testing.T) {
	s := store.New(4)
	for i := range 10 {
		mustApply(t, s, rqSet(fmt.Sprintf("/k%d", i), "v"))
	}
	for _, since := range []uint64{1, 3, 6} {
		_, err := s.Watch("/x", false, false, since)
		wantErr(t, err, 401, fmt.Sprintf("the requested history has been cleared [7/%d]", since), 10)
		_, err = s.Watch("/", true, true, since)
		wantErr(t, err, 401, fmt.Sprintf("the requested history has been cleared [7/%d]", since), 10)
	}
	// The oldest retained index is still served.
	w, err := s.Watch("/k6", false, false, 7)
	if err != nil {
		t.Fatal(err)
	}
	wantEvent(t, w, store.ActionSet, "/k6", 7)
	if s.WatcherCount() != 0 {
		t.Fatalf("a fired long-poll watcher is still registered")
	}
	// With history 1 (or less, which means 1) only the last event is kept.
	s0 := store.New(0)
	mustApply(t, s0, rqSet("/a", "1"), rqSet("/a", "2"))
	_, err = s0.Watch("/a", false, false, 1)
	wantErr(t, err, 401, "the requested history has been cleared [2/1]", 2)
	s1 := store.New(1)
	mustApply(t, s1, rqSet("/a", "1"), rqSet("/a", "2"))
	_, err = s1.Watch("/a", false, false, 1)
	wantErr(t, err, 401, "the requested history has been cleared [2/1]", 2)
	w, err = s1.Watch("/a", false, false, 2)
	if err != nil {
		t.Fatal(err)
	}
	wantEvent(t, w, store.ActionSet, "/a", 2)
}

func TestErrorType(t *testing.T) {
	e := store.NewError(store.EcodeKeyNotFound, "/x", 7)
	if !errors.Is(e, store.NewError(100, "other", 1)) || errors.Is(e, store.NewError(101, "/x", 7)) {
		t.Fatal("errors.Is must match by code alone")
	}
	if got := e.Error(); got != "100: Key not found (/x) [7]" {
		t.Fatalf("Error() = %q", got)
	}
	if got := store.NewError(107, "", 3).Error(); got != "107: Root is read only (3)" {
		t.Fatalf("Error() = %q", got)
	}
	// The messages are wire text (API.md §3.2).
	for code, msg := range map[int]string{
		100: "Key not found", 101: "Compare failed", 102: "Not a file", 104: "Not a directory",
		105: "Key already exists", 107: "Root is read only", 108: "Directory not empty",
		110: "The request requires user authentication", 201: "PrevValue is Required in POST form",
		202: "The given TTL in POST form is not a number", 203: "The given index in POST form is not a number",
		209: "Invalid field", 210: "Invalid POST form", 211: "Value provided on refresh",
		212: "A TTL must be provided on refresh", 300: "Raft Internal Error",
		401: "The event in requested index is outdated and cleared",
	} {
		if got := store.Message(code); got != msg {
			t.Errorf("Message(%d) = %q, want %q", code, got, msg)
		}
	}
	if store.Message(999) != "" {
		t.Error("unknown codes have no message")
	}
}

// ---- index rules (API.md §1.4-1.6) ------------------------------------

func TestSetRecreates(t *testing.T) {
	s := store.New(10)
	mustApply(t, s, rqSet("/k", "a"))
	e := mustApply(t, s, rqSet("/k", "b"))
	if got := fmtEvent(e); got != fmtEvent(&store.Event{Action: "set", Index: 2, Time: t0,
		Node:     &store.NodeView{Key: "/k", Value: "b", HasValue: true, ModifiedIndex: 2, CreatedIndex: 2},
		PrevNode: &store.NodeView{Key: "/k", Value: "a", HasValue: true, ModifiedIndex: 1, CreatedIndex: 1}}) {
		t.Fatalf("got %s", got)
	}
	if e.IsCreated() {
		t.Fatal("set over an existing key is not a creation (HTTP 200)")
	}
	// set dir=true over a key replaces it by an empty directory.
	e = mustApply(t, s, dir(rqSet("/k", "ignored")))
	if !e.Node.Dir || e.Node.HasValue || e.Node.CreatedIndex != 3 || e.PrevNode == nil || e.PrevNode.Value != "b" {
		t.Fatalf("got %s", fmtEvent(e))
	}
	if got := mustGet(t, s, "/k", false).Node; !got.Dir || got.Nodes != nil || got.HasValue {
		t.Fatalf("get: %s", fmtView(got))
	}
	e = mustApply(t, s, rqSet("/new", ""))
	if !e.IsCreated() || e.PrevNode != nil || !e.Node.HasValue || e.Node.Value != "" {
		t.Fatalf("set of a new key: %s created=%v", fmtEvent(e), e.IsCreated())
	}
	if !mustApply(t, s, rqCreate("/c", "")).IsCreated() {
		t.Fatal("create is a creation")
	}
}

func TestUpdateAndCASKeepCreatedDropTTL(t *testing.T) {
	for _, op := range []string{"update", "cas"} {
		t.Run(op, func(t *testing.T) {
			s := store.New(10)
			mustApply(t, s, ttl(rqSet("/k", "a"), 100)) // 1
			rw := func(v string) *store.Request {
				if op == "update" {
					return rqUpdate("/k", v)
				}
				return rqCAS("/k", v, "", s.Index())
			}
			e := mustApply(t, s, rw("b")) // 2, no ttl: becomes permanent
			if e.Node.CreatedIndex != 1 || e.Node.ModifiedIndex != 2 || e.Node.Expiration != 0 ||
				e.PrevNode.Expiration != t0+100*sec || e.PrevNode.Value != "a" {
				t.Fatalf("got %s", fmtEvent(e))
			}
			if g := mustGet(t, s, "/k", false).Node; g.Expiration != 0 || g.CreatedIndex != 1 || g.ModifiedIndex != 2 || g.Value != "b" {
				t.Fatalf("get: %s", fmtView(g))
			}
			if _, ok := s.NextDeadline(); ok {
				t.Fatal("the dropped TTL is still scheduled")
			}
			mustApply(t, s, rqExpire(t0+1000*sec)) // must not expire /k
			if s.Index() != 2 {
				t.Fatalf("expire removed something: index %d", s.Index())
			}
			e = mustApply(t, s, ttl(rw("c"), 5)) // 3, new ttl
			if e.Node.Expiration != t0+5*sec || e.Node.CreatedIndex != 1 {
				t.Fatalf("got %s", fmtEvent(e))
			}
			if d, ok := s.NextDeadline(); !ok || d != t0+5*sec {
				t.Fatalf("NextDeadline = %d %v", d-t0, ok)
			}
		})
	}
}

// TestRefresh: a refresh keeps the value, sets the TTL, takes an index
// (modifiedIndex moves; set also re-creates), wakes no watcher and is
// skipped by history scans (API.md §1.6, §2.2).
func TestRefresh(t *testing.T) {
	s := store.New(100)
	mustApply(t, s, ttl(rqSet("/r", "v"), 100)) // 1
	wKey, _ := s.Watch("/r", false, false, 0)
	wRec, _ := s.Watch("/", true, true, 0)
	wStream, _ := s.Watch("/r", false, true, 0)

	e := mustApply(t, s, refresh(at(rqSet("/r", ""), t0+sec), 50)) // 2: set
	if !e.Refresh || e.Action != "set" || e.Node.Value != "v" || e.Node.CreatedIndex != 2 || e.Node.ModifiedIndex != 2 ||
		e.Node.Expiration != t0+51*sec || e.PrevNode.ModifiedIndex != 1 {
		t.Fatalf("refresh set: %s", fmtEvent(e))
	}
	e = mustApply(t, s, refresh(at(rqUpdate("/r", ""), t0+2*sec), 60)) // 3: update
	if !e.Refresh || e.Action != "update" || e.Node.Value != "v" || e.Node.CreatedIndex != 2 || e.Node.ModifiedIndex != 3 ||
		e.Node.Expiration != t0+62*sec {
		t.Fatalf("refresh update: %s", fmtEvent(e))
	}
	e = mustApply(t, s, refresh(rqCAS("/r", "", "v", 3), 70)) // 4: cas
	if !e.Refresh || e.Action != "compareAndSwap" || e.Node.Value != "v" || e.Node.ModifiedIndex != 4 {
		t.Fatalf("refresh cas: %s", fmtEvent(e))
	}
	// A key without a TTL can be given one by refresh.
	mustApply(t, s, rqSet("/p", "perm"))                // 5
	e = mustApply(t, s, refresh(rqUpdate("/p", ""), 9)) // 6
	if e.Node.Expiration != t0+9*sec || e.Node.Value != "perm" {
		t.Fatalf("refresh of a permanent key: %s", fmtEvent(e))
	}
	if s.Index() != 6 {
		t.Fatalf("index %d, want 6: each refresh takes one", s.Index())
	}
	wantNothing(t, wKey, "long-poll on /r after refreshes")
	wantEvent(t, wRec, "set", "/p", 5) // the plain set only
	wantNothing(t, wRec, "recursive stream after refreshes")
	wantNothing(t, wStream, "stream on /r after refreshes")

	// History scans skip refreshes: from 2, the first event on /r is the
	// next real change.
	wHist, err := s.Watch("/r", false, false, 2)
	if err != nil {
		t.Fatal(err)
	}
	wantNothing(t, wHist, "history scan over refreshes")
	mustApply(t, s, rqSet("/r", "new")) // 7
	for _, w := range []*store.Watcher{wKey, wHist, wStream} {
		wantEvent(t, w, "set", "/r", 7)
	}
	wantEvent(t, wRec, "set", "/r", 7)
	wStream.Remove()
	wRec.Remove()
}

// TestDirModifiedIndexNeverChanges (API.md §1.5).
func TestDirModifiedIndexNeverChanges(t *testing.T) {
	s := store.New(10)
	mustApply(t, s, rqMkdir("/d"))                     // 1
	e := mustApply(t, s, ttl(rqUpdate("/d", ""), 100)) // 2
	if !e.Node.Dir || e.Node.ModifiedIndex != 2 || e.Node.CreatedIndex != 1 || e.Node.Expiration != t0+100*sec ||
		e.PrevNode.ModifiedIndex != 1 || e.Node.HasValue {
		t.Fatalf("update of a dir: %s", fmtEvent(e))
	}
	if g := mustGet(t, s, "/d", false).Node; g.ModifiedIndex != 1 || g.Expiration != t0+100*sec {
		t.Fatalf("get after update: %s", fmtView(g))
	}
	e = mustApply(t, s, rqUpdate("/d", "")) // 3: removes the TTL
	if e.PrevNode.ModifiedIndex != 1 || e.Node.ModifiedIndex != 3 || e.Node.Expiration != 0 {
		t.Fatalf("second update: %s", fmtEvent(e))
	}
	mustApply(t, s, rqSet("/d/x", "1"), rqDelete("/d/x", false, false), rqSet("/d/y", "2")) // 4-6
	if g := mustGet(t, s, "/d", false).Node; g.ModifiedIndex != 1 || g.CreatedIndex != 1 || g.Expiration != 0 {
		t.Fatalf("get after child changes: %s", fmtView(g))
	}
	if _, ok := s.NextDeadline(); ok {
		t.Fatal("the removed dir TTL is still scheduled")
	}
}

func TestImplicitParents(t *testing.T) {
	s := store.New(10)
	mustApply(t, s, rqSet("/x", "1"))                   // 1
	e := mustApply(t, s, ttl(rqSet("/pa/b/c", "v"), 5)) // 2
	if e.Node.CreatedIndex != 2 {
		t.Fatalf("got %s", fmtEvent(e))
	}
	for _, p := range []string{"/pa", "/pa/b"} {
		g := mustGet(t, s, p, false).Node
		if !g.Dir || g.CreatedIndex != 2 || g.ModifiedIndex != 2 || g.Expiration != 0 {
			t.Fatalf("%s: %s", p, fmtView(g))
		}
	}
	// Existing parents keep their indexes.
	mustApply(t, s, rqSet("/pa/b/d", "w")) // 3
	if g := mustGet(t, s, "/pa", false).Node; g.CreatedIndex != 2 || g.ModifiedIndex != 2 {
		t.Fatalf("/pa: %s", fmtView(g))
	}
	// Implicit creation through in-order too.
	e = mustApply(t, s, rqInOrder("/q/r", "")) // 4
	if g := mustGet(t, s, "/q", false).Node; g.CreatedIndex != 4 || e.Node.Key != "/q/r/00000000000000000004" {
		t.Fatalf("/q: %s, event %s", fmtView(g), fmtEvent(e))
	}
}

// TestInOrder: the child is named by the new index, %020d (API.md §1.9).
func TestInOrder(t *testing.T) {
	s := store.New(10)
	mustApply(t, s, rqSet("/a", "1"), rqSet("/b", "2")) // 1, 2
	e := mustApply(t, s, rqInOrder("/queue", "job"))    // 3
	if got, want := fmtEvent(e), fmtEvent(&store.Event{Action: "create", Index: 3, Time: t0,
		Node: &store.NodeView{Key: "/queue/00000000000000000003", Value: "job", HasValue: true, ModifiedIndex: 3, CreatedIndex: 3}}); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !e.IsCreated() {
		t.Fatal("in-order create is a creation")
	}
	mustApply(t, s, rqSet("/c", "3"))                         // 4
	e = mustApply(t, s, ttl(dir(rqInOrder("/queue", "")), 5)) // 5
	if e.Node.Key != "/queue/00000000000000000005" || !e.Node.Dir || e.Node.Expiration != t0+5*sec {
		t.Fatalf("in-order dir: %s", fmtEvent(e))
	}
	e = mustApply(t, s, rqInOrder("/", "top")) // 6
	if e.Node.Key != "/00000000000000000006" {
		t.Fatalf("in-order on the root: %s", fmtEvent(e))
	}
	// The name is the index, so a key set earlier under that name collides.
	mustApply(t, s, rqSet("/queue/00000000000000000008", "squatter")) // 7
	wantErr(t, applyErr(t, s, rqInOrder("/queue", "x")), 105, "/queue/00000000000000000008", 7)
	// A failed attempt takes no index: the next one gets 8 again.
	mustApply(t, s, rqDelete("/queue/00000000000000000008", false, false)) // 8
	e = mustApply(t, s, rqInOrder("/queue", "x"))                          // 9
	if e.Node.Key != "/queue/00000000000000000009" {
		t.Fatalf("got %s", fmtEvent(e))
	}
	// Listing order is the index order.
	g := mustGet(t, s, "/queue", false).Node
	var keys []string
	for _, c := range g.Nodes {
		keys = append(keys, c.Key)
	}
	if fmt.Sprint(keys) != "[/queue/00000000000000000003 /queue/00000000000000000005 /queue/00000000000000000009]" {
		t.Fatalf("listing %v", keys)
	}
}

// TestDeleteShapes (API.md §1.7).
func TestDeleteShapes(t *testing.T) {
	s := store.New(10)
	mustApply(t, s, ttl(rqSet("/k", "v"), 30), rqMkdir("/e"), rqSet("/dd/a/b", "x")) // 1-3
	e := mustApply(t, s, rqDelete("/k", false, false))                               // 4
	if got, want := fmtEvent(e), fmtEvent(&store.Event{Action: "delete", Index: 4, Time: t0,
		Node:     &store.NodeView{Key: "/k", ModifiedIndex: 4, CreatedIndex: 1},
		PrevNode: &store.NodeView{Key: "/k", Value: "v", HasValue: true, Expiration: t0 + 30*sec, ModifiedIndex: 1, CreatedIndex: 1}}); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if e.IsCreated() {
		t.Fatal("delete is not a creation")
	}
	if _, ok := s.NextDeadline(); ok {
		t.Fatal("the deleted key's TTL is still scheduled")
	}
	// An empty dir goes with dir=true or recursive=true.
	e = mustApply(t, s, rqDelete("/e", true, false)) // 5
	if !e.Node.Dir || e.PrevNode.Nodes != nil || !e.PrevNode.Dir {
		t.Fatalf("got %s", fmtEvent(e))
	}
	// A key goes with any flags.
	mustApply(t, s, rqSet("/k2", "v"))                                 // 6
	if e := mustApply(t, s, rqDelete("/k2", true, true)); e.Node.Dir { // 7
		t.Fatalf("got %s", fmtEvent(e))
	}
	// A subtree goes in one event, and the parent of the last child stays.
	e = mustApply(t, s, rqDelete("/dd/a", false, true)) // 8
	if e.Index != 8 || s.Index() != 8 || e.PrevNode.Nodes != nil {
		t.Fatalf("got %s, index %d", fmtEvent(e), s.Index())
	}
	if g := mustGet(t, s, "/dd", false).Node; !g.Dir || g.Nodes != nil {
		t.Fatalf("/dd after deleting its only child: %s", fmtView(g))
	}
	// compareAndDelete.
	mustApply(t, s, rqSet("/dk", "one")) // 9
	e = mustApply(t, s, rqCAD("/dk", "one", 9))
	if e.Action != "compareAndDelete" || e.Node.ModifiedIndex != 10 || e.Node.CreatedIndex != 9 || e.Node.HasValue || e.PrevNode.Value != "one" {
		t.Fatalf("got %s", fmtEvent(e))
	}
}

// TestExpireDirectory: expiring a directory removes its subtree in one
// event, children with longer TTLs included (API.md §1.10).
func TestExpireDirectory(t *testing.T) {
	s := store.New(10)
	mustApply(t, s,
		ttl(rqMkdir("/tdir"), 2),                // 1
		rqSet("/tdir/child", "c"),               // 2
		ttl(rqSet("/tdir/sub/gc", "g"), 100),    // 3
		ttl(rqSet("/other", "o"), 50),           // 4
		ttl(rqSet("/tdir/sub/_hidden", "h"), 3), // 5
	)
	w, _ := s.Watch("/tdir/sub/gc", false, false, 0)
	if e := mustApply(t, s, rqExpire(t0+2*sec-1)); e != nil || s.Index() != 5 {
		t.Fatalf("expired early: %v, index %d", e, s.Index())
	}
	if e := mustApply(t, s, rqExpire(t0+2*sec)); e != nil {
		t.Fatalf("OpExpire returned %s, want nil", fmtEvent(e))
	}
	if s.Index() != 6 {
		t.Fatalf("index %d, want 6: one event for the whole subtree", s.Index())
	}
	want := fmtEvent(&store.Event{Action: "expire", Index: 6, Time: t0 + 2*sec,
		Node:     &store.NodeView{Key: "/tdir", Dir: true, ModifiedIndex: 6, CreatedIndex: 1},
		PrevNode: &store.NodeView{Key: "/tdir", Dir: true, Expiration: t0 + 2*sec, ModifiedIndex: 1, CreatedIndex: 1}})
	got := wantEvent(t, w, "expire", "/tdir", 6)
	if fmtEvent(got) != want {
		t.Fatalf("got  %s\nwant %s", fmtEvent(got), want)
	}
	_, err := s.Get("/tdir/sub/gc", false)
	wantErr(t, err, 100, "/tdir", 6)
	// Only /other is still scheduled; the subtree's deadlines went with it.
	if d, ok := s.NextDeadline(); !ok || d != t0+50*sec {
		t.Fatalf("NextDeadline = %d %v, want +50s", d-t0, ok)
	}
	mustApply(t, s, rqExpire(t0+200*sec))
	if s.Index() != 7 {
		t.Fatalf("index %d, want 7 (only /other expires)", s.Index())
	}
	if _, ok := s.NextDeadline(); ok {
		t.Fatal("deadlines left after everything expired")
	}
}

// TestExpireOrder: one OpExpire expires everything due, earliest deadline
// first, ties by path, one event and index each.
func TestExpireOrder(t *testing.T) {
	s := store.New(10)
	mustApply(t, s,
		ttl(rqSet("/b", "1"), 3),                 // 1
		ttl(rqSet("/a", "1"), 3),                 // 2
		ttl(rqSet("/c", "1"), 1),                 // 3
		ttl(rqSet("/z", "1"), 9),                 // 4
		at(ttl(rqSet("/now", "1"), 0), t0+2*sec), // 5: ttl=0 expires at its own time
	)
	w, _ := s.Watch("/", true, true, 0)
	mustApply(t, s, rqExpire(t0+3*sec))
	for i, k := range []string{"/c", "/now", "/a", "/b"} {
		e := wantEvent(t, w, "expire", k, uint64(6+i))
		if e.Time != t0+3*sec || e.PrevNode.HasValue != true {
			t.Fatalf("got %s", fmtEvent(e))
		}
	}
	wantNothing(t, w, "after the sweep")
	w.Remove()
	if _, err := s.Get("/z", false); err != nil {
		t.Fatal(err)
	}
}

// TestTTLZeroAndOldClock (API.md §1.6): ttl=0 expires at the next sweep;
// a deadline before 2000-01-01 means no TTL.
func TestTTLZeroAndOldClock(t *testing.T) {
	s := store.New(10)
	e := mustApply(t, s, ttl(rqSet("/z", "v"), 0))
	if e.Node.Expiration != t0 || e.Node.TTL(t0) != 0 {
		t.Fatalf("ttl=0: %s ttl %d", fmtEvent(e), e.Node.TTL(t0))
	}
	e = mustApply(t, s, at(ttl(rqSet("/old", "v"), 5), 0))
	if e.Node.Expiration != 0 {
		t.Fatalf("deadline in 1970 must mean no TTL: %s", fmtEvent(e))
	}
	e = mustApply(t, s, at(ttl(rqSet("/edge", "v"), 1), minExpire-sec))
	if e.Node.Expiration != minExpire {
		t.Fatalf("deadline exactly 2000-01-01 is a TTL: %s", fmtEvent(e))
	}
	e = mustApply(t, s, at(ttl(rqSet("/edge2", "v"), 1), minExpire-sec-1))
	if e.Node.Expiration != 0 {
		t.Fatalf("deadline just before 2000-01-01 is no TTL: %s", fmtEvent(e))
	}
	mustApply(t, s, rqExpire(t0))
	if _, err := s.Get("/z", false); err == nil {
		t.Fatal("/z survived the sweep")
	}
	if _, err := s.Get("/edge", false); err == nil {
		t.Fatal("/edge survived the sweep")
	}
	if _, err := s.Get("/old", false); err != nil {
		t.Fatal(err)
	}
}

func TestNodeViewTTL(t *testing.T) {
	v := &store.NodeView{Expiration: t0 + 5*sec}
	for _, c := range []struct {
		now  int64
		want int64
	}{
		{t0, 5}, {t0 + 1, 5}, {t0 + 1300*1e6, 4}, {t0 + 5*sec - 1, 1}, {t0 + 5*sec, 0},
		{t0 + 5*sec + 1, 0}, {t0 + 6*sec - 1, 0}, {t0 + 6*sec, -1}, {t0 + 6*sec + 1, -1}, {t0 + 8*sec + 5e8, -3},
	} {
		if got := v.TTL(c.now); got != c.want {
			t.Errorf("TTL at %+dns = %d, want %d", c.now-t0, got, c.want)
		}
	}
	if (&store.NodeView{}).TTL(t0) != 0 {
		t.Error("no expiration: TTL 0")
	}
}

// TestHidden: hidden nodes are left out of listings at every level but
// are directly readable, and listing a hidden dir shows its children
// (API.md §1.8).
func TestHidden(t *testing.T) {
	s := store.New(10)
	mustApply(t, s,
		rqSet("/h/_x", "secret"),
		rqSet("/h/y", "1"),
		rqSet("/h/_d/z", "2"),
		rqSet("/h/sub/_deep", "3"),
		rqSet("/_top/k", "4"),
		rqSet("/h/x_", "5"), // only a leading _ hides
	)
	root := fmtView(mustGet(t, s, "/", true).Node)
	want := `{key="" dir mod=0 cre=0 nodes=[{key="/h" dir mod=1 cre=1 nodes=[{key="/h/sub" dir mod=4 cre=4} {key="/h/x_" value="5" mod=6 cre=6} {key="/h/y" value="1" mod=2 cre=2}]}]}`
	if root != want {
		t.Fatalf("recursive root listing:\n got  %s\n want %s", root, want)
	}
	if g := fmtView(mustGet(t, s, "/h", false).Node); g != `{key="/h" dir mod=1 cre=1 nodes=[{key="/h/sub" dir mod=4 cre=4} {key="/h/x_" value="5" mod=6 cre=6} {key="/h/y" value="1" mod=2 cre=2}]}` {
		t.Fatalf("listing /h: %s", g)
	}
	if g := mustGet(t, s, "/h/_x", false).Node; g.Value != "secret" {
		t.Fatalf("direct read of a hidden key: %s", fmtView(g))
	}
	if g := fmtView(mustGet(t, s, "/h/_d", true).Node); g != `{key="/h/_d" dir mod=3 cre=3 nodes=[{key="/h/_d/z" value="2" mod=3 cre=3}]}` {
		t.Fatalf("listing a hidden dir: %s", g)
	}
	if g := fmtView(mustGet(t, s, "/_top", false).Node); g != `{key="/_top" dir mod=5 cre=5 nodes=[{key="/_top/k" value="4" mod=5 cre=5}]}` {
		t.Fatalf("listing a hidden top dir: %s", g)
	}
}

// TestListing: sorted children, no nodes on empty dirs, child dirs without
// their children unless recursive; keys' value always present.
func TestListing(t *testing.T) {
	s := store.New(10)
	mustApply(t, s, rqSet("/l/c", ""), rqSet("/l/a/x", "1"), rqMkdir("/l/b"), ttl(rqMkdir("/l/t"), 9))
	g := mustGet(t, s, "/l", false)
	if g.Action != "get" || g.Index != 4 {
		t.Fatalf("got %s", fmtEvent(g))
	}
	var keys []string
	for _, c := range g.Node.Nodes {
		keys = append(keys, c.Key)
		if c.Dir && c.Nodes != nil {
			t.Fatalf("non-recursive listing descends into %s", c.Key)
		}
	}
	if fmt.Sprint(keys) != "[/l/a /l/b /l/c /l/t]" {
		t.Fatalf("children in order %v", keys)
	}
	if c := g.Node.Nodes[2]; !c.HasValue || c.Value != "" {
		t.Fatalf("empty value must be present: %s", fmtView(c))
	}
	if c := g.Node.Nodes[3]; c.Expiration != t0+9*sec {
		t.Fatalf("dir TTL: %s", fmtView(c))
	}
	r := mustGet(t, s, "/l", true).Node
	if len(r.Nodes[0].Nodes) != 1 || r.Nodes[1].Nodes != nil {
		t.Fatalf("recursive: %s", fmtView(r))
	}
	// recursive on a key is harmless.
	if k := mustGet(t, s, "/l/c", true).Node; k.Dir || !k.HasValue || k.Nodes != nil {
		t.Fatalf("get key recursive: %s", fmtView(k))
	}
	if e := mustGet(t, store.New(1), "/", true); fmtView(e.Node) != `{key="" dir mod=0 cre=0}` || e.Index != 0 {
		t.Fatalf("empty root: %s", fmtEvent(e))
	}
}

// TestGetSnapshot: a Get result is a copy that later applies do not touch.
func TestGetSnapshot(t *testing.T) {
	s := store.New(10)
	mustApply(t, s, rqSet("/d/a", "1"), rqSet("/d/b", "2"))
	before := mustGet(t, s, "/", true)
	want := fmtEvent(before)
	mustApply(t, s, rqSet("/d/a", "changed"), rqDelete("/d/b", false, false), rqSet("/d/c", "3"), ttl(rqUpdate("/d", ""), 5))
	if got := fmtEvent(before); got != want {
		t.Fatalf("an earlier Get result changed:\n was %s\n now %s", want, got)
	}
}

func TestRaftIndex(t *testing.T) {
	s := store.New(10)
	if _, err := s.Apply(7, rqSet("/a", "1")); err != nil {
		t.Fatal(err)
	}
	if s.RaftIndex() != 7 {
		t.Fatalf("RaftIndex %d", s.RaftIndex())
	}
	s.Apply(9, rqCreate("/a", "1")) // fails, but was applied at 9
	if s.RaftIndex() != 9 || s.Index() != 1 {
		t.Fatalf("RaftIndex %d Index %d", s.RaftIndex(), s.Index())
	}
	s.Apply(0, rqSet("/b", "1")) // 0: not from the log, leaves it
	if s.RaftIndex() != 9 {
		t.Fatalf("RaftIndex %d", s.RaftIndex())
	}
}

func TestUnknownOp(t *testing.T) {
	s := store.New(10)
	if _, err := s.Apply(1, &store.Request{Op: 99, Path: "/x", Time: t0}); err == nil {
		t.Fatal("unknown op accepted")
	}
	if s.Index() != 0 {
		t.Fatal("unknown op changed the store")
	}
}

// TestCreateIgnoresRefresh: refresh=true is not checked by create: it
// creates the key with the given value and is a normal, notifying change
// (API.md §1.6).
func TestCreateIgnoresRefresh(t *testing.T) {
	s := store.New(10)
	w := mustWatch(t, s, "/c", false, false, 0)
	e := mustApply(t, s, refresh(rqCreate("/c", ""), 70))
	if e.Refresh || e.Action != "create" || e.Node.Value != "" || e.Node.Expiration != t0+70*sec {
		t.Fatalf("got %s", fmtEvent(e))
	}
	wantEvent(t, w, "create", "/c", 1)
	e = mustApply(t, s, refresh(rqInOrder("/q", "v"), 5))
	if e.Refresh {
		t.Fatalf("in-order create marked as a refresh: %s", fmtEvent(e))
	}
}
