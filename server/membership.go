package server

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnkv/cairn/consensus"
)

// Membership errors; httpapi maps them to etcd's statuses.
var (
	// ErrMemberNotFound: no member has that ID (404).
	ErrMemberNotFound = errors.New("no such member")
	// ErrMemberRemoved: the member was removed and cannot come back (410).
	ErrMemberRemoved = errors.New("member permanently removed")
	// ErrPeerURLExists: another member already uses that peer URL (409).
	ErrPeerURLExists = errors.New("membership: peerURL exists")
	// ErrIDExists: the new member's ID is taken (409).
	ErrIDExists = errors.New("membership: ID exists")
	// ErrRemoved: this member was removed from the cluster and stopped.
	ErrRemoved = errors.New("this member was removed from the cluster")
	// ErrUnsafeRemoval: removing the member would leave fewer voters
	// that are up than the new configuration's quorum (500, as etcd's
	// strict reconfiguration check).
	ErrUnsafeRemoval = errors.New("re-configuration refused: not enough members up")
	// ErrURLBounds: a member would have more URLs than MaxPeerURLs, or
	// one longer than MaxURLBytes (400).
	ErrURLBounds = errors.New("membership: URLs over the bounds")
)

// NewMemberID derives a new member's ID as etcd does for members added at
// runtime: SHA-1 over the sorted peer URLs and the time, first 8 bytes.
func NewMemberID(peerURLs []string, now time.Time) uint64 {
	urls := slices.Clone(peerURLs)
	slices.Sort(urls)
	h := sha1.Sum([]byte(strings.Join(urls, "") + strconv.FormatInt(now.Unix(), 10)))
	return binary.BigEndian.Uint64(h[:8])
}

// Members returns the cluster's members, sorted by ID.
func (m *Member) Members() []MemberInfo { return m.view.Load().list() }

// ClusterID returns the cluster's ID.
func (m *Member) ClusterID() uint64 { return m.cfg.ClusterID }

// ID returns this member's ID.
func (m *Member) ID() uint64 { return m.cfg.ID }

// Leader returns the member this member believes leads, if any.
func (m *Member) Leader() (MemberInfo, bool) {
	lead := m.lead.Load()
	if lead == 0 {
		return MemberInfo{}, false
	}
	mi, ok := m.view.Load().members[lead]
	if !ok {
		return MemberInfo{ID: lead, PeerURLs: []string{}, ClientURLs: []string{}}, true
	}
	return mi.clone(), true
}

// AddMember adds a member with the given peer URLs. It joins as a
// learner (it does not count toward quorum, so adding a member that has
// not started yet cannot make the cluster unavailable) and the leader
// promotes it to voter once it has caught up.
func (m *Member) AddMember(ctx context.Context, peerURLs []string) (MemberInfo, error) {
	p, mi, err := m.addProposal(peerURLs, time.Now())
	if err != nil {
		return MemberInfo{}, err
	}
	if _, err := m.await(ctx, p); err != nil {
		return MemberInfo{}, err
	}
	if got, ok := m.view.Load().members[mi.ID]; ok {
		return got.clone(), nil
	}
	return MemberInfo{}, ErrMemberRemoved
}

// addProposal checks an addition against the member list as applied here
// and builds its proposal: the new member's ID derives from its peer URLs
// and now (NewMemberID).
func (m *Member) addProposal(peerURLs []string, now time.Time) (proposal, MemberInfo, error) {
	if err := CheckURLBounds("peer", peerURLs); err != nil {
		return proposal{}, MemberInfo{}, err
	}
	g := m.view.Load()
	for _, u := range peerURLs {
		if _, ok := g.urlOwner(u); ok {
			return proposal{}, MemberInfo{}, ErrPeerURLExists
		}
	}
	mi := MemberInfo{ID: NewMemberID(peerURLs, now), PeerURLs: slices.Clone(peerURLs), ClientURLs: []string{}}
	if _, ok := g.members[mi.ID]; ok || g.removed[mi.ID] || mi.ID == 0 {
		return proposal{}, MemberInfo{}, ErrIDExists
	}
	reqID := m.nextID.Add(1)
	cc := consensus.ConfChange{Type: consensus.AddLearner, NodeID: mi.ID, Context: encodeCCContext(reqID, mi)}
	return proposal{id: reqID, cc: &cc}, mi, nil
}

// RemoveMember removes member id. A member that removes itself stops
// once the change is applied.
func (m *Member) RemoveMember(ctx context.Context, id uint64) error {
	p, err := m.removeProposal(id)
	if err != nil {
		return err
	}
	_, err = m.await(ctx, p)
	return err
}

// removeProposal checks a removal against the member list as applied
// here and against the voters this member hears from (mayRemove), and
// builds its proposal.
func (m *Member) removeProposal(id uint64) (proposal, error) {
	g := m.view.Load()
	if g.removed[id] {
		return proposal{}, ErrMemberRemoved
	}
	mi, ok := g.members[id]
	if !ok {
		return proposal{}, ErrMemberNotFound
	}
	if err := m.mayRemove(id); err != nil {
		return proposal{}, err
	}
	reqID := m.nextID.Add(1)
	if id == m.cfg.ID {
		m.waitMu.Lock()
		m.selfRemoval = reqID
		m.waitMu.Unlock()
	}
	cc := consensus.ConfChange{Type: consensus.RemoveNode, NodeID: id, Context: encodeCCContext(reqID, mi)}
	return proposal{id: reqID, cc: &cc}, nil
}

// mayRemove refuses to remove a voter that is up when, of the voters
// left, fewer than a quorum of the new configuration are up, as seen from
// this member: the cluster would stop committing until a member comes
// back (etcd's strict reconfiguration check). A learner, or a voter that
// is down, may always be removed: that changes nothing about who can
// form a quorum. "Up" is what the transport saw within three keepalive
// periods: a connected stream and a sign of life.
func (m *Member) mayRemove(id uint64) error {
	cs := m.Conf()
	if m.transport == nil || !slices.Contains(cs.Voters, id) {
		return nil
	}
	within := 3 * m.transport.KeepAlive()
	up := func(v uint64) bool { return v == m.cfg.ID || m.transport.ActiveWithin(v, within) }
	if !up(id) {
		return nil
	}
	left, upLeft := 0, 0
	for _, v := range cs.Voters {
		if v == id {
			continue
		}
		left++
		if up(v) {
			upLeft++
		}
	}
	if quorum := left/2 + 1; upLeft < quorum {
		return fmt.Errorf("%w: removing %s would leave %d voters, %d of them up, fewer than the %d a quorum needs; bring members back, or remove one that is down, first",
			ErrUnsafeRemoval, hex(id), left, upLeft, quorum)
	}
	return nil
}

// UpdateMember replaces member id's peer URLs.
func (m *Member) UpdateMember(ctx context.Context, id uint64, peerURLs []string) error {
	if err := CheckURLBounds("peer", peerURLs); err != nil {
		return err
	}
	g := m.view.Load()
	if g.removed[id] {
		return ErrMemberRemoved
	}
	if _, ok := g.members[id]; !ok {
		return ErrMemberNotFound
	}
	for _, u := range peerURLs {
		if owner, ok := g.urlOwner(u); ok && owner != id {
			return ErrPeerURLExists
		}
	}
	reqID := m.nextID.Add(1)
	_, err := m.await(ctx, proposal{id: reqID, data: encodeMemberOp(reqID, opUpdatePeerURLs, id, "", peerURLs)})
	return err
}

// publish makes the member's name and client URLs part of the replicated
// member list (as etcd publishes its attributes), retrying until it is
// applied or the member stops. The member is not ready until it is
// applied, so it is proposed as soon as the member is in its own list,
// leader or not: a proposal made without a leader is held and goes out
// the moment one is known, with the client writes held beside it. A
// failed attempt is retried an election timeout later.
func (m *Member) publish() {
	for {
		g := m.view.Load()
		_, ok := g.members[m.cfg.ID]
		if m.published(g) {
			return
		}
		wait := m.cfg.HeartbeatInterval // until the member is in its list
		if ok {
			wait = m.cfg.electionTimeout()
			reqID := m.nextID.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), m.cfg.RequestTimeout)
			_, err := m.await(ctx, proposal{id: reqID, data: encodeMemberOp(reqID, opAttributes, m.cfg.ID, m.cfg.Name, m.cfg.ClientURLs)})
			cancel()
			if err == nil {
				m.log.Info().Str("name", m.cfg.Name).Strs("client-urls", m.cfg.ClientURLs).Msg("published this member's attributes")
				continue
			}
			if errors.Is(err, ErrStopped) {
				return
			}
		}
		select {
		case <-m.stopc:
			return
		case <-time.After(wait):
		}
	}
}

// applyConfChange applies a committed conf change: the registry, the
// core, the transport; a member that removed itself stops. d is the
// entry, decoded.
func (m *Member) applyConfChange(e consensus.Entry, d entry) {
	cc := *d.cc
	g := m.view.Load().clone()
	wasLearner := slices.Contains(m.conf.Learners, m.cfg.ID)
	var res result
	if res.err = g.applyConfChange(cc, d.mi); res.err == nil {
		m.setConf(m.node.ApplyConfChange(cc))
		m.log.Info().Str("change", cc.Type.String()).Str("member-id", hex(cc.NodeID)).Uint64("index", e.Index).
			Strs("voters", hexes(m.conf.Voters)).Strs("learners", hexes(m.conf.Learners)).Msg("membership changed")
	} else {
		m.log.Warn().Err(res.err).Str("change", cc.Type.String()).Str("member-id", hex(cc.NodeID)).Uint64("index", e.Index).
			Msg("membership change refused when applied")
	}
	m.view.Store(g)
	m.syncPeers(g)
	m.store.MarkApplied(e.Index)
	m.trigger(d.id, res)
	if cc.Type == consensus.RemoveNode && cc.NodeID == m.cfg.ID && res.err == nil && m.removedTicks == 0 {
		// Stop once the voters left no longer need us (tickRemoved).
		m.removedTicks = 1
		m.removedLearner = wasLearner
	}
}

// applyMemberEntry applies a membership entry that is not a conf change.
// Refusals (an unknown member, a peer URL taken) go to the waiter.
func (m *Member) applyMemberEntry(e consensus.Entry, d entry) {
	g := m.view.Load().clone()
	err := g.applyOp(d.op)
	if err == nil {
		m.view.Store(g)
		m.syncPeers(g)
	}
	m.store.MarkApplied(e.Index)
	m.trigger(d.id, result{err: err})
}

// syncPeers points the transport at the registry's members. A joining
// member, until it has applied its own addition, also keeps the peers it
// was told of when it joined: the registry is rebuilt from the log (or a
// snapshot) and may not yet know the leader it must answer. And every
// member keeps the strangers a member it knows vouched for (askAbout)
// until it has applied their addition or their removal.
func (m *Member) syncPeers(g *registry) {
	m.vouchMu.Lock()
	defer m.vouchMu.Unlock()
	want := map[uint64]string{}
	for id, mi := range g.members {
		if id != m.cfg.ID && len(mi.PeerURLs) > 0 {
			want[id] = mi.PeerURLs[0]
		}
	}
	if _, joined := g.members[m.cfg.ID]; !joined {
		for id, u := range m.seedPeers {
			if _, ok := want[id]; !ok {
				want[id] = u
			}
		}
	}
	for id, u := range m.vouched {
		if _, known := g.members[id]; known || g.removed[id] {
			delete(m.vouched, id)
		} else if _, ok := want[id]; !ok {
			want[id] = u
		}
	}
	have := m.transport.Peers()
	for id, u := range want {
		if have[id] != u {
			m.transport.AddPeer(id, u)
		}
	}
	for id := range have {
		if _, ok := want[id]; !ok {
			m.transport.RemovePeer(id)
		}
	}
}

// A member refuses messages from a member whose addition it has not
// applied (the peer transport answers 404), but it may need them: one
// that fell behind while members were added, or restarted before it
// caught up, may find one of them leading, and could never catch up. So
// it asks the members it knows about such a stranger (their peer endpoint
// /members, at most once every askInterval per stranger): one that a
// member it knows lists, it accepts from then on, and answers at the peer
// URL listed, until it has applied the stranger's addition or removal.

// askInterval is how often a member asks about one stranger at most.
const askInterval = time.Second

// isVouched: a member this member knows lists stranger id.
func (m *Member) isVouched(id uint64) bool {
	m.vouchMu.Lock()
	defer m.vouchMu.Unlock()
	_, ok := m.vouched[id]
	return ok
}

// askAbout asks the members this member knows whether they list stranger
// id, in the background; vouch takes the answer.
func (m *Member) askAbout(id uint64) {
	if m.cfg.askAbout != nil {
		m.cfg.askAbout(id)
		return
	}
	now := time.Now()
	m.vouchMu.Lock()
	if at, ok := m.asked[id]; ok && now.Sub(at) < askInterval {
		m.vouchMu.Unlock()
		return
	}
	if len(m.asked) >= 64 {
		clear(m.asked) // strangers by the dozen: forget when they were asked about
	}
	m.asked[id] = now
	m.vouchMu.Unlock()
	g := m.view.Load()
	var urls []string
	for _, mi := range g.list() {
		if mi.ID != m.cfg.ID && len(mi.PeerURLs) > 0 {
			urls = append(urls, mi.PeerURLs[0])
		}
	}
	if _, joined := g.members[m.cfg.ID]; !joined {
		for _, mi := range m.cfg.InitialMembers {
			if mi.ID != m.cfg.ID && len(mi.PeerURLs) > 0 {
				urls = append(urls, mi.PeerURLs[0])
			}
		}
	}
	go func() {
		for _, u := range urls {
			if mi, ok := m.lookUp(u, id); ok {
				m.vouch(mi)
				return
			}
		}
	}()
}

// lookUp reads member id from the member list the member at peerURL
// serves, if it lists it in this cluster.
func (m *Member) lookUp(peerURL string, id uint64) (MemberInfo, bool) {
	resp, err := m.peerClient.Get(strings.TrimRight(peerURL, "/") + PeerMembersPath)
	if err != nil {
		return MemberInfo{}, false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return MemberInfo{}, false
	}
	cid, list, err := UnmarshalMembers(body)
	if err != nil || cid != m.cfg.ClusterID {
		return MemberInfo{}, false
	}
	for _, mi := range list {
		if mi.ID == id {
			return mi, true
		}
	}
	return MemberInfo{}, false
}

// vouch: a member this member knows lists mi, whose addition it has not
// applied: accept it, and answer it at its peer URL.
func (m *Member) vouch(mi MemberInfo) {
	if len(mi.PeerURLs) == 0 || mi.ID == m.cfg.ID {
		return
	}
	m.vouchMu.Lock()
	defer m.vouchMu.Unlock()
	g := m.view.Load()
	if _, known := g.members[mi.ID]; known || g.removed[mi.ID] {
		return
	}
	if _, ok := m.vouched[mi.ID]; !ok {
		m.log.Info().Str("member-id", hex(mi.ID)).Str("peer-url", mi.PeerURLs[0]).
			Msg("accepting a member whose addition is not applied here yet: a member this one knows lists it")
	}
	m.vouched[mi.ID] = mi.PeerURLs[0]
	m.transport.AddPeer(mi.ID, mi.PeerURLs[0])
}

// maybePromote: the leader promotes a learner that has caught up (at most
// one change in flight; the core refuses a second).
func (m *Member) maybePromote() {
	if !m.isLeader || len(m.conf.Learners) == 0 {
		return
	}
	st := m.node.Status()
	last, _ := m.rs.LastIndex()
	for _, id := range m.conf.Learners {
		pr, ok := st.Progress[id]
		// Match > 0: it has answered (a learner added before it started
		// is not promoted until it runs and has caught up).
		if !ok || !pr.RecentActive || pr.Match == 0 || pr.Match+promoteLag < last {
			continue
		}
		mi := m.view.Load().members[id]
		cc := consensus.ConfChange{Type: consensus.AddVoter, NodeID: id, Context: encodeCCContext(0, mi)}
		if err := m.node.ProposeConfChange(cc); err == nil {
			m.log.Info().Str("member-id", hex(id)).Uint64("match", pr.Match).Msg("promoting a caught-up learner to voter")
		}
		return
	}
}

// promoteLag is how far behind the leader's log a learner may be when it
// is promoted (well inside the core's LearnerMaxLag).
const promoteLag = 100

func (m *Member) setConf(cs consensus.ConfState) {
	m.conf = cs
	m.confView.Store(&cs)
}

// Conf returns the voters and learners as of the last applied entry.
func (m *Member) Conf() consensus.ConfState {
	if cs := m.confView.Load(); cs != nil {
		return *cs
	}
	return consensus.ConfState{}
}

// A member that applied its own removal does not stop at once: a voter
// left may not have learnt yet that the removal committed (the one
// message that told it may be lost, or it may crash before it applied
// it), and until it has, the configuration it holds still counts this
// member; in a cluster of two, the member left cannot even elect itself
// without this member's vote. So the removed member goes on answering
// (votes, appends) until every voter left has refused it as removed (410:
// it applied the removal), or until it has heard from none of them (no
// message, no refusal) for removedLingerElections election timeouts: the
// voters left that still need it talk to it (they campaign), and those
// that refused it can lead the others without it; one down for longer
// finds it gone, as before it lingered. A learner, whom no one counts,
// stops removedGraceTicks after, once the messages telling the others the
// removal committed have gone out. A member that did not apply its own
// removal (it was cut off while it was committed) stops at the first
// refusal.

// refusedAsRemoved: peer by refused this member as removed.
func (m *Member) refusedAsRemoved(by uint64) {
	if m.removedTicks == 0 {
		m.log.Error().Str("peer", hex(by)).Msg("a peer says this member was removed from the cluster")
		m.fail(ErrRemoved)
		return
	}
	if !slices.Contains(m.refusedBy, by) {
		m.refusedBy = append(m.refusedBy, by)
		m.removedQuiet = 0
		m.log.Info().Str("peer", hex(by)).Msg("a member left has applied this member's removal")
	}
	for _, v := range m.conf.Voters {
		if !slices.Contains(m.refusedBy, v) {
			return
		}
	}
	m.fail(ErrRemoved)
}

// tickRemoved stops a removed member once it is no longer needed (see
// above): a learner removedGraceTicks after it applied its removal, a
// voter once it has heard from no voter left for removedLingerElections
// election timeouts.
func (m *Member) tickRemoved() {
	if m.removedTicks == 0 {
		return
	}
	m.removedTicks++
	m.removedQuiet++
	if (m.removedLearner && m.removedTicks > removedGraceTicks) || m.removedQuiet > removedLingerElections*m.cfg.ElectionTicks {
		m.fail(ErrRemoved)
	}
}

// removedGraceTicks is how long (in heartbeat intervals) a removed
// learner keeps its transport up before it stops.
const removedGraceTicks = 3

// removedLingerElections is how long (in election timeouts) a removed
// member waits for a word from a voter left before it stops.
const removedLingerElections = 10
