package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/store"
)

// statusWriter records the status of a response; it keeps Flush working
// for watches.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs every request at debug level and recovers from panics
// in handlers: the client gets a JSON 500 (the v2 error shape on
// /v2/keys, etcd's {"message": ...} elsewhere) and the panic is logged at
// error level; the member keeps serving.
func logRequests(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error().Interface("panic", p).Str("method", r.Method).Str("path", r.URL.Path).Msg("handler panicked")
					if sw.status == 0 {
						internalError(sw, r)
					}
				}
				log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.status).
					Dur("took", time.Since(start)).Msg("request")
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

func internalError(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == keysPrefix || strings.HasPrefix(p, keysPrefix+"/") {
		writeError(w, store.NewError(store.EcodeRaftInternal, "internal server error", 0))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(`{"message":"Internal Server Error"}`))
}
