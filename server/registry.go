package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cairnkv/cairn/consensus"
)

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
	d := newDecoder(b)
	if d.byte() != registryV1 {
		return nil, errors.New("server: bad member registry version")
	}
	g := newRegistry()
	for n := d.uvarint(); n > 0 && d.Err() == nil; n-- {
		mi := d.memberInfo()
		g.members[mi.ID] = mi
	}
	for n := d.uvarint(); n > 0 && d.Err() == nil; n-- {
		g.removed[d.uvarint()] = true
	}
	if d.Err() == nil && d.Len() != 0 {
		d.Fail("trailing bytes")
	}
	if d.Err() != nil {
		return nil, fmt.Errorf("server: bad member registry: %w", d.Err())
	}
	return g, nil
}

func appendMemberInfo(b []byte, mi MemberInfo) []byte {
	b = binary.AppendUvarint(b, mi.ID)
	b = appendString(b, mi.Name)
	b = appendStrings(b, mi.PeerURLs)
	return appendStrings(b, mi.ClientURLs)
}

func (d decoder) memberInfo() MemberInfo {
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
	d := newDecoder(b)
	if d.byte() != ccContextV1 {
		return 0, MemberInfo{}, errors.New("server: bad conf change context version")
	}
	id := d.uvarint()
	mi := d.memberInfo()
	if d.Err() == nil && d.Len() != 0 {
		d.Fail("trailing bytes")
	}
	if d.Err() != nil {
		return 0, MemberInfo{}, fmt.Errorf("server: bad conf change context: %w", d.Err())
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
	d := newDecoder(b)
	var o memberOp
	o.op = d.byte()
	o.id = d.uvarint()
	if o.op == opAttributes {
		o.name = d.string()
	}
	o.urls = d.strings()
	if d.Err() == nil && d.Len() != 0 {
		d.Fail("trailing bytes")
	}
	if d.Err() != nil || (o.op != opAttributes && o.op != opUpdatePeerURLs) {
		return memberOp{}, fmt.Errorf("server: bad membership entry (op %d): %v", o.op, d.Err())
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

func (e *urlBoundsError) Error() string { return e.msg }

func (e *urlBoundsError) Is(target error) bool { return target == ErrURLBounds }
