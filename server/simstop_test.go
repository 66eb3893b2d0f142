package server

import (
	"fmt"
	"time"

	"github.com/cairnkv/cairn/internal/simfs"
)

// Slow disks and graceful stops in the whole-cluster simulator.
//
// A slow disk (one world in four) gives each WAL write and fsync a
// duration in virtual time (simfs.Latency), now and then a stall. While a
// member's loop waits for its WAL, as the shell's loop does in
// Member.drain, it takes no event: ticks, messages, proposals and reads
// for it wait (deferred) until the write is done, then go in as one batch
// each, as the shell batches what piled up (group commit); a tick missed
// meanwhile is lost, as a time.Ticker's is. A message leaves once the
// writes before it are done, and answers are seen only then.
//
// A graceful stop (one world in three) runs the shell's stop through the
// driver: the member's stop channel closes, a leader hands over
// (Member.beginStop) and its loop runs on until it no longer leads or an
// election timeout passes, then Member.closeDown answers every proposal
// still waiting with ErrStopped and closes the files; the member restarts
// later, as an operator would. Every waiter pending on the member must
// then hold an answer, and no answer may be an empty success (no error,
// no event): a client reads that as a grant or an item.

// simDiskLatency draws a world's disk: instant, or (one in four) slow.
func simDiskLatency(w *simWorld) simfs.Latency {
	if w.rng.IntN(4) != 0 {
		return simfs.Latency{}
	}
	lo := w.dur(time.Millisecond, 10*time.Millisecond)
	return simfs.Latency{
		Write:     [2]time.Duration{0, 200 * time.Microsecond},
		Sync:      [2]time.Duration{lo, w.dur(lo, 50*time.Millisecond)},
		Stall:     w.rng.Float64() * 0.01,
		StallTime: [2]time.Duration{200 * time.Millisecond, 800 * time.Millisecond},
	}
}

// busy keeps member i's loop busy for took (its disk's time), from now.
func (w *simWorld) busy(i int, took time.Duration) {
	n := w.nodes[i]
	if took <= 0 || n.m == nil {
		return
	}
	n.busyUntil = max(n.busyUntil, w.now+took)
	w.shell.busy += took
	w.shell.longest = max(w.shell.longest, took)
	w.at(n.busyUntil-w.now, &simEvent{kind: skFree, member: i, inc: n.inc})
}

// loopBusy reports whether member i's loop is still writing its WAL:
// what it answered in that step is not out yet.
func (w *simWorld) loopBusy(i int) bool {
	n := w.nodes[i]
	return n.m != nil && w.now < n.busyUntil
}

// deferEvent keeps ev until n's loop is free, batching as the shell does:
// proposals and messages that pile up go in together, and a tick (or an
// expiry check) that falls due while one is waiting already is lost.
func (w *simWorld) deferEvent(n *simNode, ev event) {
	w.shell.deferred++
	if k := len(n.deferred); k > 0 {
		last := &n.deferred[k-1]
		switch {
		case ev.kind == evPropose && last.kind == evPropose:
			last.props = append(last.props, ev.props...)
			return
		case ev.kind == evMessages && last.kind == evMessages:
			last.msgs = append(last.msgs, ev.msgs...)
			return
		}
	}
	if ev.kind == evTick || ev.kind == evExpiry {
		for _, d := range n.deferred {
			if d.kind == ev.kind {
				return
			}
		}
	}
	n.deferred = append(n.deferred, ev)
}

// free hands a member whose WAL write is done the events that waited.
func (w *simWorld) free(ev *simEvent) {
	n := w.nodes[ev.member]
	if n.m == nil || n.inc != ev.inc || w.now < n.busyUntil {
		return
	}
	for n.m != nil && n.inc == ev.inc && w.now >= n.busyUntil && len(n.deferred) > 0 {
		next := n.deferred[0]
		n.deferred = n.deferred[1:]
		w.stepNow(ev.member, next)
	}
	w.poll()
}

// stopEvent stops a member gracefully: a random one (member -1, then the
// next stop is scheduled), or one whose stop waited for its loop.
func (w *simWorld) stopEvent(ev *simEvent) {
	if w.calm {
		return
	}
	i := ev.member
	if i < 0 {
		i = w.pickNode()
		w.at(w.exp(w.p.stopEvery), ev)
	} else if w.nodes[i].inc != ev.inc {
		return
	}
	n := w.nodes[i]
	if n.m == nil || n.stopping {
		return
	}
	if w.now < n.busyUntil || len(n.deferred) > 0 {
		// The loop sees its stop channel only between events.
		w.at(max(n.busyUntil-w.now, 0), &simEvent{kind: skStop, member: i, inc: n.inc})
		return
	}
	m := n.m
	w.trace("member %d stops (leader: %v)", n.id, m.isLeader)
	n.stopping = true
	m.stopOnce.Do(func() { close(m.stopc) })
	n.mark = n.fs.Elapsed()
	m.now = w.clock()
	switch {
	case m.beginStop():
		w.shell.handovers++
		w.busy(i, n.fs.Elapsed()-n.mark)
		w.at(time.Duration(m.cfg.ElectionTicks)*m.cfg.HeartbeatInterval, &simEvent{kind: skStopDeadline, member: i, inc: n.inc})
	case m.Err() != nil:
		w.crash(i, fmt.Sprintf("failed while handing over: %v", m.Err()))
	default:
		w.finishStop(i, "not leading")
	}
	w.poll()
}

// finishStop ends a stopping member as the shell's shutdown does, checks
// that every proposal pending on it was answered, and restarts it later.
func (w *simWorld) finishStop(i int, why string) {
	n := w.nodes[i]
	m := n.m
	w.trace("member %d stopped (%s)", n.id, why)
	m.closeDown(nil)
	inc := n.inc
	n.m = nil
	n.busyUntil, n.deferred, n.stopping = 0, nil, false
	for _, p := range w.pendingProposals() {
		if p.op.member != i || p.op.inc != inc {
			continue
		}
		w.shell.pending++
		if len(p.op.ch) == 0 {
			w.fail("member %d stopped and left %s's proposal unanswered", n.id, p.who)
		}
	}
	w.shell.stops++
	w.at(w.dur(200*time.Millisecond, 3*time.Second), &simEvent{kind: skRestart, member: i})
}

// dropUnsent forgets, when member i crashes, the answers its loop gave
// in a step whose WAL write was still in progress: they never went out.
func (w *simWorld) dropUnsent(i int) {
	n := w.nodes[i]
	if w.now >= n.busyUntil {
		return
	}
	for _, p := range w.pendingProposals() {
		if p.op.member == i && p.op.inc == n.inc {
			select {
			case <-p.op.ch:
			default:
			}
		}
	}
}

// simShellLog counts the graceful stops, the leaders' handovers among
// them, and the proposals pending on a member when it stopped; and the
// time members were busy writing their WAL (the longest write), and the
// events that waited for it.
type simShellLog struct {
	stops, handovers, pending int
	busy, longest             time.Duration
	deferred                  int
}

// simPending is a client's proposal waiting for its answer.
type simPending struct {
	who string
	op  *simOp
}

// pendingProposals lists every client's proposal still waiting, in a
// fixed order.
func (w *simWorld) pendingProposals() []simPending {
	var out []simPending
	for _, c := range w.clients {
		if c.pending != nil && c.pending.ch != nil {
			out = append(out, simPending{fmt.Sprintf("client %d", c.n), c.pending})
		}
	}
	for _, l := range w.lockers {
		if l.pending != nil && l.pending.ch != nil {
			out = append(out, simPending{fmt.Sprintf("locker %d", l.n), l.pending})
		}
	}
	for _, a := range w.queue.actors {
		if a.pending != nil && a.pending.ch != nil {
			out = append(out, simPending{a.name(), a.pending})
		}
	}
	return out
}

// checkAnswer fails the run on an empty success (no error and no event)
// and reports whether the answer can be read.
func (w *simWorld) checkAnswer(res result, who string) bool {
	if res.err == nil && res.out == nil && (res.ev == nil || res.ev.Node == nil) {
		w.fail("%s: an empty answer (no error, no event)", who)
		return false
	}
	return true
}
