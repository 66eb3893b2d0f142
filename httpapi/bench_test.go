package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/internal/cputime"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// The benchmarks call the handler directly with a ResponseRecorder: no
// network, so the figures are the handler's (parse, backend, JSON).

var benchNow = time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)

func benchHandler(b *testing.B) (*server.Local, http.Handler) {
	b.Helper()
	st := store.New(store.DefaultEventHistory)
	clock := func() time.Time { return benchNow }
	be := server.NewLocal(st, 0x1234, clock)
	b.Cleanup(be.Close)
	return be, NewHandler(Config{Backend: be, Now: clock})
}

func benchServe(b *testing.B, h http.Handler, req *http.Request, want int) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", req.Method, req.URL, rec.Code, rec.Body)
	}
}

func BenchmarkHTTPSet(b *testing.B) {
	_, h := benchHandler(b)
	body := "value=" + strings.Repeat("v", 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("PUT", "/v2/keys/bench/key"+strconv.Itoa(i%1000), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 201 {
			b.Fatalf("PUT: %d %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkHTTPGet(b *testing.B) {
	be, h := benchHandler(b)
	_, err := be.Do(context.Background(), &store.Request{Op: store.OpSet, Path: "/bench/key", Value: strings.Repeat("v", 100), Time: benchNow.UnixNano()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchServe(b, h, httptest.NewRequest("GET", "/v2/keys/bench/key", nil), 200)
	}
}

func BenchmarkHTTPGetRecursive10k(b *testing.B) {
	be, h := benchHandler(b)
	for i := 0; i < 10000; i++ {
		// 100 directories of 100 keys.
		p := "/big/d" + strconv.Itoa(i/100) + "/k" + strconv.Itoa(i%100)
		_, err := be.Do(context.Background(), &store.Request{Op: store.OpSet, Path: p, Value: "value-" + strconv.Itoa(i), Time: benchNow.UnixNano()})
		if err != nil {
			b.Fatal(err)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/keys/big?recursive=true&sorted=true", nil))
	if rec.Code != 200 || strings.Count(rec.Body.String(), `"value":`) != 10000 {
		b.Fatalf("listing: %d, %d values", rec.Code, strings.Count(rec.Body.String(), `"value":`))
	}
	b.SetBytes(int64(rec.Body.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchServe(b, h, httptest.NewRequest("GET", "/v2/keys/big?recursive=true&sorted=true", nil), 200)
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	exp := benchNow.Add(30 * time.Second).UnixNano()
	e := &store.Event{
		Action:   store.ActionCompareAndSwap,
		Node:     &store.NodeView{Key: "/service/web/instance-0042", Value: `{"host":"10.0.0.42","port":8080}`, HasValue: true, Expiration: exp, ModifiedIndex: 123457, CreatedIndex: 100000},
		PrevNode: &store.NodeView{Key: "/service/web/instance-0042", Value: `{"host":"10.0.0.41","port":8080}`, HasValue: true, Expiration: exp - 1e9, ModifiedIndex: 123456, CreatedIndex: 100000},
		Index:    123457,
		Time:     benchNow.UnixNano(),
	}
	buf := appendEvent(nil, e, e.Time, false)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = appendEvent(buf[:0], e, e.Time, false)
	}
}

// BenchmarkAppendGet256 encodes the answer to a GET of a 256-byte value,
// the answer BenchmarkKeys reads.
func BenchmarkAppendGet256(b *testing.B) {
	e := &store.Event{
		Action: store.ActionGet,
		Node:   &store.NodeView{Key: "/bench/k0000042", Value: strings.Repeat("v", 256), HasValue: true, ModifiedIndex: 43, CreatedIndex: 43},
		Index:  1000,
	}
	buf := appendEvent(nil, e, benchNow.UnixNano(), false)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEvent(buf[:0], e, benchNow.UnixNano(), false)
	}
}

// BenchmarkHTTPGetAuth measures what v2 auth costs a read, side by side:
// auth disabled (no header), enabled with a basic-auth header whose
// credentials the cache holds (every request after a client's first),
// enabled as a guest, and enabled with the cache bypassed (every request
// pays bcrypt, cost 10: what an uncached server would pay).
func BenchmarkHTTPGetAuth(b *testing.B) {
	for _, c := range []struct {
		name          string
		enable, basic bool
		noCache       bool
	}{
		{name: "off"},
		{name: "on-basic-cached", enable: true, basic: true},
		{name: "on-guest", enable: true},
		{name: "on-basic-uncached", enable: true, basic: true, noCache: true},
	} {
		b.Run(c.name, func(b *testing.B) {
			st := store.New(store.DefaultEventHistory)
			clock := func() time.Time { return benchNow }
			be := server.NewLocal(st, 0x1234, clock)
			b.Cleanup(be.Close)
			h, authz := newHandler(Config{Backend: be, Now: clock})
			ctx := context.Background()
			if _, err := be.Do(ctx, &store.Request{Op: store.OpSet, Path: "/pub/key", Value: strings.Repeat("v", 100), Time: benchNow.UnixNano()}); err != nil {
				b.Fatal(err)
			}
			if c.enable {
				if _, _, err := be.PutUser(ctx, server.UserChange{Mode: server.UserCreateOrUpdate, Name: "root", Password: "rootpw"}); err != nil {
					b.Fatal(err)
				}
				if err := be.CreateRole(ctx, server.AuthRole{Name: "reader", Read: []string{"/other/*", "/more/*", "/pub/*"}}); err != nil {
					b.Fatal(err)
				}
				if _, _, err := be.PutUser(ctx, server.UserChange{Mode: server.UserCreate, Name: "alice", Password: "alice-password", Roles: []string{"reader"}}); err != nil {
					b.Fatal(err)
				}
				if err := be.EnableAuth(ctx, server.GuestFull); err != nil {
					b.Fatal(err)
				}
			}
			if c.noCache {
				authz.cache = newCredCache(0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Process()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("GET", "/v2/keys/pub/key", nil)
				if c.basic {
					req.SetBasicAuth("alice", "alice-password")
				}
				benchServe(b, h, req, 200)
			}
			// CPU time is steadier than wall time on a shared machine.
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkHTTPMetricsObserve is what the keys metrics cost a successful
// GET: the request counted, its duration observed.
func BenchmarkHTTPMetricsObserve(b *testing.B) {
	m := newHTTPMetrics(prometheus.NewRegistry())
	r := httptest.NewRequest("GET", "/v2/keys/a", nil)
	b.ReportAllocs()
	for b.Loop() {
		m.observe(methodLabel(r, false), http.StatusOK, benchNow)
	}
}
