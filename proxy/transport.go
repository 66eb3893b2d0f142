package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"
)

var errZeroEndpoints = errors.New("httpproxy: zero endpoints currently available")

// unansweredError: no member answered; n members were tried. sent: the
// last one may have received the request, which is why no other was
// tried.
type unansweredError struct {
	n    int
	sent bool
	err  error
}

func (e *unansweredError) Error() string {
	return "httpproxy: no response: " + e.err.Error()
}

func (e *unansweredError) Unwrap() error { return e.err }

// picker is the reverse proxy's Transport: it sends each request to the
// members in turn until one answers, marking those that fail.
type picker struct{ p *Proxy }

func (t *picker) RoundTrip(req *http.Request) (*http.Response, error) {
	p := t.p
	eps := p.eps.available()
	if len(eps) == 0 {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errZeroEndpoints
	}
	ctx := req.Context()
	body, _ := ctx.Value(bodyKey{}).(*replayBody)
	var lastErr error
	for i, ep := range eps {
		u, err := url.Parse(ep)
		if err != nil {
			continue
		}
		var gotConn, wrote atomic.Bool
		trace := &httptrace.ClientTrace{
			GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
			WroteRequest: func(info httptrace.WroteRequestInfo) {
				if info.Err == nil {
					wrote.Store(true)
				}
			},
		}
		out := req.Clone(httptrace.WithClientTrace(ctx, trace))
		out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
		if body != nil {
			out.Body = body.attempt()
			if body.complete() {
				out.GetBody = func() (io.ReadCloser, error) { return body.attempt(), nil }
			}
		}
		resp, err := p.tr.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = err
		p.eps.fail(ep, err)
		sent := wrote.Load()
		switch {
		case sent && !idempotent(req.Method):
			// The member may have applied it: the outcome is unknown,
			// and sending it again could apply it twice.
			return nil, &unansweredError{n: i + 1, sent: true, err: err}
		case body == nil || body.complete():
		case !gotConn.Load() && !body.used():
			// A streamed body, not read yet: no connection was made.
		default:
			return nil, &unansweredError{n: i + 1, err: err}
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no usable endpoint URL")
	}
	return nil, &unansweredError{n: len(eps), err: lastErr}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// bodyKey is the context key of a request's *replayBody.
type bodyKey struct{}

// replayBody holds a request body so that it can be sent more than once:
// whole when it is at most the bound, otherwise the first bound bytes and
// the rest of the stream, which can be sent only once.
type replayBody struct {
	buf  []byte
	rest io.ReadCloser // nil when buf is the whole body
	read atomic.Bool   // the stream was read by some attempt
}

func newReplayBody(r io.ReadCloser, bound int64) (*replayBody, error) {
	buf, err := io.ReadAll(io.LimitReader(r, bound+1))
	if err != nil {
		return nil, err
	}
	b := &replayBody{buf: buf}
	if int64(len(buf)) > bound {
		b.rest = r
	}
	return b, nil
}

func (b *replayBody) complete() bool { return b.rest == nil }
func (b *replayBody) used() bool     { return b.read.Load() }

// Read and Close make *replayBody a request body for the reverse proxy;
// the picker replaces it with an attempt.
func (b *replayBody) Read([]byte) (int, error) { return 0, io.EOF }
func (b *replayBody) Close() error             { return nil }

// attempt returns a reader for one attempt: a fresh one over the buffer
// when the body is whole, otherwise the one stream (marked used on its
// first read).
func (b *replayBody) attempt() io.ReadCloser {
	if b.rest == nil {
		return io.NopCloser(bytes.NewReader(b.buf))
	}
	return &streamAttempt{b: b, r: io.MultiReader(bytes.NewReader(b.buf), b.rest)}
}

type streamAttempt struct {
	b *replayBody
	r io.Reader
}

func (s *streamAttempt) Read(p []byte) (int, error) {
	s.b.read.Store(true)
	return s.r.Read(p)
}

// Close leaves the client's body to the server, which closes it.
func (s *streamAttempt) Close() error { return nil }

// handshakeTimeout bounds a TLS handshake with a member, as
// http.Transport's default does.
const handshakeTimeout = 10 * time.Second

// newTransport is an http.Transport with etcd's proxy timeouts: dial,
// and a deadline for each read and each write on the connection (zero:
// none), under TLS too. tlsFor gives the config of each connection to an
// https URL (nil: Go's defaults).
func newTransport(tlsFor func(serverName string) *tls.Config, dial, read, write time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	dialContext := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || (read == 0 && write == 0) {
			return c, err
		}
		return &timeoutConn{Conn: c, read: read, write: write}, nil
	}
	tr := &http.Transport{
		Proxy:               nil, // members are reached directly, never through $HTTP_PROXY
		DialContext:         dialContext,
		TLSHandshakeTimeout: handshakeTimeout,
		MaxIdleConnsPerHost: 128, // as etcd: 128 concurrent requests reuse connections
		IdleConnTimeout:     90 * time.Second,
	}
	if tlsFor != nil {
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			cfg := tlsFor(host)
			if cfg == nil {
				cfg = &tls.Config{ServerName: host}
			} else if cfg.ServerName == "" {
				cfg = cfg.Clone()
				cfg.ServerName = host
			}
			c, err := dialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
			defer cancel()
			tc := tls.Client(c, cfg)
			if err := tc.HandshakeContext(hctx); err != nil {
				c.Close()
				return nil, err
			}
			return tc, nil
		}
	}
	return tr
}

// timeoutConn sets a deadline before each read and write.
type timeoutConn struct {
	net.Conn
	read, write time.Duration
}

func (c *timeoutConn) Read(b []byte) (int, error) {
	if c.read > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.read)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

func (c *timeoutConn) Write(b []byte) (int, error) {
	if c.write > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.write)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}
