package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/cairnkv/cairn/consensus/quorum"
	"github.com/cairnkv/cairn/consensus/tracker"
)

// Errors returned when a proposal cannot be accepted. The caller may retry
// elsewhere or later; nothing was appended.
var (
	ErrNoLeader = errors.New("consensus: no leader")
	// ErrTransferring: the leader is handing over leadership.
	ErrTransferring = errors.New("consensus: leadership transfer in progress")
	// ErrProposalDropped: refused for another reason (a removed member, a
	// conf change while another is pending, a learner not yet caught up, a
	// forwarding member that forwards nothing).
	ErrProposalDropped = errors.New("consensus: proposal dropped")
	// ErrProposalRefused: Config.CheckProposal refused an entry of the
	// proposal; nothing of it was appended.
	ErrProposalRefused = errors.New("consensus: proposal refused")
	// ErrStepLocalMsg: a local message type arrived from outside.
	ErrStepLocalMsg = errors.New("consensus: cannot step a local message")
	// ErrStepPeerNotFound: a response arrived from a member we do not track.
	ErrStepPeerNotFound = errors.New("consensus: peer not found")
)

// ReadOnlyOption selects how ReadIndex confirms leadership.
type ReadOnlyOption uint8

const (
	// ReadOnlySafe confirms leadership with a heartbeat round acknowledged
	// by a quorum before answering. No clock assumption.
	ReadOnlySafe ReadOnlyOption = iota
	// ReadOnlyLeaseBased answers from the leader's lease: with CheckQuorum
	// a leader steps down within an election timeout of losing its quorum,
	// and no other leader can be elected before followers' election
	// timeouts pass. It assumes members' clocks (tick rates) drift by less
	// than the gap between those two bounds. Refused without CheckQuorum.
	ReadOnlyLeaseBased
)

// Config configures a Node. Validate reports problems without side effects.
type Config struct {
	// ID identifies this member; never 0.
	ID uint64
	// ElectionTick is the election timeout in ticks: a follower that hears
	// no leader for a randomised [ElectionTick, 2*ElectionTick) ticks
	// campaigns. Must exceed HeartbeatTick; 10 is typical.
	ElectionTick int
	// HeartbeatTick is the leader's heartbeat interval in ticks; 1 is typical.
	HeartbeatTick int
	// Storage is the stable log; the caller writes it, the core reads it.
	Storage Storage
	// Applied is the last index the application applied before a restart;
	// entries up to it are not handed back. 0 on a fresh start.
	Applied uint64
	// MaxSizePerMsg bounds the entry data of one append (at least one
	// entry is always sent). Default 1 MiB.
	MaxSizePerMsg uint64
	// MaxCommittedSizePerReady bounds the committed entry data of one
	// Ready. Default 8 MiB.
	MaxCommittedSizePerReady uint64
	// MaxInflightMsgs bounds appends in flight to one follower. Default 256.
	MaxInflightMsgs int
	// CheckQuorum makes a leader step down when it has not heard from a
	// quorum for an election timeout, and makes followers that hear a
	// leader ignore votes (leader stickiness). Recommended on.
	CheckQuorum bool
	// PreVote runs a pre-election that does not disturb terms, so a member
	// rejoining after a partition cannot depose a working leader.
	PreVote bool
	// ReadOnlyOption selects ReadIndex's mode; see the constants.
	ReadOnlyOption ReadOnlyOption
	// DisableProposalForwarding makes followers refuse proposals instead
	// of forwarding them to the leader.
	DisableProposalForwarding bool
	// LearnerMaxLag is how many entries a learner may trail the leader's
	// last index and still be promoted. Default 1000.
	LearnerMaxLag uint64
	// Seed feeds the randomised election timeouts; the core has no other
	// source of randomness. Members should use different seeds.
	Seed uint64
	// CheckProposal, when set, is asked about every entry of a proposal
	// before a leader appends it (proposals made here and those forwarded
	// by followers alike); an error refuses the whole proposal with
	// ErrProposalRefused. It is how an application keeps out of the log
	// what its apply could not take. It must be a pure function of the
	// entry (no clock, no state that differs between members) and must
	// not block. Entries the core writes itself (a new leader's empty
	// entry) are not asked about.
	CheckProposal func(Entry) error

	// bugs injects known faults for the simulator's self-tests.
	bugs bugs
}

// bugs are test-only switches that re-introduce classic Raft bugs, so the
// simulator can prove it catches them.
type bugs struct {
	commitPriorTerm       bool // count replicas of previous-term entries for commit
	voteBeforePersist     bool // reply to a vote before persisting it
	leaseWithoutCheckQuor bool // serve lease reads without CheckQuorum
	skipProposalCheck     bool // append proposals without Config.CheckProposal
}

func (c *Config) withDefaults() Config {
	cc := *c
	if cc.MaxSizePerMsg == 0 {
		cc.MaxSizePerMsg = 1 << 20
	}
	if cc.MaxCommittedSizePerReady == 0 {
		cc.MaxCommittedSizePerReady = 8 << 20
	}
	if cc.MaxInflightMsgs == 0 {
		cc.MaxInflightMsgs = 256
	}
	if cc.LearnerMaxLag == 0 {
		cc.LearnerMaxLag = 1000
	}
	return cc
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.ID == None:
		return errors.New("consensus: ID must not be 0")
	case c.HeartbeatTick <= 0:
		return errors.New("consensus: HeartbeatTick must be positive")
	case c.ElectionTick <= c.HeartbeatTick:
		return errors.New("consensus: ElectionTick must exceed HeartbeatTick")
	case c.Storage == nil:
		return errors.New("consensus: Storage is required")
	case c.MaxInflightMsgs < 0:
		return errors.New("consensus: MaxInflightMsgs must not be negative")
	case c.ReadOnlyOption == ReadOnlyLeaseBased && !c.CheckQuorum && !c.bugs.leaseWithoutCheckQuor:
		return errors.New("consensus: lease-based reads require CheckQuorum")
	case c.ReadOnlyOption > ReadOnlyLeaseBased:
		return fmt.Errorf("consensus: unknown ReadOnlyOption %d", c.ReadOnlyOption)
	}
	return nil
}

type campaignType string

const (
	campaignPreElection campaignType = "CampaignPreElection"
	campaignElection    campaignType = "CampaignElection"
	campaignTransfer    campaignType = "CampaignTransfer"
)

type stepFunc func(r *raft, m Message) error

// raft is the protocol state of one member.
type raft struct {
	id   uint64
	term uint64
	vote uint64

	log *raftLog
	prs *tracker.Tracker

	state     StateType
	isLearner bool
	lead      uint64
	// leadTransferee is the member we are handing leadership to, if any.
	leadTransferee uint64
	// handover: our leader was removed and we are the voter left that
	// campaigns at once, once the change is applied (advance).
	handover bool
	// timeoutNowSent: we sent MsgTimeoutNow in this term.
	timeoutNowSent bool
	// leaseEnded: our log holds our own removal, not yet applied; once
	// the others apply it they may elect a leader without waiting out
	// our lease, so we serve no lease read for the rest of the term.
	leaseEnded bool
	// transferElapsed counts ticks since the transfer began.
	transferElapsed int
	// pendingConfIndex: a conf change may not be proposed until the log is
	// applied past it (one change at a time, and not before the leader has
	// applied an entry of its own term).
	pendingConfIndex uint64

	// msgs may be sent at once; msgsAfterPersist only after the caller has
	// persisted the Ready they come with (they promise durability: append
	// acknowledgements and votes).
	msgs             []Message
	msgsAfterPersist []Message
	readStates       []ReadState

	readOnly                 *readOnly
	pendingReadIndexMessages []Message

	// ticks counts every tick since start; only lease reads use it.
	ticks            uint64
	electionElapsed  int
	heartbeatElapsed int
	heartbeatTimeout int
	electionTimeout  int
	// randomizedElectionTimeout is in [electionTimeout, 2*electionTimeout).
	randomizedElectionTimeout int

	checkQuorum       bool
	preVote           bool
	disableForwarding bool
	maxMsgSize        uint64
	learnerMaxLag     uint64
	checkProposal     func(Entry) error
	rand              *rand.Rand
	bugs              bugs

	tick func()
	step stepFunc
}

func newRaft(c *Config) (*raft, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg := c.withDefaults()
	hs, cs, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, err
	}
	r := &raft{
		id:                cfg.ID,
		log:               newLog(cfg.Storage, cfg.MaxCommittedSizePerReady),
		prs:               tracker.New(cfg.MaxInflightMsgs),
		lead:              None,
		heartbeatTimeout:  cfg.HeartbeatTick,
		electionTimeout:   cfg.ElectionTick,
		checkQuorum:       cfg.CheckQuorum,
		preVote:           cfg.PreVote,
		disableForwarding: cfg.DisableProposalForwarding,
		maxMsgSize:        cfg.MaxSizePerMsg,
		learnerMaxLag:     cfg.LearnerMaxLag,
		readOnly:          newReadOnly(cfg.ReadOnlyOption),
		rand:              rand.New(rand.NewPCG(cfg.Seed, cfg.ID)),
		bugs:              cfg.bugs,
		checkProposal:     cfg.CheckProposal,
	}
	last := r.log.lastIndex()
	for _, id := range cs.Voters {
		r.prs.AddVoter(id, last+1)
	}
	for _, id := range cs.Learners {
		r.prs.AddLearner(id, last+1)
	}
	r.isLearner = r.prs.IsLearner(r.id)
	if !hs.IsEmpty() {
		if hs.Commit < r.log.committed || hs.Commit > last {
			return nil, fmt.Errorf("consensus: persisted commit %d is out of range [%d, %d]", hs.Commit, r.log.committed, last)
		}
		r.log.committed = hs.Commit
		r.term = hs.Term
		r.vote = hs.Vote
	}
	if cfg.Applied > 0 {
		if cfg.Applied > r.log.committed {
			return nil, fmt.Errorf("consensus: applied %d is past commit %d", cfg.Applied, r.log.committed)
		}
		r.log.appliedTo(max(cfg.Applied, r.log.applied))
	}
	r.becomeFollower(r.term, None)
	return r, nil
}

func (r *raft) hardState() HardState {
	return HardState{Term: r.term, Vote: r.vote, Commit: r.log.committed}
}

func (r *raft) softState() SoftState { return SoftState{Lead: r.lead, State: r.state} }

// send queues m, filling in From and (for messages that are not
// proposals, read requests or vote traffic, which set their own) Term.
func (r *raft) send(m Message) {
	if m.From == None {
		// Forwarded requests keep theirs: a transfer's From names the
		// transferee.
		m.From = r.id
	}
	switch m.Type {
	case MsgVote, MsgVoteResp, MsgPreVote, MsgPreVoteResp:
		if m.Term == 0 {
			panic(fmt.Sprintf("consensus: %s without a term", m.Type))
		}
	case MsgProp, MsgReadIndex:
		// Forwarded requests act like local messages: no term.
	default:
		m.Term = r.term
	}
	switch m.Type {
	case MsgAppResp, MsgVote, MsgPreVote, MsgPreVoteResp:
		// An append acknowledgement promises the entries are on disk; a
		// vote request follows our own persisted vote and term.
		r.msgsAfterPersist = append(r.msgsAfterPersist, m)
	case MsgVoteResp:
		// A granted vote must be on disk before anyone can count it.
		if r.bugs.voteBeforePersist {
			r.msgs = append(r.msgs, m)
		} else {
			r.msgsAfterPersist = append(r.msgsAfterPersist, m)
		}
	default:
		r.msgs = append(r.msgs, m)
	}
}

func (r *raft) promotable() bool {
	return r.prs.IsVoter(r.id) && r.log.unstable.snapshot == nil
}

func (r *raft) resetRandomizedElectionTimeout() {
	r.randomizedElectionTimeout = r.electionTimeout + r.rand.IntN(r.electionTimeout)
}

func (r *raft) pastElectionTimeout() bool {
	return r.electionElapsed >= r.randomizedElectionTimeout
}

func (r *raft) reset(term uint64) {
	if r.term != term {
		r.term = term
		r.vote = None
	}
	r.lead = None
	r.timeoutNowSent = false
	r.leaseEnded = false
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.resetRandomizedElectionTimeout()
	r.abortLeaderTransfer()
	r.prs.ResetVotes()
	last := r.log.lastIndex()
	r.prs.Visit(func(id uint64, pr *tracker.Progress) {
		*pr = tracker.Progress{Next: last + 1, Inflights: tracker.NewInflights(r.prs.MaxInflight), IsLearner: pr.IsLearner}
		if id == r.id {
			pr.Match = r.log.stableLast()
			pr.RecentActive = true
		}
	})
	r.pendingConfIndex = 0
	r.readOnly = newReadOnly(r.readOnly.option)
}

func (r *raft) becomeFollower(term, lead uint64) {
	r.step = stepFollower
	r.reset(term)
	r.tick = r.tickElection
	r.lead = lead
	r.state = StateFollower
}

func (r *raft) becomeCandidate() {
	if r.state == StateLeader {
		panic("consensus: leader cannot become candidate")
	}
	r.step = stepCandidate
	r.reset(r.term + 1)
	r.tick = r.tickElection
	r.vote = r.id
	r.state = StateCandidate
}

func (r *raft) becomePreCandidate() {
	if r.state == StateLeader {
		panic("consensus: leader cannot become pre-candidate")
	}
	// A pre-candidate changes neither term nor vote.
	r.step = stepCandidate
	r.prs.ResetVotes()
	r.tick = r.tickElection
	r.lead = None
	r.state = StatePreCandidate
}

func (r *raft) becomeLeader() {
	if r.state == StateFollower {
		panic("consensus: follower cannot become leader")
	}
	r.step = stepLeader
	r.reset(r.term)
	r.tick = r.tickHeartbeat
	r.lead = r.id
	r.state = StateLeader
	r.prs.Progress[r.id].BecomeReplicate()
	// No conf change until everything before our term is applied (and so
	// until our own first entry commits: the fix for single-server
	// membership changes across leader changes).
	r.pendingConfIndex = r.log.lastIndex()
	r.leaseEnded = r.removalPending()
	// An empty entry of our term lets us commit everything before it
	// (Raft §5.4.2) and serve reads (§6.4).
	r.appendEntry(Entry{})
}

func (r *raft) tickElection() {
	r.ticks++
	r.electionElapsed++
	if r.promotable() && r.pastElectionTimeout() {
		r.electionElapsed = 0
		_ = r.Step(Message{From: r.id, Type: MsgHup})
	}
}

func (r *raft) tickHeartbeat() {
	r.ticks++
	r.heartbeatElapsed++
	r.electionElapsed++
	if r.electionElapsed >= r.electionTimeout {
		r.electionElapsed = 0
		if r.checkQuorum {
			_ = r.Step(Message{From: r.id, Type: MsgCheckQuorum})
		}
	}
	// A transfer that did not finish within an election timeout is
	// abandoned. It has its own timer, so that transfer requests cannot
	// postpone the CheckQuorum round.
	if r.state == StateLeader && r.leadTransferee != None {
		r.transferElapsed++
		if r.transferElapsed >= r.electionTimeout {
			r.abortLeaderTransfer()
		}
	}
	if r.state != StateLeader {
		return
	}
	if r.heartbeatElapsed >= r.heartbeatTimeout {
		r.heartbeatElapsed = 0
		_ = r.Step(Message{From: r.id, Type: MsgBeat})
	}
}

func voteRespType(t MessageType) MessageType {
	if t == MsgVote {
		return MsgVoteResp
	}
	return MsgPreVoteResp
}

// Step advances the state machine with one message.
func (r *raft) Step(m Message) error {
	// Settle the term first (Raft §5.1), then dispatch.
	switch {
	case m.Term == 0:
		// Local message, proposal or read request.
	case m.Term > r.term:
		if m.Type == MsgVote || m.Type == MsgPreVote {
			force := bytes.Equal(m.Context, []byte(campaignTransfer))
			// We may have heard a leader just before we (re)started, so
			// the first election timeout after start counts as a lease
			// too; otherwise a restart would void the leader's lease.
			heard := r.lead != None || r.ticks < uint64(r.electionTimeout)
			inLease := r.checkQuorum && heard && r.electionElapsed < r.electionTimeout
			if !force && inLease {
				// We heard from a leader within the minimum election
				// timeout: ignore the vote (thesis §4.2.3), and do not
				// adopt its term.
				return nil
			}
		}
		switch {
		case m.Type == MsgPreVote:
			// A pre-vote never changes our term.
		case m.Type == MsgPreVoteResp && !m.Reject:
			// The term is taken when the pre-election is won.
		case m.Type == MsgVote:
			// Adopt the term, but keep the election timer running: only
			// hearing the leader or granting a vote resets it (Raft Figure
			// 2). Otherwise candidates with stale logs, campaigning again
			// and again, would keep the one member that can win from ever
			// timing out.
			elapsed, timeout := r.electionElapsed, r.randomizedElectionTimeout
			r.becomeFollower(m.Term, None)
			r.electionElapsed, r.randomizedElectionTimeout = elapsed, timeout
		default:
			if m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap {
				r.becomeFollower(m.Term, m.From)
			} else {
				r.becomeFollower(m.Term, None)
			}
		}
	case m.Term < r.term:
		if (r.checkQuorum || r.preVote) && (m.Type == MsgHeartbeat || m.Type == MsgApp) {
			// A stale leader, perhaps cut off by a partition. Tell it our
			// term so it steps down; otherwise, with CheckQuorum or
			// PreVote, nothing would ever raise its term.
			r.send(Message{To: m.From, Type: MsgAppResp})
		} else if m.Type == MsgPreVote {
			r.send(Message{To: m.From, Term: r.term, Type: MsgPreVoteResp, Reject: true})
		}
		return nil
	}

	switch m.Type {
	case MsgHup:
		if r.preVote {
			r.hup(campaignPreElection)
		} else {
			r.hup(campaignElection)
		}
	case MsgVote, MsgPreVote:
		// We can vote for m.From if we already did in this term, or have
		// not voted and know no leader, or this is a pre-vote for a later
		// term.
		canVote := r.vote == m.From ||
			(r.vote == None && r.lead == None) ||
			(m.Type == MsgPreVote && m.Term > r.term)
		if canVote && r.log.isUpToDate(m.Index, m.LogTerm) {
			// A pre-vote response carries the requested term so the
			// candidate recognises it; a vote response uses our term,
			// which equals it by now.
			r.send(Message{To: m.From, Term: m.Term, Type: voteRespType(m.Type)})
			if m.Type == MsgVote {
				r.electionElapsed = 0
				r.vote = m.From
			}
		} else {
			r.send(Message{To: m.From, Term: r.term, Type: voteRespType(m.Type), Reject: true})
		}
	default:
		return r.step(r, m)
	}
	return nil
}

func (r *raft) hup(t campaignType) {
	if r.state == StateLeader || !r.promotable() {
		return
	}
	if r.hasUnappliedConfChanges() {
		// Membership may change under us; wait until it is applied.
		return
	}
	r.campaign(t)
}

// removalPending reports an entry after the applied index that removes
// us.
func (r *raft) removalPending() bool {
	ents, err := r.log.slice(r.log.applied+1, r.log.lastIndex()+1, noLimit)
	if err != nil {
		return true // cannot tell: assume so (it only costs the lease)
	}
	for _, e := range ents {
		var cc ConfChange
		if e.Type == EntryConfChange && cc.Unmarshal(e.Data) == nil && cc.Type == RemoveNode && cc.NodeID == r.id {
			return true
		}
	}
	return false
}

// hasUnappliedConfChanges reports a committed but unapplied conf change.
func (r *raft) hasUnappliedConfChanges() bool {
	if r.log.applied >= r.log.committed {
		return false
	}
	ents, err := r.log.slice(r.log.applied+1, r.log.committed+1, noLimit)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.Type == EntryConfChange {
			return true
		}
	}
	return false
}

const noLimit = ^uint64(0)

func (r *raft) campaign(t campaignType) {
	var term uint64
	var voteMsg MessageType
	if t == campaignPreElection {
		r.becomePreCandidate()
		voteMsg = MsgPreVote
		term = r.term + 1 // the term we would run for
	} else {
		r.becomeCandidate()
		voteMsg = MsgVote
		term = r.term
	}
	if r.poll(r.id, true) == quorum.VoteWon {
		// A lone voter wins at once.
		if t == campaignPreElection {
			r.campaign(campaignElection)
		} else {
			r.becomeLeader()
		}
		return
	}
	for _, id := range r.prs.Voters {
		if id == r.id {
			continue
		}
		var ctx []byte
		if t == campaignTransfer {
			ctx = []byte(t)
		}
		r.send(Message{Term: term, To: id, Type: voteMsg, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm(), Context: ctx})
	}
}

func (r *raft) poll(id uint64, granted bool) quorum.VoteResult {
	r.prs.RecordVote(id, granted)
	_, _, res := r.prs.TallyVotes()
	return res
}

// appendEntry appends proposals to the leader's log. The leader's own
// progress advances only when the caller reports them persisted (Advance),
// so an entry never counts as replicated on a disk that does not hold it.
func (r *raft) appendEntry(es ...Entry) {
	li := r.log.lastIndex()
	for i := range es {
		es[i].Term = r.term
		es[i].Index = li + 1 + uint64(i)
	}
	r.log.append(es...)
}

// maybeCommit advances the commit index to what a quorum holds. Only an
// entry of the current term is committed by counting (Raft §5.4.2); the
// ones before it commit with it.
func (r *raft) maybeCommit() bool {
	mci := r.prs.Committed()
	if r.bugs.commitPriorTerm {
		if mci > r.log.committed && mci <= r.log.lastIndex() {
			r.log.commitTo(mci)
			return true
		}
		return false
	}
	return r.log.maybeCommit(mci, r.term)
}

func (r *raft) committedEntryInCurrentTerm() bool {
	return r.log.zeroTermOnOutOfBounds(r.log.term(r.log.committed)) == r.term
}

// sendAppend sends the next append (or a snapshot) to a follower.
func (r *raft) sendAppend(to uint64) { r.maybeSendAppend(to, true) }

func (r *raft) maybeSendAppend(to uint64, sendIfEmpty bool) bool {
	pr := r.prs.Progress[to]
	if pr == nil || pr.IsPaused() {
		return false
	}
	prevIndex := pr.Next - 1
	prevTerm, errt := r.log.term(prevIndex)
	var ents []Entry
	var erre error
	if pr.State != tracker.StateReplicate || !pr.Inflights.Full() {
		ents, erre = r.log.entries(pr.Next, r.maxMsgSize)
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	if errt != nil || erre != nil {
		// The entries it needs are compacted: send a snapshot, but only to
		// a follower we know is alive.
		if !pr.RecentActive {
			return false
		}
		snap, err := r.log.snapshot()
		if err != nil {
			panic(err)
		}
		if snap.IsEmpty() {
			panic("consensus: need a snapshot but storage has none")
		}
		pr.BecomeSnapshot(snap.Meta.Index)
		r.send(Message{To: to, Type: MsgSnap, Snapshot: &snap})
		return true
	}
	r.send(Message{To: to, Type: MsgApp, Index: prevIndex, LogTerm: prevTerm, Entries: ents, Commit: r.log.committed})
	if n := len(ents); n != 0 {
		switch pr.State {
		case tracker.StateReplicate:
			last := ents[n-1].Index
			pr.OptimisticUpdate(last)
			pr.Inflights.Add(last)
		case tracker.StateProbe:
			pr.ProbeSent = true
		}
	}
	return true
}

func (r *raft) sendHeartbeat(to uint64, ctx []byte) {
	// Never tell a follower to commit past what it is known to hold.
	commit := min(r.prs.Progress[to].Match, r.log.committed)
	// Index carries our tick (plus one); the answer echoes it to anchor
	// the read lease.
	r.send(Message{To: to, Type: MsgHeartbeat, Commit: commit, Index: r.ticks + 1, Context: ctx})
}

func (r *raft) bcastAppend() {
	r.prs.Visit(func(id uint64, _ *tracker.Progress) {
		if id != r.id {
			r.sendAppend(id)
		}
	})
}

func (r *raft) bcastHeartbeat() { r.bcastHeartbeatWithCtx(r.readOnly.lastPendingRequestCtx()) }

func (r *raft) bcastHeartbeatWithCtx(ctx []byte) {
	r.prs.Visit(func(id uint64, _ *tracker.Progress) {
		if id != r.id {
			r.sendHeartbeat(id, ctx)
		}
	})
}

func (r *raft) sendTimeoutNow(to uint64) {
	// The transferee may campaign whenever the message arrives, even
	// after we abandon the transfer: no lease for the rest of the term.
	r.timeoutNowSent = true
	r.send(Message{To: to, Type: MsgTimeoutNow})
}

func (r *raft) abortLeaderTransfer() { r.leadTransferee = None }

func stepLeader(r *raft, m Message) error {
	switch m.Type {
	case MsgBeat:
		r.bcastHeartbeat()
		return nil
	case MsgCheckQuorum:
		if !r.prs.QuorumActive() {
			r.becomeFollower(r.term, None)
		}
		r.prs.Visit(func(id uint64, pr *tracker.Progress) {
			if id != r.id {
				pr.RecentActive = false
			}
		})
		return nil
	case MsgProp:
		return r.propose(m)
	case MsgReadIndex:
		// Serve reads only once an entry of our term is committed: until
		// then our commit index may lag the true one (§6.4). This holds
		// for a lone voter too: it may have just taken over from a leader
		// whose last commits it has not learned.
		if !r.committedEntryInCurrentTerm() {
			r.pendingReadIndexMessages = append(r.pendingReadIndexMessages, m)
			return nil
		}
		r.readIndex(m)
		return nil
	}

	pr := r.prs.Progress[m.From]
	if pr == nil {
		return ErrStepPeerNotFound
	}
	switch m.Type {
	case MsgAppResp:
		pr.RecentActive = true
		if m.Reject {
			next := m.RejectHint
			if m.LogTerm > 0 {
				// Skip every entry of a term the follower cannot match.
				next, _ = r.log.findConflictByTerm(m.RejectHint, m.LogTerm)
			}
			if pr.MaybeDecrTo(m.Index, next) {
				if pr.State == tracker.StateReplicate {
					pr.BecomeProbe()
				}
				r.sendAppend(m.From)
			}
			return nil
		}
		oldPaused := pr.IsPaused()
		if !pr.MaybeUpdate(m.Index) {
			return nil
		}
		switch {
		case pr.State == tracker.StateProbe:
			pr.BecomeReplicate()
		case pr.State == tracker.StateSnapshot && pr.Match >= pr.PendingSnapshot:
			pr.BecomeProbe()
			pr.BecomeReplicate()
		case pr.State == tracker.StateReplicate:
			pr.Inflights.FreeLE(m.Index)
		}
		if r.maybeCommit() {
			r.releasePendingReadIndexMessages()
			r.bcastAppend()
		} else if oldPaused {
			r.sendAppend(m.From)
		}
		for r.maybeSendAppend(m.From, false) {
		}
		if m.From == r.leadTransferee && pr.Match == r.log.lastIndex() {
			r.sendTimeoutNow(m.From)
		}
	case MsgHeartbeatResp:
		pr.RecentActive = true
		pr.ProbeSent = false
		if m.Index <= r.ticks+1 {
			pr.LeaseTick = max(pr.LeaseTick, m.Index)
		}
		if pr.State == tracker.StateReplicate && pr.Inflights.Full() {
			pr.Inflights.FreeFirstOne()
		}
		if pr.Match < r.log.lastIndex() {
			r.sendAppend(m.From)
		}
		if len(m.Context) == 0 {
			return nil
		}
		if !r.readOnly.recvAck(m.From, m.Context, r.prs.Voters) {
			return nil
		}
		for _, rs := range r.readOnly.advance(m.Context) {
			r.respondRead(rs.req, rs.index)
		}
	case MsgSnapStatus:
		if pr.State != tracker.StateSnapshot {
			return nil
		}
		if m.Reject {
			pr.PendingSnapshot = 0
		}
		// Probe from the snapshot onwards, after the next heartbeat answer.
		pr.BecomeProbe()
		pr.ProbeSent = true
	case MsgUnreachable:
		if pr.State == tracker.StateReplicate {
			pr.BecomeProbe()
		}
	case MsgTransferLeader:
		if pr.IsLearner {
			return nil
		}
		to := m.From
		if r.leadTransferee != None {
			if r.leadTransferee == to {
				return nil
			}
			r.abortLeaderTransfer()
		}
		if to == r.id {
			return nil
		}
		r.transferElapsed = 0
		r.leadTransferee = to
		if pr.Match == r.log.lastIndex() {
			r.sendTimeoutNow(to)
		} else {
			r.sendAppend(to)
		}
	}
	return nil
}

// propose appends a leader's proposals, checking conf changes.
func (r *raft) propose(m Message) error {
	if len(m.Entries) == 0 {
		return fmt.Errorf("consensus: empty proposal")
	}
	if r.prs.Progress[r.id] == nil {
		return ErrProposalDropped // we were removed
	}
	if r.leaseEnded {
		// Our own removal is in our log: once it is applied we step down,
		// and an entry appended after it that the voters left did not
		// get would make our log longer than theirs, so that we refused
		// our vote to each of them while they still count us (they have
		// not applied the removal), and we cannot campaign: with one
		// voter left, no leader ever again.
		return fmt.Errorf("%w: this leader's removal is in its log", ErrProposalDropped)
	}
	if r.leadTransferee != None {
		return ErrTransferring
	}
	if r.checkProposal != nil && !r.bugs.skipProposalCheck {
		for i, e := range m.Entries {
			if err := r.checkProposal(e); err != nil {
				return fmt.Errorf("%w: entry %d of %d: %v", ErrProposalRefused, i+1, len(m.Entries), err)
			}
		}
	}
	for i, e := range m.Entries {
		if e.Type != EntryConfChange {
			continue
		}
		var cc ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return fmt.Errorf("consensus: %w", err)
		}
		if err := r.checkConfChange(cc); err != nil {
			return err
		}
		r.pendingConfIndex = r.log.lastIndex() + uint64(i) + 1
		if cc.Type == RemoveNode && cc.NodeID == r.id {
			if i < len(m.Entries)-1 {
				return fmt.Errorf("%w: entries after this leader's removal", ErrProposalDropped)
			}
			r.leaseEnded = true
		}
	}
	es := make([]Entry, len(m.Entries))
	copy(es, m.Entries)
	r.appendEntry(es...)
	r.bcastAppend()
	return nil
}

// ErrConfChangeRefused wraps every reason a conf change is refused.
var ErrConfChangeRefused = errors.New("consensus: conf change refused")

func (r *raft) checkConfChange(cc ConfChange) error {
	if r.pendingConfIndex > r.log.applied {
		return fmt.Errorf("%w: another change is pending (index %d, applied %d)", ErrConfChangeRefused, r.pendingConfIndex, r.log.applied)
	}
	if cc.NodeID == None {
		return fmt.Errorf("%w: node ID 0", ErrConfChangeRefused)
	}
	switch cc.Type {
	case AddVoter:
		if pr := r.prs.Progress[cc.NodeID]; pr != nil && pr.IsLearner {
			if lag := r.log.lastIndex() - min(pr.Match, r.log.lastIndex()); lag > r.learnerMaxLag {
				return fmt.Errorf("%w: learner %x trails by %d entries", ErrConfChangeRefused, cc.NodeID, lag)
			}
		}
	case AddLearner:
		if r.prs.IsVoter(cc.NodeID) {
			return fmt.Errorf("%w: %x is a voter; demotion is not supported", ErrConfChangeRefused, cc.NodeID)
		}
	case RemoveNode:
		if r.prs.IsVoter(cc.NodeID) && len(r.prs.Voters) == 1 {
			return fmt.Errorf("%w: cannot remove the last voter", ErrConfChangeRefused)
		}
	default:
		return fmt.Errorf("%w: unknown type %v", ErrConfChangeRefused, cc.Type)
	}
	return nil
}

// readIndex starts a ReadIndex round for m at the current commit index.
func (r *raft) readIndex(m Message) {
	if r.readOnly.option == ReadOnlyLeaseBased && (r.bugs.leaseWithoutCheckQuor || r.leaseValid()) {
		r.respondRead(m, r.log.committed)
		return
	}
	// Confirm leadership with a heartbeat round: the read may be answered
	// once a quorum (our own acknowledgement included) has answered it.
	r.readOnly.addRequest(r.log.committed, m)
	if r.readOnly.recvAck(r.id, m.Context, r.prs.Voters) {
		for _, rs := range r.readOnly.advance(m.Context) {
			r.respondRead(rs.req, rs.index)
		}
		return
	}
	r.bcastHeartbeatWithCtx(m.Context)
}

// leaseValid reports whether the leader may answer a read from its lease.
// A quorum answered a heartbeat sent at tick t; each of those followers
// ignores votes for an election timeout after hearing it (CheckQuorum), so
// no other leader can exist before t + electionTimeout on their clocks. We
// use only half of that, which keeps the lease sound as long as no
// member's ticks run more than twice as fast as ours. A transfer in
// progress ends the lease: the transferee campaigns at once.
func (r *raft) leaseValid() bool {
	if r.leadTransferee != None || r.timeoutNowSent || r.leaseEnded {
		return false
	}
	now := r.ticks + 1
	anchor := quorum.CommittedIndex(r.prs.Voters, func(id uint64) (uint64, bool) {
		if id == r.id {
			return now, true
		}
		pr := r.prs.Progress[id]
		if pr == nil {
			return 0, false
		}
		return pr.LeaseTick, true
	})
	return anchor > 0 && now-anchor < uint64(r.electionTimeout/2)
}

// respondRead answers a read request, locally or to the follower that
// forwarded it.
func (r *raft) respondRead(req Message, index uint64) {
	if req.From == None || req.From == r.id {
		r.readStates = append(r.readStates, ReadState{Index: index, RequestCtx: req.Context})
		return
	}
	r.send(Message{To: req.From, Type: MsgReadIndexResp, Index: index, Context: req.Context})
}

func (r *raft) releasePendingReadIndexMessages() {
	if len(r.pendingReadIndexMessages) == 0 || !r.committedEntryInCurrentTerm() {
		return
	}
	msgs := r.pendingReadIndexMessages
	r.pendingReadIndexMessages = nil
	for _, m := range msgs {
		r.readIndex(m)
	}
}

func stepCandidate(r *raft, m Message) error {
	// Only answers to our own kind of election count.
	myVoteResp := MsgPreVoteResp
	if r.state == StateCandidate {
		myVoteResp = MsgVoteResp
	}
	switch m.Type {
	case MsgProp:
		return ErrNoLeader
	case MsgApp:
		r.becomeFollower(m.Term, m.From)
		r.handleAppendEntries(m)
	case MsgHeartbeat:
		r.becomeFollower(m.Term, m.From)
		r.handleHeartbeat(m)
	case MsgSnap:
		r.becomeFollower(m.Term, m.From)
		r.handleSnapshot(m)
	case myVoteResp:
		switch r.poll(m.From, !m.Reject) {
		case quorum.VoteWon:
			if r.state == StatePreCandidate {
				r.campaign(campaignElection)
			} else {
				r.becomeLeader()
				r.bcastAppend()
			}
		case quorum.VoteLost:
			// A pre-candidate that lost keeps its term; a candidate keeps
			// the term it raised.
			r.becomeFollower(r.term, None)
		}
	}
	return nil
}

func stepFollower(r *raft, m Message) error {
	switch m.Type {
	case MsgProp:
		if r.lead == None {
			return ErrNoLeader
		}
		if r.disableForwarding {
			return ErrProposalDropped
		}
		m.To = r.lead
		r.send(m)
	case MsgApp:
		r.electionElapsed = 0
		r.lead = m.From
		r.handleAppendEntries(m)
	case MsgHeartbeat:
		r.electionElapsed = 0
		r.lead = m.From
		r.handleHeartbeat(m)
	case MsgSnap:
		r.electionElapsed = 0
		r.lead = m.From
		r.handleSnapshot(m)
	case MsgTransferLeader:
		if r.lead == None {
			return ErrNoLeader
		}
		m.To = r.lead
		r.send(m)
	case MsgTimeoutNow:
		// A transfer never uses the pre-vote: the leader asked for it.
		r.hup(campaignTransfer)
	case MsgReadIndex:
		if r.lead == None {
			return ErrNoLeader
		}
		if m.From != r.id {
			// Forwarding someone else's read would put our ID on it and
			// send the answer to us; its requester retries instead.
			return ErrProposalDropped
		}
		m.To = r.lead
		r.send(m)
	case MsgReadIndexResp:
		r.readStates = append(r.readStates, ReadState{Index: m.Index, RequestCtx: m.Context})
	}
	return nil
}

func (r *raft) handleAppendEntries(m Message) {
	if m.Index < r.log.committed {
		r.send(Message{To: m.From, Type: MsgAppResp, Index: r.log.committed})
		return
	}
	if last, ok := r.log.maybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries); ok {
		r.send(Message{To: m.From, Type: MsgAppResp, Index: last})
		return
	}
	// Rejected: hint the largest index whose term could match, so the
	// leader skips a whole term at a time.
	hintIndex := min(m.Index, r.log.lastIndex())
	hintIndex, hintTerm := r.log.findConflictByTerm(hintIndex, m.LogTerm)
	r.send(Message{To: m.From, Type: MsgAppResp, Index: m.Index, Reject: true, RejectHint: hintIndex, LogTerm: hintTerm})
}

func (r *raft) handleHeartbeat(m Message) {
	r.log.commitTo(min(m.Commit, r.log.lastIndex()))
	r.send(Message{To: m.From, Type: MsgHeartbeatResp, Index: m.Index, Context: m.Context})
}

func (r *raft) handleSnapshot(m Message) {
	if m.Snapshot == nil {
		return
	}
	if r.restore(*m.Snapshot) {
		r.send(Message{To: m.From, Type: MsgAppResp, Index: r.log.lastIndex()})
	} else {
		r.send(Message{To: m.From, Type: MsgAppResp, Index: r.log.committed})
	}
}

// restore installs a snapshot from the leader; false if it is not needed.
func (r *raft) restore(s Snapshot) bool {
	if s.Meta.Index <= r.log.committed {
		return false
	}
	cs := s.Meta.ConfState
	member := false
	for _, id := range append(append([]uint64(nil), cs.Voters...), cs.Learners...) {
		if id == r.id {
			member = true
		}
	}
	if !member {
		// A snapshot that does not include us is not ours to take.
		return false
	}
	if r.log.matchTerm(s.Meta.Index, s.Meta.Term) {
		// We already have the entries: just commit them.
		r.log.commitTo(s.Meta.Index)
		return false
	}
	r.log.restore(s)
	r.prs = tracker.New(r.prs.MaxInflight)
	last := r.log.lastIndex()
	for _, id := range cs.Voters {
		r.prs.AddVoter(id, last+1)
	}
	for _, id := range cs.Learners {
		r.prs.AddLearner(id, last+1)
	}
	r.isLearner = r.prs.IsLearner(r.id)
	return true
}

// applyConfChange changes the membership once the caller applies a
// committed conf change entry.
func (r *raft) applyConfChange(cc ConfChange) ConfState {
	next := r.log.lastIndex() + 1
	switch cc.Type {
	case AddVoter:
		r.prs.AddVoter(cc.NodeID, next)
	case AddLearner:
		if !r.prs.IsVoter(cc.NodeID) {
			r.prs.AddLearner(cc.NodeID, next)
		}
	case RemoveNode:
		r.prs.Remove(cc.NodeID)
	}
	r.isLearner = r.prs.IsLearner(r.id)
	if r.state != StateLeader && cc.Type == RemoveNode && cc.NodeID == r.lead && r.lead != None {
		// Our leader was removed: it steps down when it applies the
		// change, and drops what it is sent. Forget it, so proposals wait
		// for the next leader instead of being forwarded to it, and let
		// the lowest-ID voter left campaign as soon as the change is
		// applied, as a leadership transfer would, instead of everyone
		// waiting out an election timeout. (The removed leader cannot
		// hand over itself: the others refuse its messages once they
		// have applied its removal.) If that voter lacks entries the
		// others have, they refuse it and an ordinary election follows.
		// The removed leader's lease is not counted on: it ended when the
		// removal entered its log (leaseEnded).
		r.lead = None
		r.handover = len(r.prs.Voters) > 0 && r.prs.Voters[0] == r.id
		if len(r.prs.Voters) > 0 && !r.handover {
			// That voter may not have learnt yet that the removal is
			// committed (the removed leader stopped telling anyone once
			// it applied it; the one append that told it may be lost or
			// overtaken): tell it to campaign, as a transfer does.
			r.send(Message{To: r.prs.Voters[0], Type: MsgTimeoutNow})
		}
	}
	if r.state == StateLeader {
		if !r.prs.IsVoter(r.id) {
			// We were removed (or are no longer a voter): step down; the
			// others elect a leader among themselves, the lowest-ID voter
			// left at once (above). Tell it to campaign now: it may not
			// have learnt that the removal is committed, and once we
			// have stepped down nobody tells it.
			if len(r.prs.Voters) > 0 {
				r.send(Message{To: r.prs.Voters[0], Type: MsgTimeoutNow})
			}
			r.becomeFollower(r.term, None)
		} else {
			if r.leadTransferee != None && !r.prs.IsVoter(r.leadTransferee) {
				r.abortLeaderTransfer()
			}
			if pr := r.prs.Progress[r.id]; pr != nil && pr.State != tracker.StateReplicate {
				pr.BecomeReplicate()
			}
			// The quorum changed: maybe more is committed now.
			if r.maybeCommit() {
				r.bcastAppend()
			} else {
				r.prs.Visit(func(id uint64, _ *tracker.Progress) {
					if id != r.id {
						r.maybeSendAppend(id, false)
					}
				})
			}
		}
	}
	return ConfState{Voters: append([]uint64(nil), r.prs.Voters...), Learners: append([]uint64(nil), r.prs.Learners...)}
}

// advance is called once the caller has persisted a Ready's entries (up
// to stableIndex with stableTerm) and applied its committed entries (up to
// applied).
func (r *raft) advance(stableIndex, stableTerm, snapIndex, applied uint64) {
	if snapIndex > 0 {
		r.log.unstable.stableSnapTo(snapIndex)
	}
	if stableIndex > 0 {
		r.log.unstable.stableTo(stableIndex, stableTerm)
	}
	if applied > 0 {
		r.log.appliedTo(applied)
	}
	if r.handover && !r.hasUnappliedConfChanges() {
		r.handover = false
		if r.state == StateFollower && r.lead == None {
			r.hup(campaignTransfer)
		}
	}
	if r.state == StateLeader {
		// Our own log counts towards commit only once it is on disk.
		if pr := r.prs.Progress[r.id]; pr != nil && pr.MaybeUpdate(r.log.stableLast()) {
			if r.maybeCommit() {
				r.releasePendingReadIndexMessages()
				r.bcastAppend()
			}
		}
	}
}
