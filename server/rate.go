package server

import (
	"sync"
	"time"
)

// rateSamples is how many of the latest messages a rateWindow keeps (as
// etcd's /v2/stats/self does); rateMaxAge is how long after the newest
// one the traffic still counts as going on.
const (
	rateSamples = 200
	rateMaxAge  = time.Second
)

// rateWindow measures one direction of a member's append traffic for
// /v2/stats/self: it keeps the time and size of the latest rateSamples
// messages and reports messages and bytes per second over the span they
// cover. Traffic that stopped (the newest message older than rateMaxAge)
// has no rate, and a message after such a pause starts a new window, so
// the pause does not dilute the next rate. Safe for concurrent use.
type rateWindow struct {
	mu    sync.Mutex
	at    [rateSamples]time.Time
	size  [rateSamples]int
	next  int // slot of the next sample
	n     int // samples kept
	bytes int // sum of the sizes kept
}

func (w *rateWindow) add(now time.Time, size int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n > 0 && now.Sub(w.newest()) > rateMaxAge {
		w.n, w.bytes = 0, 0
	}
	if w.n == rateSamples {
		w.bytes -= w.size[w.next]
	} else {
		w.n++
	}
	w.at[w.next], w.size[w.next] = now, size
	w.bytes += size
	w.next = (w.next + 1) % rateSamples
}

func (w *rateWindow) newest() time.Time { return w.at[(w.next+rateSamples-1)%rateSamples] }

// rate returns messages and bytes per second at now: those after the
// oldest sample kept, over the time from it to the newest. 0 when there
// are fewer than two samples, they share one instant, or the traffic
// stopped.
func (w *rateWindow) rate(now time.Time) (msgs, bytes float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n < 2 || now.Sub(w.newest()) > rateMaxAge {
		return 0, 0
	}
	oldest := (w.next + rateSamples - w.n) % rateSamples
	span := w.newest().Sub(w.at[oldest]).Seconds()
	if span <= 0 {
		return 0, 0
	}
	return float64(w.n-1) / span, float64(w.bytes-w.size[oldest]) / span
}
