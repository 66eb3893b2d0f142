package peer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/consensus"
)

// Headers every Raft request carries.
const (
	HeaderCluster = "X-Cairn-Cluster-Id"
	HeaderFrom    = "X-Cairn-From"
	HeaderTo      = "X-Cairn-To"
)

// RaftPath is the peer endpoint that receives messages.
const RaftPath = "/raft"

// maxBody bounds one POST's body.
const maxBody = 64 << 20

// Config configures a Transport.
type Config struct {
	ID, ClusterID uint64
	// Peers maps every other member's ID to its peer URL.
	Peers map[uint64]string
	// Receive gets every message that arrived (it must not block long).
	Receive func(consensus.Message)
	// Unreachable is told when a message to id could not be delivered;
	// SnapshotDone how sending a snapshot to id ended.
	Unreachable  func(id uint64)
	SnapshotDone func(id uint64, failed bool)
	// WriteSnapshot streams this member's applied state (the snapshot a
	// MsgSnap stands for); nil: snapshots cannot be sent.
	WriteSnapshot func(w io.Writer) error
	// ReceiveSnapshot takes a MsgSnap and the stream that follows it.
	ReceiveSnapshot func(m consensus.Message, r io.Reader) error
	// QueueSize bounds each peer's queue (default 4096).
	QueueSize int
	Logger    zerolog.Logger
}

// Transport sends and receives Raft messages over HTTP.
type Transport struct {
	cfg    Config
	client *http.Client
	peers  map[uint64]*sender
	stop   chan struct{}
	wg     sync.WaitGroup
}

type sender struct {
	id    uint64
	url   string
	queue chan consensus.Message
}

// New starts a transport with a sender per peer.
func New(cfg Config) *Transport {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	t := &Transport{cfg: cfg, peers: map[uint64]*sender{}, stop: make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	ids := make([]uint64, 0, len(cfg.Peers))
	for id := range cfg.Peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := &sender{id: id, url: cfg.Peers[id] + RaftPath, queue: make(chan consensus.Message, cfg.QueueSize)}
		t.peers[id] = s
		t.wg.Add(1)
		go t.run(s)
	}
	return t
}

// Stop ends the senders.
func (t *Transport) Stop() {
	close(t.stop)
	t.wg.Wait()
}

// Send queues messages for their peers without blocking. A full queue
// drops the message and reports the peer unreachable; snapshots are not
// transferred yet and are reported failed at once.
func (t *Transport) Send(msgs []consensus.Message) {
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
			if t.cfg.Unreachable != nil {
				t.cfg.Unreachable(m.To)
			}
		}
	}
}

func (t *Transport) run(s *sender) {
	defer t.wg.Done()
	var body []byte
	for {
		var m consensus.Message
		select {
		case <-t.stop:
			return
		case m = <-s.queue:
		}
		body = appendFrame(body[:0], &m)
		for more := true; more && len(body) < 4<<20; {
			select {
			case m = <-s.queue:
				body = appendFrame(body, &m)
			default:
				more = false
			}
		}
		if err := t.post(s, body); err != nil {
			t.cfg.Logger.Debug().Err(err).Str("peer", strconv.FormatUint(s.id, 16)).Msg("send failed")
			if t.cfg.Unreachable != nil {
				t.cfg.Unreachable(s.id)
			}
			select {
			case <-t.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func (t *Transport) post(s *sender, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	t.setHeaders(req, s.id)
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return &statusError{resp.StatusCode}
	}
	return nil
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "peer answered " + strconv.Itoa(e.code) }

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
	pr, pw := io.Pipe()
	go func() {
		_, err := pw.Write(appendFrame(nil, &m))
		if err == nil {
			err = t.cfg.WriteSnapshot(pw)
		}
		pw.CloseWithError(err)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-t.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/snapshot", pr)
	if err != nil {
		return
	}
	t.setHeaders(req, s.id)
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		t.cfg.Logger.Warn().Err(err).Str("peer", strconv.FormatUint(s.id, 16)).Msg("sending snapshot failed")
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	failed = resp.StatusCode != http.StatusNoContent
	t.cfg.Logger.Info().Str("peer", strconv.FormatUint(s.id, 16)).Bool("failed", failed).Msg("snapshot sent")
}

func (t *Transport) setHeaders(req *http.Request, to uint64) {
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(HeaderCluster, strconv.FormatUint(t.cfg.ClusterID, 16))
	req.Header.Set(HeaderFrom, strconv.FormatUint(t.cfg.ID, 16))
	req.Header.Set(HeaderTo, strconv.FormatUint(to, 16))
}

// check verifies a peer request's method and IDs; it answers and returns
// false when they are wrong.
func (t *Transport) check(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return 0, false
	}
	if r.Header.Get(HeaderCluster) != strconv.FormatUint(t.cfg.ClusterID, 16) {
		http.Error(w, "cluster ID mismatch", http.StatusPreconditionFailed)
		return 0, false
	}
	if r.Header.Get(HeaderTo) != strconv.FormatUint(t.cfg.ID, 16) {
		http.Error(w, "member ID mismatch", http.StatusPreconditionFailed)
		return 0, false
	}
	from, err := strconv.ParseUint(r.Header.Get(HeaderFrom), 16, 64)
	if _, known := t.peers[from]; err != nil || !known {
		http.Error(w, "unknown member", http.StatusForbidden)
		return 0, false
	}
	return from, true
}

// Handler serves RaftPath (messages) and RaftPath/snapshot (a MsgSnap and
// the applied state after it). Both check the cluster and member IDs.
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
			http.Error(w, "bad snapshot frame", http.StatusBadRequest)
			return
		}
		head := make([]byte, n)
		if _, err := io.ReadFull(br, head); err != nil {
			http.Error(w, "bad snapshot frame", http.StatusBadRequest)
			return
		}
		m, err := decodeMessage(head)
		if err != nil || m.Type != consensus.MsgSnap || m.From != from || m.To != t.cfg.ID || m.Snapshot == nil {
			http.Error(w, "bad snapshot message", http.StatusBadRequest)
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
	mux.HandleFunc(RaftPath, func(w http.ResponseWriter, r *http.Request) {
		from, ok := t.check(w, r)
		if !ok {
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil || len(body) > maxBody {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		msgs, err := decodeFrames(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, m := range msgs {
			if m.From != from && m.Type != consensus.MsgTransferLeader && m.Type != consensus.MsgProp {
				http.Error(w, "message from another member", http.StatusBadRequest)
				return
			}
			if m.To != t.cfg.ID {
				http.Error(w, "message for another member", http.StatusBadRequest)
				return
			}
		}
		for _, m := range msgs {
			t.cfg.Receive(m)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
