package peer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/consensus"
)

// waitFor polls cond for up to 15 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// statsReach waits until the counters for peer id satisfy cond (a
// message is handed to the receiver just before its sender counts it)
// and returns them.
func statsReach(t *testing.T, tr *Transport, id uint64, what string, cond func(PeerStats) bool) PeerStats {
	t.Helper()
	var st PeerStats
	deadline := time.Now().Add(15 * time.Second)
	for st = tr.Stats()[id]; !cond(st); st = tr.Stats()[id] {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: timed out waiting for %s", st, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return st
}

// receive waits (bounded) for the next message on ch.
func receive(t *testing.T, ch <-chan consensus.Message, what string) consensus.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return consensus.Message{}
	}
}

// receiver is a member's receiving side on a loopback HTTP server.
type receiver struct {
	tr   *Transport
	srv  *httptest.Server
	recv chan consensus.Message
}

// startReceiver serves a transport configured by cfg (Receive is set to
// a channel); wrap, if not nil, stands in front of its handler. Cleanup
// stops the transport (ending incoming streams) before closing the server.
func startReceiver(t *testing.T, cfg Config, wrap func(http.Handler) http.Handler) *receiver {
	t.Helper()
	r := &receiver{recv: make(chan consensus.Message, 4096)}
	cfg.Receive = func(m consensus.Message) { r.recv <- m }
	r.tr = New(cfg)
	var h = r.tr.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	r.srv = httptest.NewServer(h)
	t.Cleanup(r.srv.Close)
	t.Cleanup(r.tr.Stop)
	return r
}

// startSender starts a transport; cleanup stops it.
func startSender(t *testing.T, cfg Config) *Transport {
	t.Helper()
	tr := New(cfg)
	t.Cleanup(tr.Stop)
	return tr
}

func heartbeat(from, to, commit uint64) consensus.Message {
	return consensus.Message{Type: consensus.MsgHeartbeat, From: from, To: to, Term: 1, Commit: commit}
}

// openStream starts a raw stream request; the caller writes frames to
// the returned pipe and closes it.
func openStream(t *testing.T, url string, hdr map[string]string) (*http.Response, *io.PipeWriter, error) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, url+StreamPath, pr)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(c.CloseIdleConnections)
	go func() { _, _ = pw.Write(appendStreamFrame(nil, nil)) }()
	resp, err := c.Do(req)
	return resp, pw, err
}

// acceptStream is a fake receiver's side of a stream request: it waits
// for the first byte of the body, then answers 200 with the stream
// headers, reading and writing both ways from then on. False: the body
// ended first.
func acceptStream(w http.ResponseWriter, r *http.Request) bool {
	var one [1]byte
	if _, err := io.ReadFull(r.Body, one[:]); err != nil {
		return false
	}
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	w.Header().Set(HeaderStream, StreamVersion)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	return true
}

func streamHeaders(cluster, from, to string) map[string]string {
	return map[string]string{HeaderCluster: cluster, HeaderFrom: from, HeaderTo: to, HeaderStream: StreamVersion}
}

// Once the stream is up, every message goes over it, in order, and none
// by POST.
func TestStreamCarriesMessages(t *testing.T) {
	b := startReceiver(t, Config{ID: 2, ClusterID: 7}, nil)
	a := startSender(t, Config{ID: 1, ClusterID: 7, Peers: map[uint64]string{2: b.srv.URL}})
	waitFor(t, "the stream to connect", func() bool { return a.Streaming(2) })
	const n = 200
	for i := uint64(1); i <= n; i++ {
		a.Send([]consensus.Message{heartbeat(1, 2, i)})
	}
	for i := uint64(1); i <= n; i++ {
		if m := receive(t, b.recv, "a streamed message"); m.Commit != i || m.From != 1 {
			t.Fatalf("message %d: got %+v", i, m)
		}
	}
	big := consensus.Message{Type: consensus.MsgApp, From: 1, To: 2, Term: 1, Index: 7,
		Entries: []consensus.Entry{{Term: 1, Index: 8, Data: bytes.Repeat([]byte("cairn"), 300_000)}}}
	a.Send([]consensus.Message{big})
	if m := receive(t, b.recv, "a large message"); m.Index != 7 || !bytes.Equal(m.Entries[0].Data, big.Entries[0].Data) {
		t.Fatalf("the large message arrived changed: index %d, %d bytes", m.Index, len(m.Entries[0].Data))
	}
	st := statsReach(t, a, 2, "the messages counted", func(st PeerStats) bool { return st.StreamMessages+st.PostMessages >= n+1 })
	if !st.Streaming || st.StreamMessages != n+1 || st.PostMessages != 0 || st.Failures != 0 || st.Dropped != 0 || st.Bytes < 1_500_000 {
		t.Fatalf("stats %+v: want %d by stream, none by POST, no failures", st, n+1)
	}
	if len(a.Stats()) != 1 {
		t.Fatalf("stats for %d peers, want 1", len(a.Stats()))
	}
}

// A peer without the stream endpoint (an older member: 404) still gets
// every message, by POST; the sender keeps trying the stream.
func TestStreamFallsBackToPost(t *testing.T) {
	var attempts atomic.Int32
	b := startReceiver(t, Config{ID: 2, ClusterID: 7}, func(h http.Handler) http.Handler {
		old := http.NewServeMux() // the endpoints of a member that predates streams
		old.Handle(RaftPath, h)
		old.Handle(RaftPath+"/snapshot", h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == StreamPath {
				attempts.Add(1)
			}
			old.ServeHTTP(w, r)
		})
	})
	a := startSender(t, Config{ID: 1, ClusterID: 7, Peers: map[uint64]string{2: b.srv.URL}})
	const n = 50
	for i := uint64(1); i <= n; i++ {
		a.Send([]consensus.Message{heartbeat(1, 2, i)})
	}
	for i := uint64(1); i <= n; i++ {
		if m := receive(t, b.recv, "a posted message"); m.Commit != i {
			t.Fatalf("message %d: got %+v", i, m)
		}
	}
	waitFor(t, "the stream to be retried", func() bool { return attempts.Load() >= 2 })
	st := statsReach(t, a, 2, "the messages counted", func(st PeerStats) bool { return st.StreamMessages+st.PostMessages >= n })
	if st.Streaming || st.StreamMessages != 0 || st.PostMessages != n || st.Failures != 0 {
		t.Fatalf("stats %+v: want all %d by POST", st, n)
	}
	// The old member's 404 is its answer, not a timeout: it need not
	// drain a body that never ends.
	a.mu.RLock()
	s := a.peers[2]
	a.mu.RUnlock()
	_, err := a.dialStream(s)
	var se *statusError
	if !errors.As(err, &se) || se.code != http.StatusNotFound {
		t.Fatalf("dialing an older member: %v, want its 404", err)
	}
}

// The stream comes back after the receiving server is closed and started
// again on the same address.
func TestStreamReconnects(t *testing.T) {
	recv := make(chan consensus.Message, 64)
	b := New(Config{ID: 2, ClusterID: 7, Receive: func(m consensus.Message) { recv <- m }})
	t.Cleanup(b.Stop)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := &http.Server{Handler: b.Handler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	unreachable := make(chan uint64, 1024)
	a := startSender(t, Config{ID: 1, ClusterID: 7, Peers: map[uint64]string{2: "http://" + addr},
		Unreachable: func(id uint64) {
			select {
			case unreachable <- id:
			default:
			}
		}})
	waitFor(t, "the stream to connect", func() bool { return a.Streaming(2) })
	a.Send([]consensus.Message{heartbeat(1, 2, 1)})
	receive(t, recv, "the first message")

	_ = srv.Close()
	waitFor(t, "the sender to see the stream go", func() bool { return !a.Streaming(2) })
	a.Send([]consensus.Message{heartbeat(1, 2, 2)}) // goes by POST, refused
	select {
	case id := <-unreachable:
		if id != 2 {
			t.Fatalf("unreachable %d", id)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the failed POST was not reported")
	}

	var ln2 net.Listener
	waitFor(t, "the address to be free again", func() bool {
		ln2, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv2 := &http.Server{Handler: b.Handler()}
	go func() { _ = srv2.Serve(ln2) }()
	t.Cleanup(func() { _ = srv2.Close() })
	waitFor(t, "the stream to reconnect", func() bool { return a.Streaming(2) })
	before := a.Stats()[2]
	a.Send([]consensus.Message{heartbeat(1, 2, 3)})
	if m := receive(t, recv, "a message on the new stream"); m.Commit != 3 {
		t.Fatalf("got %+v", m)
	}
	after := statsReach(t, a, 2, "the message counted", func(st PeerStats) bool {
		return st.StreamMessages+st.PostMessages > before.StreamMessages+before.PostMessages
	})
	if after.StreamMessages != before.StreamMessages+1 || after.PostMessages != before.PostMessages {
		t.Fatalf("stats before %+v after %+v: want one more by stream", before, after)
	}
}

// RemovePeer ends delivery to the peer and every goroutine it had
// (sender, stream, the receiver's handler), whether the stream was up or
// the peer unreachable.
func TestRemovePeerStopsDelivery(t *testing.T) {
	b := startReceiver(t, Config{ID: 2, ClusterID: 7}, nil)
	a := startSender(t, Config{ID: 1, ClusterID: 7})
	before := runtime.NumGoroutine()

	a.AddPeer(2, b.srv.URL)
	a.AddPeer(3, "http://127.0.0.1:1") // refuses connections
	a.Send([]consensus.Message{heartbeat(1, 3, 1)})
	waitFor(t, "the stream to connect", func() bool { return a.Streaming(2) })
	a.Send([]consensus.Message{heartbeat(1, 2, 1)})
	receive(t, b.recv, "a message before removal")
	if during := runtime.NumGoroutine(); during <= before {
		t.Fatalf("%d goroutines with two peers, %d before", during, before)
	}

	a.RemovePeer(2)
	a.RemovePeer(3)
	a.RemovePeer(4) // unknown: nothing
	if a.Streaming(2) || len(a.Peers()) != 0 || len(a.Stats()) != 0 {
		t.Fatalf("after removal: streaming %v, peers %v, stats %v", a.Streaming(2), a.Peers(), a.Stats())
	}
	a.Send([]consensus.Message{heartbeat(1, 2, 2), heartbeat(1, 3, 2)})
	settled := false
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if runtime.NumGoroutine() <= before {
			settled = true
			break
		}
	}
	if !settled {
		var dump bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Fatalf("%d goroutines after removal, %d before:\n%s", runtime.NumGoroutine(), before, dump.String())
	}
	// No goroutine that could deliver is left: nothing arrived.
	select {
	case m := <-b.recv:
		t.Fatalf("delivered after RemovePeer: %+v", m)
	default:
	}
}

// AddPeer starts traffic to a new peer; UpdatePeer (or AddPeer of a known
// ID) sends the next messages, and the stream, to the new URL.
func TestAddAndUpdatePeerRedirect(t *testing.T) {
	old := startReceiver(t, Config{ID: 2, ClusterID: 7}, nil)
	moved := startReceiver(t, Config{ID: 2, ClusterID: 7}, nil)
	a := startSender(t, Config{ID: 1, ClusterID: 7})
	if len(a.Peers()) != 0 {
		t.Fatalf("peers %v", a.Peers())
	}
	a.AddPeer(1, old.srv.URL) // itself: ignored
	a.AddPeer(2, old.srv.URL)
	waitFor(t, "the stream to connect", func() bool { return a.Streaming(2) })
	a.Send([]consensus.Message{heartbeat(1, 2, 1)})
	receive(t, old.recv, "a message at the first URL")

	a.UpdatePeer(2, moved.srv.URL)
	a.UpdatePeer(9, moved.srv.URL) // unknown: ignored
	if p := a.Peers(); len(p) != 1 || p[2] != moved.srv.URL {
		t.Fatalf("peers %v", p)
	}
	for i := uint64(100); i < 120; i++ {
		a.Send([]consensus.Message{heartbeat(1, 2, i)})
	}
	for i := uint64(100); i < 120; i++ {
		if m := receive(t, moved.recv, "a message at the new URL"); m.Commit != i {
			t.Fatalf("at the new URL: got %+v, want commit %d", m, i)
		}
	}
	waitFor(t, "the stream to the new URL", func() bool { return a.Streaming(2) })
	before := statsReach(t, a, 2, "the messages counted", func(st PeerStats) bool { return st.StreamMessages+st.PostMessages >= 21 })
	a.Send([]consensus.Message{heartbeat(1, 2, 200)})
	if m := receive(t, moved.recv, "a streamed message at the new URL"); m.Commit != 200 {
		t.Fatalf("got %+v", m)
	}
	after := statsReach(t, a, 2, "the message counted", func(st PeerStats) bool {
		return st.StreamMessages+st.PostMessages > before.StreamMessages+before.PostMessages
	})
	if after.StreamMessages != before.StreamMessages+1 {
		t.Fatalf("stats before %+v after %+v: want one more by stream", before, after)
	}
	for len(old.recv) > 0 {
		if m := <-old.recv; m.Commit >= 100 {
			t.Fatalf("the old URL got %+v after the update", m)
		}
	}

	a.AddPeer(2, old.srv.URL) // known: an update
	if p := a.Peers(); p[2] != old.srv.URL {
		t.Fatalf("peers %v", p)
	}
	a.Send([]consensus.Message{heartbeat(1, 2, 300)})
	if m := receive(t, old.recv, "a message back at the first URL"); m.Commit != 300 {
		t.Fatalf("got %+v", m)
	}
}

// A removed member's requests are answered 410 Gone, on every endpoint;
// the removed member's transport tells it at each refusal, naming the
// peer.
func TestRemovedMemberRefused(t *testing.T) {
	b := startReceiver(t, Config{ID: 2, ClusterID: 7, IsRemoved: func(id uint64) bool { return id == 1 }}, nil)
	msg := heartbeat(1, 2, 1)
	hdr := map[string]string{HeaderCluster: "7", HeaderFrom: "1", HeaderTo: "2"}
	if code := post(t, b.srv.URL+RaftPath, hdr, appendFrame(nil, &msg)); code != http.StatusGone {
		t.Fatalf("POST from a removed member: %d", code)
	}
	if code := post(t, b.srv.URL+RaftPath+"/snapshot", hdr, nil); code != http.StatusGone {
		t.Fatalf("snapshot from a removed member: %d", code)
	}
	resp, pw, err := openStream(t, b.srv.URL, streamHeaders("7", "1", "2"))
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pw.Close()
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(text), "removed") {
		t.Fatalf("stream from a removed member: %d %q", resp.StatusCode, text)
	}

	var removed, by atomic.Int32
	removedc := make(chan struct{}, 1)
	a := startSender(t, Config{ID: 1, ClusterID: 7, Peers: map[uint64]string{2: b.srv.URL},
		Removed: func(id uint64) {
			removed.Add(1)
			by.Store(int32(id))
			select {
			case removedc <- struct{}{}:
			default:
			}
		}})
	a.Send([]consensus.Message{msg})
	select {
	case <-removedc:
	case <-time.After(15 * time.Second):
		t.Fatal("Removed not called")
	}
	for i := uint64(2); i < 5; i++ {
		failures := a.Stats()[2].Failures
		a.Send([]consensus.Message{heartbeat(1, 2, i)})
		waitFor(t, "another refused send", func() bool { return a.Stats()[2].Failures > failures })
	}
	if n := removed.Load(); n < 4 || by.Load() != 2 || a.Streaming(2) {
		t.Fatalf("Removed called %d times, by %d (streaming %v), want once per refusal (at least 4), by 2", n, by.Load(), a.Streaming(2))
	}
	if len(b.recv) != 0 {
		t.Fatalf("a removed member's message was delivered")
	}
}

// The stream endpoint refuses what /raft refuses, answering at once even
// though the request body never ends: another cluster, another member,
// an unsupported version, a first frame with a message from someone else.
func TestStreamRefusesStrangers(t *testing.T) {
	b := startReceiver(t, Config{ID: 2, ClusterID: 7}, nil)
	v2 := streamHeaders("7", "1", "2")
	v2[HeaderStream] = "2"
	for _, c := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"other cluster", streamHeaders("8", "1", "2"), http.StatusPreconditionFailed},
		{"other member", streamHeaders("7", "1", "3"), http.StatusPreconditionFailed},
		{"version", v2, http.StatusBadRequest},
	} {
		resp, pw, err := openStream(t, b.srv.URL, c.hdr)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		pw.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}

	// A stream that is accepted and then carries a message from another
	// member is closed.
	resp, pw, err := openStream(t, b.srv.URL, streamHeaders("7", "1", "2"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderStream) != StreamVersion {
		t.Fatalf("good stream: %d %v", resp.StatusCode, resp.Header)
	}
	good, foreign := heartbeat(1, 2, 1), heartbeat(3, 2, 2)
	if _, err := pw.Write(appendStreamFrame(nil, appendFrame(nil, &good))); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, b.recv, "a message on a raw stream"); m.Commit != 1 {
		t.Fatalf("got %+v", m)
	}
	_, _ = pw.Write(appendStreamFrame(nil, appendFrame(nil, &foreign)))
	if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream ended with %v", err)
	}
	resp.Body.Close()
	pw.Close()
	if len(b.recv) != 0 {
		t.Fatalf("the foreign message was delivered")
	}

	// A transport of another cluster gets no stream and delivers nothing.
	unreachable := make(chan uint64, 64)
	a := startSender(t, Config{ID: 1, ClusterID: 8, Peers: map[uint64]string{2: b.srv.URL},
		Unreachable: func(id uint64) {
			select {
			case unreachable <- id:
			default:
			}
		}})
	a.Send([]consensus.Message{heartbeat(1, 2, 3)})
	select {
	case <-unreachable:
	case <-time.After(15 * time.Second):
		t.Fatal("a refused message was not reported")
	}
	if a.Streaming(2) || len(b.recv) != 0 {
		t.Fatalf("another cluster: streaming %v, delivered %d", a.Streaming(2), len(b.recv))
	}
}

// A receiver closes a stream on which nothing arrives for its idle
// timeout.
func TestStreamReceiverIdleTimeout(t *testing.T) {
	r := &receiver{recv: make(chan consensus.Message, 16)}
	r.tr = New(Config{ID: 2, ClusterID: 7, Receive: func(m consensus.Message) { r.recv <- m }})
	r.tr.tm.idle = 200 * time.Millisecond
	r.srv = httptest.NewServer(r.tr.Handler())
	t.Cleanup(r.srv.Close)
	t.Cleanup(r.tr.Stop)
	resp, pw, err := openStream(t, r.srv.URL, streamHeaders("7", "1", "2"))
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	// The body ends (the client's own timeout would fail this instead).
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// A sender closes a stream on which the receiver stays silent (a peer
// that stopped answering) and reconnects.
func TestStreamSenderDropsSilentPeer(t *testing.T) {
	var conns atomic.Int32
	silent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		if !acceptStream(w, r) {
			return
		}
		_, _ = io.Copy(io.Discard, r.Body) // never a liveness byte
	})
	srv := httptest.NewServer(silent)
	t.Cleanup(srv.Close)
	a := New(Config{ID: 1, ClusterID: 7})
	t.Cleanup(a.Stop)
	a.tm.idle = 200 * time.Millisecond
	a.tm.keepalive = 20 * time.Millisecond
	a.AddPeer(2, srv.URL)
	waitFor(t, "the silent stream to be dropped and redialed", func() bool { return conns.Load() >= 3 })
}

// A stream write that fails (here: the receiver stopped reading, and the
// write timed out) reports the peer unreachable, like a failed POST.
func TestStreamWriteFailureReported(t *testing.T) {
	release := make(chan struct{})
	stuck := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !acceptStream(w, r) {
			return
		}
		select { // accepted, and never reads again
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(stuck)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	unreachable := make(chan uint64, 1024)
	a := New(Config{ID: 1, ClusterID: 7, Unreachable: func(id uint64) {
		select {
		case unreachable <- id:
		default:
		}
	}})
	t.Cleanup(a.Stop)
	a.tm.write = 50 * time.Millisecond
	a.AddPeer(2, srv.URL)
	waitFor(t, "the stream to connect", func() bool { return a.Streaming(2) })
	big := heartbeat(1, 2, 1)
	big.Type, big.Entries = consensus.MsgApp, []consensus.Entry{{Term: 1, Index: 1, Data: make([]byte, 256<<10)}}
	a.mu.RLock()
	queue := a.peers[2].queue
	a.mu.RUnlock()
	deadline := time.After(15 * time.Second)
	for reported := false; !reported; {
		if len(queue) == 0 {
			a.Send([]consensus.Message{big})
		}
		select {
		case id := <-unreachable:
			if id != 2 {
				t.Fatalf("unreachable %d", id)
			}
			reported = true
		case <-deadline:
			t.Fatalf("a stuck stream was not reported; stats %+v", a.Stats()[2])
		case <-time.After(5 * time.Millisecond):
		}
	}
	if st := a.Stats()[2]; st.Failures == 0 || st.PostMessages != 0 {
		t.Fatalf("stats %+v: want a failed stream write", st)
	}
}

// Frames round-trip; an empty frame is a keepalive; frames over the
// limit, truncated frames and bad lengths are refused.
func TestStreamFrames(t *testing.T) {
	var batch []byte
	for _, m := range sampleMessages() {
		batch = appendFrame(batch, &m)
	}
	var wire []byte
	wire = appendStreamFrame(wire, nil)
	wire = appendStreamFrame(wire, batch)
	r := bufioReader(wire)
	buf, err := readStreamFrame(r, nil, maxBody)
	if err != nil || len(buf) != 0 {
		t.Fatalf("keepalive: %x %v", buf, err)
	}
	buf, err = readStreamFrame(r, buf, maxBody)
	if err != nil || !bytes.Equal(buf, batch) {
		t.Fatalf("batch: %v", err)
	}
	if _, err := readStreamFrame(r, buf, maxBody); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
	for name, b := range map[string][]byte{
		"over the limit": appendStreamFrame(nil, make([]byte, 11)),
		"huge":           binaryUvarint(maxBody + 1),
		"truncated":      appendStreamFrame(nil, batch)[:20],
		"bad length":     bytes.Repeat([]byte{0xff}, 11),
		"cut length":     {0x80},
	} {
		if _, err := readStreamFrame(bufioReader(b), nil, 10); err == nil || err == io.EOF {
			t.Errorf("%s: %v, want an error", name, err)
		}
	}
	if _, err := readStreamFrame(bufioReader(binaryUvarint(maxBody+1)), nil, maxBody); !errors.Is(err, ErrBadMessage) {
		t.Errorf("a frame over maxBody: %v", err)
	}
}

// FuzzStreamFrames: reading a stream never panics nor reads a frame over
// the limit, and what it accepts re-encodes to a stream that reads the
// same.
func FuzzStreamFrames(f *testing.F) {
	var batch []byte
	for _, m := range sampleMessages() {
		batch = appendFrame(batch, &m)
	}
	f.Add(appendStreamFrame(appendStreamFrame(nil, nil), batch))
	f.Add([]byte{0, 0, 3, 1, 2, 3})
	f.Add(binaryUvarint(1 << 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 1 << 16
		r := bufioReader(b)
		var got [][]consensus.Message
		var buf []byte
		for {
			var err error
			buf, err = readStreamFrame(r, buf, limit)
			if err != nil {
				break
			}
			if len(buf) > limit {
				t.Fatalf("frame of %d bytes over the limit", len(buf))
			}
			msgs, err := decodeFrames(buf)
			if err != nil {
				break
			}
			got = append(got, msgs)
		}
		var again []byte
		for _, msgs := range got {
			var batch []byte
			for _, m := range msgs {
				batch = appendFrame(batch, &m)
			}
			again = appendStreamFrame(again, batch)
		}
		r = bufioReader(again)
		for i, want := range got {
			buf, err := readStreamFrame(r, nil, limit)
			if err != nil {
				t.Fatalf("re-read frame %d: %v", i, err)
			}
			msgs, err := decodeFrames(buf)
			if err != nil || len(msgs) != len(want) {
				t.Fatalf("re-read frame %d: %d messages, %v; want %d", i, len(msgs), err, len(want))
			}
			for j := range msgs {
				if string(appendMessage(nil, &msgs[j])) != string(appendMessage(nil, &want[j])) {
					t.Fatalf("frame %d message %d changed", i, j)
				}
			}
		}
	})
}

// Peers change while messages are sent and stats read, from many
// goroutines (run with -race); Stop then ends everything.
func TestPeersChangeConcurrently(t *testing.T) {
	b := startReceiver(t, Config{ID: 2, ClusterID: 7}, nil)
	a := New(Config{ID: 1, ClusterID: 7, QueueSize: 64, Unreachable: func(uint64) {}})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				id := uint64(2 + (g+i)%3)
				switch i % 5 {
				case 0:
					a.AddPeer(id, b.srv.URL)
				case 1:
					a.UpdatePeer(id, b.srv.URL+"/")
				case 2:
					a.RemovePeer(id)
				default:
					a.Send([]consensus.Message{heartbeat(1, id, uint64(i))})
				}
				_ = a.Peers()
				_ = a.Stats()
				_ = a.Streaming(id)
			}
		}()
	}
	wg.Wait()
	a.Stop()
	a.Stop() // a second Stop is harmless
	a.Send([]consensus.Message{heartbeat(1, 2, 1)})
	a.AddPeer(5, b.srv.URL)
	if _, ok := a.Peers()[5]; ok {
		t.Fatal("a peer added after Stop")
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func binaryUvarint(v uint64) []byte { return binary.AppendUvarint(nil, v) }

// ActiveWithin: a peer is up while the stream to it is connected and it
// gave a sign of life within the window; one that goes silent (its stream
// still open) is not, nor one whose stream broke.
func TestActiveWithin(t *testing.T) {
	b := startReceiver(t, Config{ID: 2, ClusterID: 7}, nil)
	a := startSender(t, Config{ID: 1, ClusterID: 7, Peers: map[uint64]string{2: b.srv.URL}})
	waitFor(t, "the stream to connect", func() bool { return a.Streaming(2) })
	if !a.ActiveWithin(2, time.Minute) {
		t.Fatal("a connected peer is not active")
	}
	if a.ActiveWithin(3, time.Minute) {
		t.Fatal("a stranger is active")
	}
	b.srv.CloseClientConnections()
	b.tr.Stop()
	waitFor(t, "the stream to break", func() bool { return !a.Streaming(2) })
	if a.ActiveWithin(2, time.Minute) {
		t.Fatal("a peer whose stream broke is active")
	}

	// A peer that accepts the stream and then never answers.
	silent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !acceptStream(w, r) {
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
	})
	srv := httptest.NewServer(silent)
	t.Cleanup(srv.Close)
	c := startSender(t, Config{ID: 1, ClusterID: 7})
	c.tm.keepalive = 20 * time.Millisecond
	c.AddPeer(4, srv.URL)
	waitFor(t, "the stream to the silent peer to connect", func() bool { return c.Streaming(4) })
	waitFor(t, "the silent peer to count as down", func() bool { return !c.ActiveWithin(4, 200*time.Millisecond) })
	if !c.Streaming(4) {
		t.Fatal("the stream closed: the test shows nothing about silence")
	}
}
