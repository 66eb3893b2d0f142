package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
)

// Config configures the client handler.
type Config struct {
	// Backend serves the data. Required.
	Backend Backend
	// Now is the clock used to stamp proposals and render TTLs; time.Now
	// when nil.
	Now func() time.Time
}

// NewHandler returns the client API: /v2/keys for now.
func NewHandler(cfg Config) http.Handler {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	keys := &keysHandler{be: cfg.Backend, now: now}
	r := chi.NewRouter()
	r.Use(redirectUnclean)
	// OPTIONS is answered on every path before routing, as etcd's CORS
	// layer does (API.md §1.1).
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method == http.MethodOptions {
				w.WriteHeader(http.StatusOK)
				return
			}
			next.ServeHTTP(w, req)
		})
	})
	r.Handle(keysPrefix, keys)
	r.Handle(keysPrefix+"/*", keys)
	return r
}
