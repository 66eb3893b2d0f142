package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
)

// Errors of a linearizable read that could not be confirmed. httpapi
// reports them as code 300. A read changes nothing, so, unlike a write
// that timed out, nothing is left unknown: the client may ask again, or
// read this member's local copy with serializable=true.
//
// Both have a ReadUnconfirmed method (true), as *ReadTimeoutError has, so
// that packages that do not import this one (package locks) can tell a
// read worth asking again with errors.As.
var (
	// ErrReadNoLeader: while the read waited, this member knew no leader
	// for about an election timeout (it lost its quorum, or an election
	// is taking long), so nobody could confirm the read.
	ErrReadNoLeader error = &unconfirmedError{"no leader could confirm the read (this member has no leader); serializable=true reads the local copy"}
	// ErrReadTimeout: a leader was known, but the ReadIndex round did not
	// complete within the request timeout (or the caller's deadline).
	// Get returns it as a *ReadTimeoutError naming the time allowed.
	ErrReadTimeout error = &unconfirmedError{"the leader did not confirm the read in time; serializable=true reads the local copy"}
)

// unconfirmedError is a read that no leader confirmed.
type unconfirmedError struct{ msg string }

func (e *unconfirmedError) Error() string { return e.msg }

// ReadUnconfirmed says the read was not confirmed: it may succeed when
// asked again.
func (e *unconfirmedError) ReadUnconfirmed() bool { return true }

// ReadTimeoutError is ErrReadTimeout with the time the read was allowed.
type ReadTimeoutError struct{ Waited time.Duration }

func (e *ReadTimeoutError) Error() string {
	return fmt.Sprintf("the leader did not confirm the read within %s; serializable=true reads the local copy", e.Waited)
}

// Is makes errors.Is(err, ErrReadTimeout) hold.
func (e *ReadTimeoutError) Is(target error) bool { return target == ErrReadTimeout }

// ReadUnconfirmed says the read was not confirmed: it may succeed when
// asked again.
func (e *ReadTimeoutError) ReadUnconfirmed() bool { return true }

// confirmRead waits until a ReadIndex round, shared with the reads that
// arrive meanwhile, has confirmed through the leader an index this member
// has applied: then its local state reflects every write acknowledged
// before the call. It gives up with ErrReadNoLeader once the member has
// known no leader for an election timeout while the read waits (counted
// from the read's arrival, or from when the leader was lost), with a
// *ReadTimeoutError when the request timeout (or ctx's deadline) passes
// with a leader known, with ctx's error when ctx is cancelled (the caller
// went away), and with ErrStopped when the member stops.
//
// One reused timer serves both its checks (every heartbeat, and the
// request timeout): a read allocates no context, ticker or timer.
func (m *Member) confirmRead(ctx context.Context) error {
	start := time.Now()
	deadline := start.Add(m.cfg.RequestTimeout)
	electionTimeout := m.cfg.electionTimeout()
	check := getTimer(min(m.cfg.HeartbeatInterval, m.cfg.RequestTimeout))
	defer putTimer(check)
	done := make(chan struct{})
	readc := m.readc // nil once the read is handed to the run loop
	// leaderless is when the read found the member without a leader
	// (zero while one is known).
	var leaderless time.Time
	for {
		if m.lead.Load() != 0 {
			leaderless = time.Time{}
		} else if leaderless.IsZero() {
			leaderless = time.Now()
		} else if time.Since(leaderless) >= electionTimeout {
			return confirmed(done, ErrReadNoLeader)
		}
		select {
		case readc <- done:
			readc = nil
		case <-done:
			return nil
		case <-check.C:
			left := time.Until(deadline)
			if left <= 0 {
				if m.lead.Load() == 0 {
					return confirmed(done, ErrReadNoLeader)
				}
				return confirmed(done, &ReadTimeoutError{Waited: m.cfg.RequestTimeout})
			}
			check.Reset(min(m.cfg.HeartbeatInterval, left))
		case <-ctx.Done():
			return confirmed(done, m.readAbandoned(ctx, start))
		case <-m.stopc:
			return ErrStopped
		}
	}
}

// confirmed is nil if the round answered just as the read gave up, err
// otherwise.
func confirmed(done chan struct{}, err error) error {
	select {
	case <-done:
		return nil
	default:
		return err
	}
}

// readAbandoned says why a read's context ended before its round did.
func (m *Member) readAbandoned(ctx context.Context, start time.Time) error {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return ctx.Err()
	case m.lead.Load() == 0:
		return ErrReadNoLeader
	default: // the caller's own deadline
		return &ReadTimeoutError{Waited: time.Since(start).Round(time.Millisecond)}
	}
}

type readRound struct {
	ctx     []byte
	index   uint64 // 0 until the ReadState arrives
	waiters []chan struct{}
	ticks   int
	lead    uint64 // the leader known when the round was asked (0: none)
}

// Get reads p; unless serializable, only after a ReadIndex round shows the
// local state is current (linearizable). Concurrent reads share a round.
// A read that cannot be confirmed fails with ErrReadNoLeader or a
// *ReadTimeoutError (see confirmRead).
func (m *Member) Get(ctx context.Context, p string, recursive, serializable bool) (*store.Event, error) {
	if !serializable && !m.cfg.UnsafeLocalReads {
		if err := m.confirmRead(ctx); err != nil {
			return nil, err
		}
	}
	return m.Store().Get(p, recursive)
}

// startRead begins a ReadIndex round for the waiting reads, unless one is
// already running.
func (m *Member) startRead() {
	if m.readRound != nil || len(m.reads) == 0 {
		return
	}
	m.readSeq++
	ctx := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, m.cfg.ID), m.readSeq)
	m.readRound = &readRound{ctx: ctx, waiters: m.reads, lead: m.lead.Load()}
	m.reads = nil
	_ = m.node.ReadIndex(ctx)
}

func (m *Member) readState(rs consensus.ReadState) {
	if m.readRound != nil && string(rs.RequestCtx) == string(m.readRound.ctx) {
		m.readRound.index = rs.Index
	}
}

// releaseReads answers a round once its read index is applied.
func (m *Member) releaseReads() {
	r := m.readRound
	if r == nil || r.index == 0 || m.applied < r.index {
		return
	}
	for _, w := range r.waiters {
		close(w)
	}
	m.readRound = nil
	m.startRead()
}

// tickReads re-asks a round whose answer did not come within an election
// timeout (the request or its answer was lost), or on the next tick once
// a leader other than the one it was asked of is known: a round asked
// while no leader was known went nowhere, and one asked of a former
// leader may never be answered.
func (m *Member) tickReads() {
	if r := m.readRound; r != nil && r.index == 0 {
		r.ticks++
		if lead := m.lead.Load(); r.ticks > m.cfg.ElectionTicks || (lead != 0 && lead != r.lead) {
			m.reads = append(r.waiters, m.reads...)
			m.readRound = nil
			m.startRead()
		}
	}
}

// Watch registers a watcher on the store.
func (m *Member) Watch(p string, recursive, stream bool, since uint64) (*store.Watcher, error) {
	// Under the read lock: a snapshot install swaps the store and ends the
	// old one's watchers under the write lock, so none is left behind.
	m.storeMu.RLock()
	defer m.storeMu.RUnlock()
	if m.cfg.unsafeWatchFromNow && since <= m.store.Index() {
		since = 0
	}
	return m.store.Watch(p, recursive, stream, since)
}
