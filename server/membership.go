package server

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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

// Bounds on one member's URLs (peer URLs; its client URLs are held to the
// same), so that no request can make the member list, which every member
// holds, sends and saves with each snapshot, grow without limit. The HTTP
// API refuses a request over them before anything is proposed;
// AddMember and UpdateMember refuse to propose one; and an entry over them
// that reaches the log all the same is refused when it is applied, alike
// on every member (the registry records nothing; the proposer is told).
const (
	MaxPeerURLs = 16
	MaxURLBytes = 256
)

// CheckURLBounds returns an error wrapping ErrURLBounds when urls, one
// member's peer or client URLs (kind says which, for the message), are
// more than MaxPeerURLs or one is longer than MaxURLBytes.
func CheckURLBounds(kind string, urls []string) error {
	if len(urls) > MaxPeerURLs {
		return &urlBoundsError{fmt.Sprintf("too many %s URLs: %d, at most %d", kind, len(urls), MaxPeerURLs)}
	}
	for _, u := range urls {
		if len(u) > MaxURLBytes {
			return &urlBoundsError{fmt.Sprintf("%s URL too long: %d bytes, at most %d", kind, len(u), MaxURLBytes)}
		}
	}
	return nil
}

type urlBoundsError struct{ msg string }

func (e *urlBoundsError) Error() string        { return e.msg }
func (e *urlBoundsError) Is(target error) bool { return target == ErrURLBounds }

// MemberInfo is one member as /v2/members shows it. A member that was
// added but has not started yet has no name and no client URLs.
type MemberInfo struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
}

func (mi MemberInfo) clone() MemberInfo {
	mi.PeerURLs = slices.Clone(mi.PeerURLs)
	mi.ClientURLs = slices.Clone(mi.ClientURLs)
	return mi
}

// registry is the replicated member list: changed only by applying log
// entries (and snapshots), so every member holds the same one at the same
// index. It travels with the applied state in the Raft metadata.
type registry struct {
	members map[uint64]MemberInfo
	removed map[uint64]bool
}

func newRegistry() *registry {
	return &registry{members: map[uint64]MemberInfo{}, removed: map[uint64]bool{}}
}

// list returns the members sorted by ID (etcd's order).
func (g *registry) list() []MemberInfo {
	out := make([]MemberInfo, 0, len(g.members))
	for _, id := range g.ids() {
		out = append(out, g.members[id].clone())
	}
	return out
}

func (g *registry) ids() []uint64 {
	ids := make([]uint64, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (g *registry) clone() *registry {
	c := newRegistry()
	for id, mi := range g.members {
		c.members[id] = mi.clone()
	}
	for id := range g.removed {
		c.removed[id] = true
	}
	return c
}

// urlOwner returns the member using peer URL u, if any.
func (g *registry) urlOwner(u string) (uint64, bool) {
	for _, id := range g.ids() {
		if slices.Contains(g.members[id].PeerURLs, u) {
			return id, true
		}
	}
	return 0, false
}

// Encoding: version 1; uvarint member count; per member (by ID) uvarint
// ID, name, peer URLs, client URLs (strings and lists uvarint-prefixed);
// uvarint removed count and the removed IDs ascending.
const registryV1 = 1

func (g *registry) appendTo(b []byte) []byte {
	b = append(b, registryV1)
	b = binary.AppendUvarint(b, uint64(len(g.members)))
	for _, id := range g.ids() {
		b = appendMemberInfo(b, g.members[id])
	}
	removed := make([]uint64, 0, len(g.removed))
	for id := range g.removed {
		removed = append(removed, id)
	}
	slices.Sort(removed)
	b = binary.AppendUvarint(b, uint64(len(removed)))
	for _, id := range removed {
		b = binary.AppendUvarint(b, id)
	}
	return b
}

func decodeRegistry(b []byte) (*registry, error) {
	d := decoder{b: b}
	if d.byte() != registryV1 {
		return nil, errors.New("server: bad member registry version")
	}
	g := newRegistry()
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		mi := d.memberInfo()
		g.members[mi.ID] = mi
	}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		g.removed[d.uvarint()] = true
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("server: bad member registry: %w", d.err)
	}
	return g, nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func appendMemberInfo(b []byte, mi MemberInfo) []byte {
	b = binary.AppendUvarint(b, mi.ID)
	b = appendString(b, mi.Name)
	b = appendStrings(b, mi.PeerURLs)
	return appendStrings(b, mi.ClientURLs)
}

// decoder reads the encodings above; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errors.New("truncated")
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strings() []string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	out := make([]string, 0, n)
	for ; n > 0 && d.err == nil; n-- {
		out = append(out, d.string())
	}
	return out
}

func (d *decoder) memberInfo() MemberInfo {
	return MemberInfo{ID: d.uvarint(), Name: d.string(), PeerURLs: d.strings(), ClientURLs: d.strings()}
}

// Membership entries. A conf change's context is version 1, the uvarint
// request ID (0: nobody waits) and the member's info. The other changes
// are normal entries: version 2 (store requests are version 1), the
// request ID (8 bytes), an operation and its arguments.
const (
	ccContextV1      = 1
	opAttributes     = 1 // member ID, name, client URLs
	opUpdatePeerURLs = 2 // member ID, peer URLs
)

func encodeCCContext(reqID uint64, mi MemberInfo) []byte {
	return appendMemberInfo(binary.AppendUvarint([]byte{ccContextV1}, reqID), mi)
}

func decodeCCContext(b []byte) (uint64, MemberInfo, error) {
	if len(b) == 0 {
		return 0, MemberInfo{}, nil // bootstrap entries of older versions
	}
	d := decoder{b: b}
	if d.byte() != ccContextV1 {
		return 0, MemberInfo{}, errors.New("server: bad conf change context version")
	}
	id := d.uvarint()
	mi := d.memberInfo()
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return 0, MemberInfo{}, fmt.Errorf("server: bad conf change context: %w", d.err)
	}
	return id, mi, nil
}

func encodeMemberOp(reqID uint64, op byte, member uint64, name string, urls []string) []byte {
	b := make([]byte, 9, 32)
	b[0] = memberEntry
	binary.BigEndian.PutUint64(b[1:], reqID)
	b = append(b, op)
	b = binary.AppendUvarint(b, member)
	if op == opAttributes {
		b = appendString(b, name)
	}
	return appendStrings(b, urls)
}

// memberOp is a decoded membership entry (the data after the request ID).
type memberOp struct {
	op   byte
	id   uint64
	name string   // opAttributes
	urls []string // client URLs (opAttributes) or peer URLs (opUpdatePeerURLs)
}

// decodeMemberOp decodes a membership entry (data after the request ID).
func decodeMemberOp(b []byte) (memberOp, error) {
	d := decoder{b: b}
	var o memberOp
	o.op = d.byte()
	o.id = d.uvarint()
	if o.op == opAttributes {
		o.name = d.string()
	}
	o.urls = d.strings()
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil || (o.op != opAttributes && o.op != opUpdatePeerURLs) {
		return memberOp{}, fmt.Errorf("server: bad membership entry (op %d): %v", o.op, d.err)
	}
	return o, nil
}

// applyMemberOp decodes and applies a membership entry (data after the
// request ID).
func (g *registry) applyMemberOp(b []byte) error {
	o, err := decodeMemberOp(b)
	if err != nil {
		return err
	}
	return g.applyOp(o)
}

// applyOp applies a decoded membership entry.
func (g *registry) applyOp(o memberOp) error {
	mi, ok := g.members[o.id]
	if !ok {
		return ErrMemberNotFound
	}
	if o.op == opAttributes {
		if err := CheckURLBounds("client", o.urls); err != nil {
			return err
		}
		mi.Name, mi.ClientURLs = o.name, o.urls
	} else {
		if err := CheckURLBounds("peer", o.urls); err != nil {
			return err
		}
		for _, u := range o.urls {
			if owner, ok := g.urlOwner(u); ok && owner != o.id {
				return ErrPeerURLExists
			}
		}
		mi.PeerURLs = o.urls
	}
	g.members[o.id] = mi
	return nil
}

// applyConfChange records a committed membership change in the registry;
// an error means the change is refused, and the core must not apply it.
// Adding a member that was removed is refused (a removed ID never comes
// back), and so is adding one whose peer URL another member has: the
// check made when the change was proposed used the proposer's view, which
// may lag (two adds of one URL through different members). So is adding
// one whose URLs are over the bounds (CheckURLBounds).
func (g *registry) applyConfChange(cc consensus.ConfChange, mi MemberInfo) error {
	switch cc.Type {
	case consensus.AddVoter, consensus.AddLearner:
		if g.removed[cc.NodeID] {
			return ErrMemberRemoved
		}
		if _, ok := g.members[cc.NodeID]; !ok {
			if err := CheckURLBounds("peer", mi.PeerURLs); err != nil {
				return err
			}
			if err := CheckURLBounds("client", mi.ClientURLs); err != nil {
				return err
			}
			for _, u := range mi.PeerURLs {
				if _, taken := g.urlOwner(u); taken {
					return ErrPeerURLExists
				}
			}
			mi.ID = cc.NodeID
			if mi.ClientURLs == nil {
				mi.ClientURLs = []string{}
			}
			g.members[cc.NodeID] = mi
		}
	case consensus.RemoveNode:
		delete(g.members, cc.NodeID)
		g.removed[cc.NodeID] = true
	}
	return nil
}

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
	if err := CheckURLBounds("peer", peerURLs); err != nil {
		return MemberInfo{}, err
	}
	g := m.view.Load()
	for _, u := range peerURLs {
		if _, ok := g.urlOwner(u); ok {
			return MemberInfo{}, ErrPeerURLExists
		}
	}
	mi := MemberInfo{ID: NewMemberID(peerURLs, time.Now()), PeerURLs: slices.Clone(peerURLs), ClientURLs: []string{}}
	if _, ok := g.members[mi.ID]; ok || g.removed[mi.ID] || mi.ID == 0 {
		return MemberInfo{}, ErrIDExists
	}
	reqID := m.nextID.Add(1)
	cc := consensus.ConfChange{Type: consensus.AddLearner, NodeID: mi.ID, Context: encodeCCContext(reqID, mi)}
	if _, err := m.await(ctx, proposal{id: reqID, cc: &cc}); err != nil {
		return MemberInfo{}, err
	}
	if got, ok := m.view.Load().members[mi.ID]; ok {
		return got.clone(), nil
	}
	return MemberInfo{}, ErrMemberRemoved
}

// RemoveMember removes member id. A member that removes itself stops
// once the change is applied.
func (m *Member) RemoveMember(ctx context.Context, id uint64) error {
	g := m.view.Load()
	if g.removed[id] {
		return ErrMemberRemoved
	}
	mi, ok := g.members[id]
	if !ok {
		return ErrMemberNotFound
	}
	if err := m.mayRemove(id); err != nil {
		return err
	}
	reqID := m.nextID.Add(1)
	cc := consensus.ConfChange{Type: consensus.RemoveNode, NodeID: id, Context: encodeCCContext(reqID, mi)}
	_, err := m.await(ctx, proposal{id: reqID, cc: &cc})
	return err
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
			wait = m.cfg.HeartbeatInterval * time.Duration(m.cfg.ElectionTicks)
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
	if cc.Type == consensus.RemoveNode && cc.NodeID == m.cfg.ID && res.err == nil {
		// Stop a few heartbeats from now, so that the messages telling
		// the others that our removal is committed go out first.
		m.removedTicks = 1
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
// snapshot) and may not yet know the leader it must answer.
func (m *Member) syncPeers(g *registry) {
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

// Peer endpoints a joining member reads.
const (
	PeerMembersPath = "/members"
	PeerVersionPath = "/version"
)

// Version is Cairn's own version.
const Version = "0.1.0-dev"

type memberJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// MarshalJSON renders a member as etcd's /v2/members does: the ID in hex
// without padding, empty lists as [].
func (mi MemberInfo) MarshalJSON() ([]byte, error) {
	j := memberJSON{ID: strconv.FormatUint(mi.ID, 16), Name: mi.Name, PeerURLs: mi.PeerURLs, ClientURLs: mi.ClientURLs}
	if j.PeerURLs == nil {
		j.PeerURLs = []string{}
	}
	if j.ClientURLs == nil {
		j.ClientURLs = []string{}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (mi *MemberInfo) UnmarshalJSON(b []byte) error {
	var j memberJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	id, err := strconv.ParseUint(j.ID, 16, 64)
	if err != nil {
		return fmt.Errorf("member ID %q: %w", j.ID, err)
	}
	*mi = MemberInfo{ID: id, Name: j.Name, PeerURLs: j.PeerURLs, ClientURLs: j.ClientURLs}
	return nil
}

type clusterJSON struct {
	ClusterID string       `json:"clusterID"`
	Members   []MemberInfo `json:"members"`
}

// MarshalMembers is the body of the peer endpoint /members.
func MarshalMembers(clusterID uint64, members []MemberInfo) []byte {
	b, _ := json.Marshal(clusterJSON{ClusterID: strconv.FormatUint(clusterID, 16), Members: members})
	return b
}

// UnmarshalMembers reads the body of the peer endpoint /members.
func UnmarshalMembers(b []byte) (clusterID uint64, members []MemberInfo, err error) {
	var j clusterJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return 0, nil, err
	}
	cid, err := strconv.ParseUint(j.ClusterID, 16, 64)
	if err != nil || cid == 0 {
		return 0, nil, fmt.Errorf("bad cluster ID %q", j.ClusterID)
	}
	return cid, j.Members, nil
}

func hexes(ids []uint64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = hex(id)
	}
	return out
}

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

// tickRemoved stops a member a few ticks after it applied its own
// removal.
func (m *Member) tickRemoved() {
	if m.removedTicks == 0 {
		return
	}
	if m.removedTicks++; m.removedTicks > removedGraceTicks {
		m.fail(ErrRemoved)
	}
}

// removedGraceTicks is how long (in heartbeat intervals) a removed member
// keeps its transport up before it stops.
const removedGraceTicks = 3
