package httpapi_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// /metrics reports the locks and queues in the store: holders, waiters,
// items, reserved items.
func TestCoordinationMetrics(t *testing.T) {
	be := server.NewLocal(store.New(100), 1, nil)
	defer be.Close()
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Config{Backend: be, Metrics: prometheus.NewRegistry()}))
	defer srv.Close()
	form := "application/x-www-form-urlencoded"
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/v2/locks/a?ttl=60", "value=1"},
		{"POST", "/v2/locks/b?ttl=60", "value=1"},
		{"POST", "/v2/queues/q", "value=x"},
		{"POST", "/v2/queues/q", "value=y"},
		{"POST", "/v2/queues/q", "value=z"},
		{"POST", "/v2/queues/r", "value=x"},
		{"POST", "/v2/queues/q/reservations?ttl=60", ""},
	} {
		if resp, body := call(t, req.method, srv.URL+req.path, form, req.body); resp.StatusCode != 201 {
			t.Fatalf("%s %s: %d %s", req.method, req.path, resp.StatusCode, body)
		}
	}
	// A waiter behind lock a, through the store (the HTTP call would block).
	if _, err := be.Do(t.Context(), &store.Request{Op: store.OpAcquire, Path: store.LocksDir + "/a", Wait: true, HasTTL: true, TTL: 60, Time: 1}); err != nil {
		t.Fatal(err)
	}
	// A blocked dequeuer on the empty queue s.
	if _, err := be.Do(t.Context(), &store.Request{Op: store.OpDequeue, Path: store.QueuesDir + "/s", Wait: true, HasTTL: true, TTL: 60, Time: 1}); err != nil {
		t.Fatal(err)
	}
	_, body := call(t, "GET", srv.URL+"/metrics", "", "")
	for _, want := range []string{"cairn_locks_held 2", "cairn_lock_waiters 1", "cairn_queue_items 4", "cairn_queue_reserved_items 1", "cairn_queue_blocked_dequeuers 1"} {
		if !strings.Contains(body, "\n"+want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
