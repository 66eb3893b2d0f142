// Package store is Cairn's v2 data model: the tree of keys and directories
// that etcd's v2 keys API exposes, the event history behind waitIndex, and
// the watchers.
//
// Writes arrive as Requests (domain operations, never HTTP verbs) that the
// member has committed through Raft, and are applied one at a time by
// Apply. Apply is deterministic: it never reads the clock (a request carries
// its proposer's time; OpExpire carries the leader's), never draws random
// numbers and never depends on map iteration order, so every replica that
// applies the same sequence holds byte-identical state (see Hash).
//
// Reads never block apply. The tree is immutable once published: apply
// builds the next version by copying the nodes on the changed path and
// sharing everything else (children live in copy-on-write B-trees), then
// publishes it with one atomic store. Get loads the current version and
// walks it without locks, so a recursive read of a large directory holds
// nothing that the apply loop waits for.
//
// Every node carries the byte count of its subtree (paths and values), kept
// by the same path copying, so DataBytes, the size of the whole data that
// the client API's quota is checked against, is read in O(1) and is the
// same on every replica; Open recomputes it.
//
// Every change takes the next store index and exactly one slot of the event
// history (refreshes too; an OpExpire takes one per expired node). Watchers
// are served from the history when their waitIndex is in the past and from
// live events otherwise, under one lock so that no event falls between the
// two.
//
// A store opened with Open mirrors its state into a bbolt file: apply
// notes what changed, Capture (on the apply goroutine) takes a batch with
// the Raft index and metadata it covers, Batch.Write stores it off the
// apply path; Open rebuilds the store from the file, reading it ahead
// sequentially in the background while its B+tree is walked in key
// order. The file is the member's Raft snapshot and its backup format
// (WriteSnapshot, Restore, StatusOf). Every step of the file's life is here (file.go): OpenFile
// opens it and Close closes it, ReceiveSnapshot writes a peer's file
// beside it, synced, and Replace renames that into place, fsyncs the
// directory, reopens it and ends the old store's watchers; InstallSnapshot
// does the same durable write for a restored backup. No other package
// holds the bbolt handle.
//
// The operations behind server-side locks and queues (OpAcquire,
// OpEnqueue, OpDequeue) and fenced writes are applied the same way, each in
// one apply (coord.go).
//
// A request's encoding (request.go) is checked in full by Unmarshal;
// CheckEncoded applies the same checks and the hard limits (limits.go) to
// an encoding without building the request, as a leader does for every
// proposal.
//
// Errors are *Error values carrying a v2 error code; mapping them to HTTP
// statuses is httpapi's business. Nothing here knows about HTTP, JSON or
// metrics.
//
// Memory, measured by BenchmarkMemoryPerIdleWatcher with the hub's per-path
// bookkeeping included: an idle long-poll watcher costs about 384 bytes (the
// Watcher, a one-slot channel and its place in the hub); an idle stream
// watcher about 1.5 KiB, most of it the StreamBuffer-slot channel. A stored
// key with a 256-byte value costs about 400 bytes (BenchmarkMemoryPerKey).
package store
