package store

import (
	"errors"
	"strings"
	"sync"

	"github.com/google/btree"
)

// StreamBuffer is how many undelivered events a stream watcher may hold.
// A watcher that falls further behind is ended (see ErrWatcherTooSlow)
// rather than silently dropped.
const StreamBuffer = 128

// ErrWatcherTooSlow ends a stream watcher whose reader fell StreamBuffer
// events behind. The client resumes with waitIndex = NextIndex.
var ErrWatcherTooSlow = errors.New("store: watcher fell behind")

// Watcher receives the events matching one watch.
//
// A long-poll watcher (not Stream) receives exactly one event on C. A stream
// watcher receives every matching event until it is removed; if the hub
// ends it, C is closed and Err says why.
type Watcher struct {
	// C delivers the events. Never closed for long-poll watchers.
	C <-chan *Event
	// StartIndex is the store index when the watch was accepted
	// (X-Etcd-Index of the response).
	StartIndex uint64

	c         chan *Event
	hub       *hub
	path      string
	recursive bool
	stream    bool
	since     uint64 // deliver only events with Index >= since
	next      uint64 // index after the last event queued (resume point)
	err       error
	listed    bool // registered in hub.watchers
}

// Err reports why the hub ended the watcher after C was closed.
func (w *Watcher) Err() error {
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	return w.err
}

// NextIndex is the waitIndex a client should resume from.
func (w *Watcher) NextIndex() uint64 {
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	return w.next
}

// Remove unregisters the watcher. It is safe to call more than once and
// from any goroutine.
func (w *Watcher) Remove() {
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	w.hub.unlist(w)
}

// hub holds the event history and the registered watchers.
type hub struct {
	mu       sync.Mutex
	hist     *history
	watchers map[string][]*Watcher // by watched path
	paths    *btree.BTreeG[string] // watched paths, ordered (for subtree removals)
	count    int                   // registered watchers
}

func newHub(historySize int) *hub {
	return &hub{
		hist:     newHistory(historySize),
		watchers: make(map[string][]*Watcher),
		paths:    btree.NewOrderedG[string](btreeDegree),
	}
}

// under reports whether p is strictly below directory d.
func under(p, d string) bool {
	if d == "/" {
		return p != "/"
	}
	return len(p) > len(d) && p[len(d)] == '/' && strings.HasPrefix(p, d)
}

// hiddenBelow reports whether some element of key below the watched path w
// is hidden.
func hiddenBelow(w, key string) bool {
	rest := key
	if w != "/" {
		rest = key[len(w):]
	}
	return strings.Contains(rest, "/_")
}

// matches says whether a watcher on w (recursive or not) is interested in
// e, whose node key is key ("/" for the root). The rules of API.md §2.2,
// applied the same way to live events and to history scans.
func matches(w string, recursive bool, e *Event, key string) bool {
	if e.Refresh {
		return false
	}
	if key == w {
		return true
	}
	if recursive && under(key, w) && !hiddenBelow(w, key) {
		return true
	}
	// A deleted or expired directory takes the watched node with it.
	return (e.Action == ActionDelete || e.Action == ActionExpire) && e.Node.Dir && under(w, key)
}

func eventKey(e *Event) string {
	if e.Node.Key == "" {
		return "/"
	}
	return e.Node.Key
}

// watch registers a watcher. since == 0 means "from the next index".
func (h *hub) watch(p string, recursive, stream bool, since uint64) (*Watcher, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	last := h.hist.last
	if since == 0 {
		since = last + 1
	}
	size := 1
	if stream {
		size = StreamBuffer
	}
	c := make(chan *Event, size)
	w := &Watcher{C: c, c: c, hub: h, path: p, recursive: recursive, stream: stream,
		since: since, next: since, StartIndex: last}
	if since <= last {
		if h.hist.n == 0 || since < h.hist.first {
			return nil, h.hist.cleared(since, last)
		}
		for i := since; i <= last; i++ {
			e := h.hist.at(i)
			if !matches(p, recursive, e, eventKey(e)) {
				continue
			}
			if !h.deliver(w, e) {
				return w, nil // ended: buffer full already
			}
			if !stream {
				return w, nil
			}
		}
		w.next = last + 1
	}
	h.list(w)
	return w, nil
}

// deliver queues e for w. A long-poll watcher is done after one event; a
// stream watcher whose buffer is full is ended. It reports whether w is
// still live afterwards. Called with h.mu held.
func (h *hub) deliver(w *Watcher, e *Event) bool {
	if w.err != nil {
		return false
	}
	select {
	case w.c <- e:
		w.next = e.Index + 1
		if !w.stream {
			h.unlist(w)
			return false
		}
		return true
	default:
		w.err = ErrWatcherTooSlow
		h.unlist(w)
		close(w.c)
		return false
	}
}

func (h *hub) list(w *Watcher) {
	ws := h.watchers[w.path]
	if len(ws) == 0 {
		h.paths.ReplaceOrInsert(w.path)
	}
	h.watchers[w.path] = append(ws, w)
	w.listed = true
	h.count++
}

func (h *hub) unlist(w *Watcher) {
	if !w.listed {
		return
	}
	w.listed = false
	h.count--
	ws := h.watchers[w.path]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(h.watchers, w.path)
		h.paths.Delete(w.path)
		return
	}
	h.watchers[w.path] = ws
}

// Count is the number of registered watchers.
func (h *hub) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// publish records e in the history and wakes the watchers it matches.
// removed, for a delete or expire of a directory, is the subtree that went
// away: watchers on nodes inside it are woken too. Refresh events are only
// recorded.
func (h *hub) publish(e *Event, removed *node) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hist.add(e)
	if e.Refresh || h.count == 0 {
		return
	}
	key := eventKey(e)
	// The watched node itself and every ancestor directory.
	h.notifyAt("/", e, key)
	for i := 1; i < len(key); i++ {
		if key[i] == '/' {
			h.notifyAt(key[:i], e, key)
		}
	}
	if key != "/" {
		h.notifyAt(key, e, key)
	}
	if removed == nil || !removed.dir {
		return
	}
	// Watchers on nodes that were inside the removed directory.
	var inside []string
	lo := key + "/"
	hi := key + "0" // '0' follows '/'
	h.paths.AscendRange(lo, hi, func(p string) bool {
		if _, err := lookup(removed, "/"+p[len(key)+1:], 0); err == nil {
			inside = append(inside, p)
		}
		return true
	})
	for _, p := range inside {
		h.notifyAt(p, e, key)
	}
}

// notifyAt offers e to the watchers registered on path p.
func (h *hub) notifyAt(p string, e *Event, key string) {
	ws := h.watchers[p]
	if len(ws) == 0 {
		return
	}
	// deliver may unlist watchers; iterate over a copy.
	for _, w := range append([]*Watcher(nil), ws...) {
		if e.Index >= w.since && matches(w.path, w.recursive, e, key) {
			h.deliver(w, e)
		}
	}
}
