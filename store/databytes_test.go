package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// walkBytes counts the data of the tree the slow way.
func walkBytes(root *node) int64 {
	var n int64
	walkSubtree(root, func(c *node) { n += c.own() })
	return n
}

// DataBytes follows every kind of change, the coordination operations
// (waiters, deliveries, reservations that run out and requeue) and
// expiries of whole directories included: after each apply it equals a
// walk of the tree, and every node's bytes equal its subtree's.
func TestDataBytesFollowsEveryOperation(t *testing.T) {
	actions := map[string]int{}
	for seed := uint64(1); seed <= 10; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		s := New(50)
		now := int64(1_800_000_000e9)
		paths := []string{"/a", "/a/b", "/a/b/c", "/d", "/_h/x", LocksDir + "/l", QueuesDir + "/q"}
		for step := range 600 {
			now += int64(rng.IntN(2)) * 1e9
			r := &Request{Path: paths[rng.IntN(len(paths))], Value: fmt.Sprint("v", rng.IntN(1000)), Time: now}
			switch rng.IntN(12) {
			case 0, 1:
				r.Op = OpSet
				r.Dir = rng.IntN(6) == 0
			case 2:
				r.Op = OpCreateInOrder
			case 3:
				r.Op, r.Recursive = OpDelete, rng.IntN(2) == 0
			case 4:
				r.Op, r.Value = OpUpdate, r.Value+"longer"
			case 5:
				r.Op, r.HasTTL, r.TTL = OpSet, true, uint64(rng.IntN(3))
			case 6:
				r.Op = OpExpire
			case 7:
				r.Op, r.Refresh, r.HasTTL, r.TTL, r.Value = OpSet, true, true, 2, ""
			case 8:
				r.Op, r.Path, r.HasTTL, r.TTL, r.Wait = OpAcquire, LocksDir+"/l", true, uint64(1+rng.IntN(2)), rng.IntN(2) == 0
			case 9:
				r.Op, r.Path = OpEnqueue, QueuesDir+"/q"
			case 10:
				r.Op, r.Path, r.Wait, r.Value = OpDequeue, QueuesDir+"/q", rng.IntN(2) == 0, ""
				r.HasTTL, r.TTL = true, uint64(1+rng.IntN(2))
			case 11:
				r.Op, r.Path, r.Value = OpDequeue, QueuesDir+"/q", ""
			}
			if e, err := s.Apply(uint64(step+1), r); err == nil && e != nil {
				actions[e.Action]++
			}
			root := s.cur.Load().root
			if got, want := s.DataBytes(), walkBytes(root); got != want {
				t.Fatalf("seed %d step %d (%v %s): DataBytes %d, want %d", seed, step, r.Op, r.Path, got, want)
			}
			walkSubtree(root, func(n *node) {
				if n.bytes != walkBytes(n) {
					t.Fatalf("seed %d step %d: %s holds %d bytes, says %d", seed, step, n.path, walkBytes(n), n.bytes)
				}
				if b, err := s.SubtreeBytes(n.path); err != nil || b != n.bytes {
					t.Fatalf("seed %d step %d: SubtreeBytes(%s) = %d, %v; want %d", seed, step, n.path, b, err, n.bytes)
				}
			})
		}
	}
	for _, a := range []string{ActionSet, ActionCreate, ActionUpdate, ActionDelete, ActionDeliver, ActionReserve, ActionDequeue} {
		if actions[a] == 0 {
			t.Errorf("no %s applied: the test does not cover it (%v)", a, actions)
		}
	}
}
