package ttl

import "container/heap"

// entry is one deadline in the heap.
type entry struct {
	path     string
	deadline int64 // Unix nanoseconds
	pos      int   // Invariant: h.items[pos] == this entry.
}

// Heap is a set of (path, deadline) pairs ordered by deadline then path.
// The zero value is not usable; call New.
type Heap struct {
	items []*entry
	byKey map[string]*entry
}

// New returns an empty heap.
func New() *Heap {
	return &Heap{byKey: make(map[string]*entry)}
}

// Len reports how many paths have a deadline.
func (h *Heap) Len() int { return len(h.items) }

// Set gives path the deadline d, adding it or moving its existing deadline.
func (h *Heap) Set(path string, d int64) {
	if e, ok := h.byKey[path]; ok {
		e.deadline = d
		heap.Fix((*entries)(h), e.pos)
		return
	}
	e := &entry{path: path, deadline: d}
	h.byKey[path] = e
	heap.Push((*entries)(h), e)
}

// Remove drops path's deadline; it reports whether there was one.
func (h *Heap) Remove(path string) bool {
	e, ok := h.byKey[path]
	if !ok {
		return false
	}
	heap.Remove((*entries)(h), e.pos)
	delete(h.byKey, path)
	return true
}

// Deadline returns path's deadline, if it has one.
func (h *Heap) Deadline(path string) (int64, bool) {
	e, ok := h.byKey[path]
	if !ok {
		return 0, false
	}
	return e.deadline, true
}

// Peek returns the earliest deadline and its path without removing it.
func (h *Heap) Peek() (path string, deadline int64, ok bool) {
	if len(h.items) == 0 {
		return "", 0, false
	}
	e := h.items[0]
	return e.path, e.deadline, true
}

// Due reports whether some deadline is at or before t.
func (h *Heap) Due(t int64) bool {
	_, d, ok := h.Peek()
	return ok && d <= t
}

// PopDue removes and returns the earliest path whose deadline is at or
// before t. ok is false when no deadline is due.
func (h *Heap) PopDue(t int64) (path string, deadline int64, ok bool) {
	if !h.Due(t) {
		return "", 0, false
	}
	e := heap.Pop((*entries)(h)).(*entry)
	delete(h.byKey, e.path)
	return e.path, e.deadline, true
}

// entries adapts Heap to container/heap.
type entries Heap

func (h *entries) Len() int { return len(h.items) }

func (h *entries) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if a.deadline != b.deadline {
		return a.deadline < b.deadline
	}
	return a.path < b.path
}

func (h *entries) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].pos = i
	h.items[j].pos = j
}

func (h *entries) Push(x any) {
	e := x.(*entry)
	e.pos = len(h.items)
	h.items = append(h.items, e)
}

func (h *entries) Pop() any {
	old := h.items
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	h.items = old[:n-1]
	e.pos = -1
	return e
}
