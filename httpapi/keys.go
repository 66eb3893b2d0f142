package httpapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnkv/cairn/internal/statuswriter"
	"github.com/cairnkv/cairn/locks"
	"github.com/cairnkv/cairn/store"
)

const keysPrefix = "/v2/keys"

// keysAllow is the Allow header of a 405 on /v2/keys.
const keysAllow = "HEAD,GET,PUT,POST,DELETE"

// keyRequest is a parsed /v2/keys request.
type keyRequest struct {
	method       string
	path         string // clean store path
	value        string
	prevValue    string
	prevIndex    uint64
	waitIndex    uint64
	hasTTL       bool
	ttl          uint64
	prevExist    *bool
	refresh      bool
	dir          bool
	recursive    bool
	sorted       bool
	wait         bool
	stream       bool
	quorum       bool
	serializable bool
	noValue      bool
	fenceLock    string // prevLock, as the lock's directory
	fenceToken   uint64 // prevToken
}

func invalidField(name string) *store.Error {
	return store.NewError(store.EcodeInvalidField, fmt.Sprintf("invalid value for %q", name), 0)
}

// parseKeyRequest validates a request in the order etcd does (API.md
// §1.2), so that the first failure reported is the same, and parses it
// into kr (the caller's, so that it can live on the stack). Every error
// carries index 0.
func parseKeyRequest(r *http.Request, now time.Time, kr *keyRequest) *store.Error {
	// The parameters are read as ParseForm reads them (readKeyForm): the
	// form body for PUT and POST only (never for DELETE), its values
	// before the query string's (so the body wins). The body is bounded
	// in size and time (limiter.requests): Go's own 10 MiB cap, etcd's,
	// is never reached.
	var f keyForm
	if err := readKeyForm(r, &f); err != nil {
		return formError(err)
	}
	*kr = keyRequest{method: r.Method, path: keyPath(r.URL.Path)}

	var err *store.Error
	uintParam := func(p keyParam, code int) uint64 {
		if !f.has(p) || err != nil {
			return 0
		}
		v, perr := strconv.ParseUint(f.get(p), 10, 64)
		if perr != nil {
			err = store.NewError(code, fmt.Sprintf("invalid value for %q", keyParamNames[p]), 0)
		}
		return v
	}
	boolParam := func(p keyParam) bool {
		if !f.has(p) || err != nil {
			return false
		}
		v, perr := strconv.ParseBool(f.get(p))
		if perr != nil {
			err = invalidField(keyParamNames[p])
		}
		return v
	}
	kr.prevIndex = uintParam(pPrevIndex, store.EcodeIndexNaN)
	kr.waitIndex = uintParam(pWaitIndex, store.EcodeIndexNaN)
	kr.recursive = boolParam(pRecursive)
	kr.sorted = boolParam(pSorted)
	kr.wait = boolParam(pWait)
	kr.dir = boolParam(pDir)
	kr.quorum = boolParam(pQuorum)
	kr.stream = boolParam(pStream)
	if err != nil {
		return err
	}
	if kr.wait && r.Method != http.MethodGet {
		return store.NewError(store.EcodeInvalidField, `"wait" can only be used with GET requests`, 0)
	}
	kr.prevValue = f.get(pPrevValue)
	if f.has(pPrevValue) && kr.prevValue == "" {
		return store.NewError(store.EcodePrevValueRequired, `"prevValue" cannot be empty`, 0)
	}
	kr.noValue = boolParam(pNoValueOnSuccess)
	kr.serializable = boolParam(pSerializable)
	if err != nil {
		return err
	}
	// Cairn's fence: the change applies only if prevToken is the token of
	// the current holder of lock prevLock.
	if f.has(pPrevLock) || f.has(pPrevToken) {
		name := f.get(pPrevLock)
		if locks.CheckName(name) != nil {
			return invalidField("prevLock")
		}
		t, terr := locks.TokenOf(f.get(pPrevToken))
		if terr != nil {
			return invalidField("prevToken")
		}
		kr.fenceLock, kr.fenceToken = locks.Dir(name), t
	}
	if f.get(pTTL) != "" {
		kr.ttl = uintParam(pTTL, store.EcodeTTLNaN)
		if err != nil {
			return err
		}
		// etcd overflows silently here; Cairn refuses a deadline it cannot
		// represent (API.md, "Where Cairn deliberately differs").
		if kr.ttl > uint64(math.MaxInt64-now.UnixNano())/1e9 {
			return store.NewError(store.EcodeTTLNaN, `invalid value for "ttl"`, 0)
		}
		kr.hasTTL = true
	}
	if f.has(pPrevExist) {
		v, perr := strconv.ParseBool(f.get(pPrevExist))
		if perr != nil {
			return store.NewError(store.EcodeInvalidField, "invalid value for prevExist", 0)
		}
		kr.prevExist = &v
	}
	if f.has(pRefresh) {
		v, perr := strconv.ParseBool(f.get(pRefresh))
		if perr != nil {
			return store.NewError(store.EcodeInvalidField, "invalid value for refresh", 0)
		}
		kr.refresh = v
		if v {
			if f.get(pValue) != "" {
				return store.NewError(store.EcodeRefreshValue, "A value was provided on a refresh", 0)
			}
			if !kr.hasTTL {
				return store.NewError(store.EcodeRefreshTTLRequired, "No TTL value set", 0)
			}
		}
	}
	kr.value = f.get(pValue)
	return nil
}

// storeRequest maps a parsed PUT, POST or DELETE to its store operation
// (API.md §1.3).
func (kr *keyRequest) storeRequest(now time.Time) *store.Request {
	r := &store.Request{
		Path:       kr.path,
		Value:      kr.value,
		Dir:        kr.dir,
		PrevValue:  kr.prevValue,
		PrevIndex:  kr.prevIndex,
		HasTTL:     kr.hasTTL,
		TTL:        kr.ttl,
		Refresh:    kr.refresh,
		Time:       now.UnixNano(),
		FenceLock:  kr.fenceLock,
		FenceToken: kr.fenceToken,
	}
	compare := kr.prevValue != "" || kr.prevIndex > 0
	switch kr.method {
	case http.MethodPost:
		r.Op = store.OpCreateInOrder
		r.Refresh = false
	case http.MethodDelete:
		r.Op, r.Recursive = store.OpDelete, kr.recursive
		if compare {
			r.Op = store.OpCompareAndDelete
		}
		r.Refresh = false
	default: // PUT
		switch {
		case kr.prevExist != nil && !*kr.prevExist:
			r.Op, r.PrevValue, r.PrevIndex, r.Refresh = store.OpCreate, "", 0, false
		case kr.prevExist != nil && !compare:
			r.Op = store.OpUpdate
		case compare:
			r.Op = store.OpCompareAndSwap
		default:
			r.Op = store.OpSet
		}
	}
	return r
}

// keysHandler serves /v2/keys.
type keysHandler struct {
	be      Backend
	now     func() time.Time
	metrics *httpMetrics
	lim     *limiter
	authz   *authorizer
	// clusterID and term are the X-Etcd-Cluster-Id (base 16) and
	// X-Raft-Term (base 10) values, formatted once per value.
	clusterID, term cachedValue
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *keysHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodHead, http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete:
	default:
		w.Header().Set("Allow", keysAllow)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header()[hdrClusterID] = h.clusterID.get(h.be.Status().ClusterID)
	now := h.now()
	var kr keyRequest
	perr := parseKeyRequest(r, now, &kr)
	if perr == nil {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if !kr.wait || kr.quorum {
				perr = h.lim.answer(kr.path, kr.recursive, now.UnixNano())
			}
		default:
			perr = h.lim.keys(&kr)
		}
	}
	if perr != nil {
		h.metrics.observe(methodLabel(r, false), errorStatus(perr.Code), now)
		writeError(w, perr)
		return
	}
	// After the parameters, as etcd: the key is the path as sent, a
	// trailing slash included.
	if !h.authz.keyAccess(r, strings.TrimPrefix(r.URL.Path, keysPrefix), kr.recursive) {
		if !(kr.wait && !kr.quorum) {
			h.metrics.observe(methodLabel(r, kr.quorum), http.StatusUnauthorized, now)
		}
		writeKeyNoAuth(w)
		return
	}
	if !(kr.wait && !kr.quorum) {
		// The status is recorded by the writer logRequests puts in front
		// of every handler, when nothing has gone through it yet.
		sw, ok := w.(*statuswriter.Writer)
		if !ok || sw.Status != 0 {
			sw = statuswriter.New(w)
			w = sw
		}
		quorum := kr.quorum
		defer func() { h.metrics.observe(methodLabel(r, quorum), sw.Status, now) }()
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if kr.wait && !kr.quorum {
			h.watch(w, r, &kr)
			return
		}
		e, err := h.be.Get(r.Context(), kr.path, kr.recursive, kr.serializable)
		h.reply(w, e, err, now, false)
	default:
		e, err := h.be.Do(r.Context(), kr.storeRequest(now))
		h.reply(w, e, err, now, kr.noValue)
	}
}

// reply writes the outcome of a get or a change.
func (h *keysHandler) reply(w http.ResponseWriter, e *store.Event, err error, now time.Time, noValue bool) {
	if err != nil {
		writeError(w, err)
		return
	}
	at := now.UnixNano()
	if e.Action != store.ActionGet {
		at = e.Time // a change's TTLs are as of the change
	}
	noValue = noValue && (e.Action == store.ActionSet || e.Action == store.ActionCreate ||
		e.Action == store.ActionUpdate || e.Action == store.ActionCompareAndSwap)
	bp := bufPool.Get().(*[]byte)
	b := appendEvent((*bp)[:0], e, at, noValue)
	if e.Action == store.ActionGet && int64(len(b)) > h.lim.MaxAnswerBytes {
		// Sized before the read, but the data grew meanwhile (or the
		// backend could not be sized). The pool keeps its old buffer.
		bufPool.Put(bp)
		writeError(w, h.lim.answerTooLarge())
		return
	}
	hd := w.Header()
	hd[hdrContentType] = valJSON
	st := h.be.Status()
	hd[hdrRaftTerm] = h.term.get(st.Term)
	setUintHeaders(hd, uintHeader{hdrEtcdIndex, e.Index}, uintHeader{hdrRaftIndex, st.RaftIndex},
		uintHeader{hdrContentLength, uint64(len(b))})
	status := http.StatusOK
	if e.IsCreated() {
		status = http.StatusCreated
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
	*bp = b
	bufPool.Put(bp)
}

// errorStatus maps v2 error codes to HTTP statuses; others are 400.
func errorStatus(code int) int {
	switch code {
	case store.EcodeKeyNotFound:
		return http.StatusNotFound
	case store.EcodeNotFile, store.EcodeDirNotEmpty:
		return http.StatusForbidden
	case store.EcodeUnauthorized:
		return http.StatusUnauthorized
	case store.EcodeTestFailed, store.EcodeNodeExist, store.EcodeLockHeld, store.EcodeFenceFailed:
		return http.StatusPreconditionFailed
	case store.EcodeQueueEmpty:
		return http.StatusNotFound
	case store.EcodeWaitTimeout:
		return http.StatusRequestTimeout
	case store.EcodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case store.EcodeQuotaExceeded:
		return http.StatusInsufficientStorage
	case store.EcodeRaftInternal, store.EcodeLeaderElect:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// writeError writes a v2 error. Errors that are not *store.Error (a
// timeout, a stopped member) become code 300 with the error text as cause.
func writeError(w http.ResponseWriter, err error) {
	var se *store.Error
	if !errors.As(err, &se) {
		se = store.NewError(store.EcodeRaftInternal, err.Error(), 0)
	}
	b := appendError(nil, se)
	hd := w.Header()
	hd[hdrContentType] = valJSON
	setUintHeaders(hd, uintHeader{hdrEtcdIndex, se.Index}, uintHeader{hdrContentLength, uint64(len(b))})
	w.WriteHeader(errorStatus(se.Code))
	_, _ = w.Write(b)
}

// watch serves a long-poll or stream watch. Headers go out at once with
// the index the watch started at; then one event (long poll) or every
// event (stream) until the client goes away.
func (h *keysHandler) watch(w http.ResponseWriter, r *http.Request, kr *keyRequest) {
	wt, err := h.be.Watch(kr.path, kr.recursive, kr.stream, kr.waitIndex)
	if err != nil {
		writeError(w, err)
		return
	}
	defer wt.Remove()
	hd := w.Header()
	hd[hdrContentType] = valJSON
	st := h.be.Status()
	hd[hdrRaftTerm] = h.term.get(st.Term)
	setUintHeaders(hd, uintHeader{hdrEtcdIndex, wt.StartIndex}, uintHeader{hdrRaftIndex, st.RaftIndex})
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	ctx := r.Context()
	var b []byte
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-wt.C:
			if !ok {
				// The hub ended a stream watcher that fell behind: say so,
				// and where to resume, rather than go quiet.
				b = appendError(b[:0], watcherEnded(wt))
				_, _ = w.Write(b)
				return
			}
			b = appendEvent(b[:0], e, e.Time, false)
			if _, err := w.Write(b); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
			if !kr.stream {
				return
			}
		}
	}
}

// watcherEnded is the last line of a stream the hub ended.
func watcherEnded(wt *store.Watcher) *store.Error {
	next := wt.NextIndex()
	why := "watcher fell behind"
	if errors.Is(wt.Err(), store.ErrWatcherCleared) {
		why = "the member installed a snapshot"
	}
	return store.NewError(store.EcodeWatcherCleared,
		fmt.Sprintf("%s; resume with waitIndex=%d", why, next), next-1)
}

// redirectUnclean answers 301 for paths holding "//", "/./" or "/../",
// as Go's ServeMux did for etcd (API.md §1.8), for every method. The
// write is not performed.
func redirectUnclean(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			if p := cleanURLPath(r.URL.Path); p != r.URL.Path {
				u := &url.URL{Path: p, RawQuery: r.URL.RawQuery}
				http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cleanURLPath is path.Clean that keeps a trailing slash. A path that is
// clean already (nearly every one) is returned as it is, without a copy.
func cleanURLPath(p string) string {
	if isCleanURLPath(p) {
		return p
	}
	if p == "" {
		return "/"
	}
	np := store.CleanPath(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// isCleanURLPath reports whether p is absolute and has no empty, "." or
// ".." element, a trailing slash aside: whether cleanURLPath(p) is p.
func isCleanURLPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	start := 1 // of the element being read
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch p[start:i] {
		case "":
			if i < len(p) {
				return false // "//"
			}
		case ".", "..":
			return false
		}
		start = i + 1
	}
	return true
}

// keyPath is the store path a /v2/keys URL path names:
// store.CleanPath of what follows the prefix, without copying it when it
// is clean already.
func keyPath(urlPath string) string {
	p := strings.TrimPrefix(urlPath, keysPrefix)
	if !isCleanURLPath(p) {
		return store.CleanPath(p)
	}
	if len(p) > 1 && p[len(p)-1] == '/' {
		return p[:len(p)-1]
	}
	return p
}
