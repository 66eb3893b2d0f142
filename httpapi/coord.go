package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cairnkv/cairn/locks"
	"github.com/cairnkv/cairn/queue"
	"github.com/cairnkv/cairn/store"
)

// coordHandler serves /v2/locks and /v2/queues: server-side locks and
// queues, answered in the keys API's JSON shapes (docs/api.md).
type coordHandler struct {
	be     Backend
	locks  *locks.Locks
	queues *queue.Queues
	now    func() time.Time
	lim    *limiter
	authz  *authorizer
}

// coordParams holds the parameters these endpoints share.
type coordParams struct {
	name    string
	value   string
	ttl     uint64
	hasTTL  bool
	wait    bool
	token   uint64
	timeout time.Duration
}

// parseCoord reads the name from the route and the form parameters.
func parseCoord(r *http.Request) (*coordParams, *store.Error) {
	if err := r.ParseForm(); err != nil {
		return nil, formError(err)
	}
	p := &coordParams{name: chi.URLParam(r, "name"), value: r.Form.Get("value")}
	if err := locks.CheckName(p.name); err != nil {
		return nil, store.NewError(store.EcodeInvalidField, err.Error(), 0)
	}
	if v := r.Form.Get("ttl"); v != "" {
		t, err := strconv.ParseUint(v, 10, 64)
		if err != nil || t == 0 || t > 1<<31 {
			return nil, store.NewError(store.EcodeTTLNaN, `invalid value for "ttl"`, 0)
		}
		p.ttl, p.hasTTL = t, true
	}
	if v := r.Form.Get("wait"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, invalidField("wait")
		}
		p.wait = b
	}
	if v := r.Form.Get("token"); v != "" {
		t, err := locks.TokenOf(v)
		if err != nil {
			return nil, invalidField("token")
		}
		p.token = t
	}
	if v := r.Form.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			s, serr := strconv.ParseUint(v, 10, 32)
			if serr != nil {
				return nil, invalidField("timeout")
			}
			d = time.Duration(s) * time.Second
		}
		if d <= 0 {
			return nil, invalidField("timeout")
		}
		p.timeout = d
	}
	return p, nil
}

// write answers with an event, adding Cairn's fields (already JSON) before
// the closing brace.
func (h *coordHandler) write(w http.ResponseWriter, status int, e *store.Event, at int64, extra string) {
	b := appendEvent(nil, e, at, false)
	b = b[:len(b)-2] // "}\n"
	b = append(b, extra...)
	b = append(b, '}', '\n')
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Etcd-Index", strconv.FormatUint(e.Index, 10))
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (h *coordHandler) fail(w http.ResponseWriter, err error) {
	var se *store.Error
	if errors.As(err, &se) {
		writeError(w, se)
		return
	}
	if errors.Is(err, context.Canceled) {
		// The client went away (then nobody reads this), or the member is
		// shutting down and ended every request's context: the client is
		// still there and must get an error. Writing nothing would send
		// an empty 200, which reads as a grant or an item.
		writeError(w, store.NewError(store.EcodeRaftInternal, "member stopping: request abandoned; outcome unknown", 0))
		return
	}
	writeError(w, err)
}

// admit checks a value that an acquire or an enqueue would store under a
// key of keyBytes, against the value limit and the quota.
func (h *coordHandler) admit(value string, keyBytes int) *store.Error {
	if se := h.lim.value("value", value); se != nil {
		return se
	}
	return h.lim.quota(keyBytes + len(value))
}

// lock serves /v2/locks/{name}: POST acquires (?ttl, wait, timeout; the
// value describes the owner), PUT refreshes (?token, ttl), DELETE
// releases (?token), GET shows the holder and the waiters.
func (h *coordHandler) lock(w http.ResponseWriter, r *http.Request) {
	p, perr := parseCoord(r)
	if perr != nil {
		writeError(w, perr)
		return
	}
	if !h.allowed(w, r, locks.Dir(p.name), http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete) {
		return
	}
	switch r.Method {
	case http.MethodPost:
		if !p.hasTTL {
			writeError(w, store.NewError(store.EcodeTTLNaN, `a lock needs a "ttl"`, 0))
			return
		}
		if se := h.admit(p.value, len(locks.Dir(p.name))+inOrderName); se != nil {
			writeError(w, se)
			return
		}
		g, err := h.locks.Acquire(r.Context(), p.name, p.value, p.ttl, p.wait, p.timeout)
		if err != nil {
			h.fail(w, err)
			return
		}
		e := *g.Event
		e.Action = "acquire"
		h.write(w, http.StatusCreated, &e, h.now().UnixNano(), fmt.Sprintf(`,"token":%d`, g.Token))
	case http.MethodPut, http.MethodDelete:
		if p.token == 0 {
			writeError(w, store.NewError(store.EcodeInvalidField, `"token" is required`, 0))
			return
		}
		var e *store.Event
		var err error
		if r.Method == http.MethodPut {
			if !p.hasTTL {
				writeError(w, store.NewError(store.EcodeRefreshTTLRequired, "No TTL value set", 0))
				return
			}
			e, err = h.locks.Refresh(r.Context(), p.name, p.token, p.ttl)
		} else {
			e, err = h.locks.Release(r.Context(), p.name, p.token)
		}
		if err != nil {
			h.fail(w, err)
			return
		}
		h.write(w, http.StatusOK, e, e.Time, fmt.Sprintf(`,"token":%d`, p.token))
	case http.MethodGet:
		e, list, err := h.locks.Status(r.Context(), p.name)
		if err != nil {
			h.fail(w, err)
			return
		}
		now := h.now().UnixNano()
		b := []byte(`,"lock":`)
		b = appendString(b, p.name)
		b = append(b, `,"holder":`...)
		if len(list) == 0 {
			b = append(b, "null"...)
		} else {
			b = appendNode(b, list[0], now)
			b = fmt.Appendf(b, `,"token":%d`, list[0].CreatedIndex)
		}
		b = append(b, `,"waiters":[`...)
		for i, n := range list[min(1, len(list)):] {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNode(b, n, now)
		}
		b = append(b, ']')
		h.write(w, http.StatusOK, &store.Event{Action: store.ActionGet, Index: e.Index}, now, string(b))
	default:
		w.Header().Set("Allow", "GET, POST, PUT, DELETE")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

// queue serves /v2/queues/{name}: POST enqueues the value, GET lists the
// items in order, DELETE dequeues the head (?wait, timeout).
func (h *coordHandler) queue(w http.ResponseWriter, r *http.Request) {
	p, perr := parseCoord(r)
	if perr != nil {
		writeError(w, perr)
		return
	}
	if !h.allowed(w, r, queue.Dir(p.name), http.MethodGet, http.MethodPost, http.MethodDelete) {
		return
	}
	switch r.Method {
	case http.MethodPost:
		if se := h.admit(p.value, len(queue.Dir(p.name))+inOrderName); se != nil {
			writeError(w, se)
			return
		}
		e, err := h.queues.Enqueue(r.Context(), p.name, p.value)
		if err != nil {
			h.fail(w, err)
			return
		}
		if e.Action == store.ActionDeliver {
			// The registration's value is an internal nonce; the
			// enqueuer learns whom the item went to and nothing more.
			cp := *e
			cp.PrevNode = nil
			e = &cp
		}
		h.write(w, http.StatusCreated, e, e.Time, "")
	case http.MethodGet:
		if se := h.lim.answer(queue.Dir(p.name), true, h.now().UnixNano()); se != nil {
			writeError(w, se)
			return
		}
		items, index, err := h.queues.List(r.Context(), p.name)
		if err != nil {
			h.fail(w, err)
			return
		}
		e := &store.Event{Action: store.ActionGet, Index: index,
			Node: &store.NodeView{Key: queue.Dir(p.name), Dir: true, Nodes: items}}
		h.write(w, http.StatusOK, e, h.now().UnixNano(), "")
	case http.MethodDelete:
		it, err := h.queues.Dequeue(r.Context(), p.name, p.wait, p.timeout)
		if err != nil {
			h.fail(w, err)
			return
		}
		// An item handed to a blocked dequeuer was never stored; it is
		// shown under the key it would have had.
		key := it.Key
		if len(key) > len(queue.Dir(p.name)) && key[len(queue.Dir(p.name))+1] == '_' {
			key = fmt.Sprintf("%s/%020d", queue.Dir(p.name), it.Index)
		}
		e := &store.Event{Action: store.ActionDequeue, Index: it.Index,
			Node: &store.NodeView{Key: key, Value: it.Value, HasValue: true, ModifiedIndex: it.Index}}
		h.write(w, http.StatusOK, e, 0, "")
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

// onlyMethod answers 405 to any method but method, else parses the
// parameters (answering their error); false once it has answered.
func onlyMethod(w http.ResponseWriter, r *http.Request, method string) (*coordParams, bool) {
	if r.Method != method {
		w.Header().Set("Allow", method)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return nil, false
	}
	p, perr := parseCoord(r)
	if perr != nil {
		writeError(w, perr)
		return nil, false
	}
	return p, true
}

// reservations serves /v2/queues/{name}/reservations: POST reserves the
// head for ?ttl seconds and answers it with a receipt.
func (h *coordHandler) reservations(w http.ResponseWriter, r *http.Request) {
	p, ok := onlyMethod(w, r, http.MethodPost)
	if !ok || !h.allowed(w, r, queue.Dir(p.name), http.MethodPost) {
		return
	}
	if !p.hasTTL {
		writeError(w, store.NewError(store.EcodeTTLNaN, `a reservation needs a "ttl"`, 0))
		return
	}
	res, err := h.queues.Reserve(r.Context(), p.name, p.ttl)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.write(w, http.StatusCreated, res.Event, res.Event.Time, `,"receipt":"`+res.Receipt+`"`)
}

// ack serves DELETE /v2/queues/{name}/reservations/{receipt}.
func (h *coordHandler) ack(w http.ResponseWriter, r *http.Request) {
	p, ok := onlyMethod(w, r, http.MethodDelete)
	if !ok || !h.allowed(w, r, queue.Dir(p.name), http.MethodDelete) {
		return
	}
	e, err := h.queues.Ack(r.Context(), p.name, chi.URLParam(r, "receipt"))
	if errors.Is(err, queue.ErrBadReceipt) {
		writeError(w, store.NewError(store.EcodeInvalidField, err.Error(), 0))
		return
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	h.write(w, http.StatusOK, e, e.Time, "")
}

// allowed checks v2 auth for a lock or queue request: it takes the
// permission of the hidden directory dir, read for GET and write for the
// rest (acquire, refresh, release, enqueue, dequeue, reserve, ack). A
// method the endpoint does not serve is left to its 405. False once it
// has answered 401 (errorCode 110).
func (h *coordHandler) allowed(w http.ResponseWriter, r *http.Request, dir string, methods ...string) bool {
	if !slices.Contains(methods, r.Method) || h.authz.keyAccess(r, dir, false) {
		return true
	}
	writeKeyNoAuth(w)
	return false
}
