package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// etcd 3.4's discovery errors, in its words.
var (
	ErrInvalidURL           = errors.New("discovery: invalid URL")
	ErrBadSizeKey           = errors.New("discovery: size key is bad")
	ErrSizeNotFound         = errors.New("discovery: size key not found")
	ErrDuplicateID          = errors.New("discovery: found duplicate id")
	ErrDuplicateName        = errors.New("discovery: found duplicate name")
	ErrFullCluster          = errors.New("discovery: cluster is full")
	ErrBadDiscoveryEndpoint = errors.New("discovery: bad discovery endpoint")
)

// Error is a discovery failure as etcd reports it: "failed to join
// discovery cluster (discovery: cluster is full)".
type Error struct {
	Op  string // join, or get for a proxy
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("failed to %s discovery cluster (%v)", e.Op, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// Config says where the discovery service is and who registers.
type Config struct {
	// URL is the discovery URL: a v2 keys directory, or a discovery
	// service's token URL that maps onto one.
	URL string
	// Proxy is an HTTP proxy URL for reaching the service (empty: none).
	Proxy *url.URL
	// ID is this member's ID; it registers as <URL>/<ID in hex>.
	ID uint64
	// Self is what it registers: name=peerURL[,name=peerURL2].
	Self string
	// Logger receives progress.
	Logger zerolog.Logger
	// RequestTimeout bounds each request but the waits (default 5 s, as
	// etcd's client).
	RequestTimeout time.Duration
	// RetryBase and RetryMax bound the back-off between attempts while
	// the service is unreachable (default 1 s doubling up to 32 s).
	RetryBase, RetryMax time.Duration
	// Transport, when set, replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// Join registers this member and waits until the cluster has its size;
// it returns the initial cluster, name=peerURL,... of the first size
// registrations.
func Join(ctx context.Context, cfg Config) (string, error) {
	d, err := newDiscovery(cfg)
	if err != nil {
		return "", &Error{Op: "join", Err: err}
	}
	s, err := d.join(ctx)
	if err != nil {
		return "", &Error{Op: "join", Err: err}
	}
	return s, nil
}

// Get waits until the cluster has its size, without registering (for a
// proxy), and returns the initial cluster as Join does; a full cluster
// is not an error here.
func Get(ctx context.Context, cfg Config) (string, error) {
	d, err := newDiscovery(cfg)
	if err != nil {
		return "", &Error{Op: "get", Err: err}
	}
	nodes, size, index, err := d.check(ctx)
	if errors.Is(err, ErrFullCluster) {
		return toCluster(nodes, size)
	}
	if err != nil {
		return "", &Error{Op: "get", Err: err}
	}
	all, err := d.wait(ctx, nodes, size, index)
	if err != nil {
		return "", &Error{Op: "get", Err: err}
	}
	s, err := toCluster(all, size)
	if err != nil {
		return s, &Error{Op: "get", Err: err}
	}
	return s, nil
}

type discovery struct {
	cfg    Config
	dir    string // the discovery URL, without a trailing slash
	client *http.Client
	log    zerolog.Logger
	tries  int
}

func newDiscovery(cfg Config) (*discovery, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, ErrInvalidURL
	}
	u.RawQuery, u.Fragment = "", ""
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 32 * time.Second
	}
	tr := cfg.Transport
	if tr == nil {
		// https: the system's roots, no client certificate (etcd 3.4's
		// discovery client has the same, an empty TLSInfo).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		if cfg.Proxy != nil {
			t.Proxy = http.ProxyURL(cfg.Proxy)
			cfg.Logger.Info().Str("proxy-url", cfg.Proxy.String()).Msg("reaching the discovery service through a proxy")
		}
		tr = t
	}
	return &discovery{cfg: cfg, dir: strings.TrimRight(u.String(), "/"), client: &http.Client{Transport: tr}, log: cfg.Logger}, nil
}

func (d *discovery) selfKey() string { return strconv.FormatUint(d.cfg.ID, 16) }

func (d *discovery) join(ctx context.Context) (string, error) {
	// A full cluster is refused before registering, as etcd does; a
	// member registered before (a restart during bootstrap) goes on.
	if _, _, _, err := d.check(ctx); err != nil {
		return "", err
	}
	if err := d.register(ctx); err != nil {
		return "", err
	}
	nodes, size, index, err := d.check(ctx)
	if err != nil {
		return "", err
	}
	all, err := d.wait(ctx, nodes, size, index)
	if err != nil {
		return "", err
	}
	return toCluster(all, size)
}

// node is a v2 keys node, as much of it as discovery reads.
type node struct {
	Key           string `json:"key"`
	Value         string `json:"value"`
	Dir           bool   `json:"dir"`
	Nodes         []node `json:"nodes"`
	CreatedIndex  uint64 `json:"createdIndex"`
	ModifiedIndex uint64 `json:"modifiedIndex"`
}

// v2Error is the v2 keys error body; its text is the one etcd's client
// gives ("100: Key not found (/x) [7]").
type v2Error struct {
	Code    int    `json:"errorCode"`
	Message string `json:"message"`
	Cause   string `json:"cause"`
	Index   uint64 `json:"index"`
}

func (e *v2Error) Error() string {
	return fmt.Sprintf("%d: %s (%s) [%d]", e.Code, e.Message, e.Cause, e.Index)
}

// unreachable marks errors worth retrying: the service did not answer,
// or answered 5xx.
type unreachable struct{ err error }

func (e *unreachable) Error() string { return e.err.Error() }
func (e *unreachable) Unwrap() error { return e.err }

// do sends one v2 keys request and decodes the answer: the node, the
// X-Etcd-Index, or a *v2Error, *unreachable or ErrBadDiscoveryEndpoint.
func (d *discovery) do(ctx context.Context, method, u string, form url.Values, timeout bool) (*node, uint64, error) {
	if timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.RequestTimeout)
		defer cancel()
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, 0, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		if ctx.Err() != nil && timeout && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, 0, &unreachable{err}
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, &unreachable{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, 0, &unreachable{err}
	}
	index, _ := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	if resp.StatusCode >= 500 {
		return nil, 0, &unreachable{fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, strings.TrimSpace(string(b)))}
	}
	if resp.StatusCode >= 400 {
		var e v2Error
		if json.Unmarshal(b, &e) != nil || e.Code == 0 {
			return nil, 0, ErrBadDiscoveryEndpoint
		}
		return nil, index, &e
	}
	var r struct {
		Node *node `json:"node"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Node == nil {
		return nil, 0, ErrBadDiscoveryEndpoint
	}
	return r.Node, index, nil
}

// retry waits before the next attempt, doubling up to RetryMax.
func (d *discovery) retry(ctx context.Context, step string, err error) error {
	wait := d.cfg.RetryBase << min(d.tries, 16)
	if wait > d.cfg.RetryMax || wait <= 0 {
		wait = d.cfg.RetryMax
	}
	d.tries++
	d.log.Warn().Str("discovery-url", d.cfg.URL).Str("reason", step).Err(err).Dur("backoff", wait).Msg("retry connecting to discovery service")
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}

// check reads the size and the registrations (sorted by createdIndex)
// and the index to watch from. It returns ErrFullCluster, with the
// first size registrations, when this member is not among them and
// there is no room left.
func (d *discovery) check(ctx context.Context) (nodes []node, size uint64, index uint64, err error) {
	for {
		nodes, size, index, err = d.checkOnce(ctx)
		var un *unreachable
		if !errors.As(err, &un) {
			return nodes, size, index, err
		}
		if rerr := d.retry(ctx, "cluster status check", err); rerr != nil {
			return nil, 0, 0, rerr
		}
	}
}

func (d *discovery) checkOnce(ctx context.Context) ([]node, uint64, uint64, error) {
	n, _, err := d.do(ctx, http.MethodGet, d.dir+"/_config/size", nil, true)
	var ve *v2Error
	if errors.As(err, &ve) && ve.Code == 100 {
		return nil, 0, 0, fmt.Errorf("%w: %v", ErrSizeNotFound, ve)
	}
	if err != nil {
		return nil, 0, 0, err
	}
	size, err := strconv.ParseUint(n.Value, 10, 0)
	if err != nil || size == 0 {
		return nil, 0, 0, ErrBadSizeKey
	}
	dir, index, err := d.do(ctx, http.MethodGet, d.dir, nil, true)
	if err != nil {
		return nil, 0, 0, err
	}
	var nodes []node
	for _, c := range dir.Nodes {
		if path.Base(c.Key) != "_config" && !c.Dir {
			nodes = append(nodes, c)
		}
	}
	slices.SortStableFunc(nodes, func(a, b node) int { return cmpUint(a.CreatedIndex, b.CreatedIndex) })
	self := d.selfKey()
	for i := range nodes {
		if path.Base(nodes[i].Key) == self {
			if d.cfg.Self != "" && nodes[i].Value != d.cfg.Self {
				return nil, 0, 0, ErrDuplicateID
			}
			if uint64(i) >= size {
				return nodes[:size], size, index, ErrFullCluster
			}
			return nodes, size, index, nil
		}
	}
	if d.cfg.Self != "" && uint64(len(nodes)) >= size {
		return nodes[:size], size, index, ErrFullCluster
	}
	return nodes, size, index, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// register creates <dir>/<id> with prevExist=false. An entry already
// there with this member's value is taken as its own (a restart before
// the bootstrap finished); one with another value is ErrDuplicateID.
func (d *discovery) register(ctx context.Context) error {
	key := d.dir + "/" + d.selfKey()
	for {
		_, _, err := d.do(ctx, http.MethodPut, key+"?prevExist=false", url.Values{"value": {d.cfg.Self}}, true)
		var un *unreachable
		var ve *v2Error
		switch {
		case err == nil:
			d.log.Info().Str("key", key).Str("value", d.cfg.Self).Msg("registered with the discovery service")
			return nil
		case errors.As(err, &ve) && ve.Code == 105:
			n, _, gerr := d.do(ctx, http.MethodGet, key, nil, true)
			if gerr == nil && n.Value == d.cfg.Self {
				d.log.Info().Str("key", key).Msg("found this member already registered with the discovery service")
				return nil
			}
			return ErrDuplicateID
		case errors.As(err, &un):
			if rerr := d.retry(ctx, "registering", err); rerr != nil {
				return rerr
			}
		default:
			return err
		}
	}
}

// wait watches the directory from index until size registrations exist.
func (d *discovery) wait(ctx context.Context, nodes []node, size, index uint64) ([]node, error) {
	if uint64(len(nodes)) > size {
		nodes = nodes[:size]
	}
	all := slices.Clone(nodes)
	for uint64(len(all)) < size {
		d.log.Info().Str("discovery-url", d.cfg.URL).Int("found-peers", len(all)).Uint64("needed-peers", size-uint64(len(all))).
			Msg("found peers from discovery server; waiting for more")
		q := url.Values{"wait": {"true"}, "recursive": {"true"}, "waitIndex": {strconv.FormatUint(index+1, 10)}}
		ev, err := d.watch(ctx, d.dir+"?"+q.Encode())
		var un *unreachable
		var ve *v2Error
		switch {
		case err == nil:
		case errors.As(err, &un) || (errors.As(err, &ve) && ve.Code == 401):
			// Unreachable, or the history moved past our index: back
			// off and read the directory again.
			if rerr := d.retry(ctx, "waiting for other nodes", err); rerr != nil {
				return nil, rerr
			}
			fresh, s, idx, cerr := d.check(ctx)
			if cerr != nil && !errors.Is(cerr, ErrFullCluster) {
				return nil, cerr
			}
			return d.wait(ctx, fresh, s, idx)
		default:
			return nil, err
		}
		if ev == nil { // the watch ended without an event: watch again
			continue
		}
		index = ev.ModifiedIndex
		if ev.Dir || path.Base(ev.Key) == "_config" || path.Base(path.Dir(ev.Key)) == "_config" {
			continue
		}
		if slices.ContainsFunc(all, func(n node) bool { return n.Key == ev.Key }) {
			continue
		}
		d.log.Info().Str("peer", path.Base(ev.Key)).Msg("found peer from discovery server")
		all = append(all, *ev)
	}
	d.log.Info().Str("discovery-url", d.cfg.URL).Int("found-peers", len(all)).Msg("found all needed peers from discovery server")
	return all, nil
}

// watch waits for the next event; nil when the watch ended without one.
func (d *discovery) watch(ctx context.Context, u string) (*node, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &unreachable{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &unreachable{err}
	}
	if resp.StatusCode >= 500 {
		return nil, &unreachable{fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, strings.TrimSpace(string(b)))}
	}
	if resp.StatusCode >= 400 {
		var e v2Error
		if json.Unmarshal(b, &e) != nil || e.Code == 0 {
			return nil, ErrBadDiscoveryEndpoint
		}
		return nil, &e
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, nil
	}
	var r struct {
		Action string `json:"action"`
		Node   *node  `json:"node"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Node == nil {
		return nil, ErrBadDiscoveryEndpoint
	}
	if r.Action != "create" && r.Action != "set" {
		// Not a registration (a delete or an expiry): only move the index.
		return &node{Key: "/", Dir: true, ModifiedIndex: r.Node.ModifiedIndex}, nil
	}
	return r.Node, nil
}

// toCluster joins the registrations' values into an initial cluster and
// checks it: every URL valid, one distinct name per registration.
func toCluster(nodes []node, size uint64) (string, error) {
	vals := make([]string, len(nodes))
	for i, n := range nodes {
		vals[i] = n.Value
	}
	s := strings.Join(vals, ",")
	names := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(part, "=")
		pu, err := url.Parse(u)
		if !ok || name == "" || err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return s, ErrInvalidURL
		}
		names[name] = true
	}
	if uint64(len(names)) != size {
		return s, ErrDuplicateName
	}
	return s, nil
}
