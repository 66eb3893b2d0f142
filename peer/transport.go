package peer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/consensus"
)

// Headers every Raft request carries.
const (
	HeaderCluster = "X-Cairn-Cluster-Id"
	HeaderFrom    = "X-Cairn-From"
	HeaderTo      = "X-Cairn-To"
	// HeaderStream carries the stream protocol version on a request to
	// StreamPath and on the answer that accepts it.
	HeaderStream = "X-Cairn-Stream-Version"
)

// RaftPath is the peer endpoint that receives messages.
const RaftPath = "/raft"

// StreamPath is the peer endpoint that receives a long-lived stream of
// messages from one member.
const StreamPath = RaftPath + "/stream"

// StreamVersion is the stream protocol version this package speaks.
const StreamVersion = "1"

// maxBody bounds one POST's body and one stream frame.
const maxBody = 64 << 20

// maxBatch is where a sender stops adding queued messages to a batch.
const maxBatch = 4 << 20

// timing holds the transport's timeouts; tests shorten them.
type timing struct {
	post          time.Duration // one POST of messages
	dial          time.Duration // connecting a stream, up to its answer
	write         time.Duration // one write on a stream
	keepalive     time.Duration // a sender writes an empty frame after this long idle
	ack           time.Duration // a receiver answers a frame with a liveness byte at most this often
	idle          time.Duration // a stream with nothing received for this long is closed
	backoff       time.Duration // first wait before reconnecting a stream
	backoffMax    time.Duration // the wait doubles up to this
	postRetryWait time.Duration // pause after a failed POST
}

var defaultTiming = timing{
	post:          5 * time.Second,
	dial:          5 * time.Second,
	write:         5 * time.Second,
	keepalive:     5 * time.Second,
	ack:           5 * time.Second,
	idle:          30 * time.Second,
	backoff:       100 * time.Millisecond,
	backoffMax:    2 * time.Second,
	postRetryWait: 50 * time.Millisecond,
}

// Config configures a Transport.
type Config struct {
	ID, ClusterID uint64
	// Peers maps every other member's ID to its peer URL (the members at
	// start; AddPeer, UpdatePeer and RemovePeer change them later).
	Peers map[uint64]string
	// Receive gets every message that arrived (it must not block long).
	Receive func(consensus.Message)
	// Unreachable is told when a message to id could not be delivered;
	// SnapshotDone how sending a snapshot to id ended. Neither may call
	// RemovePeer or Stop.
	Unreachable  func(id uint64)
	SnapshotDone func(id uint64, failed bool)
	// WriteSnapshot streams this member's applied state (the snapshot a
	// MsgSnap stands for); nil: snapshots cannot be sent.
	WriteSnapshot func(w io.Writer) error
	// ReceiveSnapshot takes a MsgSnap and the stream that follows it.
	ReceiveSnapshot func(m consensus.Message, r io.Reader) error
	// IsRemoved tells whether id was removed from the cluster; requests
	// from removed members are answered 410 Gone. Nil: nobody is.
	IsRemoved func(id uint64) bool
	// IsMember tells whether id is a member of the cluster as this member
	// knows it; requests from anyone else are answered 404 (etcd's answer
	// to a sender it cannot find). Nil: every sender is accepted.
	IsMember func(id uint64) bool
	// Refused, if set, is told each time a request on the peer port is
	// refused, with a short fixed reason ("cluster", "recipient",
	// "sender", "removed", "stranger", "message"), for counting.
	Refused func(reason string)
	// Removed is called each time a peer answers 410 Gone (by is the
	// peer): this member was removed from the cluster, and the peer has
	// applied its removal. It must not block.
	Removed func(by uint64)
	// DialTLSContext connects to peers with https URLs (messages, streams
	// and snapshots alike): it is the member's peer TLS, which presents
	// its peer certificate and verifies the peer's. Nil: Go's defaults
	// (the system's roots, no client certificate).
	DialTLSContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// QueueSize bounds each peer's queue (default 4096).
	QueueSize int
	Logger    zerolog.Logger
}

// PeerStats counts what a transport sent to one peer since it was added.
type PeerStats struct {
	// Streaming: the stream to the peer is connected.
	Streaming bool
	// StreamMessages and PostMessages count messages written to the
	// stream and delivered by POST.
	StreamMessages, PostMessages uint64
	// Failures counts failed sends (a POST or a stream write that failed,
	// a batch too large to send); each was reported unreachable.
	Failures uint64
	// Dropped counts messages dropped because the peer's queue was full.
	Dropped uint64
	// Bytes counts the bytes of stream frames and POST bodies sent
	// (snapshots not included).
	Bytes uint64
}

// Transport sends and receives Raft messages over HTTP.
type Transport struct {
	cfg          Config
	tm           timing
	client       *http.Client // POSTs of messages
	streamClient *http.Client // streams: no overall timeout
	snapClient   *http.Client // snapshots: bounded by a context

	mu      sync.RWMutex
	peers   map[uint64]*sender
	inbound map[*inStream]struct{}
	stopped bool

	stopOnce sync.Once
	wg       sync.WaitGroup
}

// sender is the outgoing side of one peer: a bounded queue, a goroutine
// that sends what queued up (by the stream when it is connected, else by
// POST) and a goroutine that keeps the stream connected.
type sender struct {
	id     uint64
	queue  chan consensus.Message
	ctx    context.Context // cancelled when the peer is removed or the transport stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // the sender's goroutines
	redial chan struct{}  // the URL changed: reconnect now

	mu     sync.Mutex
	url    string
	stream *stream // connected, or nil

	streamMsgs, postMsgs, failures, dropped, bytes atomic.Uint64
	heardAt                                        atomic.Int64 // unix ns of the last sign of life from the peer
	gone                                           atomic.Bool  // the peer answered 410 Gone (logged once)
}

func (s *sender) peerURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// current is the connected stream, or nil.
func (s *sender) current() *stream {
	s.mu.Lock()
	st := s.stream
	s.mu.Unlock()
	if st == nil || st.closed() {
		return nil
	}
	return st
}

func (s *sender) hexID() string { return formatID(s.id) }

// formatID writes a member ID as the headers and logs do: in hex.
func formatID(id uint64) string { return strconv.FormatUint(id, 16) }

// New starts a transport with a sender per peer.
func New(cfg Config) *Transport {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	t := &Transport{cfg: cfg, tm: defaultTiming, peers: map[uint64]*sender{}, inbound: map[*inStream]struct{}{},
		client: &http.Client{Timeout: defaultTiming.post, Transport: &http.Transport{
			MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute, DialTLSContext: cfg.DialTLSContext}},
		streamClient: &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: defaultTiming.dial}).DialContext,
			DialTLSContext:        cfg.DialTLSContext,
			ResponseHeaderTimeout: defaultTiming.dial,
			ExpectContinueTimeout: defaultTiming.dial,
			DisableKeepAlives:     true,
		}},
		snapClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialTLSContext: cfg.DialTLSContext}},
	}
	t.cfg.Peers = nil // the transport keeps its own map
	ids := make([]uint64, 0, len(cfg.Peers))
	for id := range cfg.Peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		t.AddPeer(id, cfg.Peers[id])
	}
	return t
}

// AddPeer starts sending to member id at url (its peer URL); for a peer
// already known it is UpdatePeer. This member's own ID is ignored.
func (t *Transport) AddPeer(id uint64, url string) {
	if id == 0 || id == t.cfg.ID {
		return
	}
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	if t.peers[id] != nil {
		t.mu.Unlock()
		t.UpdatePeer(id, url)
		return
	}
	s := &sender{id: id, url: url, queue: make(chan consensus.Message, t.cfg.QueueSize), redial: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.peers[id] = s
	t.goPeer(s, func() { t.run(s) })
	t.goPeer(s, func() { t.keepStream(s) })
	t.mu.Unlock()
}

// goPeer runs f on a goroutine counted for the peer and the transport.
func (t *Transport) goPeer(s *sender, f func()) {
	t.wg.Add(1)
	s.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer s.wg.Done()
		f()
	}()
}

// UpdatePeer makes the next connections to member id go to url: its
// stream, if connected elsewhere, is closed and reconnected. Unknown ids
// are ignored.
func (t *Transport) UpdatePeer(id uint64, url string) {
	t.mu.RLock()
	s := t.peers[id]
	t.mu.RUnlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.url == url {
		s.mu.Unlock()
		return
	}
	s.url = url
	st := s.stream
	s.mu.Unlock()
	if st != nil {
		st.close(errRedirected)
	}
	select {
	case s.redial <- struct{}{}:
	default:
	}
	t.cfg.Logger.Info().Str("peer", s.hexID()).Str("url", url).Msg("peer URL changed")
}

// RemovePeer stops sending to member id: its queued messages are dropped,
// its stream closed, a snapshot on its way cancelled. When it returns
// nothing more goes to the peer. Its incoming streams are closed too.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	s := t.peers[id]
	delete(t.peers, id)
	for in := range t.inbound {
		if in.from == id {
			in.abort()
		}
	}
	t.mu.Unlock()
	if s == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
	t.client.CloseIdleConnections()
}

// Peers returns a copy of the peers' IDs and URLs.
func (t *Transport) Peers() map[uint64]string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[uint64]string, len(t.peers))
	for id, s := range t.peers {
		out[id] = s.peerURL()
	}
	return out
}

// Streaming tells whether the stream to member id is connected.
func (t *Transport) Streaming(id uint64) bool {
	t.mu.RLock()
	s := t.peers[id]
	t.mu.RUnlock()
	return s != nil && s.current() != nil
}

// heard notes a sign of life from member id: messages it sent, or a
// liveness byte on the stream to it.
func (t *Transport) heard(id uint64) {
	t.mu.RLock()
	s := t.peers[id]
	t.mu.RUnlock()
	if s != nil {
		s.heardAt.Store(time.Now().UnixNano())
	}
}

// ActiveWithin tells whether member id looks up: the stream to it is
// connected and it gave a sign of life (a message, a stream frame, a
// liveness byte) within d. A member that is alive and reachable does at
// least every keepalive period (KeepAlive).
func (t *Transport) ActiveWithin(id uint64, d time.Duration) bool {
	t.mu.RLock()
	s := t.peers[id]
	t.mu.RUnlock()
	if s == nil || s.current() == nil {
		return false
	}
	return time.Since(time.Unix(0, s.heardAt.Load())) <= d
}

// KeepAlive is how long a connected stream stays silent at most: then
// the sender writes an empty frame, which the receiver answers.
func (t *Transport) KeepAlive() time.Duration { return t.tm.keepalive }

// Stats returns what was sent to each current peer.
func (t *Transport) Stats() map[uint64]PeerStats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[uint64]PeerStats, len(t.peers))
	for id, s := range t.peers {
		out[id] = PeerStats{
			Streaming:      s.current() != nil,
			StreamMessages: s.streamMsgs.Load(),
			PostMessages:   s.postMsgs.Load(),
			Failures:       s.failures.Load(),
			Dropped:        s.dropped.Load(),
			Bytes:          s.bytes.Load(),
		}
	}
	return out
}

// Stop ends the senders and the incoming streams, and waits for the
// senders. It may be called more than once.
func (t *Transport) Stop() {
	t.stopOnce.Do(func() {
		t.mu.Lock()
		t.stopped = true
		for _, s := range t.peers {
			s.cancel()
		}
		for in := range t.inbound {
			in.abort()
		}
		t.mu.Unlock()
	})
	t.wg.Wait()
	t.client.CloseIdleConnections()
	t.streamClient.CloseIdleConnections()
	t.snapClient.CloseIdleConnections()
}

// Send queues messages for their peers without blocking. A full queue
// drops the message and reports the peer unreachable; a MsgSnap goes at
// once, with the applied state after it, on a POST of its own.
func (t *Transport) Send(msgs []consensus.Message) {
	var unreachable []uint64
	t.mu.RLock()
	if t.stopped {
		t.mu.RUnlock()
		return
	}
	for _, m := range msgs {
		s := t.peers[m.To]
		if s == nil {
			continue
		}
		if m.Type == consensus.MsgSnap {
			t.wg.Add(1)
			go t.sendSnapshot(s, m)
			continue
		}
		select {
		case s.queue <- m:
		default:
			s.dropped.Add(1)
			unreachable = append(unreachable, m.To)
		}
	}
	t.mu.RUnlock()
	for _, id := range unreachable {
		t.unreachable(id)
	}
}

func (t *Transport) unreachable(id uint64) {
	if t.cfg.Unreachable != nil {
		t.cfg.Unreachable(id)
	}
}

// removed: a peer answered 410 Gone.
func (t *Transport) removed(s *sender) {
	if !s.gone.Swap(true) {
		t.cfg.Logger.Warn().Str("peer", s.hexID()).Msg("a peer says this member was removed from the cluster")
	}
	if t.cfg.Removed != nil {
		t.cfg.Removed(s.id)
	}
}

// run sends what queues up for a peer, a batch at a time: as one frame on
// the stream when it is connected, else as one POST. While the stream is
// idle it carries an empty frame every keepalive period.
func (t *Transport) run(s *sender) {
	keepalive := time.NewTicker(t.tm.keepalive)
	defer keepalive.Stop()
	// buf holds a stream frame's length prefix, right-aligned in its first
	// binary.MaxVarintLen64 bytes, then the batch (a POST's body).
	const prefix = binary.MaxVarintLen64
	var buf []byte
	wrote := false // on the stream since the last tick
	for {
		var m consensus.Message
		select {
		case <-s.ctx.Done():
			return
		case <-keepalive.C:
			if st := s.current(); st != nil && !wrote {
				if st.write(keepaliveFrame) == nil {
					s.bytes.Add(uint64(len(keepaliveFrame)))
				}
			}
			wrote = false
			continue
		case m = <-s.queue:
		}
		if cap(buf) > prefix+2*maxBatch {
			buf = nil // a very large message went: do not keep its buffer
		}
		buf = appendFrame(append(buf[:0], make([]byte, prefix)...), &m)
		n := 1
		for more := true; more && len(buf)-prefix < maxBatch; {
			select {
			case m = <-s.queue:
				buf = appendFrame(buf, &m)
				n++
			default:
				more = false
			}
		}
		batch := buf[prefix:]
		if s.ctx.Err() != nil {
			return // removed or stopped: what queued is dropped
		}
		if len(batch) > maxBody {
			t.cfg.Logger.Warn().Str("peer", s.hexID()).Int("bytes", len(batch)).Msg("message too large to send")
			s.failures.Add(1)
			t.unreachable(s.id)
			continue
		}
		if st := s.current(); st != nil {
			var head [prefix]byte
			h := binary.PutUvarint(head[:], uint64(len(batch)))
			frame := buf[prefix-h:]
			copy(frame, head[:h])
			wrote = true
			if err := st.write(frame); err != nil {
				if s.ctx.Err() != nil {
					return
				}
				t.cfg.Logger.Debug().Err(err).Str("peer", s.hexID()).Msg("stream write failed")
				s.failures.Add(1)
				t.unreachable(s.id)
				continue
			}
			s.bytes.Add(uint64(len(frame)))
			s.streamMsgs.Add(uint64(n))
			continue
		}
		err := t.post(s, batch)
		if err == nil {
			s.bytes.Add(uint64(len(batch)))
			s.postMsgs.Add(uint64(n))
			continue
		}
		if s.ctx.Err() != nil {
			return
		}
		t.cfg.Logger.Debug().Err(err).Str("peer", s.hexID()).Msg("send failed")
		s.failures.Add(1)
		t.unreachable(s.id)
		if isGone(err) {
			t.removed(s)
		}
		timer := time.NewTimer(t.tm.postRetryWait)
		select {
		case <-s.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// keepaliveFrame is an empty stream frame.
var keepaliveFrame = appendStreamFrame(nil, nil)

func (t *Transport) post(s *sender, body []byte) error {
	ctx, cancel := context.WithTimeout(s.ctx, t.tm.post)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peerURL(s.peerURL(), RaftPath), bytes.NewReader(body))
	if err != nil {
		return err
	}
	t.setHeaders(req, s.id)
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return &statusError{resp.StatusCode}
	}
	return nil
}

// peerURL joins a peer URL and an endpoint path.
func peerURL(base, path string) string { return strings.TrimRight(base, "/") + path }

type statusError struct{ code int }

func (e *statusError) Error() string { return "peer answered " + strconv.Itoa(e.code) }

// isGone: the peer answered 410 Gone (this member was removed).
func isGone(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.code == http.StatusGone
}

// sendSnapshot streams a MsgSnap and the applied state after it to the
// peer's snapshot endpoint, then reports how it went.
func (t *Transport) sendSnapshot(s *sender, m consensus.Message) {
	defer t.wg.Done()
	failed := true
	defer func() {
		if t.cfg.SnapshotDone != nil {
			t.cfg.SnapshotDone(m.To, failed)
		}
	}()
	if t.cfg.WriteSnapshot == nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	defer pr.Close() // ends the writer below if the request never read it all
	// The HTTP client waits for its body-reading goroutine before it
	// returns from a cancelled request: the pipe must end with the context.
	defer context.AfterFunc(ctx, func() { pr.CloseWithError(context.Canceled) })()
	go func() {
		_, err := pw.Write(appendFrame(nil, &m))
		if err == nil {
			err = t.cfg.WriteSnapshot(pw)
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peerURL(s.peerURL(), RaftPath+"/snapshot"), pr)
	if err != nil {
		return
	}
	t.setHeaders(req, s.id)
	resp, err := t.snapClient.Do(req)
	if err != nil {
		t.cfg.Logger.Warn().Err(err).Str("peer", s.hexID()).Msg("sending snapshot failed")
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusGone {
		t.removed(s)
	}
	failed = resp.StatusCode != http.StatusNoContent
	t.cfg.Logger.Info().Str("peer", s.hexID()).Bool("failed", failed).Msg("snapshot sent")
}

func (t *Transport) setHeaders(req *http.Request, to uint64) {
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(HeaderCluster, strconv.FormatUint(t.cfg.ClusterID, 16))
	req.Header.Set(HeaderFrom, strconv.FormatUint(t.cfg.ID, 16))
	req.Header.Set(HeaderTo, strconv.FormatUint(to, 16))
}

// check verifies a peer request's method and IDs; it answers and returns
// false when they are wrong. A removed sender is answered 410 Gone; one
// that is not a member as this member knows it, 404. A member added by an
// entry not yet applied here is refused until it is applied; its sender
// retries.
func (t *Transport) check(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return 0, false
	}
	if r.Header.Get(HeaderCluster) != strconv.FormatUint(t.cfg.ClusterID, 16) {
		t.refuse(w, "cluster", "cluster ID mismatch", http.StatusPreconditionFailed)
		return 0, false
	}
	if r.Header.Get(HeaderTo) != strconv.FormatUint(t.cfg.ID, 16) {
		t.refuse(w, "recipient", "member ID mismatch", http.StatusPreconditionFailed)
		return 0, false
	}
	from, err := strconv.ParseUint(r.Header.Get(HeaderFrom), 16, 64)
	if err != nil || from == 0 || from == t.cfg.ID {
		t.refuse(w, "sender", "bad sender member ID", http.StatusForbidden)
		return 0, false
	}
	if t.cfg.IsRemoved != nil && t.cfg.IsRemoved(from) {
		t.refuse(w, "removed", "member "+strconv.FormatUint(from, 16)+" was removed from the cluster", http.StatusGone)
		return 0, false
	}
	if t.cfg.IsMember != nil && !t.cfg.IsMember(from) {
		t.refuse(w, "stranger", "sender "+strconv.FormatUint(from, 16)+" is not a member of this cluster", http.StatusNotFound)
		return 0, false
	}
	return from, true
}

// refuse answers a refused peer request and counts it.
func (t *Transport) refuse(w http.ResponseWriter, reason, msg string, code int) {
	if t.cfg.Refused != nil {
		t.cfg.Refused(reason)
	}
	http.Error(w, msg, code)
}

// checkMessages verifies that what arrived from member from is meant for
// this member and comes from the sender (a forwarded proposal or
// leadership transfer may name another member).
func (t *Transport) checkMessages(msgs []consensus.Message, from uint64) error {
	for _, m := range msgs {
		if m.From != from && m.Type != consensus.MsgTransferLeader && m.Type != consensus.MsgProp {
			return errors.New("message from another member")
		}
		if m.To != t.cfg.ID {
			return errors.New("message for another member")
		}
	}
	return nil
}

// Handler serves RaftPath (messages), StreamPath (a stream of messages)
// and RaftPath/snapshot (a MsgSnap and the applied state after it). All
// check the cluster and member IDs.
func (t *Transport) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(RaftPath+"/snapshot", func(w http.ResponseWriter, r *http.Request) {
		from, ok := t.check(w, r)
		if !ok {
			return
		}
		br := bufio.NewReader(r.Body)
		n, err := binary.ReadUvarint(br)
		if err != nil || n > maxBody {
			t.refuse(w, "message", "bad snapshot frame", http.StatusBadRequest)
			return
		}
		head := make([]byte, n)
		if _, err := io.ReadFull(br, head); err != nil {
			t.refuse(w, "message", "bad snapshot frame", http.StatusBadRequest)
			return
		}
		m, err := decodeMessage(head)
		if err != nil || m.Type != consensus.MsgSnap || m.From != from || m.To != t.cfg.ID || m.Snapshot == nil {
			t.refuse(w, "message", "bad snapshot message", http.StatusBadRequest)
			return
		}
		if t.cfg.ReceiveSnapshot == nil {
			http.Error(w, "snapshots not accepted", http.StatusServiceUnavailable)
			return
		}
		if err := t.cfg.ReceiveSnapshot(m, br); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc(StreamPath, t.serveStream)
	mux.HandleFunc(RaftPath, func(w http.ResponseWriter, r *http.Request) {
		from, ok := t.check(w, r)
		if !ok {
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil || len(body) > maxBody {
			t.refuse(w, "message", "bad body", http.StatusBadRequest)
			return
		}
		msgs, err := decodeFrames(body)
		if err != nil {
			t.refuse(w, "message", err.Error(), http.StatusBadRequest)
			return
		}
		if err := t.checkMessages(msgs, from); err != nil {
			t.refuse(w, "message", err.Error(), http.StatusBadRequest)
			return
		}
		t.heard(from)
		for _, m := range msgs {
			t.cfg.Receive(m)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
