package queue

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// historyMover is a real member whose first Watch of a registration comes
// late: before it, the test's writes run (the history moves on, an item
// may be handed over), as on a busy member with a short event history.
type historyMover struct {
	*server.Member
	before  func()
	watches atomic.Int32
	second  chan struct{} // closed once a second Watch has started
}

func (b *historyMover) Watch(p string, recursive, stream bool, since uint64) (*store.Watcher, error) {
	switch b.watches.Add(1) {
	case 1:
		b.before()
	case 2:
		defer close(b.second)
	}
	return b.Member.Watch(p, recursive, stream, since)
}

func startQueueMember(t *testing.T) *server.Member {
	t.Helper()
	m, err := server.StartMember(server.MemberConfig{ID: 1, ClusterID: 7, DataDir: t.TempDir(),
		EventHistory: 10, HeartbeatInterval: 10 * time.Millisecond, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := m.Leader(); ok {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatal("the member never led")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func put(t *testing.T, m *server.Member, r *store.Request) {
	t.Helper()
	if _, err := m.Do(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// A blocked dequeuer whose registration has left the event history by
// the time it watches it (401) reads it again, watches from there, and
// gets the next item. (It used to answer the 401, and leave its
// registration to be handed an item that reached nobody.)
func TestBlockedDequeueWatchesAgainPastAShortHistory(t *testing.T) {
	m := startQueueMember(t)
	be := &historyMover{Member: m, second: make(chan struct{})}
	be.before = func() {
		for i := range 20 {
			put(t, m, &store.Request{Op: store.OpSet, Path: fmt.Sprintf("/other/%d", i), Value: "x"})
		}
	}
	q := New(be, nil, zerolog.Nop())
	type answer struct {
		it  *Item
		err error
	}
	done := make(chan answer, 1)
	go func() {
		it, err := q.Dequeue(context.Background(), "jobs", true, 10*time.Second)
		done <- answer{it, err}
	}()
	select {
	case <-be.second:
	case a := <-done:
		t.Fatalf("the dequeue ended before it watched again: %+v, %v", a.it, a.err)
	}
	put(t, m, &store.Request{Op: store.OpEnqueue, Path: Dir("jobs"), Value: "job-1"})
	a := <-done
	if a.err != nil || a.it == nil || a.it.Value != "job-1" {
		t.Fatalf("dequeue = %+v, %v; want job-1", a.it, a.err)
	}
}

// A blocked dequeuer whose registration was handed an item and then left
// the event history before it watched it is told the outcome is unknown:
// nothing says any more whether it was served or expired. (It used to
// answer the 401.)
func TestBlockedDequeueServedOutOfHistoryIsUnknown(t *testing.T) {
	m := startQueueMember(t)
	be := &historyMover{Member: m, second: make(chan struct{})}
	be.before = func() {
		put(t, m, &store.Request{Op: store.OpEnqueue, Path: Dir("jobs"), Value: "job-1"})
		for i := range 20 {
			put(t, m, &store.Request{Op: store.OpSet, Path: fmt.Sprintf("/other/%d", i), Value: "x"})
		}
	}
	q := New(be, nil, zerolog.Nop())
	it, err := q.Dequeue(context.Background(), "jobs", true, 10*time.Second)
	if it != nil || !errors.Is(err, ErrDeliveryUnknown) {
		t.Fatalf("dequeue = %+v, %v; want ErrDeliveryUnknown", it, err)
	}
}
