// Package consensus is Cairn's Raft core: a pure, deterministic state
// machine. It has no goroutines, does no I/O, reads no clock, takes no
// locks and draws randomness only from Config.Seed. The caller (the
// member's run loop, or the simulator in the tests) owns all of that.
//
// Input: Tick (logical time), Step (a peer's message), Propose,
// ProposeConfChange, ReadIndex, TransferLeadership. Output: a Ready —
// entries and hard state to persist, a snapshot to install, committed
// entries to apply, read states, and messages to send — acknowledged with
// Advance. See Ready for the order of the caller's duties.
//
// Durability rules, kept here so callers cannot get them wrong:
//   - Messages that promise durability (append acknowledgements, votes,
//     vote requests following our own vote) are in Ready.MessagesAfterPersist
//     and must not be sent before the Ready's entries and hard state are
//     persisted. Everything in Ready.Messages may go at once.
//   - A leader's own log counts towards the commit quorum only after
//     Advance reports it persisted.
//
// Protocol features: leader election with randomised timeouts, PreVote
// (§9.6 of Ongaro's thesis), CheckQuorum with leader stickiness (§4.2.3,
// §6.2), log replication with per-follower probe/replicate/snapshot states,
// a bounded inflight window and term-skipping backtracking, commit only by
// counting current-term entries (§5.4.2 of the Raft paper), ReadIndex
// (§6.4) and lease reads (§6.4.1; refused without CheckQuorum),
// snapshots for followers whose entries were compacted, single-server
// membership changes applied when committed, with learners that must catch
// up before promotion (§4.1-4.2), and leadership transfer (§3.10).
//
// Membership changes are one at a time: a leader refuses a conf change
// while another is not yet applied, and until it has applied everything
// before its own term's first entry — the fix for the single-server change
// bug found after the thesis. A leader removed from the membership steps
// down when it applies its removal, and serves no lease read and takes no
// proposal once the removal is in its log (an entry after it that the
// voters left lacked would make it refuse them its vote while they still
// count it); the others forget it when they apply the change,
// and the lowest-ID voter left campaigns at once (transfer-style). As it
// may not have learnt that the removal committed, the removed leader (as
// it steps down) and every other member (as it applies the change) send
// it MsgTimeoutNow.
//
// The application keeps out of the log what it could not apply with
// Config.CheckProposal: a leader asks it about every entry of a proposal,
// made locally or forwarded, and refuses the whole proposal
// (ErrProposalRefused) if it objects. The simulator proposes such poison
// and checks that none is ever applied.
//
// The sub-packages quorum (majority arithmetic) and tracker (per-follower
// progress) are pure and tested alone. The simulator in this package's
// tests runs whole clusters in virtual time under faults.
package consensus
