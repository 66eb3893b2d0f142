package ttl_test

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cairnkv/cairn/ttl"
)

// popAll pops every deadline at or before t, in order.
func popAll(h *ttl.Heap, t int64) []string {
	var out []string
	for {
		p, d, ok := h.PopDue(t)
		if !ok {
			return out
		}
		out = append(out, fmt.Sprintf("%s@%d", p, d))
	}
}

func TestOrder(t *testing.T) {
	h := ttl.New()
	h.Set("/b", 5)
	h.Set("/a", 5)
	h.Set("/c", 1)
	h.Set("/a/x", 5)
	h.Set("/z", math.MinInt64)
	h.Set("/y", math.MaxInt64)
	h.Set("/", 5)
	if h.Len() != 7 {
		t.Fatalf("Len %d", h.Len())
	}
	got := fmt.Sprint(popAll(h, math.MaxInt64))
	want := fmt.Sprint([]string{"/z@" + strconv.FormatInt(math.MinInt64, 10), "/c@1", "/@5", "/a@5", "/a/x@5", "/b@5",
		"/y@" + strconv.FormatInt(math.MaxInt64, 10)})
	if got != want {
		t.Fatalf("pop order\n got  %s\n want %s", got, want)
	}
	if h.Len() != 0 {
		t.Fatalf("Len %d after popping everything", h.Len())
	}
}

func TestSetMoves(t *testing.T) {
	h := ttl.New()
	h.Set("/a", 10)
	h.Set("/b", 20)
	h.Set("/c", 30)
	h.Set("/c", 5) // earlier
	if p, d, ok := h.Peek(); p != "/c" || d != 5 || !ok {
		t.Fatalf("Peek = %s %d %v", p, d, ok)
	}
	h.Set("/c", 40) // later
	h.Set("/a", 20) // tie with /b: path decides
	if h.Len() != 3 {
		t.Fatalf("Len %d: Set of a present path must not add", h.Len())
	}
	if d, ok := h.Deadline("/c"); d != 40 || !ok {
		t.Fatalf("Deadline(/c) = %d %v", d, ok)
	}
	if got := fmt.Sprint(popAll(h, 100)); got != "[/a@20 /b@20 /c@40]" {
		t.Fatalf("got %s", got)
	}
	if _, ok := h.Deadline("/c"); ok {
		t.Fatal("a popped path still has a deadline")
	}
}

func TestRemove(t *testing.T) {
	h := ttl.New()
	for i, p := range []string{"/a", "/b", "/c", "/d", "/e"} {
		h.Set(p, int64(i))
	}
	if !h.Remove("/a") || !h.Remove("/c") || !h.Remove("/e") {
		t.Fatal("Remove of a present path reported false")
	}
	if h.Remove("/a") || h.Remove("/nope") {
		t.Fatal("Remove of an absent path reported true")
	}
	if _, ok := h.Deadline("/c"); ok {
		t.Fatal("removed path still has a deadline")
	}
	if h.Len() != 2 {
		t.Fatalf("Len %d", h.Len())
	}
	h.Set("/a", 9) // re-adding after removal works
	if got := fmt.Sprint(popAll(h, 100)); got != "[/b@1 /d@3 /a@9]" {
		t.Fatalf("got %s", got)
	}
}

func TestPopDueDuePeek(t *testing.T) {
	h := ttl.New()
	if _, _, ok := h.Peek(); ok {
		t.Fatal("Peek on empty heap")
	}
	if h.Due(math.MaxInt64) {
		t.Fatal("Due on empty heap")
	}
	if _, _, ok := h.PopDue(math.MaxInt64); ok {
		t.Fatal("PopDue on empty heap")
	}
	h.Set("/x", 100)
	h.Set("/y", 200)
	if h.Due(99) {
		t.Fatal("Due(99) with the earliest deadline at 100")
	}
	if p, _, ok := h.PopDue(99); ok {
		t.Fatalf("PopDue(99) popped %s", p)
	}
	if !h.Due(100) {
		t.Fatal("Due(100): a deadline at exactly t is due")
	}
	if p, d, ok := h.Peek(); p != "/x" || d != 100 || !ok || h.Len() != 2 {
		t.Fatalf("Peek = %s %d %v, Len %d (Peek must not remove)", p, d, ok, h.Len())
	}
	if p, d, ok := h.PopDue(150); p != "/x" || d != 100 || !ok {
		t.Fatalf("PopDue(150) = %s %d %v", p, d, ok)
	}
	if _, _, ok := h.PopDue(150); ok {
		t.Fatal("PopDue(150) popped /y@200")
	}
	if h.Len() != 1 {
		t.Fatalf("Len %d", h.Len())
	}
}

// TestRandom drives a Heap and a sorted-slice reference with the same
// random calls. CAIRN_TTL_SEED replays one seed.
func TestRandom(t *testing.T) {
	seeds := []uint64{uint64(time.Now().UnixNano())}
	if s := os.Getenv("CAIRN_TTL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = []uint64{v}
	}
	for _, seed := range seeds {
		for run := range uint64(50) {
			randomRun(t, seed+run)
		}
	}
}

type ref struct {
	path     string
	deadline int64
}

func refCmp(a, b ref) int {
	return cmp.Or(cmp.Compare(a.deadline, b.deadline), cmp.Compare(a.path, b.path))
}

func randomRun(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	h := ttl.New()
	var want []ref // sorted by (deadline, path)
	find := func(p string) int {
		return slices.IndexFunc(want, func(x ref) bool { return x.path == p })
	}
	fail := func(step int, format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d (CAIRN_TTL_SEED=%d replays it) step %d: %s", seed, seed, step, fmt.Sprintf(format, args...))
	}
	for step := range 2000 {
		p := "/k" + strconv.Itoa(r.IntN(40))
		d := r.Int64N(50) // few distinct deadlines: many ties
		switch x := r.IntN(10); {
		case x < 4:
			h.Set(p, d)
			if i := find(p); i >= 0 {
				want = slices.Delete(want, i, i+1)
			}
			want = append(want, ref{p, d})
			slices.SortFunc(want, refCmp)
		case x < 6:
			i := find(p)
			if got := h.Remove(p); got != (i >= 0) {
				fail(step, "Remove(%s) = %v", p, got)
			}
			if i >= 0 {
				want = slices.Delete(want, i, i+1)
			}
		case x < 8:
			now := r.Int64N(50)
			gp, gd, gok := h.PopDue(now)
			if len(want) > 0 && want[0].deadline <= now {
				if !gok || gp != want[0].path || gd != want[0].deadline {
					fail(step, "PopDue(%d) = %s %d %v, want %v", now, gp, gd, gok, want[0])
				}
				want = want[1:]
			} else if gok {
				fail(step, "PopDue(%d) popped %s@%d, nothing due", now, gp, gd)
			}
		default:
			now := r.Int64N(50)
			if got := h.Due(now); got != (len(want) > 0 && want[0].deadline <= now) {
				fail(step, "Due(%d) = %v", now, got)
			}
		}
		if h.Len() != len(want) {
			fail(step, "Len %d, want %d", h.Len(), len(want))
		}
		gp, gd, gok := h.Peek()
		if (len(want) > 0) != gok || gok && (gp != want[0].path || gd != want[0].deadline) {
			fail(step, "Peek = %s %d %v, want %v", gp, gd, gok, want)
		}
		q := "/k" + strconv.Itoa(r.IntN(40))
		gd, gok = h.Deadline(q)
		if i := find(q); (i >= 0) != gok || gok && gd != want[i].deadline {
			fail(step, "Deadline(%s) = %d %v", q, gd, gok)
		}
	}
	// Draining gives the reference order exactly.
	var got, exp []string
	for _, x := range want {
		exp = append(exp, fmt.Sprintf("%s@%d", x.path, x.deadline))
	}
	got = popAll(h, math.MaxInt64)
	if !slices.Equal(got, exp) {
		t.Fatalf("seed %d: drain\n got  %v\n want %v", seed, got, exp)
	}
}

// TestDeterministicAcrossInsertionOrder: the same set of deadlines pops in
// the same order however it was built (replicas must agree).
func TestDeterministicAcrossInsertionOrder(t *testing.T) {
	var items []ref
	for i := range 200 {
		items = append(items, ref{fmt.Sprintf("/p%03d", i), int64(i % 7)})
	}
	var first []string
	for seed := range uint64(5) {
		r := rand.New(rand.NewPCG(seed, 1))
		shuffled := slices.Clone(items)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		h := ttl.New()
		for _, x := range shuffled {
			h.Set(x.path, x.deadline+100) // then move each to its real deadline
		}
		for _, x := range shuffled {
			h.Set(x.path, x.deadline)
		}
		got := popAll(h, math.MaxInt64)
		if first == nil {
			first = got
		} else if !slices.Equal(got, first) {
			t.Fatalf("insertion order %d popped differently", seed)
		}
	}
}
