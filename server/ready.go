package server

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/cairnkv/cairn/consensus"
)

// Why a member is not ready (Ready). Each is a condition a client relies
// on right after a health check.
var (
	// ErrLeaderUnknown: the member knows no leader, so it can confirm no
	// read and forward no write.
	ErrLeaderUnknown = errors.New("no leader known")
	// ErrCatchingUp: the member has not yet applied every entry it knew
	// committed when it started (or that the leader first said it had
	// committed), so its local copy is older than what it has served
	// before.
	ErrCatchingUp = errors.New("catching up")
	// ErrNotPublished: this member's own view of the member list does not
	// yet show its name and client URLs, so /v2/members, from which
	// clients such as etcdctl take their endpoints, does not list it.
	ErrNotPublished = errors.New("this member's name and client URLs are not in its member list yet")
)

// readiness is what Ready needs beyond the member's other state.
type readiness struct {
	// catchUp is the commit index the member must have applied: the
	// commit index of its hard state when it started, raised once to the
	// commit index of the first append a leader sends it (a joining or
	// lagging member learns there how far the cluster is).
	catchUp atomic.Uint64
	learned atomic.Bool
}

// learn raises the catch-up target to the commit index of the first
// append a leader sends. Any commit index a leader sends is committed, so
// the target never asks for more than the cluster has.
func (r *readiness) learn(msg consensus.Message) {
	if msg.Type != consensus.MsgApp || r.learned.Load() || !r.learned.CompareAndSwap(false, true) {
		return
	}
	for {
		old := r.catchUp.Load()
		if msg.Commit <= old || r.catchUp.CompareAndSwap(old, msg.Commit) {
			return
		}
	}
}

// Ready reports whether the member can serve what clients do right after
// a health check: it knows a leader, it has applied the commit index it
// knew at start (and the one a leader first sent it), and its own view of
// the member list shows its name and client URLs (so /v2/members lists
// it). It returns nil, ErrStopped, or every missing condition joined
// (ErrLeaderUnknown, ErrCatchingUp, ErrNotPublished; test with errors.Is).
// /health also needs a linearizable read to complete within a second.
func (m *Member) Ready() error {
	select {
	case <-m.stopc:
		return ErrStopped
	default:
	}
	var errs []error
	if m.lead.Load() == 0 {
		errs = append(errs, ErrLeaderUnknown)
	}
	if applied, want := m.Store().RaftIndex(), m.ready.catchUp.Load(); applied < want {
		errs = append(errs, fmt.Errorf("%w: applied %d of the %d known committed", ErrCatchingUp, applied, want))
	}
	if !m.published(m.view.Load()) {
		errs = append(errs, ErrNotPublished)
	}
	return errors.Join(errs...)
}

// ErrNotJoined means the member has not yet applied its own addition to the
// cluster, so its replicated state (the auth registry among it) may lack
// everything committed before it joined.
var ErrNotJoined = errors.New("this member has not yet applied its own addition to the cluster")

// Joined returns nil once this member is in the member list it has
// applied (at once for the members of a new cluster and a restarted
// member; for a member that joins, once it has applied the entry that
// added it, and so everything committed before, auth changes included),
// else ErrNotJoined. Until then it cannot check a client's permissions:
// httpapi refuses client requests, as etcd serves clients only once its
// member has published itself.
func (m *Member) Joined() error {
	if _, ok := m.view.Load().members[m.cfg.ID]; !ok {
		return ErrNotJoined
	}
	return nil
}

// published reports whether member list g shows this member with its
// configured name and client URLs.
func (m *Member) published(g *registry) bool {
	mi, ok := g.members[m.cfg.ID]
	return ok && mi.Name == m.cfg.Name && slices.Equal(mi.ClientURLs, m.cfg.ClientURLs)
}
