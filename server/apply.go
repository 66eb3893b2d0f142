package server

import (
	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
)

func (m *Member) apply(e consensus.Entry) {
	if m.cfg.onApply != nil {
		m.cfg.onApply(e)
	}
	m.applied, m.appliedTerm = e.Index, e.Term
	// Before any waiter is answered, so what a client saw applied is
	// never ahead of the figure.
	m.metrics.applied.Set(float64(e.Index))
	d := decodeEntry(e)
	switch {
	case d.err != nil:
		m.refuseEntry(e, d)
	case d.cc != nil:
		m.applyConfChange(e, d)
	case d.kind == memberEntry:
		m.applyMemberEntry(e, d)
	case d.kind == authEntry:
		m.applyAuthEntry(e, d)
	case d.kind == entryRequest:
		if lerr := store.CheckLimits(d.req); lerr != nil {
			// Over the hard limits: the leader should have refused it.
			d.err = lerr
			m.refuseEntry(e, d)
			return
		}
		ev, err := m.store.Apply(e.Index, d.req)
		if d.id == m.expiryID {
			m.expiryID = 0
		}
		m.trigger(d.id, result{ev: ev, err: err})
	default: // a leader's no-op
		m.store.MarkApplied(e.Index)
	}
}

// refuseEntry applies an entry that cannot be applied as a refusal: the
// state does not change, the waiter (if any) is told why, and the member
// goes on. Every member refuses it alike.
func (m *Member) refuseEntry(e consensus.Entry, d entry) {
	m.metrics.entriesRefused.Inc()
	m.refusedLog.Error().Err(d.err).Uint64("index", e.Index).Int("bytes", len(e.Data)).Msg("refused a log entry that cannot be applied")
	m.store.MarkApplied(e.Index)
	m.trigger(d.id, result{err: d.err})
}

// maybeExpire: the leader proposes an expiry, carrying its clock, once a
// deadline has passed; every member then expires the same keys at the
// same index.
func (m *Member) maybeExpire() {
	if !m.isLeader || m.expiryID != 0 {
		return
	}
	now := m.now.UnixNano()
	if d, ok := m.store.NextDeadline(); !ok || d > now {
		return
	}
	m.expiryID = m.nextID.Add(1)
	if err := m.node.Propose(encodeProposal(m.expiryID, &store.Request{Op: store.OpExpire, Path: "/", Time: now})); err != nil {
		m.expiryID = 0
	}
}
