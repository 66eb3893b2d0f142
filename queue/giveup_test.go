package queue

import (
	"context"
	"errors"
	"testing"

	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// A blocked dequeuer that gives up gets the item handed to it first, if
// any; is told its wait's cause when its registration is surely gone;
// and is told the outcome is unknown when its registration may still be
// there, to be handed an item that would reach nobody, or is gone and its
// watch ended before it said how.
func TestGaveUp(t *testing.T) {
	reg := "/_cairn/queues/q/_waiters/00000000000000000005"
	gone := store.NewError(store.EcodeKeyNotFound, reg, 9)
	deliver := &store.Event{Action: store.ActionDeliver, Index: 8, Node: &store.NodeView{Key: reg, Value: "item"}}
	expire := &store.Event{Action: store.ActionExpire, Index: 8, Node: &store.NodeView{Key: reg}}
	timeout := &server.TimeoutError{Index: 12}
	for _, c := range []struct {
		name    string
		cause   error
		delErr  error
		ended   *store.Event
		item    string
		answer  error // errors.Is
		unknown bool  // the answer is ErrRegistrationLeft or ErrDeliveryUnknown
	}{
		{name: "deleted", cause: context.DeadlineExceeded, answer: context.DeadlineExceeded},
		{name: "handed an item first", cause: context.DeadlineExceeded, delErr: gone, ended: deliver, item: "item"},
		{name: "handed an item, caller gone", cause: context.Canceled, delErr: gone, ended: deliver, item: "item"},
		{name: "expired", cause: context.DeadlineExceeded, delErr: gone, ended: expire, answer: context.DeadlineExceeded},
		{name: "gone, the watch ended first", cause: context.DeadlineExceeded, delErr: gone, answer: ErrDeliveryUnknown, unknown: true},
		{name: "delete timed out", cause: context.DeadlineExceeded, delErr: timeout, answer: server.ErrTimeout, unknown: true},
		{name: "member stopping", cause: context.Canceled, delErr: server.ErrStopped, answer: server.ErrStopped, unknown: true},
		{name: "delete refused", cause: context.DeadlineExceeded, delErr: store.NewError(store.EcodeNotFile, reg, 9), unknown: true},
	} {
		it, err := GaveUp(c.cause, c.delErr, c.ended)
		switch {
		case c.item != "":
			if it == nil || it.Value != c.item || it.Index != 8 || err != nil {
				t.Errorf("%s: got %+v, %v; want item %q", c.name, it, err, c.item)
			}
		case it != nil:
			t.Errorf("%s: got item %+v", c.name, it)
		case (errors.Is(err, ErrRegistrationLeft) || errors.Is(err, ErrDeliveryUnknown)) != c.unknown:
			t.Errorf("%s: answered %v; outcome unknown: %v", c.name, err, c.unknown)
		case c.answer != nil && !errors.Is(err, c.answer):
			t.Errorf("%s: answered %v, want %v", c.name, err, c.answer)
		}
	}
}
