package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runner holds what the clients of one run share.
type runner struct {
	cfg    config
	client *http.Client // requests with the per-request timeout
	watchc *http.Client // long polls: no timeout, ended by their context
	keys   []string     // the key space, as paths below /v2/keys
	value  string       // the value written by put and mixed
	body   string       // "value=" + value, form-encoded

	start    time.Time
	deadline time.Time    // --duration runs
	issued   atomic.Int64 // requests started (or about to be)
	errs     atomic.Int64 // failed requests
	errOnce  sync.Once    // keeps the first error's text
	firstErr atomic.Value // string
}

// v2Answer is the part of a v2 keys API answer the workloads read: an
// event, or an error.
type v2Answer struct {
	Node *struct {
		Value         string `json:"value"`
		ModifiedIndex uint64 `json:"modifiedIndex"`
	} `json:"node"`
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause"`
	Index     uint64 `json:"index"`
}

// run carries out the run cfg describes.
func run(ctx context.Context, cfg config) (*result, error) {
	r := newRunner(cfg)
	defer r.client.CloseIdleConnections()
	if cfg.workload == workloadWatch {
		return r.watch(ctx)
	}
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	return r.load(ctx), nil
}

func newRunner(cfg config) *runner {
	// One transport for every client: its pool keeps one connection per
	// client (a client sends one request at a time), and the limits
	// leave room for all of them on one host.
	conns := cfg.clients + 1
	if cfg.workload == workloadWatch {
		conns = cfg.watchers + 2
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSClientConfig:     cfg.tls,
	}
	width := max(cfg.keySize, len(strconv.Itoa(cfg.keySpace-1)))
	keys := make([]string, cfg.keySpace)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s/%0*d", cfg.prefix, width, i)
	}
	value := makeValue(cfg.valueSize)
	var rt http.RoundTripper = tr
	if name, password, ok := strings.Cut(cfg.user, ":"); ok {
		rt = basicAuth{next: tr, user: name, password: password}
	}
	return &runner{
		cfg:    cfg,
		client: &http.Client{Transport: rt, Timeout: cfg.timeout},
		watchc: &http.Client{Transport: rt},
		keys:   keys,
		value:  value,
		body:   "value=" + value,
	}
}

// makeValue is n bytes of letters and digits, which form encoding keeps
// as they are.
func makeValue(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	return string(b)
}

// endpoint is the client URL client i uses.
func (r *runner) endpoint(i int) string { return r.cfg.endpoints[i%len(r.cfg.endpoints)] }

// keysURL is the URL of path (below /v2/keys) at endpoint ep.
func keysURL(ep, path string) string { return ep + "/v2/keys" + path }

// fail counts a failed request and keeps its text if it is the first.
func (r *runner) fail(text string) {
	r.errs.Add(1)
	r.errOnce.Do(func() { r.firstErr.Store(text) })
}

// do sends one request and reads the whole answer (so the connection is
// reused). A transport error or a status other than 2xx is returned as
// an error carrying the answer's text. The body is returned only if keep.
func do(ctx context.Context, c *http.Client, method, url, body string, keep bool) ([]byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("%s %s: %s %s", method, url, resp.Status, strings.TrimSpace(string(b)))
	}
	if !keep {
		_, err = io.Copy(io.Discard, resp.Body)
		return nil, err
	}
	return io.ReadAll(resp.Body)
}

// parallel runs f for each of n items over the run's clients; it returns
// the first error.
func (r *runner) parallel(n int, f func(client, item int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, r.cfg.clients)
	for c := range r.cfg.clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(c, i); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// casKey is client i's key in the cas workload.
func (r *runner) casKey(i int) string { return fmt.Sprintf("%s/cas/%06d", r.cfg.prefix, i) }

// casValue is the cas workload's value number n, --value-size long.
func (r *runner) casValue(n int) string { return fmt.Sprintf("%0*d", r.cfg.valueSize, n) }

// prepare writes what the workload reads before it is measured.
func (r *runner) prepare(ctx context.Context) error {
	var n int
	var f func(client, item int) error
	switch r.cfg.workload {
	case workloadGet, workloadGetSerializable, workloadMixed:
		n = len(r.keys)
		f = func(c, i int) error {
			_, err := do(ctx, r.client, http.MethodPut, keysURL(r.endpoint(c), r.keys[i]), r.body, false)
			return err
		}
	case workloadCAS:
		n = r.cfg.clients
		f = func(_, i int) error {
			_, err := do(ctx, r.client, http.MethodPut, keysURL(r.endpoint(i), r.casKey(i)), "value="+r.casValue(0), false)
			return err
		}
	default:
		return nil
	}
	if err := r.parallel(n, f); err != nil {
		return fmt.Errorf("preparing the %s workload: %w", r.cfg.workload, err)
	}
	return nil
}

// next reports whether a client may start another request, waiting for
// its slot when the run is paced.
func (r *runner) next() bool {
	n := r.issued.Add(1)
	if r.cfg.duration == 0 && n > int64(r.cfg.total) {
		return false
	}
	if r.cfg.rate > 0 {
		at := r.start.Add(time.Duration(float64(n-1) / r.cfg.rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
	}
	return r.cfg.duration == 0 || time.Now().Before(r.deadline)
}

// load runs the measured part of a workload other than watch.
func (r *runner) load(ctx context.Context) *result {
	lats := make([][]time.Duration, r.cfg.clients)
	per := r.cfg.total/r.cfg.clients + 1
	if r.cfg.duration > 0 {
		per = 1024
	}
	var wg sync.WaitGroup
	r.start = time.Now()
	r.deadline = r.start.Add(r.cfg.duration)
	for c := range r.cfg.clients {
		op := r.op(ctx, c)
		lat := make([]time.Duration, 0, per)
		wg.Go(func() {
			for r.next() {
				t0 := time.Now()
				err := op()
				lat = append(lat, time.Since(t0))
				if err != nil {
					r.fail(err.Error())
				}
			}
			lats[c] = lat
		})
	}
	wg.Wait()
	elapsed := time.Since(r.start)
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return r.result(int64(len(all)), elapsed, summarize(all))
}

func (r *runner) result(requests int64, elapsed time.Duration, lat summary) *result {
	res := &result{workload: r.cfg.workload, clients: r.cfg.clients, requests: requests,
		errors: r.errs.Load(), elapsed: elapsed, lat: lat}
	if s, ok := r.firstErr.Load().(string); ok {
		res.firstErr = s
	}
	return res
}

// op returns client c's request: one call sends one request.
func (r *runner) op(ctx context.Context, c int) func() error {
	rng := rand.New(rand.NewPCG(uint64(c), 0x62656e6368))
	ep := r.endpoint(c)
	put := func() error {
		_, err := do(ctx, r.client, http.MethodPut, keysURL(ep, r.keys[rng.IntN(len(r.keys))]), r.body, false)
		return err
	}
	get := func(query string) func() error {
		return func() error {
			_, err := do(ctx, r.client, http.MethodGet, keysURL(ep, r.keys[rng.IntN(len(r.keys))])+query, "", false)
			return err
		}
	}
	linearizable, serializable := get("?quorum=true"), get("?serializable=true")
	switch r.cfg.workload {
	case workloadGet:
		return linearizable
	case workloadGetSerializable:
		return serializable
	case workloadMixed:
		read := serializable
		if r.cfg.consistency == "l" {
			read = linearizable
		}
		return func() error {
			if rng.Float64() < r.cfg.readRatio {
				return read()
			}
			return put()
		}
	case workloadCAS:
		key, cur := keysURL(ep, r.casKey(c)), 0
		return func() error {
			_, err := do(ctx, r.client, http.MethodPut, key+"?prevValue="+r.casValue(cur), "value="+r.casValue(cur+1), false)
			if err == nil {
				cur++
				return nil
			}
			// Learn the value again (not measured) so the loop goes on.
			if b, gerr := do(ctx, r.client, http.MethodGet, key+"?quorum=true", "", true); gerr == nil {
				var a v2Answer
				if json.Unmarshal(b, &a) == nil && a.Node != nil {
					if n, perr := strconv.Atoi(a.Node.Value); perr == nil {
						cur = n
					}
				}
			}
			return err
		}
	case workloadLock:
		return r.lockOp(ctx, c)
	case workloadQueue:
		return r.queueOp(ctx, c)
	case workloadPost:
		dir := keysURL(ep, r.cfg.prefix+"/queue")
		return func() error {
			_, err := do(ctx, r.client, http.MethodPost, dir, r.body, false)
			return err
		}
	}
	return put
}

// basicAuth adds HTTP basic credentials to every request.
type basicAuth struct {
	next           http.RoundTripper
	user, password string
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(r)
}
