package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/internal/cputime"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// BenchmarkKeys measures the client request path of /v2/keys as cairn
// wires it (router, every middleware, metrics, limits, auth disabled,
// the keys handler): a GET and a PUT of 256-byte values, served to an
// httptest recorder, so that the figures are the handler's and the
// backend's. Two backends: server.Local (the store in this process, no
// Raft), and one real member (Raft, WAL, bbolt mirror; its data on a
// tmpfs where there is one), whose default GET waits for a ReadIndex
// round and whose serializable GET does not.
//
// Each request is a shallow copy of one made beforehand, as net/http
// makes one Request per request, and it is answered to a benchWriter.
func BenchmarkKeys(b *testing.B) {
	b.Run("backend=local", func(b *testing.B) {
		be := server.NewLocal(store.New(store.DefaultEventHistory), 0x1234, nil)
		b.Cleanup(be.Close)
		benchKeys(b, be, false)
	})
	b.Run("backend=member", func(b *testing.B) {
		dir := b.TempDir()
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			if d, err := os.MkdirTemp("/dev/shm", "cairn-bench-"); err == nil {
				dir = d
				b.Cleanup(func() { _ = os.RemoveAll(d) })
			}
		}
		m, err := server.StartMember(server.MemberConfig{ID: 0x2a, ClusterID: 0xbe1c, Name: "bench",
			PeerURLs: []string{"http://127.0.0.1:2380"}, DataDir: dir, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Stop() })
		deadline := time.Now().Add(30 * time.Second)
		for m.Joined() != nil {
			if time.Now().After(deadline) {
				b.Fatal("the member did not join within 30 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		benchKeys(b, m, true)
	})
}

const benchKeyCount = 1000

func benchKeys(b *testing.B, be Backend, serializable bool) {
	h := NewHandler(Config{Backend: be, Metrics: prometheus.NewRegistry(), Logger: zerolog.Nop()})
	value := strings.Repeat("v", 256)
	var gets, sgets, puts []*benchRequest
	for i := range benchKeyCount {
		key := fmt.Sprintf("/bench/k%07d", i)
		if _, err := be.Do(context.Background(), &store.Request{Op: store.OpSet, Path: key, Value: value, Time: time.Now().UnixNano()}); err != nil {
			b.Fatal(err)
		}
		gets = append(gets, newBenchRequest("GET", keysPrefix+key, "", ""))
		sgets = append(sgets, newBenchRequest("GET", keysPrefix+key+"?serializable=true", "", ""))
		puts = append(puts, newBenchRequest("PUT", keysPrefix+key, "application/x-www-form-urlencoded", "value="+value))
	}
	run := func(name string, reqs []*benchRequest, want int) {
		b.Run(name, func(b *testing.B) {
			// One answer in full, to show the request does what it says.
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, reqs[0].next())
			if rec.Code != want || !strings.Contains(rec.Body.String(), `"value":"`+value+`"`) {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Process()
			for i := 0; i < b.N; i++ {
				w := &benchWriter{h: make(http.Header)}
				h.ServeHTTP(w, reqs[i%len(reqs)].next())
				if w.status != want {
					b.Fatalf("%d", w.status)
				}
			}
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
	if serializable {
		run("get-serializable", sgets, http.StatusOK)
	}
	run("get", gets, http.StatusOK)
	run("put", puts, http.StatusOK)
}

// benchRequest makes the same request again and again.
type benchRequest struct {
	tmpl *http.Request
	body string
	r    *strings.Reader
	rc   io.ReadCloser
}

func newBenchRequest(method, target, ctype, body string) *benchRequest {
	q := &benchRequest{tmpl: httptest.NewRequest(method, target, strings.NewReader(body)), body: body}
	if ctype != "" {
		q.tmpl.Header.Set("Content-Type", ctype)
	}
	q.r = strings.NewReader(body)
	q.rc = io.NopCloser(q.r)
	return q
}

// next is a new request, its body unread.
func (q *benchRequest) next() *http.Request {
	r := new(http.Request)
	*r = *q.tmpl
	q.r.Reset(q.body)
	r.Body = q.rc
	return r
}

// benchWriter stands for net/http's response writer in what costs the
// handler allocations: a header map per request, copied when the status
// is written, and read deadlines that can be set. The body is counted and
// dropped.
type benchWriter struct {
	h, sent http.Header
	status  int
	n       int
}

func (w *benchWriter) Header() http.Header { return w.h }

func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status, w.sent = code, w.h.Clone()
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}

// SetReadDeadline is for http.ResponseController, which the request
// limits use; net/http's writer has it too.
func (w *benchWriter) SetReadDeadline(time.Time) error { return nil }
