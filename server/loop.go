package server

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/peer"
)

// The run loop is a driver and a shell. The driver (handle, after) makes
// every decision of the member from its inputs alone: an event, and the
// time carried by it, which is the only clock a decision reads (m.now).
// The shell (run) turns timers, channels and goroutines into those events
// and does nothing else; a simulator can feed the driver events itself.

// eventKind is what happened.
type eventKind uint8

const (
	evTick          eventKind = iota + 1 // a heartbeat interval passed
	evExpiry                             // time to look for expired TTLs
	evPropose                            // proposals (everything that piled up: group commit)
	evRead                               // a linearizable read waits
	evMessages                           // messages from peers
	evSave                               // write everything applied, then answer
	evSnapshot                           // a snapshot received from the leader
	evReport                             // the transport's word about a peer
	evFlushed                            // the persister wrote applied state up to an index
	evPersistFailed                      // the persister failed: the member must stop
)

// event is one input of the driver.
type event struct {
	kind  eventKind
	now   time.Time // when it happened
	props []proposal
	read  chan struct{}
	msgs  []consensus.Message
	reply chan error
	snap  incomingSnapshot
	rep   report
	index uint64
	err   error
}

// handle is the driver's step for one event; false means the member
// failed and the loop must end. after then carries out what the event
// made ready.
func (m *Member) handle(ev event) bool {
	m.now = ev.now
	switch ev.kind {
	case evTick:
		m.node.Tick()
		if len(m.held) > 0 && m.lead.Load() != 0 {
			m.releaseHeld() // a leader that was unreachable may be back
		}
		m.tickReads()
		m.maybePromote()
		m.tickRemoved()
	case evExpiry:
		m.maybeExpire()
	case evPropose:
		for _, p := range ev.props {
			m.propose(p)
		}
	case evRead:
		m.reads = append(m.reads, ev.read)
		m.startRead()
	case evMessages:
		for _, msg := range ev.msgs {
			if m.removedTicks > 0 && slices.Contains(m.conf.Voters, msg.From) {
				m.removedQuiet = 0 // a voter left may still need us
			}
			_ = m.node.Step(msg)
		}
	case evSave:
		m.maybeCapture(true)
		err := m.syncPersister()
		ev.reply <- err
		if err != nil {
			m.fail(err)
			return false
		}
	case evSnapshot:
		if m.incoming != nil {
			_ = m.incoming.file.Discard()
		}
		in := ev.snap
		m.incoming = &in
		_ = m.node.Step(in.msg)
	case evReport:
		switch {
		case ev.rep.removed:
			m.refusedAsRemoved(ev.rep.id)
		case ev.rep.snapshot:
			m.node.ReportSnapshot(ev.rep.id, ev.rep.failed)
		default:
			m.node.ReportUnreachable(ev.rep.id)
		}
	case evFlushed:
		m.flushed(ev.index)
	case evPersistFailed:
		m.fail(ev.err)
		return false
	}
	return true
}

// after carries out what the last event made ready: persist, send, apply
// (drain), a lone voter's campaign, and a batch of applied state for the
// persister; false if the member failed.
func (m *Member) after() bool {
	if !m.drain() {
		return false
	}
	m.campaignAlone()
	m.maybeCapture(false)
	return true
}

// run is the shell: it waits for the next input and hands it to the
// driver, on this one goroutine.
func (m *Member) run() {
	defer m.shutdown()
	tick := time.NewTicker(m.cfg.HeartbeatInterval)
	defer tick.Stop()
	expiry := time.NewTicker(SyncInterval)
	defer expiry.Stop()
	stopc := m.stopc
	var handoverDone <-chan time.Time
	for {
		var ev event
		select {
		case <-stopc:
			// A leader hands over before stopping, so that the others
			// need not wait out an election timeout.
			m.now = m.cfg.Now()
			if !m.beginStop() {
				return
			}
			stopc = nil
			handoverDone = time.After(m.cfg.electionTimeout())
			continue
		case <-handoverDone:
			return
		case <-tick.C:
			ev = event{kind: evTick}
		case <-expiry.C:
			ev = event{kind: evExpiry}
		case p := <-m.propc:
			// Everything that piled up during the last fsync goes into
			// the next one (group commit).
			ev = event{kind: evPropose, props: []proposal{p}}
			for more := true; more; {
				select {
				case p := <-m.propc:
					ev.props = append(ev.props, p)
				default:
					more = false
				}
			}
		case r := <-m.readc:
			ev = event{kind: evRead, read: r}
		case msg := <-m.recvc:
			ev = event{kind: evMessages, msgs: []consensus.Message{msg}}
			for more := true; more; {
				select {
				case msg := <-m.recvc:
					ev.msgs = append(ev.msgs, msg)
				default:
					more = false
				}
			}
		case reply := <-m.savec:
			ev = event{kind: evSave, reply: reply}
		case in := <-m.snapc:
			ev = event{kind: evSnapshot, snap: in}
		case r := <-m.reportc:
			ev = event{kind: evReport, rep: r}
		case idx := <-m.flushedc:
			ev = event{kind: evFlushed, index: idx}
		case err := <-m.persisterErr:
			ev = event{kind: evPersistFailed, err: err}
		}
		ev.now = m.cfg.Now()
		if !m.handle(ev) || !m.after() {
			return
		}
		if stopc == nil && !m.isLeader {
			return // the handover is done
		}
	}
}

// beginStop is the driver's part of a stop: a leader hands over to the
// most caught-up other voter. True means it did, and the loop must go on
// (until this member no longer leads, or an election timeout) for the
// handover to complete; false, that the member can shut down at once.
func (m *Member) beginStop() bool {
	return m.Err() == nil && m.handOver()
}

// handOver asks the most caught-up other voter to take over leadership;
// false if there is nobody to hand over to.
func (m *Member) handOver() bool {
	if !m.isLeader || m.transport == nil {
		return false
	}
	st := m.node.Status()
	var best uint64
	var bestMatch uint64
	for _, id := range st.Config.Voters {
		if pr, ok := st.Progress[id]; ok && id != m.cfg.ID && (best == 0 || pr.Match > bestMatch) {
			best, bestMatch = id, pr.Match
		}
	}
	if best == 0 {
		return false
	}
	m.log.Info().Str("to", fmt.Sprintf("%x", best)).Msg("handing over leadership before stopping")
	_ = m.node.TransferLeadership(best)
	return m.drain()
}

// drain carries out every Ready: persist, send, apply, advance.
func (m *Member) drain() bool {
	for m.node.HasReady() {
		rd := m.node.Ready()
		if rd.SoftState != nil {
			prevLead := m.lead.Swap(rd.SoftState.Lead)
			m.state.Store(uint32(rd.SoftState.State))
			if rd.SoftState.Lead != prevLead {
				m.leadSince.Store(m.now.UnixNano())
			}
			leader := rd.SoftState.State == consensus.StateLeader
			if leader && !m.isLeader {
				m.followers.reset()
			}
			if leader != m.isLeader {
				m.log.Info().Bool("leader", leader).Str("lead", fmt.Sprintf("%x", rd.SoftState.Lead)).Msg("leadership changed")
				// An expiry proposed in an earlier term may never be
				// applied (a new leader can drop it): waiting for it
				// would stop every TTL while we lead.
				if !m.cfg.unsafeKeepExpiry {
					m.expiryID = 0
				}
			}
			if rd.SoftState.Lead != 0 && rd.SoftState.Lead != prevLead {
				m.metrics.leaderChanges.Inc()
			}
			m.metrics.hasLeader.Set(b2f(rd.SoftState.Lead != 0))
			m.metrics.isLeader.Set(b2f(leader))
			m.isLeader = leader
			if rd.SoftState.Lead != 0 {
				defer m.releaseHeld()
			}
		}
		// Messages that promise nothing go out while we write; the rest
		// only once what they promise is on disk.
		m.send(rd.Messages)
		if !rd.Snapshot.IsEmpty() {
			if err := m.installSnapshot(rd.Snapshot); err != nil {
				m.fail(err)
				return false
			}
		}
		if !m.persist(rd) {
			return false
		}
		if err := m.rs.Append(rd.Entries); err != nil {
			m.fail(err)
			return false
		}
		m.noteIndexes(rd.Entries)
		if !rd.HardState.IsEmpty() {
			m.rs.SetHardState(rd.HardState)
			m.committed.Store(rd.HardState.Commit)
			m.metrics.committed.Set(float64(rd.HardState.Commit))
			m.term.Store(rd.HardState.Term)
		}
		m.send(rd.MessagesAfterPersist)
		for _, e := range rd.CommittedEntries {
			m.apply(e)
		}
		for _, rs := range rd.ReadStates {
			m.readState(rs)
		}
		m.node.Advance(rd)
		m.releaseReads()
	}
	return true
}

// persist writes a Ready's entries and hard state to the WAL; false if
// the member failed. Entries, a term or a vote (rd.MustSync) are fsynced
// before anything that follows them. A hard state whose only change is
// the commit index is written and not fsynced (the next fsync takes it
// along), as etcd does: Raft does not need its commit index durable, and
// the applied state may run ahead of the WAL's durable commit index
// because every applied entry is in the WAL, fsynced, before it is
// applied, and recover takes the commit index as at least the applied
// index.
func (m *Member) persist(rd consensus.Ready) bool {
	if !rd.MustSync {
		if err := m.wal.SaveCommit(rd.HardState); err != nil {
			m.fail(err)
			return false
		}
		return true
	}
	start := time.Now()
	if err := m.wal.Save(rd.HardState, rd.Entries); err != nil {
		m.fail(err)
		return false
	}
	if len(rd.Entries) > 0 || !rd.HardState.IsEmpty() {
		took := time.Since(start)
		m.metrics.walFsync.Observe(took.Seconds())
		if took > time.Second {
			m.log.Warn().Dur("took", took).Int("entries", len(rd.Entries)).Msg("slow WAL fsync")
		}
	}
	return true
}

// campaignAlone: a lone voter need not wait out an election timeout to
// lead; it campaigns as soon as it knows it is alone (once per start).
func (m *Member) campaignAlone() {
	if m.campaigned || m.lead.Load() != 0 || len(m.conf.Voters) != 1 || m.conf.Voters[0] != m.cfg.ID {
		return
	}
	m.campaigned = true
	_ = m.node.Campaign()
	m.drain()
}

func (m *Member) send(msgs []consensus.Message) {
	if m.transport != nil && len(msgs) > 0 {
		now := m.now
		if m.isLeader {
			m.followers.sending(msgs, now)
		}
		for i := range msgs {
			if msgs[i].Type == consensus.MsgApp {
				m.sendApp.Add(1)
				m.sendRate.add(now, peer.Size(&msgs[i]))
			}
		}
		m.transport.Send(msgs)
	}
}

// isPeer tells the transport whom to accept messages from: the members of
// the member list as last applied here; until this member has applied its
// own addition (a new cluster's bootstrap entries, or a joining member's
// add), the members it was started with; and members it has not applied
// the addition of yet that a member it knows lists (see askAbout). It asks
// about any other sender that is not known removed.
func (m *Member) isPeer(id uint64) bool {
	g := m.view.Load()
	if _, ok := g.members[id]; ok {
		return true
	}
	if g.removed[id] {
		return false
	}
	if _, joined := g.members[m.cfg.ID]; !joined {
		for _, mi := range m.cfg.InitialMembers {
			if mi.ID == id {
				return true
			}
		}
	}
	if m.isVouched(id) {
		return true
	}
	m.askAbout(id)
	return false
}

// receive takes a message from the transport; when the loop is too far
// behind it is dropped (Raft recovers from lost messages).
func (m *Member) receive(msg consensus.Message) {
	now := time.Now()
	if msg.Type == consensus.MsgApp {
		m.recvApp.Add(1)
		m.recvRate.add(now, peer.Size(&msg))
		m.ready.learn(msg)
	}
	m.followers.received(msg, now)
	select {
	case m.recvc <- msg:
	default:
	}
}

func (m *Member) tellReport(r report) {
	select {
	case m.reportc <- r:
	default:
	}
}

// shutdown is the end of the loop: closeDown, with the persister
// goroutine writing every captured batch first.
func (m *Member) shutdown() {
	defer close(m.done)
	m.closeDown(func() {
		close(m.persistc)
		<-m.persistDone // every captured batch is written (or the writer failed)
	})
}

// closeDown ends the member: the transport stops, the applied state is
// captured (and, through drainPersister, written), every proposal still
// waiting is answered ErrStopped, and the files are closed. The simulator
// calls it itself, with no persister to drain (its members write
// synchronously).
//
// A proposal to remove this member is answered success instead when the
// member stops because it was removed: a member asked to remove itself
// may never apply its removal (the leader stops replicating to it once
// it has) and learn of it from a peer's refusal; what the client asked
// for is done.
func (m *Member) closeDown(drainPersister func()) {
	if m.incoming != nil {
		_ = m.incoming.file.Discard()
	}
	if m.transport != nil {
		m.transport.Stop()
	}
	if m.Err() == nil {
		m.maybeCapture(true)
	}
	if drainPersister != nil {
		drainPersister()
	}
	var errs []error
	m.waitMu.Lock()
	removed := errors.Is(m.Err(), ErrRemoved)
	for id, ch := range m.waiters {
		if m.cfg.unsafeEmptyStopAnswer || (removed && id == m.selfRemoval) {
			ch <- result{}
		} else {
			ch <- result{err: ErrStopped}
		}
		delete(m.waiters, id)
	}
	m.waitMu.Unlock()
	errs = append(errs, m.wal.Close(), m.store.Close())
	if err := errors.Join(errs...); err != nil && m.Err() == nil {
		m.log.Error().Err(err).Msg("closing")
	}
}
