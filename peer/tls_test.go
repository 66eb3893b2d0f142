package peer

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/internal/tlsutil"
	"github.com/cairnkv/cairn/internal/tlsutil/tlstest"
)

// tlsSource is a member's peer TLS: its certificate from ca, named cn,
// verifying others against trusted, requiring their certificates.
func tlsSource(t *testing.T, ca, trusted *tlstest.CA, cn string) *tlsutil.Source {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := ca.Issue(t, cn, tlstest.Peer, "127.0.0.1").Write(t, dir, "peer")
	s, err := tlsutil.New("peer", tlsutil.Files{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: trusted.WriteCA(t, dir, "ca.crt")},
		tlsutil.Options{ClientCertAuth: true, AllowedCN: "member"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serveTLS serves h on an https loopback URL with src's server config,
// as cairn serves an https listen-peer-url.
func serveTLS(t *testing.T, src *tlsutil.Source, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(tls.NewListener(ln, src.ServerConfig())) }()
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

// Members with https peer URLs and mutual TLS exchange messages by POST
// and by stream, and a snapshot; a member whose certificate is from
// another CA, or has another CommonName, gets nothing through.
func TestTransportOverMutualTLS(t *testing.T) {
	ca, stranger := tlstest.NewCA(t, "cairn-ca"), tlstest.NewCA(t, "stranger-ca")
	recv := make(chan consensus.Message, 64)
	snapBody := make(chan []byte, 1)
	b := New(Config{ID: 2, ClusterID: 7, Receive: func(m consensus.Message) { recv <- m },
		ReceiveSnapshot: func(m consensus.Message, r io.Reader) error {
			data, err := io.ReadAll(r)
			snapBody <- data
			return err
		}})
	t.Cleanup(b.Stop)
	urlB := serveTLS(t, tlsSource(t, ca, ca, "member"), b.Handler())

	snapDone := make(chan bool, 1)
	a := startSender(t, Config{ID: 1, ClusterID: 7, Peers: map[uint64]string{2: urlB},
		DialTLSContext: tlsSource(t, ca, ca, "member").DialTLSContext(5 * time.Second),
		SnapshotDone:   func(_ uint64, failed bool) { snapDone <- failed },
		WriteSnapshot:  func(w io.Writer) error { _, err := w.Write([]byte("state")); return err }})
	a.Send([]consensus.Message{heartbeat(1, 2, 1)}) // by POST or stream: whichever is up first
	if m := receive(t, recv, "a message over TLS"); m.From != 1 || m.Commit != 1 {
		t.Fatalf("got %+v", m)
	}
	waitFor(t, "the stream to connect over TLS", func() bool { return a.Streaming(2) })
	a.Send([]consensus.Message{heartbeat(1, 2, 42)})
	for m := receive(t, recv, "a message"); m.Commit != 42; m = receive(t, recv, "the streamed message") {
	}
	// The sender counts a streamed message once its write returned, which
	// may be after the receiver has it.
	waitFor(t, "a message counted as streamed", func() bool { return a.Stats()[2].StreamMessages > 0 })
	a.Send([]consensus.Message{{Type: consensus.MsgSnap, From: 1, To: 2, Term: 1, Snapshot: &consensus.Snapshot{Meta: consensus.SnapshotMeta{Index: 5, Term: 1}}}})
	select {
	case data := <-snapBody:
		if string(data) != "state" {
			t.Fatalf("snapshot body %q", data)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no snapshot arrived over TLS")
	}
	if failed := <-snapDone; failed {
		t.Fatal("the snapshot was reported failed")
	}

	for name, src := range map[string]*tlsutil.Source{
		"another CA":         tlsSource(t, stranger, ca, "member"),
		"another CommonName": tlsSource(t, ca, ca, "intruder"),
	} {
		unreachable := make(chan uint64, 64)
		c := startSender(t, Config{ID: 3, ClusterID: 7, Peers: map[uint64]string{2: urlB},
			DialTLSContext: src.DialTLSContext(5 * time.Second),
			Unreachable:    func(id uint64) { unreachable <- id }})
		c.Send([]consensus.Message{heartbeat(3, 2, 99)})
		select {
		case <-unreachable:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: the refused send was not reported", name)
		}
		if c.Streaming(2) {
			t.Fatalf("%s: a stream connected", name)
		}
		c.Stop()
	}
	select {
	case m := <-recv:
		if m.From == 3 {
			t.Fatalf("a message from a refused member arrived: %+v", m)
		}
	default:
	}
}
