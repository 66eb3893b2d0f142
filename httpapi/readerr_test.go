package httpapi_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// unconfirmedReads fails the first n linearizable reads with err, as a
// member without a leader does; serializable reads and the rest succeed.
type unconfirmedReads struct {
	*server.Local
	err error
	n   atomic.Int32
}

func (u *unconfirmedReads) Get(ctx context.Context, p string, recursive, serializable bool) (*store.Event, error) {
	if !serializable && u.n.Add(-1) >= 0 {
		return nil, u.err
	}
	return u.Local.Get(ctx, p, recursive, serializable)
}

// A linearizable read that no leader confirmed answers errorCode 300
// (HTTP 500) with the read's cause, on /v2/keys and on the lock and queue
// reads.
func TestUnconfirmedReadsAnswer300(t *testing.T) {
	for _, err := range []error{server.ErrReadNoLeader, &server.ReadTimeoutError{Waited: 7 * time.Second}} {
		e := newKEnvOpts(t, kEnvOpts{wrap: func(l *server.Local) httpapi.Backend {
			u := &unconfirmedReads{Local: l, err: err}
			u.n.Store(1 << 20)
			return u
		}})
		want := fmt.Sprintf(`{"errorCode":300,"message":"Raft Internal Error","cause":%q,"index":0}`+"\n", err.Error())
		for _, target := range []string{"/v2/keys/x", "/v2/keys/x?quorum=true", "/v2/locks/l", "/v2/queues/q"} {
			r := e.do(t, "GET", target, "")
			if r.code != 500 || r.body != want {
				t.Errorf("GET %s: %d %q, want 500 %q", target, r.code, r.body, want)
			}
		}
		if r := e.do(t, "GET", "/v2/keys/x?serializable=true", ""); r.code != 404 {
			t.Errorf("serializable GET: %d %q, want the local 404", r.code, r.body)
		}
	}
}

// A lock waiter that reaches the head while no leader can confirm its
// read keeps its place and asks again, instead of giving up the wait.
func TestLockHeadAsksAgainWhenTheReadIsUnconfirmed(t *testing.T) {
	var u *unconfirmedReads
	e := coLocalWith(t, func(l *server.Local) httpapi.Backend {
		u = &unconfirmedReads{Local: l, err: server.ErrReadNoLeader}
		u.n.Store(3)
		return u
	})
	got := e.mustCode(t, 201, "POST", "/v2/locks/job?ttl=30&wait=true", "value=alice")
	if got.Action != "acquire" || got.Node == nil || got.Node.value() != "alice" {
		t.Fatalf("grant: %+v", got)
	}
	if n := u.n.Load(); n >= 0 {
		t.Fatalf("granted with %d unconfirmed reads still to come", n)
	}
}
