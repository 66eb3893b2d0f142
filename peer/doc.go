// Package peer is the Raft transport between members, over HTTP or
// HTTPS: a peer URL may be either, and Config.DialTLSContext (the
// member's peer TLS, from internal/tlsutil) makes the connections to
// https peers for messages, streams and snapshots alike, presenting this
// member's peer certificate and verifying the peer's. The receiving side
// is a plain http.Handler; the listener in front of it does the TLS.
//
// Each peer has a bounded queue and a sender goroutine that ships whatever
// queued up as one batch. While the peer's stream is connected a batch is
// one frame on it: a long-lived POST to /raft/stream whose chunked body
// carries length-prefixed batches (the protocol is described in
// stream.go). A second goroutine per peer keeps that stream connected,
// reconnecting with a backoff (100 ms doubling to 2 s). While the stream
// is down (the peer is unreachable, or an older member answers 404) a
// batch goes as one POST to the peer's /raft endpoint instead. Sending
// never blocks the run loop: when a queue is full the message is dropped
// and the peer reported unreachable, as it is when a POST or a stream
// write fails; Raft recovers from lost messages. Idle streams carry
// keepalive frames one way and liveness bytes the other, and either side
// closes a stream on which nothing arrived for 30 s, so a dead peer is
// noticed without cutting healthy idle streams.
//
// Peers can be added, moved to another URL and removed while the
// transport runs (AddPeer, UpdatePeer, RemovePeer); Streaming and Stats
// tell how each peer is being reached, and ActiveWithin whether a peer
// gave a sign of life (a message, a frame, a liveness byte) lately.
//
// Every request carries the cluster ID and the sender's and receiver's
// member IDs; requests from another cluster or for another member are
// refused. A sender the receiver knows was removed is answered 410 Gone,
// and a sender that gets 410 calls Config.Removed with the peer's ID: that
// is how a member removed while cut off learns it, and how one that
// applied its own removal learns that the others have applied it too. A sender that is not a member as the
// receiver knows it (Config.IsMember) is answered 404 and retries: a
// member just added is refused by those that have not applied its
// addition yet. Every refusal is reported to Config.Refused by reason,
// for counting. Messages use a versioned binary codec (codec.go), fuzzed,
// as do stream frames; MarshalMessages builds a POST body for tools, and
// Size is a message's encoded length, without encoding it.
//
// A MsgSnap goes, with the sender's applied state streamed after it, as
// one POST to /raft/snapshot; the receiver takes the stream (it installs
// it when its Raft core accepts the snapshot) and the sender reports the
// outcome to its core.
package peer
