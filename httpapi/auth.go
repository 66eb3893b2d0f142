package httpapi

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// Auth is implemented by backends that keep etcd's v2 auth state (API.md
// §5): server.Member replicates it through Raft, server.Local keeps it in
// memory. Reads see the state as last applied on this member; the write
// methods propose a change and wait until it is applied, and answer
// refusals as *server.AuthError.
type Auth interface {
	AuthState() *server.AuthState
	EnableAuth(ctx context.Context, guest server.GuestAccess) error
	DisableAuth(ctx context.Context) error
	PutUser(ctx context.Context, c server.UserChange) (server.AuthUser, bool, error)
	DeleteUser(ctx context.Context, name string) error
	CreateRole(ctx context.Context, r server.AuthRole) error
	UpdateRole(ctx context.Context, c server.RoleChange) (server.AuthRole, error)
	DeleteRole(ctx context.Context, name string) error
}

// Reasons a request is refused, the label values of
// cairn_auth_failures_total.
const (
	failMalformed  = "malformed"  // an Authorization header that is not valid Basic
	failNoUser     = "no_user"    // basic auth, or a client certificate, for a user that does not exist
	failPassword   = "password"   // the wrong password
	failPermission = "permission" // authenticated (or a guest), but without the permission
)

// authorizer decides, for every request, who it comes from and whether
// that user may do what it asks, as etcd 3.4's v2 API does. With no Auth
// backend, or auth disabled, everything is allowed.
type authorizer struct {
	be         Auth // nil: the backend has no auth
	clientCert bool // a TLS client certificate's CN names the user when there is no Authorization header
	cache      *credCache
	failures   *prometheus.CounterVec
	lookups    *prometheus.CounterVec
	log        zerolog.Logger // sampled: refusals are logged at a bounded rate
	compare    func(hash, password []byte) error
}

func newAuthorizer(be Backend, clientCert bool, log zerolog.Logger, reg prometheus.Registerer) *authorizer {
	a := &authorizer{
		clientCert: clientCert,
		cache:      newCredCache(credCacheSize),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_auth_failures_total",
			Help: "Requests refused by v2 auth, by reason: malformed, no_user, password, permission."}, []string{"reason"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_auth_cache_lookups_total",
			Help: "Basic-auth password checks, by result: hit (answered from the verified-credentials cache) or miss (bcrypt compared)."},
			[]string{"result"}),
		// At most 5 refusals a second are logged, so that a client
		// retrying a bad password cannot flood the log.
		log:     log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second}),
		compare: bcrypt.CompareHashAndPassword,
	}
	for _, r := range []string{failMalformed, failNoUser, failPassword, failPermission} {
		a.failures.WithLabelValues(r)
	}
	if ab, ok := be.(Auth); ok {
		a.be = ab
	}
	if reg != nil {
		reg.MustRegister(a.failures, a.lookups)
	}
	return a
}

// enabled returns the auth state when auth is on, else nil.
func (a *authorizer) enabled() *server.AuthState {
	if a.be == nil {
		return nil
	}
	if st := a.be.AuthState(); st.Enabled() {
		return st
	}
	return nil
}

// identity is who a request comes from.
type identity struct {
	user   server.AuthUser
	guest  bool   // no credentials: the guest role applies
	failed string // a refusal reason: the credentials were bad
}

// identify finds the request's user, as etcd does: with no Authorization
// header, the client certificate's common name if client-certificate auth
// is on and that user exists, else a guest (forRoot: refused); with one,
// Basic credentials of an existing user with the right password, else
// refused. Any Authorization header that fails is refused, even where a
// guest would be allowed.
func (a *authorizer) identify(r *http.Request, st *server.AuthState) identity {
	h := r.Header.Get("Authorization")
	if h == "" {
		if a.clientCert && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			if u, ok := st.User(r.TLS.PeerCertificates[0].Subject.CommonName); ok {
				return identity{user: u}
			}
		}
		return identity{guest: true}
	}
	name, password, ok := parseBasicAuth(h)
	if !ok {
		return identity{failed: failMalformed}
	}
	u, ok := st.User(name)
	if !ok {
		// Compare anyway, so that an unknown name takes as long to
		// refuse as a wrong password: timing must not tell which user
		// names exist.
		_ = a.compare(dummyHash(), []byte(password))
		return identity{user: server.AuthUser{Name: name}, failed: failNoUser}
	}
	if !a.checkPassword(u, password) {
		return identity{user: u, failed: failPassword}
	}
	return identity{user: u}
}

// keyAccess reports whether r may read (GET, HEAD) or write (any other
// method) key; recursive requests need a "*" pattern. The key is the path
// as the client sent it (a trailing slash counts). A guest's access is
// checked as non-recursive, as etcd does.
func (a *authorizer) keyAccess(r *http.Request, key string, recursive bool) bool {
	st := a.enabled()
	if st == nil {
		return true
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	id := a.identify(r, st)
	switch {
	case id.failed != "":
		a.refused(r, id, key)
		return false
	case id.guest:
		if g, ok := st.Role(server.GuestRoleName); ok && g.HasKeyAccess(key, write) {
			return true
		}
	default:
		for _, name := range id.user.Roles {
			role, ok := st.Role(name)
			if !ok {
				continue
			}
			if recursive && role.HasRecursiveAccess(key, write) || !recursive && role.HasKeyAccess(key, write) {
				return true
			}
		}
	}
	id.failed = failPermission
	a.refused(r, id, key)
	return false
}

// rootAccess reports whether r comes from a user with the root role (or
// auth is disabled). Guests never have it.
func (a *authorizer) rootAccess(r *http.Request) bool {
	st := a.enabled()
	if st == nil {
		return true
	}
	id := a.identify(r, st)
	if id.failed == "" && !id.guest && id.user.HasRole(server.RootRoleName) {
		return true
	}
	if id.failed == "" {
		id.failed = failPermission
	}
	a.refused(r, id, r.URL.Path)
	return false
}

// refused counts and logs a refusal; never a password.
func (a *authorizer) refused(r *http.Request, id identity, resource string) {
	a.failures.WithLabelValues(id.failed).Inc()
	user := id.user.Name
	if id.guest {
		user = "(guest)"
	}
	if len(user) > 128 { // a name is the client's to choose: bound the log line
		user = strings.ToValidUTF8(user[:128], "") + "..."
	}
	a.log.Warn().Str("reason", id.failed).Str("user", user).Str("method", r.Method).
		Str("resource", resource).Str("remote", r.RemoteAddr).Msg("auth: request refused")
}

// dummyHash is a bcrypt hash of a random password at the cost real
// hashes have, made once, on the first refusal of an unknown user.
var dummyHash = sync.OnceValue(func() []byte {
	var pw [16]byte
	_, _ = rand.Read(pw[:])
	h, err := bcrypt.GenerateFromPassword(pw[:], server.BcryptCost)
	if err != nil {
		return []byte("$2a$10$invalidinvalidinvalidinvalidinvalidinvalidinvalidinvali")
	}
	return h
})

// checkPassword compares a password with the user's bcrypt hash, through
// the cache of credentials verified before.
func (a *authorizer) checkPassword(u server.AuthUser, password string) bool {
	k := a.cache.key(u.Name, password)
	if a.cache.hit(k, u.Hash) {
		a.lookups.WithLabelValues("hit").Inc()
		return true
	}
	a.lookups.WithLabelValues("miss").Inc()
	if a.compare([]byte(u.Hash), []byte(password)) != nil {
		return false
	}
	a.cache.add(k, u.Hash)
	return true
}

// writeKeyNoAuth answers a refused keys, locks or queues request: the v2
// error 110 with index 0.
func writeKeyNoAuth(w http.ResponseWriter) {
	writeError(w, store.NewError(store.EcodeUnauthorized, "Insufficient credentials", 0))
}

// writeNoAuth answers a refused request elsewhere: etcd's
// {"message":"Insufficient credentials"}, without a newline.
func writeNoAuth(w http.ResponseWriter) {
	writeMessage(w, http.StatusUnauthorized, "Insufficient credentials")
}

// parseBasicAuth reads an Authorization header of the Basic scheme as Go's
// net/http does (and so etcd): the scheme name in any case, one space,
// standard base64 of "user:password". ok is false for anything else.
func parseBasicAuth(h string) (user, password string, ok bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(h[len(prefix):])
	if err != nil {
		return "", "", false
	}
	user, password, ok = strings.Cut(string(b), ":")
	if !ok {
		return "", "", false
	}
	return user, password, true
}

// credCacheSize bounds the verified-credentials cache.
const credCacheSize = 1024

// credCache remembers credentials that passed a bcrypt comparison, so
// that a client sending the same basic-auth header on every request pays
// bcrypt (tens of milliseconds of CPU) once, not each time. A key is the
// user name and SHA-256 of a random per-process salt and the password: no
// password is kept, and the digests are worthless to anyone without this
// process's memory. The value is the hash the password was verified
// against: an entry counts only while the user's stored hash is the same,
// so a password change (or a user removed and created again) invalidates
// it at once. Roles are not cached: they are read fresh on every request.
// It holds at most max entries and evicts the least recently used.
type credCache struct {
	mu   sync.Mutex
	salt [32]byte
	max  int
	m    map[credKey]*list.Element
	lru  *list.List // of *credEntry, most recently used first
}

type credKey struct {
	user string
	sum  [sha256.Size]byte
}

type credEntry struct {
	key  credKey
	hash string
}

func newCredCache(max int) *credCache {
	c := &credCache{max: max, m: map[credKey]*list.Element{}, lru: list.New()}
	_, _ = rand.Read(c.salt[:])
	return c
}

func (c *credCache) key(user, password string) credKey {
	h := sha256.New()
	h.Write(c.salt[:])
	h.Write([]byte(password))
	k := credKey{user: user}
	h.Sum(k.sum[:0])
	return k
}

// hit reports whether k was verified against hash; an entry verified
// against another hash is dropped.
func (c *credCache) hit(k credKey, hash string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		return false
	}
	if el.Value.(*credEntry).hash != hash {
		c.lru.Remove(el)
		delete(c.m, k)
		return false
	}
	c.lru.MoveToFront(el)
	return true
}

// add records that k was verified against hash.
func (c *credCache) add(k credKey, hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		el.Value.(*credEntry).hash = hash
		c.lru.MoveToFront(el)
		return
	}
	c.m[k] = c.lru.PushFront(&credEntry{key: k, hash: hash})
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.m, old.Value.(*credEntry).key)
	}
}

func (c *credCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
