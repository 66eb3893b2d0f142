package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The watch workload: watchers follow a directory (recursive) with
// long-poll watches, wait=true&waitIndex=N, one event per request. After
// any error or timeout a watcher reconnects to a random member and
// resumes at the index after the last event it got. At the end each
// watcher's events must be strictly increasing in index and equal to the
// directory's committed history (read afterwards through one member)
// over the same range: no gap, no duplicate, nothing out of order,
// nothing that did not happen.

// chWatcher is one watcher and what it saw.
type chWatcher struct {
	ID     int           `json:"id"`
	Start  uint64        `json:"start"` // its first waitIndex
	Events []chHistEvent `json:"events"`
	// Members lists where each event came from (parallel to Events).
	Members    []string `json:"members"`
	Reconnects int      `json:"reconnects"` // errors and timeouts
	Cleared    int      `json:"cleared"`    // errorCode 401: index cleared
	Errors     []string `json:"errors,omitempty"`
	next       uint64
}

// chWatchers runs the watchers.
type chWatchers struct {
	dir     string
	members func() []*chMember
	seed    uint64
	ws      []*chWatcher
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	done    chan struct{} // closed when every watcher returned
	// until: a watcher returns once it has every event up to it (0: not
	// known yet).
	until atomic.Uint64
}

func chNewWatchers(n int, dir string, members func() []*chMember, seed uint64) *chWatchers {
	w := &chWatchers{dir: dir, members: members, seed: seed, cancel: func() {}, done: make(chan struct{})}
	for i := range n {
		w.ws = append(w.ws, &chWatcher{ID: i, Start: 1, next: 1})
	}
	return w
}

// run starts the watchers; their requests carry the credentials ctx
// carries.
func (w *chWatchers) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	for _, x := range w.ws {
		w.wg.Add(1)
		go w.watch(ctx, x)
	}
	go func() {
		w.wg.Wait()
		close(w.done)
	}()
}

// finish lets the watchers catch up with the history (every event up to
// last), for at most within, then stops them.
func (w *chWatchers) finish(last uint64, within time.Duration) {
	w.until.Store(max(last, 1))
	select {
	case <-w.done:
	case <-time.After(within):
	}
	w.stop()
}

func (w *chWatchers) stop() {
	w.cancel()
	w.wg.Wait()
}

func (w *chWatchers) watch(ctx context.Context, x *chWatcher) {
	defer w.wg.Done()
	rng := rand.New(rand.NewPCG(w.seed, 0x7761746368+uint64(x.ID)))
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, DisableCompression: true}
	defer tr.CloseIdleConnections()
	var m *chMember
	for ctx.Err() == nil {
		if u := w.until.Load(); u > 0 && x.next > u {
			return
		}
		if m == nil {
			ms := w.members()
			m = ms[rng.IntN(len(ms))]
		}
		timeout := 2*time.Second + time.Duration(rng.IntN(1000))*time.Millisecond
		ev, err := w.once(ctx, tr, m, x.next, timeout)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			x.Reconnects++
			if strings.Contains(err.Error(), "errorCode 401") {
				x.Cleared++
			}
			if len(x.Errors) < 10 && !strings.Contains(err.Error(), "deadline exceeded") {
				x.Errors = append(x.Errors, fmt.Sprintf("%s waitIndex=%d: %v", m.name, x.next, err))
			}
			m = nil // a random member next
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(10+rng.IntN(40)) * time.Millisecond):
			}
			continue
		}
		x.Events = append(x.Events, ev)
		x.Members = append(x.Members, m.name)
		// Resume after what it got (an index below next is a violation the
		// check reports; resuming from it would loop).
		x.next = max(x.next, ev.Index+1)
	}
}

// once does one long-poll watch at m.
func (w *chWatchers) once(ctx context.Context, tr *http.Transport, m *chMember, next uint64, timeout time.Duration) (chHistEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q := url.Values{"wait": {"true"}, "recursive": {"true"}, "waitIndex": {strconv.FormatUint(next, 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, chDirURL(m, w.dir)+"?"+q.Encode(), nil)
	if err != nil {
		panic(err)
	}
	coAuthorize(req)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return chHistEvent{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return chHistEvent{}, err
	}
	var ev chEvent
	if jerr := json.Unmarshal(body, &ev); jerr != nil || resp.StatusCode != http.StatusOK || ev.ErrorCode != 0 || ev.Action == "" {
		// An error, or a watch the member ended (it stops: 200 and no
		// event).
		return chHistEvent{}, fmt.Errorf("%d errorCode %d %.200s", resp.StatusCode, ev.ErrorCode, body)
	}
	return chHistEvent{Index: ev.Node.ModifiedIndex, Key: ev.Node.Key, Action: ev.Action, Value: ev.Node.Value}, nil
}

// details sums up each watcher.
func (w *chWatchers) details(last uint64) string {
	var parts []string
	for _, x := range w.ws {
		reached := uint64(0)
		if n := len(x.Events); n > 0 {
			reached = x.Events[n-1].Index
		}
		s := fmt.Sprintf("watcher %d: %d events from waitIndex %d to index %d (of %d), %d reconnects, %d cleared",
			x.ID, len(x.Events), x.Start, reached, last, x.Reconnects, x.Cleared)
		if len(x.Errors) > 0 {
			s += "; e.g. " + x.Errors[0]
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// chWatchCheck is the verdict on the watchers.
type chWatchCheck struct {
	events     int // delivered, over every watcher
	incomplete int // watchers that did not reach the end of the history
	violations []string
}

func (k chWatchCheck) summary() string {
	return fmt.Sprintf("%d events, %d incomplete, %d violations", k.events, k.incomplete, len(k.violations))
}

// chCheckWatchers compares each watcher's events with the history of dir
// (every event from index 1 to last).
func chCheckWatchers(ws []*chWatcher, history []chHistEvent, dir string, last uint64) chWatchCheck {
	var k chWatchCheck
	bad := func(x *chWatcher, format string, args ...any) {
		if len(k.violations) < 50 {
			k.violations = append(k.violations, fmt.Sprintf("watcher %d: ", x.ID)+fmt.Sprintf(format, args...))
		}
	}
	for i, h := range history {
		if !strings.HasPrefix(h.Key, dir+"/") || (i > 0 && h.Index <= history[i-1].Index) || h.Index > last {
			k.violations = append(k.violations, fmt.Sprintf("history: event %+v out of order or outside %s", h, dir))
		}
	}
	for _, x := range ws {
		k.events += len(x.Events)
		if len(x.Events) == 0 {
			if last >= x.Start {
				k.incomplete++
			}
			continue
		}
		for i, ev := range x.Events {
			if ev.Index < x.Start {
				bad(x, "event %+v (from %s) is below its first waitIndex %d", ev, x.Members[i], x.Start)
			}
			if i > 0 && ev.Index <= x.Events[i-1].Index {
				bad(x, "event %+v (from %s) after %+v (from %s): not increasing", ev, x.Members[i], x.Events[i-1], x.Members[i-1])
			}
			if !strings.HasPrefix(ev.Key, dir+"/") {
				bad(x, "event %+v (from %s) is outside %s", ev, x.Members[i], dir)
			}
		}
		// The range it covered, within the history read.
		end := min(x.Events[len(x.Events)-1].Index, last)
		if end < last {
			k.incomplete++
		}
		var want []chHistEvent
		for _, h := range history {
			if h.Index >= x.Start && h.Index <= end {
				want = append(want, h)
			}
		}
		var got []chHistEvent
		var from []string
		for i, ev := range x.Events {
			if ev.Index <= end {
				got = append(got, ev)
				from = append(from, x.Members[i])
			}
		}
		for i := 0; i < max(len(got), len(want)); i++ {
			switch {
			case i >= len(got):
				bad(x, "history event %+v (and %d more) missing from its %d events", want[i], len(want)-i-1, len(got))
			case i >= len(want):
				bad(x, "event %+v (from %s) is not in the history (%d events over [%d, %d])", got[i], from[i], len(want), x.Start, end)
			case got[i] != want[i]:
				bad(x, "event #%d %+v (from %s) differs from the history's %+v", i, got[i], from[i], want[i])
			default:
				continue
			}
			break // the first difference says it
		}
	}
	return k
}
