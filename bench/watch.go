package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// watcher is one long-poll watcher of the watch workload.
type watcher struct {
	next atomic.Uint64 // the waitIndex of its next poll
	got  []receipt     // the events it received, in order
}

// receipt is one event's arrival at a watcher.
type receipt struct {
	index uint64
	at    time.Time
}

// watch runs the watch workload: cfg.watchers watchers on one key, one
// writer putting it.
func (r *runner) watch(ctx context.Context) (*result, error) {
	key := r.cfg.prefix + "/watch"
	b, err := do(ctx, r.client, http.MethodPut, keysURL(r.endpoint(0), key), r.body, true)
	if err != nil {
		return nil, fmt.Errorf("preparing the watch workload: %w", err)
	}
	first, err := modifiedIndex(b)
	if err != nil {
		return nil, fmt.Errorf("preparing the watch workload: %w", err)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ws := make([]*watcher, r.cfg.watchers)
	var armed, running sync.WaitGroup
	armed.Add(len(ws))
	for j := range ws {
		w := &watcher{}
		w.next.Store(first + 1)
		ws[j] = w
		url := keysURL(r.endpoint(j), key)
		running.Go(func() { r.watchLoop(wctx, url, w, sync.OnceFunc(armed.Done)) })
	}
	// Every watch answers its headers once it is registered: start
	// writing when all have (a late one still gets the events, from the
	// member's history, later).
	allArmed := make(chan struct{})
	go func() { armed.Wait(); close(allArmed) }()
	select {
	case <-allArmed:
	case <-time.After(r.cfg.timeout):
	}

	acks := map[uint64]time.Time{}
	last := first
	writes := int64(0)
	r.start = time.Now()
	r.deadline = r.start.Add(r.cfg.duration)
	ep := r.endpoint(0)
	for r.next() {
		writes++
		b, err := do(ctx, r.client, http.MethodPut, keysURL(ep, key), r.body, true)
		at := time.Now()
		if err == nil {
			var idx uint64
			if idx, err = modifiedIndex(b); err == nil {
				acks[idx] = at
				last = max(last, idx)
			}
		}
		if err != nil {
			r.fail(err.Error())
		}
	}
	elapsed := time.Since(r.start)

	// Give the watchers up to --timeout to receive the last write.
	limit := time.Now().Add(r.cfg.timeout)
	for time.Now().Before(limit) && !caughtUp(ws, last) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	running.Wait()

	var lats []time.Duration
	for _, w := range ws {
		for _, g := range w.got {
			if ack, ok := acks[g.index]; ok {
				lats = append(lats, max(0, g.at.Sub(ack)))
			}
		}
	}
	res := r.result(writes, elapsed, summarize(lats))
	res.clients = 1
	res.watchers = len(ws)
	res.events = int64(len(lats))
	res.expected = int64(len(acks)) * int64(len(ws))
	return res, nil
}

// caughtUp reports whether every watcher has seen index last.
func caughtUp(ws []*watcher, last uint64) bool {
	for _, w := range ws {
		if w.next.Load() <= last {
			return false
		}
	}
	return true
}

// watchLoop long-polls url, re-arming after every event with the next
// waitIndex, until ctx ends. armed is called once the first poll has its
// headers (or failed).
func (r *runner) watchLoop(ctx context.Context, url string, w *watcher, armed func()) {
	defer armed()
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			url+"?wait=true&waitIndex="+strconv.FormatUint(w.next.Load(), 10), nil)
		if err != nil {
			r.fail(err.Error())
			return
		}
		resp, err := r.watchc.Do(req)
		armed()
		if err != nil {
			if ctx.Err() == nil {
				r.fail(err.Error())
				pause(ctx)
			}
			continue
		}
		b, err := io.ReadAll(resp.Body)
		at := time.Now()
		resp.Body.Close()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.fail(fmt.Sprintf("watch %s: %v", req.URL, err))
			pause(ctx)
			continue
		case len(b) == 0:
			continue // the member ended the poll without an event: re-arm
		}
		var a v2Answer
		if jerr := json.Unmarshal(b, &a); jerr != nil {
			r.fail(fmt.Sprintf("watch %s: %s: %v", req.URL, resp.Status, jerr))
			pause(ctx)
			continue
		}
		if resp.StatusCode/100 != 2 || a.ErrorCode != 0 || a.Node == nil {
			r.fail(fmt.Sprintf("watch %s: %s %s", req.URL, resp.Status, b))
			if a.ErrorCode == 401 && a.Index > 0 {
				// The index is out of the member's history: go on from
				// the current one; the events skipped count as missed.
				w.next.Store(a.Index + 1)
			} else {
				pause(ctx)
			}
			continue
		}
		w.got = append(w.got, receipt{a.Node.ModifiedIndex, at})
		w.next.Store(a.Node.ModifiedIndex + 1)
	}
}

// pause keeps a failing watcher from spinning.
func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Millisecond):
	}
}

// modifiedIndex is the node's modifiedIndex in a v2 answer.
func modifiedIndex(b []byte) (uint64, error) {
	var a v2Answer
	if err := json.Unmarshal(b, &a); err != nil {
		return 0, fmt.Errorf("reading the answer %q: %w", b, err)
	}
	if a.Node == nil || a.Node.ModifiedIndex == 0 {
		return 0, fmt.Errorf("the answer %q has no node.modifiedIndex", b)
	}
	return a.Node.ModifiedIndex, nil
}
