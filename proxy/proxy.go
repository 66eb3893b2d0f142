package proxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/internal/statuswriter"
)

// Config configures a proxy. Durations of zero mean no limit, except
// where a default is named.
type Config struct {
	// ReadOnly refuses every request but GET and HEAD with 501 and an
	// empty body (etcd's --proxy readonly).
	ReadOnly bool
	// PeerURLs are the peer URLs to ask for the member list the first
	// time; the list kept in DataDir/proxy/cluster wins over them.
	PeerURLs []string
	// DataDir is the data directory; the proxy keeps only
	// DataDir/proxy/cluster in it. Empty: nothing is kept.
	DataDir string
	// RefreshInterval is the time between member list refreshes
	// (default 30 s); while no endpoint is known it is at most 1 s.
	RefreshInterval time.Duration
	// FailureWait is how long a member that failed a request is left
	// out (default 5 s).
	FailureWait time.Duration
	// DialTimeout bounds connecting to a member; ReadTimeout and
	// WriteTimeout bound each read and write on a connection to one
	// (etcd's timeouts; keep ReadTimeout 0 so watches can wait).
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// ClientTLS gives the TLS config of a connection to a member's https
	// client URL, PeerTLS of one to an https peer URL (for the member
	// list). Each is asked at every new connection, with the server's
	// host name, so that certificates and CA bundles reloaded meanwhile
	// are used (tlsutil.Source.ClientConfigFor). Nil: Go's defaults (the
	// system's roots, no client certificate).
	ClientTLS, PeerTLS func(serverName string) *tls.Config
	// MaxReplayBody is the largest request body buffered so that the
	// request can be sent to another member (default 64 KiB).
	MaxReplayBody int64
	// HealthTimeout bounds asking one member's /health (default 2 s).
	HealthTimeout time.Duration
	// Logger receives what the proxy does.
	Logger zerolog.Logger
	// Metrics, when set, gets the cairn_proxy_* metrics and is served at
	// /metrics.
	Metrics *prometheus.Registry
}

// Defaults, as etcd's flags.
const (
	DefaultRefreshInterval = 30 * time.Second
	DefaultFailureWait     = 5 * time.Second
	DefaultMaxReplayBody   = 64 << 10
)

// Proxy forwards the client API to a cluster's members.
type Proxy struct {
	cfg     Config
	log     zerolog.Logger
	eps     *endpoints
	rp      *httputil.ReverseProxy
	tr      *http.Transport // to members' client URLs
	peers   *http.Client    // to peer URLs, for the member list
	health  *http.Client
	metrics *metrics
	handler http.Handler

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// New starts a proxy: it reads DataDir/proxy/cluster, asks the peers for
// the member list once (without failing if none answers: it keeps
// asking) and refreshes it in the background until Close.
func New(cfg Config) (*Proxy, error) {
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.FailureWait <= 0 {
		cfg.FailureWait = DefaultFailureWait
	}
	if cfg.MaxReplayBody <= 0 {
		cfg.MaxReplayBody = DefaultMaxReplayBody
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 2 * time.Second
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{})}
	var reg prometheus.Registerer
	if cfg.Metrics != nil {
		reg = cfg.Metrics
	}
	p.metrics = newMetrics(reg)
	p.tr = newTransport(cfg.ClientTLS, cfg.DialTimeout, cfg.ReadTimeout, cfg.WriteTimeout)
	ptr := newTransport(cfg.PeerTLS, cfg.DialTimeout, cfg.ReadTimeout, cfg.WriteTimeout)
	p.peers = &http.Client{Transport: ptr, Timeout: 5 * time.Second}
	p.health = &http.Client{Transport: p.tr, Timeout: cfg.HealthTimeout}
	var err error
	p.eps, err = newEndpoints(cfg, p.log, p.metrics)
	if err != nil {
		return nil, err
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:       rewrite,
		Transport:     &picker{p: p},
		FlushInterval: -1, // watches stream: every write reaches the client at once
		ErrorHandler:  p.errorHandler,
		ErrorLog:      log.New(p.log.With().Str("component", "reverseproxy").Logger(), "", 0),
	}
	p.handler = p.routes()
	p.eps.refresh(p.peers)
	go p.refreshLoop()
	return p, nil
}

// Handler is the client API as the proxy serves it.
func (p *Proxy) Handler() http.Handler { return p.handler }

// Endpoints returns the client URLs requests go to now, the ones left
// out after a failure excluded, in the order they are tried.
func (p *Proxy) Endpoints() []string { return p.eps.available() }

// Close stops refreshing and closes idle connections.
func (p *Proxy) Close() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
	p.tr.CloseIdleConnections()
	p.peers.CloseIdleConnections()
}

func (p *Proxy) refreshLoop() {
	defer close(p.done)
	for {
		wait := p.cfg.RefreshInterval
		if len(p.eps.all()) == 0 && wait > time.Second {
			wait = time.Second // as etcd: look again soon while nothing is known
		}
		select {
		case <-p.stop:
			return
		case <-time.After(wait):
		}
		p.eps.refresh(p.peers)
	}
}

// routes: the proxy's own endpoints, then everything else forwarded.
func (p *Proxy) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", p.serveHealth)
	mux.HandleFunc("/v2/config/local/proxy", p.serveConfig)
	if p.cfg.Metrics != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(p.cfg.Metrics, promhttp.HandlerOpts{}))
	}
	var h http.Handler = http.HandlerFunc(p.forward)
	local := func(path string) bool {
		return path == "/health" || path == "/v2/config/local/proxy" || (path == "/metrics" && p.cfg.Metrics != nil)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.cfg.ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
			p.metrics.request(r.Method)
			p.metrics.handled(r.Method, http.StatusNotImplemented)
			w.WriteHeader(http.StatusNotImplemented) // etcd's answer: no body
			return
		}
		// The proxy's own paths are matched exactly, without ServeMux's
		// cleaning and redirects, so that every other path reaches the
		// members as the client wrote it.
		if local(r.URL.Path) {
			mux.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// forward sends the request to a member through the reverse proxy.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	p.metrics.request(r.Method)
	start := time.Now()
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body, err := newReplayBody(r.Body, p.cfg.MaxReplayBody)
		if err != nil {
			p.metrics.handled(r.Method, http.StatusInternalServerError)
			writeMessage(w, http.StatusInternalServerError, "httpproxy: failed to read request body: "+err.Error())
			return
		}
		// The reverse proxy wraps the body it is given; the picker finds
		// this one in the context and gives each attempt its own reader.
		r.Body = body
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, body))
	}
	sw := statuswriter.New(w)
	p.rp.ServeHTTP(sw, r)
	if !isWatch(r) {
		p.metrics.duration(r.Method, time.Since(start))
	}
	p.metrics.handled(r.Method, sw.Status)
}

func isWatch(r *http.Request) bool {
	w := r.URL.Query().Get("wait")
	return w == "true" || w == "1" || w == "t" || w == "T" || w == "TRUE" || w == "True"
}

// rewrite keeps the request as the client sent it (path, query, Host)
// and appends the client's address to X-Forwarded-For, as etcd's proxy
// does; the member is chosen by the transport, per attempt.
func rewrite(pr *httputil.ProxyRequest) {
	prior := pr.In.Header["X-Forwarded-For"]
	ip, _, err := net.SplitHostPort(pr.In.RemoteAddr)
	if err != nil {
		if len(prior) > 0 {
			pr.Out.Header["X-Forwarded-For"] = prior
		}
		return
	}
	if len(prior) > 0 {
		ip = strings.Join(prior, ", ") + ", " + ip
	}
	pr.Out.Header.Set("X-Forwarded-For", ip)
}

// errorHandler answers a request no member answered, with etcd's bodies.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	var un *unansweredError
	switch {
	case errors.Is(err, errZeroEndpoints):
		p.metrics.dropped(r.Method, "zero_endpoints")
		p.log.Warn().Str("method", r.Method).Str("path", r.URL.Path).Msg("httpproxy: zero endpoints currently available")
		writeMessage(w, http.StatusServiceUnavailable, "httpproxy: zero endpoints currently available")
	case r.Context().Err() != nil:
		// The client went away; there is no one to answer.
		p.metrics.dropped(r.Method, "client_gone")
	case errors.As(err, &un):
		p.metrics.dropped(r.Method, "no_response")
		msg := fmt.Sprintf("httpproxy: unable to get response from %d endpoint(s)", un.n)
		p.log.Warn().Str("method", r.Method).Str("path", r.URL.Path).Err(un.err).Bool("unsent-retry-refused", un.sent).Msg(msg)
		writeMessage(w, http.StatusBadGateway, msg)
	default:
		p.metrics.dropped(r.Method, "no_response")
		p.log.Warn().Str("method", r.Method).Str("path", r.URL.Path).Err(err).Msg("httpproxy: request failed")
		writeMessage(w, http.StatusBadGateway, "httpproxy: unable to get response from 1 endpoint(s)")
	}
}

// serveHealth answers as a member's /health does: healthy when some
// member says it is healthy (the first that does is relayed).
func (p *Proxy) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET,HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	eps := p.eps.available()
	for _, u := range p.eps.all() { // then the ones left out, in case they are back
		if !slices.Contains(eps, u) {
			eps = append(eps, u)
		}
	}
	for _, ep := range eps {
		body, ok := p.memberHealthy(r.Context(), ep)
		if ok {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write(body)
			return
		}
		if r.Context().Err() != nil {
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte("{\"health\":\"false\"}\n"))
}

func (p *Proxy) memberHealthy(ctx context.Context, ep string) ([]byte, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/health", nil)
	if err != nil {
		return nil, false
	}
	resp, err := p.health.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var h struct {
		Health string `json:"health"`
	}
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Health != "true" {
		return nil, false
	}
	return body, true
}

// serveConfig is etcd's GET /v2/config/local/proxy: the endpoints in use.
func (p *Proxy) serveConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	eps := p.eps.available()
	if eps == nil {
		eps = []string{}
	}
	_ = json.NewEncoder(w).Encode(struct {
		Endpoints []string `json:"endpoints"`
	}{eps})
}

// writeMessage writes etcd's {"message":...} error body (no newline).
func writeMessage(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
