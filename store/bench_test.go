package store_test

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/store"
)

// benchKeys are precomputed so that path formatting is not measured.
func benchKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	return keys
}

func BenchmarkSet(b *testing.B) {
	s := store.New(store.DefaultEventHistory)
	keys := benchKeys("/bench/k", 10000)
	r := &store.Request{Op: store.OpSet, Value: "value", Time: t0}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Path = keys[i%len(keys)]
		if _, err := s.Apply(0, r); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGet(b *testing.B) {
	s := store.New(store.DefaultEventHistory)
	keys := benchKeys("/bench/k", 10000)
	for _, k := range keys {
		mustApply(b, s, rqSet(k, "value"))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(keys[i%len(keys)], false); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkCompareAndSwap(b *testing.B) {
	s := store.New(store.DefaultEventHistory)
	keys := benchKeys("/bench/k", 1000)
	last := make([]uint64, len(keys))
	for i, k := range keys {
		last[i] = mustApply(b, s, rqSet(k, "v")).Index
	}
	r := &store.Request{Op: store.OpCompareAndSwap, Value: "v", PrevValue: "v", Time: t0}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		j := i % len(keys)
		r.Path, r.PrevIndex = keys[j], last[j]
		e, err := s.Apply(0, r)
		if err != nil {
			b.Fatal(err)
		}
		last[j] = e.Index
		i++
	}
}

func BenchmarkGetRecursive10k(b *testing.B) {
	s := store.New(store.DefaultEventHistory)
	for _, k := range benchKeys("/big/k", 10000) {
		mustApply(b, s, rqSet(k, "value"))
	}
	b.ReportAllocs()
	for b.Loop() {
		e, err := s.Get("/big", true)
		if err != nil || len(e.Node.Nodes) != 10000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkWatchNotify1000: 1000 stream watchers on distinct keys under
// /w plus one recursive stream watcher on /w. In "one" each op sets one of
// the keys, so it wakes that key's watcher and the recursive one; in "all"
// each op is a recursive delete of /w, which wakes all 1001 (the keys are
// put back untimed). The benchmark drains what it woke each time, so no
// watcher falls StreamBuffer behind and ends.
func BenchmarkWatchNotify1000(b *testing.B) {
	const n = 1000
	setup := func(b *testing.B) (*store.Store, []string, []*store.Watcher, *store.Watcher) {
		s := store.New(store.DefaultEventHistory)
		keys := benchKeys("/w/k", n)
		ws := make([]*store.Watcher, n)
		for i, k := range keys {
			mustApply(b, s, rqSet(k, "v"))
			ws[i] = mustWatch(b, s, k, false, true, 0)
		}
		rec := mustWatch(b, s, "/w", true, true, 0)
		return s, keys, ws, rec
	}
	b.Run("one", func(b *testing.B) {
		s, keys, ws, rec := setup(b)
		r := &store.Request{Op: store.OpSet, Value: "v", Time: t0}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			j := i % n
			r.Path = keys[j]
			if _, err := s.Apply(0, r); err != nil {
				b.Fatal(err)
			}
			if recv(ws[j]) == nil || recv(rec) == nil {
				b.Fatal("a watcher was not notified")
			}
			i++
		}
	})
	b.Run("all", func(b *testing.B) {
		s, keys, ws, rec := setup(b)
		del := rqDelete("/w", true, true)
		b.ReportAllocs()
		for b.Loop() {
			// The delete wakes all 1001; put the keys back untimed.
			if _, err := s.Apply(0, del); err != nil {
				b.Fatal(err)
			}
			for _, w := range ws {
				if recv(w) == nil {
					b.Fatal("a watcher was not notified")
				}
			}
			if recv(rec) == nil {
				b.Fatal("the recursive watcher was not notified")
			}
			b.StopTimer()
			// Recreating the keys notifies each key watcher and the
			// recursive one; drain them as we go (untimed), or the
			// recursive watcher would overflow its StreamBuffer.
			for i, k := range keys {
				mustApply(b, s, rqSet(k, "v"))
				if recv(ws[i]) == nil || recv(rec) == nil {
					b.Fatal("re-creation not notified")
				}
			}
			b.StartTimer()
		}
	})
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemoryPerKey stores 100,000 keys with 256-byte values and
// reports the live heap they cost, per key. The requests go through the
// log decoding (Unmarshal) as on a member, so every key owns its path and
// value strings. "history=default" includes the share of the event history
// (DefaultEventHistory events); "history=1" is the tree alone. ns/op is
// the time to decode and apply all 100,000.
func BenchmarkMemoryPerKey(b *testing.B) {
	const n = 100000
	value := strings.Repeat("v", 256)
	entries := make([][]byte, n)
	for i := range entries {
		entries[i] = (&store.Request{Op: store.OpSet, Path: "/mem/k" + strconv.Itoa(i), Value: value, Time: t0}).Marshal(nil)
	}
	for _, hist := range []int{store.DefaultEventHistory, 1} {
		name := "history=default"
		if hist == 1 {
			name = "history=1"
		}
		b.Run(name, func(b *testing.B) {
			var perKey float64
			runs := 0
			for b.Loop() {
				b.StopTimer()
				before := heapInUse()
				b.StartTimer()
				s := store.New(hist)
				for i, ent := range entries {
					var r store.Request
					if err := r.Unmarshal(ent); err != nil {
						b.Fatal(err)
					}
					if _, err := s.Apply(uint64(i+1), &r); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				after := heapInUse()
				runtime.KeepAlive(s)
				perKey += (float64(after) - float64(before)) / n
				runs++
				b.StartTimer()
			}
			b.ReportMetric(perKey/float64(runs), "bytes/key")
		})
	}
}

// BenchmarkMemoryPerIdleWatcher registers 10,000 idle watchers on
// distinct keys and reports the live heap they cost, per watcher
// (store/doc.go claims about 250 B long-poll, 1.2 KiB stream). Each
// watcher gets its own path string ("/idle/k1234", 16 B), as one parsed
// from a request would; the caller's slice of handles is allocated before
// the baseline and not counted.
func BenchmarkMemoryPerIdleWatcher(b *testing.B) {
	const n = 10000
	keys := benchKeys("/idle/k", n)
	for _, stream := range []bool{false, true} {
		b.Run(map[bool]string{false: "longpoll", true: "stream"}[stream], func(b *testing.B) {
			var perWatcher float64
			runs := 0
			for b.Loop() {
				b.StopTimer()
				// A fresh store each time: the hub's map and path index
				// keep their grown storage after Remove, and that growth
				// is part of what n watchers cost.
				s := store.New(store.DefaultEventHistory)
				ws := make([]*store.Watcher, n)
				before := heapInUse()
				b.StartTimer()
				for i, k := range keys {
					w, err := s.Watch(strings.Clone(k), false, stream, 0)
					if err != nil {
						b.Fatal(err)
					}
					ws[i] = w
				}
				b.StopTimer()
				after := heapInUse()
				perWatcher += (float64(after) - float64(before)) / n
				if s.WatcherCount() != n {
					b.Fatal(fmt.Sprint("watchers registered: ", s.WatcherCount()))
				}
				for _, w := range ws {
					w.Remove()
				}
				runs++
				b.StartTimer()
			}
			b.ReportMetric(perWatcher/float64(runs), "bytes/watcher")
		})
	}
}

func BenchmarkRequestMarshal(b *testing.B) {
	r := ttl(rqCAS("/queue/00000000000000000042", strings.Repeat("v", 64), "old", 41), 30)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = r.Marshal(buf[:0])
	}
}

func BenchmarkRequestUnmarshal(b *testing.B) {
	enc := ttl(rqCAS("/queue/00000000000000000042", strings.Repeat("v", 64), "old", 41), 30).Marshal(nil)
	b.ReportAllocs()
	for b.Loop() {
		var r store.Request
		if err := r.Unmarshal(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckEncoded: a leader's check of a proposed request, on its
// encoding (against BenchmarkRequestUnmarshal, which builds the request).
func BenchmarkCheckEncoded(b *testing.B) {
	enc := ttl(rqCAS("/queue/00000000000000000042", strings.Repeat("v", 64), "old", 41), 30).Marshal(nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := store.CheckEncoded(enc); err != nil {
			b.Fatal(err)
		}
	}
}
