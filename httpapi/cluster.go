package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// Version is the etcd release whose v2 API Cairn answers as; /version
// reports it so that etcd clients see what they expect.
const (
	EtcdServerVersion  = "3.4.23"
	EtcdClusterVersion = "3.4.0"
)

// getOnly answers 405 to any method but GET.
func getOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}

// version serves /version exactly as etcd 3.4.23 does (API.md §4.5).
func version(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"etcdserver":"` + EtcdServerVersion + `","etcdcluster":"` + EtcdClusterVersion + `"}`))
}

// Readier is implemented by backends that can say whether they are ready
// to serve what clients do right after a health check (server.Member:
// a leader is known, it has caught up, and its own client URLs are in
// its member list). Ready returns nil when ready, else why not.
type Readier interface {
	Ready() error
}

// HeaderHealthReason carries, on an unhealthy /health answer, why the
// member is not healthy; the body stays etcd's.
const HeaderHealthReason = "X-Cairn-Health-Reason"

// health serves /health as etcd does (API.md §4.6): healthy when the
// backend is ready (Readier, when it implements it) and a linearizable
// read completes within a second, which needs a leader and a quorum.
// Cairn's read is a ReadIndex round, not a Raft entry. An unhealthy
// answer is etcd's 503 body, with the reason in HeaderHealthReason.
func health(be Backend, log zerolog.Logger) http.HandlerFunc {
	rd, _ := be.(Readier)
	return func(w http.ResponseWriter, r *http.Request) {
		var err error
		if rd != nil {
			err = rd.Ready()
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(r.Context(), time.Second)
			_, err = be.Get(ctx, "/", false, false)
			cancel()
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err != nil {
			reason := strings.ReplaceAll(err.Error(), "\n", "; ")
			log.Debug().Str("reason", reason).Msg("unhealthy")
			w.Header().Set(HeaderHealthReason, reason)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("{\"health\":\"false\"}\n"))
			return
		}
		_, _ = w.Write([]byte(`{"health":"true"}`))
	}
}

// Snapshotter is implemented by backends that can stream a backup.
type Snapshotter interface {
	SaveSnapshot(ctx context.Context, w io.Writer) (uint64, error)
}

// snapshot serves GET /snapshot: a consistent copy of the member's applied
// state, for cairn snapshot save, with its Content-Length (so that the
// tool shows how far it is, and a copy cut short is seen as such).
func snapshot(be Snapshotter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := be.SaveSnapshot(r.Context(), sizedAnswer{w}); err != nil {
			// Nothing was written if the member could not flush; a failure
			// mid-stream shows as a short body the client refuses.
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
}

// sizedAnswer is a store.SnapshotSizer: told the size of the copy before
// it is written, it sets the answer's Content-Length.
type sizedAnswer struct{ http.ResponseWriter }

func (a sizedAnswer) SnapshotSize(n int64) {
	a.Header().Set("Content-Length", strconv.FormatInt(n, 10))
}

// StoreStater is implemented by backends that report store statistics.
type StoreStater interface {
	StoreStats() (*store.Stats, int)
}

// storeStats serves /v2/stats/store as etcd does (API.md §4.4): the
// counters in etcd's field order, no trailing newline.
func storeStats(be StoreStater) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		st, watchers := be.StoreStats()
		b := []byte{'{'}
		for i, f := range []struct {
			name string
			v    uint64
		}{
			{"getsSuccess", st.GetsSuccess.Load()}, {"getsFail", st.GetsFail.Load()},
			{"setsSuccess", st.SetsSuccess.Load()}, {"setsFail", st.SetsFail.Load()},
			{"deleteSuccess", st.DeleteSuccess.Load()}, {"deleteFail", st.DeleteFail.Load()},
			{"updateSuccess", st.UpdateSuccess.Load()}, {"updateFail", st.UpdateFail.Load()},
			{"createSuccess", st.CreateSuccess.Load()}, {"createFail", st.CreateFail.Load()},
			{"compareAndSwapSuccess", st.CompareAndSwapSuccess.Load()}, {"compareAndSwapFail", st.CompareAndSwapFail.Load()},
			{"compareAndDeleteSuccess", st.CompareAndDeleteSuccess.Load()}, {"compareAndDeleteFail", st.CompareAndDeleteFail.Load()},
			{"expireCount", st.ExpireCount.Load()}, {"watchers", uint64(watchers)},
		} {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, f.name...)
			b = append(b, '"', ':')
			b = strconv.AppendUint(b, f.v, 10)
		}
		b = append(b, '}')
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

// SelfStater is implemented by backends that report /v2/stats/self.
type SelfStater interface {
	SelfStats() server.SelfStats
}

// selfStats serves /v2/stats/self as etcd does: JSON, no trailing newline.
func selfStats(be SelfStater) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		b, err := json.Marshal(be.SelfStats())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

// rootOnly lets through only requests from a user with the root role
// while auth is enabled: a backup holds every key and the auth registry.
func rootOnly(authz *authorizer, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !authz.rootAccess(r) {
			writeNoAuth(w)
			return
		}
		h(w, r)
	}
}
