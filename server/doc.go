// Package server runs a Cairn member.
//
// Member owns the consensus node and its run loop on one goroutine: tick,
// step, carry out each Ready (persist entries and hard state to the WAL
// with one fsync for everything that piled up, none when only the commit
// index moved: loop.go persist; apply committed entries to the store,
// answer the proposals' waiters, serve read states), advance.
// Applied state is mirrored into bbolt in batches bounded by time and
// count, written by a second goroutine so apply never waits on disk; the
// bbolt file, with the term and membership of the index it covers, is the
// member's Raft snapshot, so a restart loads it and replays only the WAL
// entries after it (a WAL that ends before it, a snapshot install the WAL
// did not record, gets the snapshot marker then). A failed fsync stops
// the member: nothing more is acknowledged.
//
// Reads are linearizable by default: concurrent reads share one ReadIndex
// round and are answered once the local applied index reaches it (read.go).
// A read that cannot be confirmed says so in a read's words: ErrReadNoLeader
// once the member has known no leader for about an election timeout while
// it waits, a *ReadTimeoutError (ErrReadTimeout) when a known leader does
// not confirm it within the request timeout. The leader proposes expiry (store.OpExpire with its clock) once a deadline
// passes. A proposal that times out after it was proposed answers
// ErrTimeout (a *TimeoutError naming the log index it was given, when this
// member saw it appended): its outcome is unknown.
//
// Apply is total (entry.go): an entry that does not decode, is of a kind
// this version does not know, or asks for what the store cannot hold
// (over store's hard limits) is applied as a refusal, the same on every
// member: the state does not change and its waiter, if the entry names
// one, gets the reason (ErrBadEntry, or the store's error 124). Such an
// entry only reaches the log past a leader that skipped its check: as
// leader, a member refuses every proposal apply could not take
// (consensus.Config.CheckProposal), its own and forwarded ones; a store
// request is checked on its encoding (store.CheckEncoded), by the rules
// its decoding and store.CheckLimits apply, without being decoded. Only
// the disk's failures stop a member.
//
// Members talk through peer.Transport: Ready.Messages go out while the WAL
// is written, MessagesAfterPersist after. A member too far behind receives
// the leader's applied-state file as a snapshot and installs it (the old
// store's watchers are ended). A leader that is stopped hands leadership to
// its most caught-up voter first.
//
// Membership (membership.go) is a replicated registry of members (ID, name,
// peer and client URLs, and the removed IDs) changed only by applying log
// entries: Raft conf changes carry the member in their context, and
// membership entries publish a member's attributes or move its peer URLs.
// It is saved with the applied state's Raft metadata, so snapshots carry
// it. A new cluster's members create their WAL with the bootstrap
// entries in it (wal.CreateWith), so a failed first start leaves no log
// or one that bootstraps. AddMember adds a learner, which the leader
// promotes once it has caught up; RemoveMember refuses to remove a voter
// that is up when the voters left that are up would not be a quorum. A
// member that applied its own removal goes on answering the voters left
// (one may not know yet that the removal committed, and still count it)
// until each has refused it as removed (410), or until it has heard from
// none of them for ten election timeouts; then it stops (a learner stops
// three heartbeats after). The transport follows the registry and accepts messages only
// from its members (and, until this member has applied its own addition,
// from those it was started with), and from members whose addition it has
// not applied yet that a member it knows lists (it asks their peer
// endpoint /members): a member that fell behind while members were added
// can follow one of them that leads. A new member joins with Join and the
// list read from a running member's peer endpoint /members; it records
// that list in its WAL's metadata (version 2), so that a restart before it
// has applied its own addition (from its data directory alone, its log
// perhaps empty) answers those members again. A member has at most
// MaxPeerURLs URLs of at most MaxURLBytes each (CheckURLBounds):
// AddMember and UpdateMember refuse more, and an entry with more is
// refused when applied, on every member alike.
//
// SelfStats is /v2/stats/self: besides the counts of appends sent and
// received, their rates (messages and encoded bytes per second) over the
// latest 200 in each direction (rate.go), none once the traffic stopped.
//
// Ready (ready.go) says whether the member can serve what clients do right
// after a health check, and if not which conditions are missing: a leader
// known (ErrLeaderUnknown), the commit index known at start (and the first
// one a leader sends) applied (ErrCatchingUp), and its own name and client
// URLs in its member list (ErrNotPublished). A member proposes that
// publish as soon as it is in its own list; without a leader the proposal
// is held and goes out the moment one is known.
//
// Any proposal is held the same way (propose.go) while no leader is
// known, and at a follower whose transport cannot reach the leader it
// names (no stream, nothing heard for an election timeout) for up to
// three election timeouts: forwarded to a dead leader it would be lost
// without a word. Each tick, and each change of leader, proposes the held
// ones again; a caller that gives up first is told ErrNotProposed.
//
// The v2 auth registry (auth.go: users with bcrypt hashes and role names,
// roles with read and write path patterns, and whether auth is enabled) is
// replicated the same way: changed only by applying auth entries (entry
// kind 3), kept in the Raft metadata with the applied state (version 3 of
// that encoding; versions 1 and 2 still decode, with auth disabled), so
// restarts, snapshots and restored backups carry it. The member that
// takes a change hashes any password with bcrypt before proposing it, so
// apply reads nothing but the entry; refusals (a user that exists, a role
// that does not, ...) reach the waiter as *AuthError. Member and Local
// expose it through AuthState and the write methods EnableAuth,
// DisableAuth, PutUser, DeleteUser, CreateRole, UpdateRole and
// DeleteRole.
//
// Local is a non-durable, single-process Backend for tests of the HTTP
// layer; it is always ready, and keeps the auth registry too.
//
// The files, one concern each (Member's fields are grouped, in member.go,
// by the goroutine that owns them):
//
//	config.go      MemberConfig, its defaults, StatePath
//	member.go      Member, StartMember (newMember, start), Stop, Done,
//	               Err, fail, the transport interface
//	loop.go        the run loop: tick, step, drain each Ready (persist,
//	               send, apply, advance), hand over, shut down
//	propose.go     Do, proposals and their waiters, TimeoutError
//	read.go        linearizable reads (ReadIndex rounds), Watch
//	apply.go       applying committed entries, refusals, expiry
//	entry.go       the log-entry envelope: kinds, encoding, checks
//	persist.go     recovery from bbolt and the WAL, the persister that
//	               mirrors applied state, Raft snapshots and WAL purges
//	snapshot.go    backups, and snapshots sent to and received from peers
//	membership.go  AddMember, RemoveMember, UpdateMember, publish,
//	               promotion, applying membership entries
//	registry.go    the member registry and its encoding (pure)
//	auth.go        the v2 auth registry and its encoding (pure)
//	authapi.go     proposing and applying auth changes
//	codec.go       the binary reader and writer of those encodings
//	peerhttp.go    the peer endpoints /members and /version
//	stats.go, leaderstats.go, rate.go, metrics.go, ready.go
//	               /v2/stats, Prometheus, readiness
//	local.go, restore.go
//	               the in-process Backend; restoring a backup
//
// The whole-cluster simulator (sim_test.go) builds members with newMember,
// which starts no goroutine, gives them a simulated transport (the
// transport interface) and a synchronous persister, and drives them with
// handle and after from one goroutine under virtual time, with faults
// drawn from a seed; see docs/architecture.md, "Whole-cluster simulator",
// and make sim, make sim-bugs. Its lock workload is in simlock_test.go,
// its queue workload in simqueue_test.go, its graceful stops and slow
// disks in simstop_test.go (it stops members through beginStop and
// closeDown, the driver's part of the shell's stop), its watch workload
// and the checker that watches see the committed history (every event
// equal to the one every member published at its index, indexes strictly
// increasing across resumes on any member, no gap but a 401 for a
// waitIndex older than the history, every matching event received by the
// end) in simwatch_test.go, its membership changes (an operator removing
// members, the leader among them, and adding new ones through
// addProposal and removeProposal, the checks and proposals of AddMember
// and RemoveMember) and the transport's word about peers (ActiveWithin
// from what it heard, unreachable reports, 410 to a removed member) in
// simmembers_test.go. MemberConfig's unexported unsafe* fields and
// wal.Options.UnsafeTrustTornTail are the deliberate bugs it must catch;
// onApply lets it compare the entries the members apply.
package server
