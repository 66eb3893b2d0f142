package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/store"
)

// Limits bound what one request may ask of a member (docs/api.md,
// "Limits"). The member that takes a request checks them before it
// proposes or reads anything: admission control, which needs no agreement
// between members, so they are settings, unlike the store's hard limits
// (store.MaxKeyBytes, ...), which they must not exceed. A zero field takes
// its default; a value above a hard limit is lowered to it.
type Limits struct {
	// MaxKeyBytes bounds the key of a PUT, POST or DELETE on /v2/keys; a
	// POST's counts the 21 bytes of the name it creates ("/" and 20
	// digits). Default DefaultMaxKeyBytes, at most store.MaxKeyBytes.
	MaxKeyBytes int
	// MaxKeyDepth bounds the path elements of that key (a POST's counts
	// the one it creates). Default DefaultMaxKeyDepth, at most
	// store.MaxKeyDepth.
	MaxKeyDepth int
	// MaxValueBytes bounds value and prevValue on /v2/keys and the value of
	// a lock or a queue item. Default DefaultMaxValueBytes, at most
	// store.MaxValueBytes.
	MaxValueBytes int
	// MaxRequestBytes bounds a request's target (path and query string)
	// and body together, on every endpoint. A body declared larger is not
	// read; one that turns out larger is read no further. Default
	// DefaultMaxRequestBytes.
	MaxRequestBytes int
	// MaxAnswerBytes bounds the answer to a GET on /v2/keys and to a queue
	// listing. With a LocalStorer backend the answer is sized before it is
	// read; otherwise it is measured once built. Default
	// DefaultMaxAnswerBytes.
	MaxAnswerBytes int64
	// QuotaBytes bounds the data (store.Store.DataBytes): a change that
	// could grow it is refused when the data plus the change's key and
	// value would pass it. Deletes, dequeues, releases and refreshes are
	// never refused. Needs a LocalStorer backend. Default
	// DefaultQuotaBytes.
	QuotaBytes int64
	// BodyTimeout bounds the time a request's body may take to arrive,
	// from the end of its headers. Default DefaultBodyTimeout.
	BodyTimeout time.Duration
}

// The defaults of Limits (and of the settings that set them).
const (
	DefaultMaxKeyBytes     = 4096
	DefaultMaxKeyDepth     = 128
	DefaultMaxValueBytes   = 1 << 20
	DefaultMaxRequestBytes = 1572864 // 1.5 MiB, etcd's --max-request-bytes
	DefaultMaxAnswerBytes  = 64 << 20
	DefaultQuotaBytes      = 2 << 30 // etcd's default --quota-backend-bytes
	DefaultBodyTimeout     = 10 * time.Second
)

// inOrderName is what a POST adds to its key: "/" and a 20-digit index.
const inOrderName = 21

// LocalStorer is implemented by backends that hold the applied state in
// this process (server.Member, server.Local). The limits read it, never
// change it: the data size for the quota, and the nodes a read will
// return, to size its answer before making it.
type LocalStorer interface {
	Store() *store.Store
}

// withDefaults fills zero fields and lowers values above the hard limits.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d, hard int) {
		if *v <= 0 {
			*v = d
		}
		if hard > 0 {
			*v = min(*v, hard)
		}
	}
	def(&l.MaxKeyBytes, DefaultMaxKeyBytes, store.MaxKeyBytes)
	def(&l.MaxKeyDepth, DefaultMaxKeyDepth, store.MaxKeyDepth)
	def(&l.MaxValueBytes, DefaultMaxValueBytes, store.MaxValueBytes)
	def(&l.MaxRequestBytes, DefaultMaxRequestBytes, 0)
	if l.MaxAnswerBytes <= 0 {
		l.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	if l.QuotaBytes <= 0 {
		l.QuotaBytes = DefaultQuotaBytes
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	return l
}

// The label values of cairn_requests_refused_total: the rule that refused.
const (
	limKeyBytes     = "key-bytes"
	limKeyDepth     = "key-depth"
	limValueBytes   = "value-bytes"
	limRequestBytes = "request-bytes"
	limAnswerBytes  = "answer-bytes"
	limQuota        = "quota"
	limBodyTimeout  = "body-timeout"
	limReserved     = "reserved"
)

// limiter applies Limits and counts what it refuses.
type limiter struct {
	Limits
	be      Backend
	refused *prometheus.CounterVec
}

func newLimiter(l Limits, be Backend, reg prometheus.Registerer) *limiter {
	lim := &limiter{Limits: l.withDefaults(), be: be,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_requests_refused_total",
			Help: "Client requests refused by a limit, by the limit: key-bytes, key-depth, value-bytes, request-bytes, answer-bytes, quota, body-timeout, reserved (a keys write into /_cairn)."},
			[]string{"limit"})}
	for _, name := range []string{limKeyBytes, limKeyDepth, limValueBytes, limRequestBytes, limAnswerBytes, limQuota, limBodyTimeout, limReserved} {
		lim.refused.WithLabelValues(name)
	}
	if reg == nil {
		return lim
	}
	reg.MustRegister(lim.refused, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_quota_bytes",
		Help: "The data quota (--quota-backend-bytes)."}, func() float64 { return float64(lim.QuotaBytes) }))
	if st := lim.store(); st != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_data_bytes",
			Help: "Bytes of data in this member's state: the paths of every key and directory and every value."},
			func() float64 { return float64(lim.store().DataBytes()) }))
	}
	return lim
}

// store is the backend's store, or nil.
func (l *limiter) store() *store.Store {
	if ls, ok := l.be.(LocalStorer); ok {
		return ls.Store()
	}
	return nil
}

// refuse counts a refusal by limit and returns its error (index 0: the
// data was not looked at).
func (l *limiter) refuse(limit string, code int, format string, args ...any) *store.Error {
	l.refused.WithLabelValues(limit).Inc()
	return store.NewError(code, fmt.Sprintf(format, args...), 0)
}

// key checks the key of a write; inOrder for a POST, whose key gets one
// more element of inOrderName bytes.
func (l *limiter) key(p string, inOrder bool) *store.Error {
	n, depth, with := len(p), store.PathDepth(p), ""
	if inOrder {
		n, depth, with = n+inOrderName, depth+1, " with its in-order name"
	}
	if n > l.MaxKeyBytes {
		return l.refuse(limKeyBytes, store.EcodeTooLarge, "key of %d bytes%s; at most %d (--max-key-bytes)", n, with, l.MaxKeyBytes)
	}
	if depth > l.MaxKeyDepth {
		return l.refuse(limKeyDepth, store.EcodeTooLarge, "key of %d path elements%s; at most %d (--max-key-depth)", depth, with, l.MaxKeyDepth)
	}
	return nil
}

// value checks a value (or prevValue: name says which).
func (l *limiter) value(name, v string) *store.Error {
	if len(v) > l.MaxValueBytes {
		return l.refuse(limValueBytes, store.EcodeTooLarge, "%s of %d bytes; at most %d (--max-value-bytes)", name, len(v), l.MaxValueBytes)
	}
	return nil
}

// reserved refuses a keys write at or below store.CairnDir: the locks and
// queues change only through their own endpoints.
func (l *limiter) reserved(p string) *store.Error {
	if p == store.CairnDir || strings.HasPrefix(p, store.CairnDir+"/") {
		return l.refuse(limReserved, store.EcodeKeyIsPreserved, "%s", p)
	}
	return nil
}

// quota refuses a change that would add up to grow bytes to data that
// would then pass the quota.
func (l *limiter) quota(grow int) *store.Error {
	st := l.store()
	if st == nil {
		return nil
	}
	if data := st.DataBytes(); data+int64(grow) > l.QuotaBytes {
		return l.refuse(limQuota, store.EcodeQuotaExceeded,
			"data of %d bytes and this change's %d would pass the quota of %d bytes (--quota-backend-bytes); delete keys to write again",
			data, grow, l.QuotaBytes)
	}
	return nil
}

// keys checks a parsed /v2/keys change before it is proposed: the sizes
// of what it would put in the log, the reserved tree, and, for what could
// grow the data, the quota.
func (l *limiter) keys(kr *keyRequest) *store.Error {
	inOrder := kr.method == http.MethodPost
	if err := l.key(kr.path, inOrder); err != nil {
		return err
	}
	if err := l.value("value", kr.value); err != nil {
		return err
	}
	if err := l.value("prevValue", kr.prevValue); err != nil {
		return err
	}
	if err := l.reserved(kr.path); err != nil {
		return err
	}
	if kr.method == http.MethodDelete || kr.refresh {
		return nil // removes, or keeps the value: the data cannot grow
	}
	grow := len(kr.path) + len(kr.value)
	if inOrder {
		grow += inOrderName
	}
	return l.quota(grow)
}

// answerTooLarge is the refusal of a read whose answer passes the limit.
func (l *limiter) answerTooLarge() *store.Error {
	return l.refuse(limAnswerBytes, store.EcodeTooLarge,
		"answer of more than %d bytes (--max-answer-bytes); read a narrower subtree, or without recursive", l.MaxAnswerBytes)
}

// answer refuses a get of p whose answer would pass the limit, sized
// from the local store before the read is made. The read itself may
// happen a moment later, on a member that has applied more; reply
// measures what it built as well.
func (l *limiter) answer(p string, recursive bool, now int64) *store.Error {
	st := l.store()
	if st == nil {
		return nil
	}
	if b, err := st.SubtreeBytes(p); err != nil || answerBound(b) <= l.MaxAnswerBytes {
		return nil // cannot pass it (an error is the read's to report)
	}
	if size, err := answerSize(st, p, recursive, now, l.MaxAnswerBytes); err == nil && size > l.MaxAnswerBytes {
		return l.answerTooLarge()
	}
	return nil
}

// maxNodeOverhead bounds what a node's object in an answer holds besides
// the escaped bytes of its key and value (each byte escapes to 6 at
// most): every field with its name, quotes and commas, the longest
// expiration, ttl and indexes, and answerSize's comma and `,"nodes":[]`.
const maxNodeOverhead = len(`{"key":"","value":"","dir":true,"expiration":"","ttl":,"modifiedIndex":,"createdIndex":}`) +
	len("2262-04-11T23:47:16.854775807Z") + len("-9223372036854775808") + 2*len("18446744073709551615") +
	len(`,`) + len(`,"nodes":[]`)

// answerBound bounds, in O(1), the answer to a get of a subtree holding
// data bytes (SubtreeBytes): a node costs at most maxNodeOverhead plus 6
// times its path and value, and a node other than the root has a path of
// 2 bytes at least, so at most data/2 nodes and the subtree's top one pay
// the overhead; then the event around them.
func answerBound(data int64) int64 {
	return 6*data + (data/2+1)*int64(maxNodeOverhead) + int64(len(`{"action":"get","node":}`+"\n"))
}

// answerSize bounds from above the size of the answer to a get of p:
// exact for every node, plus a comma per node and the `,"nodes":[]` a
// directory may open. It stops counting once past stopAt, so it costs at
// most what an answer of that size would.
func answerSize(st *store.Store, p string, recursive bool, now, stopAt int64) (int64, error) {
	size := int64(len(`{"action":"get","node":}` + "\n"))
	err := st.Visit(p, recursive, func(v store.NodeView) bool {
		size += int64(nodeLen(&v, now)) + 1
		if v.Dir {
			size += int64(len(`,"nodes":[]`))
		}
		return size <= stopAt
	})
	return size, err
}

// limitError carries a limit's refusal out of a body read, through
// ParseForm or a JSON decoder.
type limitError struct{ se *store.Error }

func (e *limitError) Error() string { return e.se.Error() }

// formError maps a failed ParseForm to its v2 error: a limit's refusal,
// or 210 with Go's text.
func formError(err error) *store.Error {
	var le *limitError
	if errors.As(err, &le) {
		return le.se
	}
	return store.NewError(store.EcodeInvalidForm, err.Error(), 0)
}

// v2JSON reports whether errors on path are v2 errors (the keys API and
// Cairn's locks and queues); elsewhere they are etcd's {"message":...}.
func v2JSON(path string) bool {
	for _, p := range []string{keysPrefix, "/v2/locks", "/v2/queues"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// writeRefusal answers a refusal in the endpoint's error shape and closes
// the connection after it (its body may be unread).
func (l *limiter) writeRefusal(w http.ResponseWriter, r *http.Request, se *store.Error) {
	w.Header().Set("Connection", "close")
	if isKeysPath(r.URL.Path) {
		w.Header().Set("X-Etcd-Cluster-Id", strconv.FormatUint(l.be.Status().ClusterID, 16))
	}
	if v2JSON(r.URL.Path) {
		writeError(w, se)
		return
	}
	writeMessage(w, errorStatus(se.Code), se.Message()+": "+se.Cause)
}

// requests bounds every request, before routing: its target and declared
// body against MaxRequestBytes (a body declared too large is refused
// unread), and its body, as it is read, in size and in time. The read
// deadline is set only for a request with a body, and cleared once the
// body is read to its end, so that a request that then waits (a watch, a
// lock in line, a blocking dequeue) waits as long as its client likes.
// A body read past either bound fails with a limitError, which the
// handlers answer (413 or 408); a handler that does not read the body
// leaves it to the server, whose read of the rest then fails at the
// deadline and closes the connection.
func (l *limiter) requests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := len(r.RequestURI)
		if target > l.MaxRequestBytes {
			l.writeRefusal(w, r, l.refuse(limRequestBytes, store.EcodeTooLarge,
				"request target of %d bytes; at most %d (--max-request-bytes)", target, l.MaxRequestBytes))
			return
		}
		budget := int64(l.MaxRequestBytes - target)
		if r.ContentLength > budget {
			l.writeRefusal(w, r, l.refuse(limRequestBytes, store.EcodeTooLarge,
				"request of %d bytes; at most %d (--max-request-bytes)", int64(target)+r.ContentLength, l.MaxRequestBytes))
			return
		}
		if r.ContentLength != 0 { // declared, or chunked (-1)
			_ = setReadDeadline(w, time.Now().Add(l.BodyTimeout)) // unsupported only in tests' recorders
			b := &boundedBody{ReadCloser: r.Body, w: w, lim: l, left: budget}
			// ParseForm drops its own 10 MiB cap for a MaxBytesReader;
			// boundedBody refuses first.
			r.Body = http.MaxBytesReader(w, b, budget+1)
		}
		next.ServeHTTP(w, r)
	})
}

// boundedBody is a request body read within the request's byte budget
// and before the read deadline.
type boundedBody struct {
	io.ReadCloser
	w    http.ResponseWriter
	lim  *limiter
	left int64 // bytes the body may still have
	err  error // the refusal, once made
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte more shows a body too large
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	switch {
	case b.left < 0:
		n += int(b.left)
		err = b.fail(b.lim.refuse(limRequestBytes, store.EcodeTooLarge,
			"request of more than %d bytes; at most %d (--max-request-bytes)", b.lim.MaxRequestBytes, b.lim.MaxRequestBytes))
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = b.fail(b.lim.refuse(limBodyTimeout, store.EcodeWaitTimeout,
			"request body not received within %v (--request-body-timeout)", b.lim.BodyTimeout))
	case err == io.EOF:
		_ = setReadDeadline(b.w, time.Time{})
	}
	return n, err
}

func (b *boundedBody) fail(se *store.Error) error {
	b.w.Header().Set("Connection", "close")
	b.err = &limitError{se}
	return b.err
}

// setReadDeadline is http.ResponseController's SetReadDeadline (the
// writer's own, or that of the writer it wraps, through Unwrap) without
// allocating a ResponseController.
func setReadDeadline(w http.ResponseWriter, t time.Time) error {
	for {
		switch v := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			return v.SetReadDeadline(t)
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return http.ErrNotSupported
		}
	}
}
