package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/store"
)

// Local is a single-process backend: every request is encoded, decoded
// and applied in order, as a committed log entry would be, with its own
// counter standing in for the Raft index. It is not durable.
type Local struct {
	mu      sync.Mutex // serialises apply; guards raft
	st      *store.Store
	now     func() time.Time
	raft    uint64
	cluster uint64
	stop    chan struct{}
	done    chan struct{}
	// auth is the v2 auth registry, changed under mu like the store.
	auth atomic.Pointer[AuthState]
	authAPI
}

// SyncInterval is how often Local checks for passed deadlines, as etcd's
// leader does.
const SyncInterval = 500 * time.Millisecond

// NewLocal starts a Local over st. now is its clock (time.Now if nil).
// Close stops its expiry loop.
func NewLocal(st *store.Store, clusterID uint64, now func() time.Time) *Local {
	if now == nil {
		now = time.Now
	}
	l := &Local{st: st, now: now, cluster: clusterID, stop: make(chan struct{}), done: make(chan struct{})}
	l.auth.Store(NewAuthState())
	l.authAPI = authAPI{state: l.auth.Load, do: l.proposeAuth}
	go l.expireLoop()
	return l
}

// Store returns the store Local applies to.
func (l *Local) Store() *store.Store { return l.st }

// Close stops the expiry loop.
func (l *Local) Close() {
	close(l.stop)
	<-l.done
}

func (l *Local) expireLoop() {
	defer close(l.done)
	t := time.NewTicker(SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.ExpireNow()
		}
	}
}

// ExpireNow applies an OpExpire at the current time if some deadline has
// passed.
func (l *Local) ExpireNow() {
	now := l.now().UnixNano()
	if d, ok := l.st.NextDeadline(); ok && d <= now {
		_, _ = l.apply(&store.Request{Op: store.OpExpire, Path: "/", Time: now})
	}
}

// apply runs r through the log encoding, as a replica would receive it.
func (l *Local) apply(r *store.Request) (*store.Event, error) {
	buf := r.Marshal(nil)
	var dec store.Request
	if err := dec.Unmarshal(buf); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raft++
	return l.st.Apply(l.raft, &dec)
}

// Do applies r, stamping it with the current time if it has none.
func (l *Local) Do(ctx context.Context, r *store.Request) (*store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.Time == 0 {
		r.Time = l.now().UnixNano()
	}
	return l.apply(r)
}

// Get reads the store; every read is linearizable here, as there is one
// replica and apply is synchronous.
func (l *Local) Get(ctx context.Context, p string, recursive, serializable bool) (*store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.st.Get(p, recursive)
}

// Ready is always nil: a single process has nothing to wait for.
func (l *Local) Ready() error { return nil }

// Watch registers a watcher on the store.
func (l *Local) Watch(p string, recursive, stream bool, since uint64) (*store.Watcher, error) {
	return l.st.Watch(p, recursive, stream, since)
}

// Status reports the headers' figures; the term of a lone process is 1.
func (l *Local) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Status{ClusterID: l.cluster, RaftIndex: l.raft, Term: 1}
}

// Status is a member's view of the cluster, for response headers.
type Status struct {
	ClusterID uint64
	RaftIndex uint64 // committed Raft index (X-Raft-Index)
	Term      uint64 // current term (X-Raft-Term)
}

// StoreStats reports the store's operation counters and watchers.
func (l *Local) StoreStats() (*store.Stats, int) { return l.st.Stats(), l.st.WatcherCount() }

// proposeAuth runs an auth operation through the log encoding and applies
// it, as a replica would.
func (l *Local) proposeAuth(ctx context.Context, o *authOp) (authOutcome, error) {
	if err := ctx.Err(); err != nil {
		return authOutcome{}, err
	}
	buf := encodeAuthOp(0, o)
	dec, err := decodeAuthOp(buf[9:])
	if err != nil {
		return authOutcome{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raft++
	a := l.auth.Load().clone()
	out, err := a.apply(dec)
	if err == nil {
		l.auth.Store(a)
	}
	return out, err
}

// Joined is nil: a Local is its own cluster.
func (l *Local) Joined() error { return nil }
