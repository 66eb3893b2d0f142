package httpapi

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/internal/statuswriter"
	"github.com/cairnkv/cairn/store"
)

// logRequests logs every request at debug level and recovers from panics
// in handlers: the client gets a JSON 500 (the v2 error shape on
// /v2/keys, etcd's {"message": ...} elsewhere) and the panic is logged at
// error level; the member keeps serving. With debug logging off it reads
// no clock.
func logRequests(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var start time.Time // zero: the request is not logged
			if log.GetLevel() <= zerolog.DebugLevel && zerolog.GlobalLevel() <= zerolog.DebugLevel {
				start = time.Now()
			}
			sw := statuswriter.New(w)
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error().Interface("panic", p).Str("method", r.Method).Str("path", r.URL.Path).Msg("handler panicked")
					if sw.Status == 0 {
						internalError(sw, r)
					}
				}
				if !start.IsZero() {
					log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.Status).
						Dur("took", time.Since(start)).Msg("request")
				}
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

func internalError(w http.ResponseWriter, r *http.Request) {
	if isKeysPath(r.URL.Path) {
		writeError(w, store.NewError(store.EcodeRaftInternal, "internal server error", 0))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(`{"message":"Internal Server Error"}`))
}
