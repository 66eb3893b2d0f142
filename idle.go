package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The heap's garbage goes back to the operating system once the member
// falls quiet. The runtime collects when the heap reaches twice what the
// last collection left live (GOGC=100), only when something allocates,
// and keeps the pages it freed for the heap to grow into again, returning
// them to the system only slowly: a member that loaded 100,000 keys of
// 256 B (about 60 MiB live) and then went idle kept about as much again,
// garbage and free pages, in its RSS (125-135 MiB). Under load nothing
// changes (the check is one runtime/metrics read a second); a second with
// less than trimQuietBytes allocated, while the garbage and free pages
// exceed a quarter of the live heap and trimMinGarbage, ends with a
// collection and the free pages returned (debug.FreeOSMemory), at most
// once every trimMinInterval: a lightly loaded member (under 1 MiB of
// allocation a second) pays for at most one extra collection in that time.

const (
	trimEvery       = time.Second
	trimQuietBytes  = 1 << 20
	trimMinGarbage  = 8 << 20
	trimMinInterval = 10 * time.Second
)

// shouldTrim decides, from the bytes allocated in the last interval, the
// live heap after the last collection, the heap's objects now (live and
// garbage) and its free pages not yet returned, whether to collect and
// return what is not live.
func shouldTrim(allocated, live, objects, free uint64) bool {
	if allocated >= trimQuietBytes {
		return false
	}
	spare := free
	if objects > live {
		spare += objects - live
	}
	return spare >= trimMinGarbage && spare >= live/4
}

// trimWhenIdle runs until ctx ends, collecting as shouldTrim says.
func trimWhenIdle(ctx context.Context) {
	s := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(s)
	last := s[0].Value.Uint64()
	var trimmed time.Time
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(s)
		allocs := s[0].Value.Uint64()
		if time.Since(trimmed) >= trimMinInterval && shouldTrim(allocs-last, s[1].Value.Uint64(), s[2].Value.Uint64(), s[3].Value.Uint64()) {
			debug.FreeOSMemory()
			trimmed = time.Now()
			metrics.Read(s)
			allocs = s[0].Value.Uint64()
		}
		last = allocs
	}
}
