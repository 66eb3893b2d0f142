package consensus

import "fmt"

// None is the zero node ID: "no node" (no leader, no vote).
const None uint64 = 0

// EntryType says how the caller must apply an entry.
type EntryType uint8

const (
	// EntryNormal carries opaque application data (empty Data: a no-op
	// appended by a new leader).
	EntryNormal EntryType = iota
	// EntryConfChange carries an encoded ConfChange; the caller applies it
	// with Node.ApplyConfChange when the entry is committed.
	EntryConfChange
)

// Entry is one record of the replicated log.
type Entry struct {
	Term  uint64
	Index uint64
	Type  EntryType
	Data  []byte
}

// HardState is what a member must persist before answering anything that
// depends on it: its term, its vote in that term, and the commit index.
type HardState struct {
	Term   uint64
	Vote   uint64
	Commit uint64
}

// IsEmpty reports whether h is the zero hard state.
func (h HardState) IsEmpty() bool { return h == HardState{} }

// ConfState is a membership: the voters and the learners.
// Invariant: sorted ascending, no ID in both lists.
type ConfState struct {
	Voters   []uint64
	Learners []uint64
}

// SnapshotMeta describes a snapshot: the last entry it covers and the
// membership at that entry.
type SnapshotMeta struct {
	Index     uint64
	Term      uint64
	ConfState ConfState
}

// Snapshot is the application state up to Meta.Index. Data is opaque to
// the core.
type Snapshot struct {
	Meta SnapshotMeta
	Data []byte
}

// IsEmpty reports whether s holds no snapshot.
func (s Snapshot) IsEmpty() bool { return s.Meta.Index == 0 }

// ConfChangeType is the kind of a membership change.
type ConfChangeType uint8

const (
	// AddVoter adds a voter, or promotes a learner.
	AddVoter ConfChangeType = iota + 1
	// AddLearner adds a non-voting member. Demoting a voter is refused.
	AddLearner
	// RemoveNode removes a voter or a learner.
	RemoveNode
)

func (t ConfChangeType) String() string {
	switch t {
	case AddVoter:
		return "AddVoter"
	case AddLearner:
		return "AddLearner"
	case RemoveNode:
		return "RemoveNode"
	}
	return fmt.Sprintf("ConfChangeType(%d)", uint8(t))
}

// ConfChange is one membership change. Context is opaque to the core
// (the member puts peer URLs there).
type ConfChange struct {
	Type    ConfChangeType
	NodeID  uint64
	Context []byte
}

// MessageType enumerates the messages of the protocol, including local
// ones that never cross the network (Hup, Beat, CheckQuorum, Unreachable,
// SnapStatus).
type MessageType uint8

const (
	MsgHup  MessageType = iota + 1 // local: start an election
	MsgBeat                        // local: leader sends heartbeats
	MsgProp                        // propose entries (forwarded to the leader)
	MsgApp                         // append entries
	MsgAppResp
	MsgVote
	MsgVoteResp
	MsgPreVote
	MsgPreVoteResp
	MsgSnap // install a snapshot
	MsgHeartbeat
	MsgHeartbeatResp
	MsgTransferLeader // ask the leader to hand over to From
	MsgTimeoutNow     // transfer target: campaign at once
	MsgReadIndex
	MsgReadIndexResp
	MsgCheckQuorum // local: leader checks it still hears a quorum
	MsgUnreachable // local: the transport could not reach From
	MsgSnapStatus  // local: outcome of sending a snapshot to From
	msgTypeMax     = MsgSnapStatus
)

var msgNames = [...]string{
	MsgHup: "MsgHup", MsgBeat: "MsgBeat", MsgProp: "MsgProp", MsgApp: "MsgApp",
	MsgAppResp: "MsgAppResp", MsgVote: "MsgVote", MsgVoteResp: "MsgVoteResp",
	MsgPreVote: "MsgPreVote", MsgPreVoteResp: "MsgPreVoteResp", MsgSnap: "MsgSnap",
	MsgHeartbeat: "MsgHeartbeat", MsgHeartbeatResp: "MsgHeartbeatResp",
	MsgTransferLeader: "MsgTransferLeader", MsgTimeoutNow: "MsgTimeoutNow",
	MsgReadIndex: "MsgReadIndex", MsgReadIndexResp: "MsgReadIndexResp",
	MsgCheckQuorum: "MsgCheckQuorum", MsgUnreachable: "MsgUnreachable",
	MsgSnapStatus: "MsgSnapStatus",
}

func (t MessageType) String() string {
	if t == 0 || t > msgTypeMax {
		return fmt.Sprintf("MessageType(%d)", uint8(t))
	}
	return msgNames[t]
}

// IsLocal reports whether t is only ever stepped by the caller, never
// received from a peer.
func (t MessageType) IsLocal() bool {
	switch t {
	case MsgHup, MsgBeat, MsgCheckQuorum, MsgUnreachable, MsgSnapStatus:
		return true
	}
	return false
}

// isResponse reports message types that answer a request.
func (t MessageType) isResponse() bool {
	switch t {
	case MsgAppResp, MsgVoteResp, MsgPreVoteResp, MsgHeartbeatResp, MsgReadIndexResp:
		return true
	}
	return false
}

// Message is one protocol message.
type Message struct {
	Type     MessageType
	To       uint64
	From     uint64
	Term     uint64
	LogTerm  uint64 // term of the entry at Index (MsgApp), or of the last entry (votes)
	Index    uint64
	Entries  []Entry
	Commit   uint64
	Snapshot *Snapshot
	Reject   bool
	// RejectHint is the follower's best guess of where the logs match
	// (MsgAppResp with Reject).
	RejectHint uint64
	// Context carries opaque bytes: a ReadIndex request's ID, a heartbeat's
	// read round, the campaign kind of a transfer.
	Context []byte
}

func (m Message) String() string {
	return fmt.Sprintf("%s %x->%x t%d lt%d i%d c%d n%d rej=%v hint=%d",
		m.Type, m.From, m.To, m.Term, m.LogTerm, m.Index, m.Commit, len(m.Entries), m.Reject, m.RejectHint)
}

// ReadState answers a ReadIndex request: once the caller has applied
// Index, a read identified by RequestCtx reflects every write committed
// before the request.
type ReadState struct {
	Index      uint64
	RequestCtx []byte
}

// StateType is a member's role.
type StateType uint8

const (
	StateFollower StateType = iota
	StateCandidate
	StateLeader
	StatePreCandidate
)

func (s StateType) String() string {
	switch s {
	case StateFollower:
		return "StateFollower"
	case StateCandidate:
		return "StateCandidate"
	case StateLeader:
		return "StateLeader"
	case StatePreCandidate:
		return "StatePreCandidate"
	}
	return fmt.Sprintf("StateType(%d)", uint8(s))
}

// SoftState is volatile state worth reporting: who leads, and our role.
type SoftState struct {
	Lead  uint64
	State StateType
}
