package consensus

import (
	"github.com/cairnkv/cairn/consensus/tracker"
)

// Ready is the work the caller must do, in this order:
//
//  1. Messages may be sent at once, even before anything is persisted
//     (a leader's appends go out while it writes its own disk).
//  2. Persist Snapshot (if any), Entries and HardState (if not empty);
//     fsync when MustSync.
//  3. Only then send MessagesAfterPersist: append acknowledgements and
//     votes promise that what they acknowledge is on disk.
//  4. Apply Snapshot, then CommittedEntries in order; serve ReadStates once
//     their index is applied.
//  5. Call Advance.
type Ready struct {
	// SoftState is set when leader or role changed.
	SoftState *SoftState
	// HardState is empty when unchanged.
	HardState HardState
	// ReadStates answer ReadIndex requests.
	ReadStates []ReadState
	// Entries to persist (they may replace a persisted suffix).
	Entries []Entry
	// Snapshot to persist and apply, if not empty.
	Snapshot Snapshot
	// CommittedEntries to apply.
	CommittedEntries []Entry
	// Messages to send at once.
	Messages []Message
	// MessagesAfterPersist to send once step 2 is done.
	MessagesAfterPersist []Message
	// MustSync reports that step 2 needs an fsync.
	MustSync bool
}

// Node drives one member's Raft state machine. It has no goroutines, does
// no I/O, reads no clock and is not safe for concurrent use: the caller
// owns it from one goroutine, feeds it Tick and Step, and carries out each
// Ready before the next.
type Node struct {
	r           *raft
	prevSoft    SoftState
	prevHard    HardState
	outstanding bool // a Ready was handed out and not yet advanced
}

// NewNode creates a member from cfg and its Storage's contents.
func NewNode(cfg *Config) (*Node, error) {
	r, err := newRaft(cfg)
	if err != nil {
		return nil, err
	}
	return &Node{r: r, prevSoft: r.softState(), prevHard: r.hardState()}, nil
}

// Tick advances logical time by one tick.
func (n *Node) Tick() { n.r.tick() }

// Campaign starts an election now (with the pre-vote, if configured).
func (n *Node) Campaign() error { return n.r.Step(Message{Type: MsgHup}) }

// Propose appends data to the log (through the leader).
func (n *Node) Propose(data []byte) error {
	return n.r.Step(Message{Type: MsgProp, From: n.r.id, Entries: []Entry{{Data: data}}})
}

// ProposeConfChange proposes a membership change. Once committed, the
// caller applies it with ApplyConfChange.
func (n *Node) ProposeConfChange(cc ConfChange) error {
	return n.r.Step(Message{Type: MsgProp, From: n.r.id, Entries: []Entry{{Type: EntryConfChange, Data: cc.Marshal()}}})
}

// Step delivers a message from a peer.
func (n *Node) Step(m Message) error {
	if m.Type.IsLocal() {
		return ErrStepLocalMsg
	}
	if m.Type.isResponse() && n.r.prs.Progress[m.From] == nil && m.Type != MsgReadIndexResp {
		return ErrStepPeerNotFound
	}
	return n.r.Step(m)
}

// ReadIndex asks for a linearizable read point; the answer arrives as a
// ReadState carrying rctx, which must be unique among outstanding reads.
func (n *Node) ReadIndex(rctx []byte) error {
	return n.r.Step(Message{Type: MsgReadIndex, From: n.r.id, Context: rctx})
}

// TransferLeadership asks the leader to hand leadership to transferee.
func (n *Node) TransferLeadership(transferee uint64) error {
	return n.r.Step(Message{Type: MsgTransferLeader, From: transferee})
}

// ApplyConfChange applies a committed membership change and returns the
// new membership.
func (n *Node) ApplyConfChange(cc ConfChange) ConfState { return n.r.applyConfChange(cc) }

// ReportUnreachable tells the leader the transport could not reach id.
func (n *Node) ReportUnreachable(id uint64) {
	_ = n.r.Step(Message{Type: MsgUnreachable, From: id})
}

// ReportSnapshot tells the leader whether sending a snapshot to id worked.
func (n *Node) ReportSnapshot(id uint64, failed bool) {
	_ = n.r.Step(Message{Type: MsgSnapStatus, From: id, Reject: failed})
}

// HasReady reports whether Ready has work (always false between Ready and
// Advance).
func (n *Node) HasReady() bool {
	if n.outstanding {
		return false
	}
	r := n.r
	if r.softState() != n.prevSoft {
		return true
	}
	if hs := r.hardState(); !hs.IsEmpty() && hs != n.prevHard {
		return true
	}
	return r.log.unstable.snapshot != nil || len(r.log.unstable.entries) > 0 ||
		len(r.msgs) > 0 || len(r.msgsAfterPersist) > 0 || len(r.readStates) > 0 ||
		r.log.hasNextCommittedEnts()
}

// Ready returns the pending work. The caller must carry it out and call
// Advance before calling Ready again.
func (n *Node) Ready() Ready {
	r := n.r
	rd := Ready{
		Entries:              r.log.unstableEntries(),
		CommittedEntries:     r.log.nextCommittedEnts(),
		Messages:             r.msgs,
		MessagesAfterPersist: r.msgsAfterPersist,
		ReadStates:           r.readStates,
	}
	if ss := r.softState(); ss != n.prevSoft {
		rd.SoftState = &ss
		n.prevSoft = ss
	}
	if hs := r.hardState(); hs != n.prevHard {
		rd.HardState = hs
		rd.MustSync = hs.Term != n.prevHard.Term || hs.Vote != n.prevHard.Vote
		n.prevHard = hs
	}
	if s := r.log.unstable.snapshot; s != nil {
		rd.Snapshot = *s
		rd.MustSync = true
	}
	if len(rd.Entries) > 0 {
		rd.MustSync = true
	}
	r.msgs, r.msgsAfterPersist, r.readStates = nil, nil, nil
	n.outstanding = true
	return rd
}

// Advance reports that rd was carried out.
func (n *Node) Advance(rd Ready) {
	var stableIndex, stableTerm, snapIndex, applied uint64
	if l := len(rd.Entries); l > 0 {
		stableIndex, stableTerm = rd.Entries[l-1].Index, rd.Entries[l-1].Term
	}
	if !rd.Snapshot.IsEmpty() {
		snapIndex = rd.Snapshot.Meta.Index
		applied = snapIndex
	}
	if l := len(rd.CommittedEntries); l > 0 {
		applied = rd.CommittedEntries[l-1].Index
	}
	n.outstanding = false
	n.r.advance(stableIndex, stableTerm, snapIndex, applied)
}

// Status is a snapshot of a member's state for reporting.
type Status struct {
	ID uint64
	HardState
	SoftState
	Applied        uint64
	LeadTransferee uint64
	// Progress of each member, on the leader only.
	Progress map[uint64]tracker.Progress
	Config   ConfState
}

// Status reports the member's state.
func (n *Node) Status() Status {
	r := n.r
	s := Status{ID: r.id, HardState: r.hardState(), SoftState: r.softState(), Applied: r.log.applied,
		LeadTransferee: r.leadTransferee,
		Config:         ConfState{Voters: append([]uint64(nil), r.prs.Voters...), Learners: append([]uint64(nil), r.prs.Learners...)}}
	if r.state == StateLeader {
		s.Progress = map[uint64]tracker.Progress{}
		r.prs.Visit(func(id uint64, pr *tracker.Progress) {
			cp := *pr
			cp.Inflights = nil
			s.Progress[id] = cp
		})
	}
	return s
}
