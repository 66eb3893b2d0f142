package consensus

import (
	"runtime"
	"testing"
)

// benchCluster is a three-member cluster in one goroutine: every Ready is
// carried out synchronously (persisted into MemoryStorage, then
// MessagesAfterPersist released, then Advance) and messages are delivered
// in-process in FIFO order. It keeps nothing per entry but a counter, so
// the allocations measured are the core's (and MemoryStorage's).
type benchCluster struct {
	nodes   [4]*Node // indexed by ID; [0] unused
	stores  [4]*MemoryStorage
	queue   []Message
	spare   []Message
	applied [4]uint64 // non-empty normal entries applied per member
	last    [4]uint64 // last applied index per member
}

func newBenchCluster(b *testing.B) *benchCluster {
	c := &benchCluster{}
	for id := uint64(1); id <= 3; id++ {
		ms := NewMemoryStorage()
		ms.SetConfState(ConfState{Voters: []uint64{1, 2, 3}})
		cfg := netConfig(id, ms)
		n, err := NewNode(&cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.nodes[id], c.stores[id] = n, ms
	}
	if err := c.nodes[1].Campaign(); err != nil {
		b.Fatal(err)
	}
	c.run()
	if c.nodes[1].r.state != StateLeader {
		b.Fatal("no leader")
	}
	return c
}

func (c *benchCluster) process(id uint64) {
	n, ms := c.nodes[id], c.stores[id]
	for n.HasReady() {
		rd := n.Ready()
		c.queue = append(c.queue, rd.Messages...)
		if err := ms.Append(rd.Entries); err != nil {
			panic(err)
		}
		if !rd.HardState.IsEmpty() {
			ms.SetHardState(rd.HardState)
		}
		c.queue = append(c.queue, rd.MessagesAfterPersist...)
		for _, e := range rd.CommittedEntries {
			if len(e.Data) > 0 {
				c.applied[id]++
			}
			c.last[id] = e.Index
		}
		n.Advance(rd)
	}
}

// run delivers messages until the cluster is quiet.
func (c *benchCluster) run() {
	for {
		for id := uint64(1); id <= 3; id++ {
			c.process(id)
		}
		if len(c.queue) == 0 {
			return
		}
		batch := c.queue
		c.queue = c.spare[:0]
		for _, m := range batch {
			_ = c.nodes[m.To].Step(m)
			c.process(m.To)
		}
		clear(batch)
		c.spare = batch[:0]
	}
}

// compact snapshots and trims every member's storage, as a member does
// periodically, so long benchmarks run in bounded memory.
func (c *benchCluster) compact() {
	for id := uint64(1); id <= 3; id++ {
		if c.last[id] < 2 {
			continue
		}
		_, _ = c.stores[id].CreateSnapshot(c.last[id]-1, nil, nil)
		_ = c.stores[id].Compact(c.last[id] - 1)
	}
}

func benchPropose(b *testing.B, perOp int) {
	c := newBenchCluster(b)
	payload := make([]byte, 128)
	var ms0, ms1 runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	runtime.ReadMemStats(&ms0)
	for i := 0; i < b.N; i++ {
		for range perOp {
			if err := c.nodes[1].Propose(payload); err != nil {
				b.Fatal(err)
			}
		}
		c.run()
		if i%64 == 63 {
			c.compact()
		}
	}
	runtime.ReadMemStats(&ms1)
	b.StopTimer()
	entries := uint64(b.N) * uint64(perOp)
	for id := uint64(1); id <= 3; id++ {
		if c.applied[id] != entries {
			b.Fatalf("member %d applied %d of %d entries", id, c.applied[id], entries)
		}
	}
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(entries), "allocs/entry")
	b.ReportMetric(float64(entries)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkProposeThreeMembers: one proposal per op, committed and applied
// by all three members before the next.
func BenchmarkProposeThreeMembers(b *testing.B) { benchPropose(b, 1) }

// BenchmarkProposeBatch64: 64 proposals per op, then the cluster settles.
func BenchmarkProposeBatch64(b *testing.B) { benchPropose(b, 64) }
