package httpapi_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/internal/etcdtest"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// The two sides of the differential test: a real etcd started from PATH and
// Cairn's handler over a server.Local, both spoken to with hand-written
// HTTP/1.1 so that request targets go out byte for byte (Go's client would
// refuse or rewrite malformed escapes and unclean paths).

const (
	// opTimeout bounds one request. Only a server that hangs reaches it.
	opTimeout = 10 * time.Second
	// watchTimeout bounds a watch that should be answered from history or
	// by an event the test has just written.
	watchTimeout = 5 * time.Second
)

// diffTarget is one server under comparison.
type diffTarget struct {
	name string
	addr string // host:port of the client URL
	// base is X-Etcd-Index before the first operation. Index values are
	// compared relative to it (API.md "Where Cairn deliberately differs" 4).
	base uint64
}

// requireEtcd returns etcd's path, or skips (fails under
// CAIRN_REQUIRE_ETCD=1) when it is not installed.
func requireEtcd(t *testing.T) string { return etcdtest.Require(t, "etcd") }

// startEtcd starts a fresh single-member etcd with the v2 API on loopback
// and stops it (by its PID) when the test ends.
func startEtcd(t *testing.T, bin string) *diffTarget {
	t.Helper()
	url, index := etcdtest.Start(t, bin)
	// Index values are compared relative to base (API.md "Where Cairn
	// deliberately differs" 4).
	return &diffTarget{name: "etcd", addr: strings.TrimPrefix(url, "http://"), base: index}
}

// startCairn serves Cairn's handler over a fresh in-memory member.
func startCairn(t *testing.T) *diffTarget {
	t.Helper()
	st := store.New(store.DefaultEventHistory)
	be := server.NewLocal(st, 0xca172, nil)
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Config{Backend: be}))
	t.Cleanup(func() {
		// Close waits for every handler to return; a handler that ignores
		// its client going away would hang the test binary, so say so.
		done := make(chan struct{})
		go func() {
			srv.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(opTimeout):
			t.Errorf("cairn: a handler was still running %v after its client disconnected", opTimeout)
		}
		be.Close()
	})
	tg := &diffTarget{name: "cairn", addr: srv.Listener.Addr().String()}
	r := tg.do(&wireRequest{method: "GET", target: "/v2/keys/"}, opTimeout)
	idx, err := strconv.ParseUint(r.header.Get("X-Etcd-Index"), 10, 64)
	if r.err != nil || err != nil {
		t.Fatalf("cairn: reading the start index: status %d, %v, X-Etcd-Index %q", r.status, r.err, r.header.Get("X-Etcd-Index"))
	}
	tg.base = idx
	return tg
}

// wireRequest is a request as it goes on the wire, placeholders resolved.
type wireRequest struct {
	method string
	target string // request-target, sent verbatim
	ctype  string // Content-Type; none when empty
	body   []byte
	// withBody sends Content-Length (and body) even when body is empty.
	withBody bool
	// authorization is sent as the Authorization header when not empty.
	authorization string
}

// wireResponse is what came back. err is set when no complete response
// arrived; timedOut when the deadline passed (the body holds what came).
type wireResponse struct {
	status   int
	header   http.Header
	body     []byte
	err      error
	timedOut bool
}

// pendingResp is a request whose response is being read.
type pendingResp struct {
	conn net.Conn
	hdr  chan error // one value: ReadResponse's outcome
	resp *http.Response
	body *bufio.Reader
}

// start dials, sends r and reads the response head in the background. The
// whole exchange must end by deadline.
func (tg *diffTarget) start(r *wireRequest, deadline time.Time) (*pendingResp, error) {
	conn, err := net.DialTimeout("tcp", tg.addr, opTimeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(deadline)
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.method, r.target, tg.addr)
	if r.ctype != "" {
		fmt.Fprintf(&head, "Content-Type: %s\r\n", r.ctype)
	}
	if r.authorization != "" {
		fmt.Fprintf(&head, "Authorization: %s\r\n", r.authorization)
	}
	if r.withBody || len(r.body) > 0 {
		fmt.Fprintf(&head, "Content-Length: %d\r\n", len(r.body))
	}
	head.WriteString("Connection: close\r\n\r\n")
	p := &pendingResp{conn: conn, hdr: make(chan error, 1)}
	// The body is written alongside reading, because a server may answer
	// (and stop reading) before a large body is through.
	go func() {
		if _, err := conn.Write(head.Bytes()); err != nil {
			return
		}
		_, _ = conn.Write(r.body)
	}()
	go func() {
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, &http.Request{Method: r.method})
		if err == nil {
			p.resp = resp
			p.body = bufio.NewReader(resp.Body)
		}
		p.hdr <- err
	}()
	return p, nil
}

// waitHead waits up to d for the response head.
func (p *pendingResp) waitHead(d time.Duration) (bool, error) {
	select {
	case err := <-p.hdr:
		p.hdr <- err // keep it for a later call
		return true, err
	case <-time.After(d):
		return false, nil
	}
}

// readLine reads one newline-terminated chunk of the body (a stream event).
func (p *pendingResp) readLine(d time.Duration) ([]byte, error) {
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	return p.body.ReadBytes('\n')
}

func (p *pendingResp) close() { p.conn.Close() }

// finish reads the rest of the response.
func (p *pendingResp) finish() wireResponse {
	defer p.conn.Close()
	if err := <-p.hdr; err != nil {
		return wireResponse{err: err, timedOut: isNetTimeout(err)}
	}
	w := wireResponse{status: p.resp.StatusCode, header: p.resp.Header}
	w.body, w.err = io.ReadAll(p.body)
	w.timedOut = isNetTimeout(w.err)
	return w
}

// isNetTimeout reports whether err is a deadline that passed.
func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// do runs one request to completion (or to d).
func (tg *diffTarget) do(r *wireRequest, d time.Duration) wireResponse {
	p, err := tg.start(r, time.Now().Add(d))
	if err != nil {
		return wireResponse{err: err}
	}
	return p.finish()
}
