package httpapi

import (
	"context"

	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// Backend is what the client handlers need from a member. server.Local
// implements it in one process; the replicated member will implement it
// over Raft.
type Backend interface {
	// Do proposes a change and waits until it is applied. It returns the
	// event, a *store.Error for a change the store refused, or another
	// error (timeout, stopped, no leader) that httpapi reports as code 300.
	Do(ctx context.Context, r *store.Request) (*store.Event, error)
	// Get reads p. Unless serializable, the read is linearizable: it
	// reflects every change acknowledged before Get was called.
	Get(ctx context.Context, p string, recursive, serializable bool) (*store.Event, error)
	// Watch registers a watcher (see store.Store.Watch).
	Watch(p string, recursive, stream bool, since uint64) (*store.Watcher, error)
	// Status reports the figures that go into response headers.
	Status() server.Status
}
