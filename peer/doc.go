// Package peer is the Raft transport between members, over plain HTTP.
//
// Each peer has a bounded queue and a sender goroutine that ships whatever
// queued up as one POST to the peer's /raft endpoint (a pipeline of POSTs;
// a long-lived stream per peer comes later). Sending never blocks the run
// loop: when a queue is full the message is dropped and the peer reported
// unreachable, which Raft recovers from. Every request carries the
// cluster ID and the sender's and receiver's member IDs; requests from
// strangers or another cluster are refused. Messages use a versioned
// binary codec (codec.go), fuzzed.
//
// A MsgSnap goes, with the sender's applied state streamed after it, as
// one POST to /raft/snapshot; the receiver takes the stream (it installs
// it when its Raft core accepts the snapshot) and the sender reports the
// outcome to its core.
package peer
