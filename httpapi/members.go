package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/cairnkv/cairn/server"
)

// Cluster is implemented by backends that serve the membership endpoints
// (API.md §4.1–4.2).
type Cluster interface {
	Members() []server.MemberInfo
	Leader() (server.MemberInfo, bool)
	AddMember(ctx context.Context, peerURLs []string) (server.MemberInfo, error)
	RemoveMember(ctx context.Context, id uint64) error
	UpdateMember(ctx context.Context, id uint64, peerURLs []string) error
}

// LeaderStater is implemented by backends that report /v2/stats/leader.
type LeaderStater interface {
	LeaderStats() (server.LeaderStats, bool)
}

const membersPrefix = "/v2/members"

// membersHandler serves /v2/members as etcd 3.4 does: JSON bodies, the
// X-Etcd-Cluster-Id header, errors as {"message":...} without a newline
// and successful bodies with one.
type membersHandler struct {
	be      Backend
	cluster Cluster
	authz   *authorizer
}

func (h *membersHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET,POST,DELETE,PUT")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	// With auth enabled, reading the list is open; changing it needs root.
	if r.Method != http.MethodGet && !h.authz.rootAccess(r) {
		writeNoAuth(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Etcd-Cluster-Id", strconv.FormatUint(h.be.Status().ClusterID, 16))
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, membersPrefix), "/")
	switch r.Method {
	case http.MethodGet:
		switch rest {
		case "":
			writeJSONLine(w, http.StatusOK, struct {
				Members []server.MemberInfo `json:"members"`
			}{h.cluster.Members()})
		case "leader":
			mi, ok := h.cluster.Leader()
			if !ok {
				writeMessage(w, http.StatusServiceUnavailable, "During election")
				return
			}
			writeJSONLine(w, http.StatusOK, mi)
		default:
			writeMessage(w, http.StatusNotFound, "Not found")
		}
	case http.MethodPost:
		if rest != "" {
			writeMessage(w, http.StatusNotFound, "Not found")
			return
		}
		urls, ok := readPeerURLs(w, r)
		if !ok {
			return
		}
		mi, err := h.cluster.AddMember(r.Context(), urls)
		if err != nil {
			writeMemberError(w, err, "")
			return
		}
		writeJSONLine(w, http.StatusCreated, mi)
	case http.MethodPut, http.MethodDelete:
		if rest == "" {
			w.Header().Del("Content-Type")
			w.Header().Del("X-Etcd-Cluster-Id")
			w.Header().Set("Allow", "GET,POST,DELETE,PUT")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		// As etcd: an ID that is not hex is 404 before the body is
		// looked at; a hex one is looked up only once the body is good,
		// and named in errors as hex without padding.
		id, err := strconv.ParseUint(rest, 16, 64)
		if err != nil {
			writeMessage(w, http.StatusNotFound, "No such member: "+rest)
			return
		}
		if r.Method == http.MethodPut {
			urls, ok := readPeerURLs(w, r)
			if !ok {
				return
			}
			err = h.cluster.UpdateMember(r.Context(), id, urls)
		} else {
			err = h.cluster.RemoveMember(r.Context(), id)
		}
		if err != nil {
			writeMemberError(w, err, strconv.FormatUint(id, 16))
			return
		}
		w.Header().Del("Content-Type")
		w.WriteHeader(http.StatusNoContent)
	}
}

// peerURLsRequest is the Go type etcd decodes a member request into, as
// its JSON type errors name it.
const peerURLsRequest = `struct { PeerURLs []string "json:\"peerURLs\"" }`

// readPeerURLs reads {"peerURLs":[...]} and checks the URLs as etcd does,
// answering in its words; false once it has answered an error. The URLs
// come back trimmed, normalised (url.URL.String) and sorted, as etcd
// stores them.
func readPeerURLs(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	if ct, ok := jsonContentType(r); !ok {
		writeMessage(w, http.StatusUnsupportedMediaType, "Bad Content-Type "+ct+", accept application/json")
		return nil, false
	}
	body, err := readJSONBody(w, r)
	var raw []string
	if err == nil {
		raw, err = peerURLsOf(body)
	}
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	if len(raw) == 0 {
		writeMessage(w, http.StatusBadRequest, "no valid URLs given")
		return nil, false
	}
	for i, s := range raw {
		raw[i] = strings.TrimSpace(s)
	}
	// Cairn's bounds, before any URL is parsed (etcd has none).
	if err := server.CheckURLBounds("peer", raw); err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	urls := make([]string, 0, len(raw))
	for _, s := range raw {
		u, msg := checkPeerURL(s)
		if msg != "" {
			writeMessage(w, http.StatusBadRequest, msg)
			return nil, false
		}
		urls = append(urls, u)
	}
	slices.Sort(urls)
	return urls, true
}

// peerURLsOf reads the peerURLs member of a request body as encoding/json
// decodes it into etcd's request struct: a body that is null, or has no
// such member, gives none; a body that is not an object, or a peerURLs
// that is not an array of strings, is a type error.
func peerURLsOf(body gjson.Result) ([]string, error) {
	switch {
	case body.Type == gjson.Null:
		return nil, nil
	case !body.IsObject():
		return nil, &jsonTypeError{kind: jsonKind(body), goType: peerURLsRequest}
	}
	var urls []string
	var first error
	jsonField(body, "peerURLs", func(v gjson.Result) {
		var err error
		if urls, err = jsonStringList(v, "", "peerURLs"); err != nil && first == nil {
			first = err
		}
	})
	return urls, first
}

// checkPeerURL returns s as etcd stores it (url.URL.String), or etcd's
// complaint about it.
func checkPeerURL(s string) (string, string) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err.Error()
	}
	switch u.Scheme {
	case "http", "https", "unix", "unixs":
	default:
		return "", "URL scheme must be http, https, unix, or unixs: " + s
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return "", `URL address does not have the form "host:port": ` + s
	}
	if u.Path != "" {
		return "", "URL must not contain a path: " + s
	}
	return u.String(), ""
}

func writeMemberError(w http.ResponseWriter, err error, id string) {
	switch {
	case errors.Is(err, server.ErrMemberNotFound):
		writeMessage(w, http.StatusNotFound, "No such member: "+id)
	case errors.Is(err, server.ErrMemberRemoved):
		writeMessage(w, http.StatusGone, "Member permanently removed: "+id)
	case errors.Is(err, server.ErrURLBounds):
		// A URL that grew past the bound when it was normalised.
		writeMessage(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, server.ErrPeerURLExists), errors.Is(err, server.ErrIDExists):
		writeMessage(w, http.StatusConflict, err.Error())
	default:
		// etcd says only "Internal Server Error"; the reason helps more.
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error: "+err.Error())
	}
}

func writeMessage(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeJSONLine(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// machines serves /v2/machines: every member's client URLs, sorted,
// joined by ", ", as plain text.
func machines(c Cluster) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET,HEAD")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		var urls []string
		for _, mi := range c.Members() {
			urls = append(urls, mi.ClientURLs...)
		}
		slices.Sort(urls)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(strings.Join(urls, ", ")))
	}
}

// leaderStats serves /v2/stats/leader: the leader's view of its
// followers; other members answer 403.
func leaderStats(ls LeaderStater) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		st, ok := ls.LeaderStats()
		if !ok {
			writeMessage(w, http.StatusForbidden, "not current leader")
			return
		}
		b, err := json.Marshal(st)
		if err != nil {
			writeMessage(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}
