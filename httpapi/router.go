package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/locks"
	"github.com/cairnkv/cairn/queue"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// Config configures the client handler.
type Config struct {
	// Backend serves the data. Required.
	Backend Backend
	// Now is the clock used to stamp proposals and render TTLs; time.Now
	// when nil.
	Now func() time.Time
	// CORS lists the origins allowed cross-origin access ("*": any), as
	// etcd's --cors. Nil means DefaultCORS.
	CORS []string
	// Logger receives request logs (debug) and handler panics (error).
	Logger zerolog.Logger
	// Metrics, when set, gets the HTTP metrics and is served at /metrics
	// (with whatever else is registered on it).
	Metrics *prometheus.Registry
	// UnsafeLockGrant sets locks.Locks.UnsafeGrant: a deliberate bug for
	// testing the checkers, never for production.
	UnsafeLockGrant bool
	// Limits bound what one request may ask (zero fields: the defaults).
	Limits Limits
	// ClientCertAuth (etcd's --client-cert-auth): a request over TLS that
	// has no Authorization header is made by the user its client
	// certificate's common name names, if that user exists. Default off.
	ClientCertAuth bool
	// AuthGuest is the access the guest role gets when enabling auth
	// creates it: server.GuestFull (the default, etcd's) or
	// server.GuestNone.
	AuthGuest server.GuestAccess
}

// DefaultCORS is etcd 3.4's default --cors.
var DefaultCORS = []string{"*"}

// NewHandler returns the client API: /v2/keys, /version, /health, and the
// cluster endpoints the backend supports.
func NewHandler(cfg Config) http.Handler {
	h, _ := newHandler(cfg)
	return h
}

// newHandler is NewHandler, also answering the authorizer (for tests).
func newHandler(cfg Config) (http.Handler, *authorizer) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if cfg.CORS == nil {
		cfg.CORS = DefaultCORS
	}
	var reg prometheus.Registerer
	if cfg.Metrics != nil {
		reg = cfg.Metrics
	}
	lim := newLimiter(cfg.Limits, cfg.Backend, reg)
	authz := newAuthorizer(cfg.Backend, cfg.ClientCertAuth, cfg.Logger, reg)
	keys := &keysHandler{be: cfg.Backend, now: now, metrics: newHTTPMetrics(reg), lim: lim, authz: authz,
		clusterID: cachedValue{base: 16}, term: cachedValue{base: 10}}
	r := chi.NewRouter()
	// Every request passes the same middleware, in this order; keys
	// requests then go straight to their handler (clientAPI), the rest
	// through the router.
	first := []func(http.Handler) http.Handler{logRequests(cfg.Logger), lim.requests, cors(cfg.CORS), redirectUnclean}
	last := joinedOnly(cfg.Backend)
	r.Use(first...)
	r.Use(routeDecoded, last)
	// chi answers methods it does not know before any handler runs; the
	// keys API answers them itself (405 with Allow), so route them all.
	r.HandleFunc("/version", getOnly(version))
	if cfg.Metrics != nil {
		r.Handle("/metrics", metricsHandler(cfg.Metrics))
	}
	r.HandleFunc("/health", getOnly(health(cfg.Backend, cfg.Logger)))
	if ss, ok := cfg.Backend.(SelfStater); ok {
		r.HandleFunc("/v2/stats/self", getOnly(selfStats(ss)))
	}
	if ss, ok := cfg.Backend.(StoreStater); ok {
		r.HandleFunc("/v2/stats/store", getOnly(storeStats(ss)))
	}
	if c, ok := cfg.Backend.(Cluster); ok {
		mh := &membersHandler{be: cfg.Backend, cluster: c, authz: authz}
		r.HandleFunc(membersPrefix, mh.ServeHTTP)
		r.HandleFunc(membersPrefix+"/*", mh.ServeHTTP)
		r.HandleFunc("/v2/machines", machines(c))
	}
	if ls, ok := cfg.Backend.(LeaderStater); ok {
		r.HandleFunc("/v2/stats/leader", getOnly(leaderStats(ls)))
	}
	if sn, ok := cfg.Backend.(Snapshotter); ok {
		r.HandleFunc("/snapshot", getOnly(rootOnly(authz, snapshot(sn))))
	}
	if ab, ok := cfg.Backend.(Auth); ok {
		ah := &authHandler{be: cfg.Backend, auth: ab, authz: authz, guest: cfg.AuthGuest}
		r.HandleFunc(authPrefix+"/enable", ah.enable)
		r.HandleFunc(authPrefix+"/users", ah.users)
		r.HandleFunc(authPrefix+"/users/*", ah.users)
		r.HandleFunc(authPrefix+"/roles", ah.roles)
		r.HandleFunc(authPrefix+"/roles/*", ah.roles)
	}
	if reg != nil {
		reg.MustRegister(newCoordCollector(cfg.Backend))
	}
	lks := locks.New(cfg.Backend, now)
	lks.UnsafeGrant = cfg.UnsafeLockGrant
	coord := &coordHandler{be: cfg.Backend, now: now, locks: lks, queues: queue.New(cfg.Backend, now, cfg.Logger), lim: lim, authz: authz}
	r.HandleFunc("/v2/locks/{name}", coord.lock)
	r.HandleFunc("/v2/queues/{name}", coord.queue)
	r.HandleFunc("/v2/queues/{name}/reservations", coord.reservations)
	r.HandleFunc("/v2/queues/{name}/reservations/{receipt}", coord.ack)
	r.HandleFunc(keysPrefix, keys.ServeHTTP)
	r.HandleFunc(keysPrefix+"/*", keys.ServeHTTP)
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		if isKeysPath(req.URL.Path) {
			keys.ServeHTTP(w, req) // answers 405 with the keys API's Allow
			return
		}
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	})
	kh := last(http.HandlerFunc(keys.ServeHTTP))
	for i := len(first) - 1; i >= 0; i-- {
		kh = first[i](kh)
	}
	return &clientAPI{keys: kh, other: r}, authz
}

// clientAPI serves the keys API, which takes nearly every client request,
// without the router: its middleware and handler are the ones the router
// would run for a path at or below /v2/keys (routeDecoded aside, which
// only tells the router what to match), and it saves the router's
// context and path values, four allocations a request. Other paths go to
// the router.
type clientAPI struct {
	keys, other http.Handler
}

func (c *clientAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL != nil && isKeysPath(r.URL.Path) {
		c.keys.ServeHTTP(w, r)
		return
	}
	c.other.ServeHTTP(w, r)
}

// isKeysPath reports whether p is /v2/keys or below it: the paths the
// router sends to the keys handler.
func isKeysPath(p string) bool {
	return p == keysPrefix || strings.HasPrefix(p, keysPrefix+"/")
}

// routeDecoded makes chi route on the decoded path, as Go's ServeMux did
// for etcd: "/v2/ke%79s" is "/v2/keys" (API.md §1.8).
func routeDecoded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if rc := chi.RouteContext(req.Context()); rc != nil {
			rc.RoutePath = req.URL.Path
		}
		next.ServeHTTP(w, req)
	})
}

// cors answers OPTIONS on every path with 200 and an empty body, before
// routing, and adds etcd's three CORS headers to responses for allowed
// origins: all of them when the list holds "*" (API.md §1.12).
func cors(origins []string) func(http.Handler) http.Handler {
	any := slices.Contains(origins, "*")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			origin := req.Header.Get("Origin")
			if any || (origin != "" && slices.Contains(origins, origin)) {
				h := w.Header()
				h[hdrCORSHeaders] = valCORSHeaders
				h[hdrCORSMethods] = valCORSMethods
				if any {
					h[hdrCORSOrigin] = valCORSAny
				} else {
					h[hdrCORSOrigin] = []string{origin}
				}
			}
			if req.Method == http.MethodOptions {
				w.WriteHeader(http.StatusOK)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
}

// Joiner is implemented by backends that can tell whether they have
// applied their own addition to the cluster (server.Member): until then
// their replicated state, the auth registry among it, may lack what was
// committed before they joined. Joined returns nil once they have.
type Joiner interface {
	Joined() error
}

// joinedOnly refuses client requests to a backend that has not joined
// yet, since it could not check their permissions (etcd serves clients
// only once its member has published itself): v2 error 300 on the keys,
// locks and queues, 503 {"message"} elsewhere. /health, /version,
// /metrics and /v2/stats answer as ever.
func joinedOnly(be Backend) func(http.Handler) http.Handler {
	j, ok := be.(Joiner)
	return func(next http.Handler) http.Handler {
		if !ok {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch p := r.URL.Path; {
			case p == "/health", p == "/version", p == "/metrics", strings.HasPrefix(p, "/v2/stats/"):
			default:
				if err := j.Joined(); err != nil {
					msg := err.Error() + "; retry on another member, or once its /health is true"
					if isKeysPath(p) || strings.HasPrefix(p, "/v2/locks/") || strings.HasPrefix(p, "/v2/queues/") {
						writeError(w, store.NewError(store.EcodeRaftInternal, msg, 0))
					} else {
						writeMessage(w, http.StatusServiceUnavailable, msg)
					}
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
