package httpapi_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// notReadyBackend is a backend that says it is not ready (httpapi.Readier).
type notReadyBackend struct {
	*server.Local
	err   error
	reads atomic.Int32
}

func (b *notReadyBackend) Ready() error { return b.err }

func (b *notReadyBackend) Get(ctx context.Context, p string, recursive, serializable bool) (*store.Event, error) {
	b.reads.Add(1)
	return b.Local.Get(ctx, p, recursive, serializable)
}

// /health is unhealthy while the backend is not ready, with etcd's body
// and the reason in X-Cairn-Health-Reason (one line), and without asking
// for a read; once ready it is healthy after a read.
func TestHealthFollowsReadiness(t *testing.T) {
	be := server.NewLocal(store.New(10), 1, nil)
	defer be.Close()
	nr := &notReadyBackend{Local: be, err: errors.Join(server.ErrLeaderUnknown, server.ErrNotPublished)}
	h := httpapi.NewHandler(httpapi.Config{Backend: nr})
	resp, body := fetch(t, h, "GET", "/health")
	want := "no leader known; " + server.ErrNotPublished.Error()
	if resp.StatusCode != 503 || body != "{\"health\":\"false\"}\n" || resp.Header.Get(httpapi.HeaderHealthReason) != want {
		t.Fatalf("not ready: %d %q reason %q, want 503 and reason %q", resp.StatusCode, body, resp.Header.Get(httpapi.HeaderHealthReason), want)
	}
	if n := nr.reads.Load(); n != 0 {
		t.Fatalf("a backend that is not ready was asked for %d reads", n)
	}
	nr.err = nil
	resp, body = fetch(t, h, "GET", "/health")
	if resp.StatusCode != 200 || body != `{"health":"true"}` || resp.Header.Get(httpapi.HeaderHealthReason) != "" || nr.reads.Load() != 1 {
		t.Fatalf("ready: %d %q reason %q, %d reads", resp.StatusCode, body, resp.Header.Get(httpapi.HeaderHealthReason), nr.reads.Load())
	}
	// A failed read is the reason too.
	h = httpapi.NewHandler(httpapi.Config{Backend: unhealthyBackend{be}})
	if resp, _ := fetch(t, h, "GET", "/health"); resp.StatusCode != 503 || resp.Header.Get(httpapi.HeaderHealthReason) != "no leader" {
		t.Fatalf("failed read: %d reason %q", resp.StatusCode, resp.Header.Get(httpapi.HeaderHealthReason))
	}
	// server.Local is ready at once.
	if err := be.Ready(); err != nil {
		t.Fatalf("Local.Ready: %v", err)
	}
}
