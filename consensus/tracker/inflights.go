package tracker

// Inflights is a bounded FIFO of the last indexes of appends sent but not
// yet acknowledged. When it is full the leader stops sending appends to
// that follower until acknowledgements free room.
type Inflights struct {
	start int      // slot of the oldest entry
	count int      // entries held
	buf   []uint64 // Invariant: len(buf) == size once allocated
	size  int
}

// NewInflights returns a window of the given size (at least 1).
func NewInflights(size int) *Inflights {
	if size < 1 {
		size = 1
	}
	return &Inflights{size: size}
}

// Add records an append whose last index is last. Indexes must be added in
// increasing order; Add on a full window panics (callers check Full).
func (in *Inflights) Add(last uint64) {
	if in.Full() {
		panic("tracker: Add on a full inflight window")
	}
	if in.buf == nil {
		in.buf = make([]uint64, in.size)
	}
	in.buf[(in.start+in.count)%in.size] = last
	in.count++
}

// FreeLE frees every inflight append whose last index is <= to.
func (in *Inflights) FreeLE(to uint64) {
	for in.count > 0 && in.buf[in.start] <= to {
		in.start = (in.start + 1) % in.size
		in.count--
	}
	if in.count == 0 {
		in.start = 0
	}
}

// FreeFirstOne frees the oldest inflight append. A leader whose window is
// full and whose follower answers a heartbeat uses it: the appends in the
// window may have been lost, and one more append will find out (it is
// either accepted or rejected, moving the follower back to probing).
func (in *Inflights) FreeFirstOne() {
	if in.count > 0 {
		in.FreeLE(in.buf[in.start])
	}
}

// Full reports whether no more appends may be sent.
func (in *Inflights) Full() bool { return in.count == in.size }

// Count is the number of appends in flight.
func (in *Inflights) Count() int { return in.count }

// Reset forgets every inflight append.
func (in *Inflights) Reset() { in.start, in.count = 0, 0 }
