package store_test

import (
	"testing"

	"github.com/cairnkv/cairn/store"
)

// hashPair applies a and b to two fresh stores and returns their hashes.
func hashPair(t *testing.T, a, b []*store.Request) (uint64, uint64) {
	t.Helper()
	return hashPairHist(t, 100, a, b)
}

func hashPairHist(t *testing.T, hist int, a, b []*store.Request) (uint64, uint64) {
	t.Helper()
	sa, sb := store.New(hist), store.New(hist)
	mustApply(t, sa, a...)
	mustApply(t, sb, b...)
	if sa.Index() != sb.Index() {
		t.Fatalf("the pair must have the same index: %d %d", sa.Index(), sb.Index())
	}
	return sa.Hash(), sb.Hash()
}

// TestHashSensitivity: replicas whose states differ in anything a client
// can observe (tree or history) must not hash equal. Each pair below has
// the same index and differs in one thing.
func TestHashSensitivity(t *testing.T) {
	cases := []struct {
		name string
		a, b []*store.Request
	}{
		{"value", []*store.Request{rqSet("/a", "x")}, []*store.Request{rqSet("/a", "y")}},
		{"path", []*store.Request{rqSet("/a", "x")}, []*store.Request{rqSet("/b", "x")}},
		{"ttl", []*store.Request{ttl(rqSet("/a", "x"), 5)}, []*store.Request{ttl(rqSet("/a", "x"), 6)}},
		{"dir or key", []*store.Request{rqMkdir("/a")}, []*store.Request{rqSet("/a", "")}},
		{"createdIndex", []*store.Request{rqSet("/a", "1"), rqUpdate("/a", "2")}, []*store.Request{rqSet("/a", "1"), rqSet("/a", "2")}},
		{"history value", []*store.Request{rqSet("/a", "1"), rqSet("/a", "2")}, []*store.Request{rqSet("/a", "0"), rqSet("/a", "2")}},
		{"history time", []*store.Request{rqSet("/a", "1"), rqSet("/a", "2")}, []*store.Request{at(rqSet("/a", "1"), t0+1), rqSet("/a", "2")}},
		{"history action", []*store.Request{rqSet("/a", "1"), rqSet("/a", "2")}, []*store.Request{rqCreate("/a", "1"), rqSet("/a", "2")}},
	}
	for _, c := range cases {
		ha, hb := hashPair(t, c.a, c.b)
		if ha == hb {
			t.Errorf("%s: equal hashes %x for different states", c.name, ha)
		}
	}
	// The tree alone: with a one-event history whose last event is the
	// same on both sides, only the tree differs.
	last := rqSet("/last", "same")
	tree := []struct {
		name string
		a, b *store.Request
	}{
		{"value", rqSet("/a", "x"), rqSet("/a", "y")},
		{"path", rqSet("/a", "x"), rqSet("/b", "x")},
		{"ttl", ttl(rqSet("/a", "x"), 5), ttl(rqSet("/a", "x"), 6)},
		{"dir or key", rqMkdir("/a"), rqSet("/a", "")},
	}
	for _, c := range tree {
		ha, hb := hashPairHist(t, 1, []*store.Request{c.a, last}, []*store.Request{c.b, last})
		if ha == hb {
			t.Errorf("tree %s: equal hashes %x for different trees", c.name, ha)
		}
	}
	// createdIndex/modifiedIndex in the tree: /a at 1 or 2.
	ha, hb := hashPairHist(t, 1,
		[]*store.Request{rqSet("/a", "x"), rqSet("/b", "x"), last},
		[]*store.Request{rqSet("/b", "x"), rqSet("/a", "x"), last})
	if ha == hb {
		t.Errorf("tree indexes: equal hashes %x", ha)
	}
}

// TestHashCoversHistoryFlags: two states that differ only in the history's
// Refresh flag or in whether a past event's node was a directory answer
// watches differently, so they must hash differently.
func TestHashCoversHistoryFlags(t *testing.T) {
	// Refresh: a watch from index 2 waits on one replica and fires on the other.
	ha, hb := hashPair(t,
		[]*store.Request{ttl(rqSet("/a", "v"), 5), refresh(rqSet("/a", ""), 5)},
		[]*store.Request{ttl(rqSet("/a", "v"), 5), ttl(rqSet("/a", "v"), 5)})
	if ha == hb {
		t.Errorf("refresh vs set: equal hashes %x", ha)
	}
	// Dir: event 1 is {"dir":true} on one and {"value":""} on the other.
	ha, hb = hashPair(t,
		[]*store.Request{rqMkdir("/a"), rqDelete("/a", true, false)},
		[]*store.Request{rqSet("/a", ""), rqDelete("/a", false, false)})
	if ha == hb {
		t.Errorf("dir vs key in the history: equal hashes %x", ha)
	}
}
