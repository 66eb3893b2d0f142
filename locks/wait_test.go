package locks

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// A waiter rejoins the line only when its key expired while its caller
// still waits; otherwise it leaves, answering the wait's timeout or the
// error that ended the wait.
func TestWaitEnded(t *testing.T) {
	gone := store.NewError(store.EcodeKeyNotFound, "/_cairn/locks/l/00000000000000000007", 9)
	for _, c := range []struct {
		name                 string
		err                  error
		callerGone, waitOver bool
		keyEnd               string
		rejoin               bool
		code                 int // of the answer (0: err itself)
	}{
		{name: "expired while waiting", err: gone, keyEnd: store.ActionExpire, rejoin: true},
		{name: "deleted", err: gone, keyEnd: store.ActionDelete},
		{name: "end not known", err: gone},
		{name: "expired, wait over", err: gone, waitOver: true, keyEnd: store.ActionExpire, code: store.EcodeWaitTimeout},
		{name: "expired, caller gone", err: gone, callerGone: true, waitOver: true, keyEnd: store.ActionExpire},
		{name: "wait over", err: context.DeadlineExceeded, waitOver: true, code: store.EcodeWaitTimeout},
		{name: "caller gone", err: context.Canceled, callerGone: true, waitOver: true},
		{name: "member stopped", err: server.ErrStopped},
	} {
		rejoin, answer := WaitEnded(c.err, c.callerGone, c.waitOver, c.keyEnd, 7)
		if rejoin != c.rejoin {
			t.Errorf("%s: rejoin %v, want %v", c.name, rejoin, c.rejoin)
			continue
		}
		if rejoin {
			if answer != nil {
				t.Errorf("%s: rejoins and answers %v", c.name, answer)
			}
			continue
		}
		var se *store.Error
		switch {
		case c.code != 0 && (!errors.As(answer, &se) || se.Code != c.code):
			t.Errorf("%s: answered %v, want code %d", c.name, answer, c.code)
		case c.code == 0 && answer != c.err:
			t.Errorf("%s: answered %v, want %v", c.name, answer, c.err)
		}
	}
}

// A read no leader confirmed is told apart from other failures (the
// waiter at the head asks again), without this package importing server.
func TestUnconfirmed(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{server.ErrReadNoLeader, true},
		{server.ErrReadTimeout, true},
		{&server.ReadTimeoutError{}, true},
		{fmt.Errorf("reading: %w", server.ErrReadNoLeader), true},
		{server.ErrStopped, false},
		{context.Canceled, false},
		{store.NewError(store.EcodeKeyNotFound, "/k", 1), false},
		{nil, false},
	} {
		if got := unconfirmed(c.err); got != c.want {
			t.Errorf("unconfirmed(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
