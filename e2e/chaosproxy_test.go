package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The chaos harness's network faults: every member advertises, as its
// peer URL, the URL of a proxy run by the test process, which forwards to
// the member's real peer listener. A proxy knows which member it stands
// in front of, reads the sender from X-Cairn-From on every peer request,
// and refuses or blackholes what a blocked sender sends. Blocking a pair
// also cuts the requests it has in flight (the long-lived /raft/stream
// ones above all), so a partition takes effect at once and not when a
// stream happens to reconnect. No root, iptables or network namespace is
// needed.

// chBlock says what a proxy does with a request from a blocked sender.
type chBlock int

const (
	chPass chBlock = iota
	// chRefuse answers 503 at once (a link that fails fast).
	chRefuse
	// chBlackhole answers nothing: the request is held until the pair is
	// healed, the sender gives up or chBlackholeMax passes, and then its
	// connection is dropped (a link that loses everything).
	chBlackhole
)

func (b chBlock) String() string {
	switch b {
	case chRefuse:
		return "refuse"
	case chBlackhole:
		return "blackhole"
	}
	return "pass"
}

// chBlackholeMax bounds how long a blackholed request is held.
const chBlackholeMax = 30 * time.Second

// chPair is a direction of the network: requests sent by member from to
// member to (indexes into the cluster's members).
type chPair struct{ from, to int }

// chFlight is one request being forwarded; abort cuts it, unless its
// handler is done.
type chFlight struct {
	mu   sync.Mutex
	done bool
	cut  func()
}

func (f *chFlight) abort() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.done {
		f.done = true
		f.cut()
	}
}

func (f *chFlight) finish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done = true
}

// chNet is the state shared by the proxies of one cluster: the member
// IDs, the blocked pairs and the requests in flight per sender.
type chNet struct {
	mu      sync.Mutex
	ids     map[uint64]int // member ID -> index
	blocked map[chPair]chBlock
	// flights holds every request being forwarded, by sender ID (even
	// one not known yet: the streams members open at their start arrive
	// before the harness has learnt the IDs) and receiving member.
	flights map[chLink]map[*chFlight]struct{}
	healed  chan struct{} // closed (and replaced) whenever blocks are lifted

	// counters, for the run's log
	refused, blackholed, cut, forwarded int
}

// chLink is a sender's member ID and the index of the receiving member.
type chLink struct {
	from uint64
	to   int
}

func chNewNet() *chNet {
	return &chNet{
		ids:     map[uint64]int{},
		blocked: map[chPair]chBlock{},
		flights: map[chLink]map[*chFlight]struct{}{},
		healed:  make(chan struct{}),
	}
}

// setID records that member index idx has Raft ID id.
func (n *chNet) setID(id uint64, idx int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ids[id] = idx
}

// block blocks the pairs (mode chRefuse or chBlackhole) and cuts what they
// have in flight; it returns how many requests it cut.
func (n *chNet) block(mode chBlock, pairs ...chPair) int {
	n.mu.Lock()
	var cuts []*chFlight
	for _, p := range pairs {
		n.blocked[p] = mode
		for id, idx := range n.ids {
			if idx != p.from {
				continue
			}
			for f := range n.flights[chLink{id, p.to}] {
				cuts = append(cuts, f)
			}
		}
	}
	n.cut += len(cuts)
	n.mu.Unlock()
	for _, f := range cuts {
		f.abort()
	}
	return len(cuts)
}

// heal lifts every block.
func (n *chNet) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.blocked) == 0 {
		return
	}
	n.blocked = map[chPair]chBlock{}
	close(n.healed)
	n.healed = make(chan struct{})
}

// enter decides what to do with a request from the sender with hex ID
// from to member to: chPass registers f as in flight (leave removes it);
// otherwise healed is closed when the blocks are lifted.
func (n *chNet) enter(from string, to int, f *chFlight) (link chLink, mode chBlock, healed <-chan struct{}) {
	id, err := strconv.ParseUint(from, 16, 64)
	if err != nil {
		id = 0 // not a Raft request: never blocked, never cut
	}
	link = chLink{id, to}
	n.mu.Lock()
	defer n.mu.Unlock()
	if idx, known := n.ids[id]; known {
		switch mode = n.blocked[chPair{idx, to}]; mode {
		case chRefuse:
			n.refused++
			return link, mode, n.healed
		case chBlackhole:
			n.blackholed++
			return link, mode, n.healed
		}
	}
	if n.flights[link] == nil {
		n.flights[link] = map[*chFlight]struct{}{}
	}
	n.flights[link][f] = struct{}{}
	n.forwarded++
	return link, chPass, nil
}

func (n *chNet) leave(l chLink, f *chFlight) {
	f.finish()
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.flights[l], f)
}

// inFlight counts the requests being forwarded from member index from to
// member index to.
func (n *chNet) inFlight(from, to int) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	count := 0
	for id, idx := range n.ids {
		if idx == from {
			count += len(n.flights[chLink{id, to}])
		}
	}
	return count
}

func (n *chNet) counters() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("forwarded=%d refused=%d blackholed=%d cut=%d", n.forwarded, n.refused, n.blackholed, n.cut)
}

// chProxy forwards HTTP requests to one member's peer listener.
type chProxy struct {
	net    *chNet
	to     int
	target string // the member's real peer URL
	ln     net.Listener
	srv    *http.Server
	tr     *http.Transport
	closed chan struct{} // closed by Close: blackholed requests end
	once   sync.Once
}

// chStartProxy listens on a loopback port for requests to member index
// to, whose real peer URL is target.
func chStartProxy(n *chNet, to int, target string) (*chProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &chProxy{net: n, to: to, target: target, ln: ln, closed: make(chan struct{}),
		tr: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		}}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the peer URL the member advertises.
func (p *chProxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops the proxy and drops every connection through it.
func (p *chProxy) Close() {
	p.once.Do(func() { close(p.closed) })
	_ = p.srv.Close()
	p.tr.CloseIdleConnections()
}

// chHopHeaders are not forwarded (hop-by-hop; Expect is answered by the
// proxy's own server when the body is first read).
var chHopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Expect", "Proxy-Authenticate", "Proxy-Authorization"}

// chAbort drops the client's connection without a (complete) answer. The
// read deadline keeps the server from draining a body that never ends.
func chAbort(rc *http.ResponseController) {
	_ = rc.SetReadDeadline(time.Now())
	panic(http.ErrAbortHandler)
}

func (p *chProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	f := &chFlight{cut: func() {
		cancel()
		_ = rc.SetReadDeadline(time.Now())
	}}
	link, mode, healed := p.net.enter(r.Header.Get("X-Cairn-From"), p.to, f)
	switch mode {
	case chRefuse:
		w.Header().Set("Connection", "close")
		_ = rc.SetReadDeadline(time.Now())
		http.Error(w, "chaos: link blocked", http.StatusServiceUnavailable)
		return
	case chBlackhole:
		timer := time.NewTimer(chBlackholeMax)
		defer timer.Stop()
		select {
		case <-healed:
		case <-p.closed:
		case <-r.Context().Done():
		case <-timer.C:
		}
		chAbort(rc)
	}
	defer p.net.leave(link, f)
	// A stream's answer flows while its body is still being read.
	_ = rc.EnableFullDuplex()
	var body io.Reader = r.Body
	if r.ContentLength == 0 {
		body = http.NoBody
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, p.target+r.URL.RequestURI(), body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out.ContentLength = r.ContentLength
	out.Header = r.Header.Clone()
	for _, h := range chHopHeaders {
		out.Header.Del(h)
	}
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		if ctx.Err() != nil {
			chAbort(rc) // cut, or the sender went away
		}
		w.Header().Set("Connection", "close")
		_ = rc.SetReadDeadline(time.Now())
		http.Error(w, "chaos proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range chHopHeaders {
		w.Header().Del(h)
	}
	if resp.Close {
		w.Header().Set("Connection", "close")
	}
	w.WriteHeader(resp.StatusCode)
	if err := rc.Flush(); err != nil {
		chAbort(rc)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				chAbort(rc)
			}
			if ferr := rc.Flush(); ferr != nil {
				chAbort(rc)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			chAbort(rc) // cut: the sender must see a broken stream, not its end
		}
	}
	if resp.Close {
		// The member ends the connection after this answer (a stream):
		// the rest of a body that never ends is not drained.
		_ = rc.SetReadDeadline(time.Now())
	}
}
