package peer

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The stream protocol, version 1.
//
// A sender opens one POST to the receiver's StreamPath with the headers
// of every Raft request, HeaderStream: StreamVersion and "Expect:
// 100-continue", and a chunked body that stays open: a sequence of
// frames, each the uvarint length of a batch and the batch, a sequence of
// messages framed as in the body of a POST to RaftPath. A frame is at most
// maxBody bytes. An empty frame carries no message: the sender writes one
// at once (the receiver answers after reading it) and then whenever the
// stream was idle for a keepalive period.
//
// The receiver checks the request as it checks a POST to RaftPath and
// answers an error status (and closes the connection) when it refuses it;
// else it reads the first frame, answers 200 with HeaderStream, and then
// hands every message of every frame to Config.Receive. Its answer body
// carries liveness bytes (each 0, to be ignored): one after a frame when
// none was sent for a while. Either side closes a stream on which nothing
// arrived for the idle timeout, and the receiver closes it on a frame that
// does not decode or holds a message that would be refused on a POST.
//
// "Expect: 100-continue" lets a member without the endpoint (a 404) or
// one that refuses the request answer at once: the server does not try to
// drain a request body that never ends.

var (
	errRedirected   = errors.New("peer: the peer's URL changed")
	errWriteTimeout = errors.New("peer: stream write timed out")
	errIdle         = errors.New("peer: nothing heard on the stream")
	errStreamEnded  = errors.New("peer: the receiver ended the stream")
)

// stream is the sending side of one connected stream.
type stream struct {
	url    string // the peer URL it was opened to
	pr     *io.PipeReader
	pw     *io.PipeWriter
	cancel context.CancelFunc
	timer  *time.Timer // closes the stream when a write takes too long
	wrTime time.Duration
	done   chan struct{}
	once   sync.Once
	err    atomic.Pointer[error]
}

func (st *stream) close(err error) {
	st.once.Do(func() {
		st.err.Store(&err)
		st.pr.CloseWithError(err)
		st.pw.CloseWithError(err)
		st.cancel()
		close(st.done)
	})
}

func (st *stream) closed() bool {
	select {
	case <-st.done:
		return true
	default:
		return false
	}
}

// cause is why the stream was closed.
func (st *stream) cause() error {
	if p := st.err.Load(); p != nil {
		return *p
	}
	return nil
}

// write writes one frame; a write that fails or takes too long (the write
// timeout, plus a second per MiB) closes the stream. Only the sender's
// run goroutine writes.
func (st *stream) write(frame []byte) error {
	st.timer.Reset(st.wrTime + time.Duration(len(frame)>>20)*time.Second)
	_, err := st.pw.Write(frame)
	if !st.timer.Stop() && err == nil {
		err = errWriteTimeout
	}
	if err != nil {
		st.close(err)
	}
	return err
}

// keepStream keeps a stream to the peer connected: it reconnects, after a
// wait that doubles up to a bound while connecting fails, until the peer
// is removed or the transport stops. While it is down, messages go by
// POST.
func (t *Transport) keepStream(s *sender) {
	backoff := t.tm.backoff
	for {
		st, err := t.dialStream(s)
		if err == nil {
			s.mu.Lock()
			if s.url != st.url { // redirected while connecting
				s.mu.Unlock()
				st.close(errRedirected)
				continue
			}
			s.stream = st
			s.mu.Unlock()
			since := time.Now()
			t.cfg.Logger.Info().Str("peer", s.hexID()).Msg("stream connected")
			select {
			case <-st.done:
			case <-s.ctx.Done():
				st.close(context.Canceled)
			}
			s.mu.Lock()
			if s.stream == st {
				s.stream = nil
			}
			s.mu.Unlock()
			if s.ctx.Err() != nil {
				return
			}
			t.cfg.Logger.Info().Err(st.cause()).Str("peer", s.hexID()).Msg("stream lost")
			if time.Since(since) >= t.tm.backoffMax {
				backoff = t.tm.backoff
			} else {
				err = errStreamEnded // a peer that ends every stream at once is retried less often
			}
		} else {
			if s.ctx.Err() != nil {
				return
			}
			t.cfg.Logger.Debug().Err(err).Str("peer", s.hexID()).Msg("stream not connected")
			if isGone(err) {
				t.removed(s)
			}
		}
		timer := time.NewTimer(backoff)
		select {
		case <-s.ctx.Done():
			timer.Stop()
			return
		case <-s.redial:
			timer.Stop()
			backoff = t.tm.backoff
			continue
		case <-timer.C:
		}
		if err != nil {
			backoff = min(2*backoff, t.tm.backoffMax)
		}
	}
}

// dialStream opens a stream to the peer; it returns once the peer has
// accepted it.
func (t *Transport) dialStream(s *sender) (*stream, error) {
	url := s.peerURL()
	ctx, cancel := context.WithCancel(s.ctx)
	pr, pw := io.Pipe()
	st := &stream{url: url, pr: pr, pw: pw, cancel: cancel, done: make(chan struct{}), wrTime: t.tm.write}
	st.timer = time.AfterFunc(time.Hour, func() { st.close(errWriteTimeout) })
	st.timer.Stop()
	// The HTTP client waits for its body-reading goroutine before it
	// returns from a cancelled request: the pipe must end with the context.
	context.AfterFunc(ctx, func() { pr.CloseWithError(context.Canceled) })
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peerURL(url, StreamPath), pr)
	if err != nil {
		st.close(err)
		return nil, err
	}
	t.setHeaders(req, s.id)
	req.Header.Set(HeaderStream, StreamVersion)
	req.Header.Set("Expect", "100-continue")
	hello := make(chan error, 1)
	go func() {
		_, err := pw.Write(keepaliveFrame)
		hello <- err
	}()
	// Connecting is bounded: a peer that accepts the connection and never
	// answers does not hold the stream loop.
	guard := time.AfterFunc(t.tm.dial, cancel)
	resp, err := t.streamClient.Do(req)
	if err == nil && resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
		err = &statusError{resp.StatusCode}
	} else if err == nil && resp.Header.Get(HeaderStream) != StreamVersion {
		_ = resp.Body.Close()
		err = errors.New("peer: the peer does not speak stream version " + StreamVersion)
	}
	helloDone := false
	if err == nil {
		// The peer answers after reading the first frame: it was written.
		select {
		case err = <-hello:
			helloDone = true
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			_ = resp.Body.Close()
		}
	}
	if !guard.Stop() && err == nil {
		_ = resp.Body.Close()
		err = context.DeadlineExceeded
	}
	if err != nil {
		st.close(err) // ends the hello write if it is still waiting
		if !helloDone {
			<-hello
		}
		return nil, err
	}
	t.heard(s.id)
	t.goPeer(s, func() { t.readLiveness(s, st, resp.Body) })
	return st, nil
}

// readLiveness reads the receiver's answer body: liveness bytes. The
// stream is closed when it ends or stays silent for the idle timeout.
func (t *Transport) readLiveness(s *sender, st *stream, body io.ReadCloser) {
	defer body.Close()
	idle := time.AfterFunc(t.tm.idle, func() { st.close(errIdle) })
	defer idle.Stop()
	buf := make([]byte, 512)
	for {
		_, err := body.Read(buf)
		if err != nil {
			if err == io.EOF {
				err = errStreamEnded
			}
			st.close(err)
			return
		}
		idle.Reset(t.tm.idle)
		s.heardAt.Store(time.Now().UnixNano())
	}
}

// inStream is the receiving side of one stream.
type inStream struct {
	from    uint64
	rc      *http.ResponseController
	mu      sync.Mutex
	aborted bool
}

// arm sets the read deadline for the next frame, unless the stream was
// aborted.
func (in *inStream) arm(idle time.Duration) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.aborted {
		return false
	}
	_ = in.rc.SetReadDeadline(time.Now().Add(idle))
	return true
}

// abort ends the stream: a read in progress fails at once.
func (in *inStream) abort() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.aborted = true
	_ = in.rc.SetReadDeadline(time.Now())
}

func (in *inStream) isAborted() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.aborted
}

// serveStream receives a stream from a peer (the protocol is described
// above).
func (t *Transport) serveStream(w http.ResponseWriter, r *http.Request) {
	// Every answer closes the connection: a refused request's body never
	// ends, and the server must not try to drain it.
	w.Header().Set("Connection", "close")
	from, ok := t.check(w, r)
	if !ok {
		return
	}
	if v := r.Header.Get(HeaderStream); v != StreamVersion {
		http.Error(w, "unsupported stream version "+v, http.StatusBadRequest)
		return
	}
	in := &inStream{from: from, rc: http.NewResponseController(w)}
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		http.Error(w, "stopping", http.StatusServiceUnavailable)
		return
	}
	t.inbound[in] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.inbound, in)
		t.mu.Unlock()
	}()
	log := t.cfg.Logger.With().Str("peer", in.hexFrom()).Logger()
	br := bufio.NewReaderSize(r.Body, 64<<10)
	var buf []byte
	accepted := false
	var lastAck time.Time
	for {
		if !in.arm(t.tm.idle) {
			return
		}
		var err error
		buf, err = readStreamFrame(br, buf, maxBody)
		if err != nil {
			if !accepted {
				http.Error(w, "bad stream frame", http.StatusBadRequest)
			}
			if err != io.EOF && !in.isAborted() {
				log.Debug().Err(err).Msg("incoming stream ended")
			}
			return
		}
		msgs, err := decodeFrames(buf)
		if err == nil {
			err = t.checkMessages(msgs, from)
		}
		if err != nil {
			if t.cfg.Refused != nil {
				t.cfg.Refused("message")
			}
			if !accepted {
				http.Error(w, err.Error(), http.StatusBadRequest)
			}
			log.Warn().Err(err).Msg("refused a stream frame; closing the stream")
			return
		}
		if !accepted {
			_ = in.rc.EnableFullDuplex()
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set(HeaderStream, StreamVersion)
			w.WriteHeader(http.StatusOK)
			if err := in.rc.Flush(); err != nil {
				return
			}
			accepted, lastAck = true, time.Now()
			log.Debug().Msg("incoming stream accepted")
		}
		if in.isAborted() {
			return
		}
		t.heard(from)
		for _, m := range msgs {
			t.cfg.Receive(m)
		}
		if time.Since(lastAck) >= t.tm.ack {
			_ = in.rc.SetWriteDeadline(time.Now().Add(t.tm.write))
			if _, err := w.Write([]byte{0}); err != nil {
				return
			}
			if err := in.rc.Flush(); err != nil {
				return
			}
			lastAck = time.Now()
		}
	}
}

func (in *inStream) hexFrom() string { return formatID(in.from) }
