package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

type result struct {
	ev  *store.Event
	err error
	out any // an auth operation's authOutcome
}

type proposal struct {
	id   uint64
	data []byte
	cc   *consensus.ConfChange // a membership change instead of data
}

func (m *Member) propose(p proposal) {
	m.waitMu.Lock()
	_, waiting := m.waiters[p.id]
	if waiting {
		m.proposed[p.id] = 0
	}
	m.waitMu.Unlock()
	if !waiting {
		return // its caller gave up before it reached Raft
	}
	if m.leaderUnreachable() {
		m.hold(p)
		return
	}
	var err error
	if p.cc != nil {
		err = m.node.ProposeConfChange(*p.cc)
	} else {
		err = m.node.Propose(p.data)
	}
	if errors.Is(err, consensus.ErrNoLeader) {
		m.hold(p)
		return
	}
	if err != nil {
		m.trigger(p.id, result{err: err})
	}
}

// hold keeps p until a leader is known and reachable (releaseHeld); the
// caller's timeout bounds the wait, and a caller that gives up meanwhile
// is told it was not applied (it is no longer among the proposed).
func (m *Member) hold(p proposal) {
	m.waitMu.Lock()
	delete(m.proposed, p.id)
	m.waitMu.Unlock()
	m.held = append(m.held, p)
}

// leaderUnreachable: this member follows a leader its transport has no
// stream to (one just killed: its streams broke at once), or has not
// heard from within an election timeout, and has not for long: a
// follower goes on naming a dead leader until its election timer (one to
// two election timeouts) fires and a new one is elected. A proposal
// forwarded meanwhile would be lost without a word, and its client told
// "outcome unknown" when the request times out; held, it goes to the
// next leader (or to this one once it is heard from again), and a client
// that gives up first is told it was not applied. After
// heldForUnreachable election timeouts it is forwarded all the same,
// whatever the transport says.
func (m *Member) leaderUnreachable() bool {
	lead := m.lead.Load()
	if m.isLeader || lead == 0 || lead == m.cfg.ID || m.transport == nil {
		return false
	}
	timeout := m.cfg.electionTimeout()
	if m.transport.ActiveWithin(lead, timeout) {
		m.unreachableLead = 0
		return false
	}
	if m.unreachableLead != lead {
		m.unreachableLead, m.unreachableSince = lead, m.now
	}
	return m.now.Sub(m.unreachableSince) < heldForUnreachable*timeout
}

// heldForUnreachable bounds, in election timeouts, how long proposals
// wait for an unreachable leader to be replaced or heard from again.
const heldForUnreachable = 3

// releaseHeld proposes what waited for a leader.
func (m *Member) releaseHeld() {
	held := m.held
	m.held = nil
	for _, p := range held {
		m.waitMu.Lock()
		_, waiting := m.waiters[p.id]
		m.waitMu.Unlock()
		if waiting {
			m.propose(p)
		}
	}
}

func (m *Member) register(id uint64) chan result {
	ch, ok := waitChans.Get().(chan result)
	if !ok {
		ch = make(chan result, 1)
	}
	m.waitMu.Lock()
	m.waiters[id] = ch
	m.waitMu.Unlock()
	return ch
}

func (m *Member) trigger(id uint64, r result) {
	m.waitMu.Lock()
	ch, ok := m.waiters[id]
	delete(m.waiters, id)
	delete(m.proposed, id)
	m.waitMu.Unlock()
	if ok {
		ch <- r
	}
}

// Do proposes r and waits for it to be applied. A request over the hard
// limits (store.CheckLimits), or whose log entry the WAL could not hold
// (wal.MaxEntryData), is refused at once, unproposed.
func (m *Member) Do(ctx context.Context, r *store.Request) (*store.Event, error) {
	if r.Time == 0 {
		r.Time = m.cfg.Now().UnixNano()
	}
	if err := store.CheckLimits(r); err != nil {
		return nil, err
	}
	id := m.nextID.Add(1)
	data := encodeProposal(id, r)
	if len(data) > wal.MaxEntryData {
		return nil, store.NewError(store.EcodeTooLarge, fmt.Sprintf("request of %d bytes; a log entry holds at most %d", len(data), wal.MaxEntryData), 0)
	}
	return m.await(ctx, proposal{id: id, data: data})
}

// await proposes p and waits (at most RequestTimeout) for it to be
// applied.
func (m *Member) await(ctx context.Context, p proposal) (*store.Event, error) {
	res := m.awaitResult(ctx, p)
	return res.ev, res.err
}

// awaitResult is await answering the whole result.
func (m *Member) awaitResult(ctx context.Context, p proposal) result {
	id := p.id
	ch := m.register(id)
	// RequestTimeout bounds the wait as a context deadline would, without
	// the context, timer and channel a context.WithTimeout allocates for
	// every write.
	timeout := getTimer(m.cfg.RequestTimeout)
	defer putTimer(timeout)
	m.metrics.pending.Inc()
	defer m.metrics.pending.Dec()
	select {
	case m.propc <- p:
	case <-ctx.Done():
		m.trigger(id, result{})
		return result{err: ctx.Err()}
	case <-timeout.C:
		m.trigger(id, result{})
		return result{err: context.DeadlineExceeded}
	case <-m.stopc:
		return result{err: ErrStopped}
	}
	select {
	case res := <-ch:
		return m.answered(ch, res)
	case <-ctx.Done():
		return m.giveUp(id, ch)
	case <-timeout.C:
		return m.giveUp(id, ch)
	case <-m.done:
		// The member has stopped. closeDown answered every waiter
		// before done closed (ErrStopped, or success for a removal of
		// this member that a peer's refusal proved done); while it was
		// stopping, a leader's handover could still apply this one.
		select {
		case res := <-ch:
			return m.answered(ch, res)
		default:
			return result{err: ErrStopped}
		}
	}
}

// answered is awaitResult's end when the run loop (or closeDown)
// answered.
func (m *Member) answered(ch chan result, res result) result {
	// trigger took ch out of the waiters before it sent the one result
	// ch ever gets: nobody holds it any more.
	waitChans.Put(ch)
	if res.err != nil {
		var se *store.Error
		var ae *AuthError
		if !errors.As(res.err, &se) && !errors.As(res.err, &ae) {
			m.metrics.failed.Inc()
		}
	}
	return res
}

// giveUp is awaitResult's end when the caller's context or the request
// timeout ends the wait.
func (m *Member) giveUp(id uint64, ch chan result) result {
	res := m.abandon(id, ch)
	if res.err != nil {
		m.metrics.failed.Inc()
	}
	return res
}

// waitChans are the channels of waiters that got their result, reused
// (a channel of results is two allocations).
var waitChans sync.Pool

// timers are the request timeouts of waiting writes, reused: a timer is
// stopped before it goes back, and a stopped timer delivers no stale
// expiry after Reset (Go 1.23's timers).
var timers sync.Pool

func getTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func putTimer(t *time.Timer) {
	t.Stop()
	timers.Put(t)
}

// abandon gives up waiting for request id: ErrTimeout (outcome unknown)
// if it reached Raft, ErrNotProposed if it never did, or its result if
// that arrived meanwhile.
func (m *Member) abandon(id uint64, ch chan result) result {
	m.waitMu.Lock()
	_, waiting := m.waiters[id]
	index, proposed := m.proposed[id]
	delete(m.waiters, id)
	delete(m.proposed, id)
	m.waitMu.Unlock()
	if !waiting {
		return <-ch // answered just as we gave up
	}
	if !proposed {
		return result{err: ErrNotProposed}
	}
	return result{err: &TimeoutError{Index: index}}
}

// TimeoutError is ErrTimeout with the log index the request was given, if
// this member saw it appended (0: not known; the proposal may have been
// lost on its way to the leader).
type TimeoutError struct{ Index uint64 }

func (e *TimeoutError) Error() string {
	if e.Index == 0 {
		return ErrTimeout.Error() + " (proposed; its log index is not known)"
	}
	return fmt.Sprintf("%s (proposed at index %d)", ErrTimeout.Error(), e.Index)
}

// Is makes errors.Is(err, ErrTimeout) hold.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// noteIndexes records the log index of appended entries whose proposer is
// waiting here, for TimeoutError.
func (m *Member) noteIndexes(ents []consensus.Entry) {
	m.waitMu.Lock()
	defer m.waitMu.Unlock()
	if len(m.proposed) == 0 {
		return
	}
	for _, e := range ents {
		id, ok := requestIDOf(e)
		if !ok {
			continue
		}
		if _, ok := m.proposed[id]; ok {
			m.proposed[id] = e.Index
		}
	}
}

// checkProposal keeps out of the log, when this member leads, what apply
// could not take (consensus.Config.CheckProposal).
func (m *Member) checkProposal(e consensus.Entry) error {
	if m.cfg.UnsafeSkipProposalCheck {
		return nil
	}
	err := checkProposal(e)
	if err != nil {
		m.metrics.proposalsRefused.Inc()
		m.refusedLog.Warn().Err(err).Msg("refused a proposal that apply could not take")
	}
	return err
}
