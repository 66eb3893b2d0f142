package store

import "fmt"

// history is a ring of the most recent events. Every store index has
// exactly one event (refreshes included), so the event for index i sits at
// slot i-first from the oldest: lookups are arithmetic.
//
// Invariant: len(ring) == cap; events holds indexes first..last in order.
type history struct {
	ring  []*Event
	head  int    // slot of the oldest event
	n     int    // events held
	first uint64 // index of the oldest event held (0 when empty)
	last  uint64 // index of the newest event ever added
}

func newHistory(capacity int) *history {
	if capacity < 1 {
		capacity = 1
	}
	return &history{ring: make([]*Event, capacity)}
}

// add appends e; e.Index must be last+1 (or anything, when empty).
func (h *history) add(e *Event) {
	if (h.n > 0 || h.last > 0) && e.Index != h.last+1 {
		panic(fmt.Sprintf("store: history gap: event %d after %d", e.Index, h.last))
	}
	if h.n == len(h.ring) {
		h.ring[h.head] = nil
		h.head = (h.head + 1) % len(h.ring)
		h.n--
		h.first++
	}
	if h.n == 0 {
		h.first = e.Index
	}
	h.ring[(h.head+h.n)%len(h.ring)] = e
	h.n++
	h.last = e.Index
}

// at returns the event with index i, which must be within [first, last].
func (h *history) at(i uint64) *Event {
	return h.ring[(h.head+int(i-h.first))%len(h.ring)]
}

// events returns the held events in index order.
func (h *history) events() []*Event {
	out := make([]*Event, 0, h.n)
	for i := 0; i < h.n; i++ {
		out = append(out, h.ring[(h.head+i)%len(h.ring)])
	}
	return out
}

// cleared is the 401 error for a request older than the history holds.
func (h *history) cleared(requested, current uint64) *Error {
	return NewError(EcodeEventIndexCleared,
		fmt.Sprintf("the requested history has been cleared [%d/%d]", h.first, requested), current)
}

// restart empties the history at index last: nothing older is held, and
// the next event must be last+1.
func (h *history) restart(last uint64) {
	clear(h.ring)
	h.head, h.n, h.first, h.last = 0, 0, 0, last
}
