package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/store"
)

// Watches through real HTTP (API.md §2). Timeouts below only guard against
// hangs; nothing asserts how long anything takes.

const hangGuard = 10 * time.Second

// watchConn is an open watch response.
type watchConn struct {
	resp   *http.Response
	rd     *bufio.Reader
	cancel context.CancelFunc
}

// startWatch sends GET target and returns as soon as the response headers
// arrive. It fails if they do not arrive: the handler must flush them
// before any event exists.
func (e *kEnv) startWatch(t testing.TB, target string) *watchConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		resp *http.Response
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		// The env client's Timeout would cut long watches: use a plain one.
		resp, err := e.srv.Client().Do(req)
		ch <- result{resp, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			cancel()
			t.Fatalf("GET %s: %v", target, r.err)
		}
		w := &watchConn{resp: r.resp, rd: bufio.NewReader(r.resp.Body), cancel: cancel}
		t.Cleanup(w.close)
		return w
	case <-time.After(hangGuard):
		cancel()
		t.Fatalf("GET %s: no response headers while no event exists (not flushed?)", target)
		return nil
	}
}

func (w *watchConn) close() {
	w.cancel()
	w.resp.Body.Close()
}

// line reads one newline-terminated line (newline included).
func (w *watchConn) line(t testing.TB) string {
	t.Helper()
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := w.rd.ReadString('\n')
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("reading a watch line: %q, %v", r.s, r.err)
		}
		return r.s
	case <-time.After(hangGuard):
		w.close()
		t.Fatal("no watch line arrived")
		return ""
	}
}

// rest reads until the server ends the response.
func (w *watchConn) rest(t testing.TB) string {
	t.Helper()
	ch := make(chan string, 1)
	go func() {
		b, err := io.ReadAll(w.rd)
		if err != nil {
			b = append(b, fmt.Sprintf("<read error: %v>", err)...)
		}
		ch <- string(b)
	}()
	select {
	case s := <-ch:
		return s
	case <-time.After(hangGuard):
		w.close()
		t.Fatal("the watch response did not end")
		return ""
	}
}

// waitWatchers polls the store until it has n registered watchers.
func waitWatchers(t testing.TB, st *store.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for st.WatcherCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("WatcherCount = %d, want %d", st.WatcherCount(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkWatchHeaders: 200, JSON, chunked, X-Etcd-Index = start index, raft
// headers present.
func checkWatchHeaders(t testing.TB, e *kEnv, w *watchConn, index string) {
	t.Helper()
	r := w.resp
	if r.StatusCode != 200 {
		t.Errorf("watch status = %d, want 200", r.StatusCode)
	}
	if got := r.Header.Get("Content-Type"); got != ktJSONCT {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.Header.Get("X-Etcd-Index"); got != index {
		t.Errorf("X-Etcd-Index = %q, want %q", got, index)
	}
	if got := r.Header.Get("X-Etcd-Cluster-Id"); got != strconv.FormatUint(ktCluster, 16) {
		t.Errorf("X-Etcd-Cluster-Id = %q", got)
	}
	if got, want := r.Header.Get("X-Raft-Index"), strconv.FormatUint(e.st.RaftIndex(), 10); got != want {
		t.Errorf("X-Raft-Index = %q, want %q", got, want)
	}
	if got := r.Header.Get("X-Raft-Term"); got != "1" {
		t.Errorf("X-Raft-Term = %q", got)
	}
	if r.ContentLength != -1 || len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" {
		t.Errorf("watch response: ContentLength %d, Transfer-Encoding %q; want chunked", r.ContentLength, r.TransferEncoding)
	}
}

func TestWatchLongPoll(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/other", "value=x") // 1
	e.mustOK(t, "PUT", "/v2/keys/other", "value=y") // 2

	w := e.startWatch(t, "/v2/keys/w1?wait=true")
	checkWatchHeaders(t, e, w, "2")
	if n := e.st.WatcherCount(); n != 1 {
		t.Errorf("WatcherCount = %d while waiting, want 1", n)
	}
	e.mustOK(t, "PUT", "/v2/keys/other", "value=z") // 3: not ours
	e.mustOK(t, "PUT", "/v2/keys/w1", "value=a")    // 4
	e.mustOK(t, "PUT", "/v2/keys/w1", "value=b")    // 5: after the response ended

	want := `{"action":"set","node":{"key":"/w1","value":"a","modifiedIndex":4,"createdIndex":4}}` + "\n"
	if got := w.rest(t); got != want {
		t.Errorf("body = %q, want exactly one event: %q", got, want)
	}
	waitWatchers(t, e.st, 0)
}

// The event a watcher receives has the shape of the write's response,
// including prevNode and TTLs as of the write.
func TestWatchEventShape(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/d/k", "value=old") // 1
	for _, tc := range []struct {
		watch, method, target, form, want string
	}{
		{"/v2/keys/d/k?wait=true", "PUT", "/v2/keys/d/k?ttl=30", "value=%3Cnew%3E",
			`{"action":"set","node":{"key":"/d/k","value":"\u003cnew\u003e","expiration":"2026-11-21T05:00:30Z","ttl":30,"modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/d/k","value":"old","modifiedIndex":1,"createdIndex":1}}`},
		{"/v2/keys/d?wait=true&recursive=true", "PUT", "/v2/keys/d/k?prevExist=true", "value=u",
			`{"action":"update","node":{"key":"/d/k","value":"u","modifiedIndex":3,"createdIndex":2},"prevNode":{"key":"/d/k","value":"\u003cnew\u003e","expiration":"2026-11-21T05:00:30Z","ttl":30,"modifiedIndex":2,"createdIndex":2}}`},
		// A watcher on a key hears the delete of a directory above it.
		{"/v2/keys/d/k?wait=true", "DELETE", "/v2/keys/d?recursive=true", "",
			`{"action":"delete","node":{"key":"/d","dir":true,"modifiedIndex":4,"createdIndex":1},"prevNode":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}`},
	} {
		w := e.startWatch(t, tc.watch)
		e.mustOK(t, tc.method, tc.target, tc.form)
		if got := w.rest(t); got != tc.want+"\n" {
			t.Errorf("watch %s after %s %s:\n got %s\nwant %s", tc.watch, tc.method, tc.target, got, tc.want+"\n")
		}
	}
	waitWatchers(t, e.st, 0)
}

// An expire event through a watch: TTLs are rendered as of the expiry, so
// the prevNode's ttl computes to 0 and is omitted.
func TestWatchExpire(t *testing.T) {
	var now atomic.Int64
	now.Store(ktClock.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	e := newKEnvOpts(t, kEnvOpts{clock: clock})
	e.mustOK(t, "PUT", "/v2/keys/t?ttl=2", "value=v") // 1, deadline ktClock+2s
	w := e.startWatch(t, "/v2/keys/t?wait=true")
	now.Store(ktClock.Add(2*time.Second + 400*time.Millisecond).UnixNano())
	e.be.ExpireNow() // the backend's own loop may get there first: same event
	want := `{"action":"expire","node":{"key":"/t","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/t","value":"v","expiration":"2026-11-21T05:00:02Z","modifiedIndex":1,"createdIndex":1}}` + "\n"
	if got := w.rest(t); got != want {
		t.Errorf("expire event:\n got %s\nwant %s", got, want)
	}
}

func TestWatchFromHistory(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/w", "value=v1") // 1
	e.mustOK(t, "PUT", "/v2/keys/o", "value=x")  // 2
	e.mustOK(t, "PUT", "/v2/keys/w", "value=v2") // 3
	e.mustOK(t, "PUT", "/v2/keys/o2", "value=x") // 4
	e.mustOK(t, "PUT", "/v2/keys/w?ttl=9", "")   // 5, refresh-free set
	e.mustOK(t, "PUT", "/v2/keys/o3", "value=x") // 6

	for _, tc := range []struct{ target, want string }{
		{"/v2/keys/w?wait=true&waitIndex=1",
			`{"action":"set","node":{"key":"/w","value":"v1","modifiedIndex":1,"createdIndex":1}}`},
		{"/v2/keys/w?wait=true&waitIndex=2",
			`{"action":"set","node":{"key":"/w","value":"v2","modifiedIndex":3,"createdIndex":3},"prevNode":{"key":"/w","value":"v1","modifiedIndex":1,"createdIndex":1}}`},
		{"/v2/keys/w?wait=true&waitIndex=4",
			`{"action":"set","node":{"key":"/w","value":"","expiration":"2026-11-21T05:00:09Z","ttl":9,"modifiedIndex":5,"createdIndex":5},"prevNode":{"key":"/w","value":"v2","modifiedIndex":3,"createdIndex":3}}`},
		{"/v2/keys/?wait=true&recursive=true&waitIndex=2",
			`{"action":"set","node":{"key":"/o","value":"x","modifiedIndex":2,"createdIndex":2}}`},
	} {
		r := e.do(t, "GET", tc.target, "")
		if r.code != 200 || r.body != tc.want+"\n" {
			t.Errorf("GET %s: %d\n got %s\nwant %s", tc.target, r.code, r.body, tc.want+"\n")
		}
		// Served from history: the header is the current index.
		if got := r.hdr.Get("X-Etcd-Index"); got != "6" {
			t.Errorf("GET %s: X-Etcd-Index = %q, want 6", tc.target, got)
		}
	}

	// Nothing matching in the history since waitIndex: wait for the future.
	w := e.startWatch(t, "/v2/keys/w?wait=true&waitIndex=6")
	checkWatchHeaders(t, e, w, "6")
	e.mustOK(t, "PUT", "/v2/keys/w", "value=v7") // 7
	if got, want := w.rest(t), `{"action":"set","node":{"key":"/w","value":"v7","modifiedIndex":7,"createdIndex":7},"prevNode":{"key":"/w","value":"","expiration":"2026-11-21T05:00:09Z","ttl":9,"modifiedIndex":5,"createdIndex":5}}`+"\n"; got != want {
		t.Errorf("waitIndex=6:\n got %s\nwant %s", got, want)
	}

	// A waitIndex in the future skips matching events before it.
	w = e.startWatch(t, "/v2/keys/w?wait=true&waitIndex=10")
	checkWatchHeaders(t, e, w, "7")
	e.mustOK(t, "PUT", "/v2/keys/w", "value=v8")  // 8: skipped
	e.mustOK(t, "PUT", "/v2/keys/o", "value=y")   // 9
	e.mustOK(t, "PUT", "/v2/keys/w", "value=v10") // 10
	if got := w.rest(t); !strings.HasPrefix(got, `{"action":"set","node":{"key":"/w","value":"v10","modifiedIndex":10,`) {
		t.Errorf("waitIndex=10: got %s", got)
	}
	waitWatchers(t, e.st, 0)
}

func TestWatchStream(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/s/seed", "value=0") // 1
	w := e.startWatch(t, "/v2/keys/s?wait=true&stream=true&recursive=true")
	checkWatchHeaders(t, e, w, "1")

	e.mustOK(t, "PUT", "/v2/keys/s/a", "value=1")             // 2
	e.mustOK(t, "PUT", "/v2/keys/s/b", "value=2")             // 3
	e.mustOK(t, "DELETE", "/v2/keys/s/a", "")                 // 4
	e.mustOK(t, "PUT", "/v2/keys/s/b?refresh=true&ttl=5", "") // 5: a refresh, no event
	e.mustOK(t, "PUT", "/v2/keys/other", "value=x")           // 6: elsewhere
	e.mustOK(t, "PUT", "/v2/keys/s/_hidden", "value=h")       // 7: hidden below the watch
	e.mustOK(t, "DELETE", "/v2/keys/s?recursive=true", "")    // 8
	e.mustOK(t, "PUT", "/v2/keys/s/c", "value=3")             // 9

	want := []string{
		`{"action":"set","node":{"key":"/s/a","value":"1","modifiedIndex":2,"createdIndex":2}}`,
		`{"action":"set","node":{"key":"/s/b","value":"2","modifiedIndex":3,"createdIndex":3}}`,
		`{"action":"delete","node":{"key":"/s/a","modifiedIndex":4,"createdIndex":2},"prevNode":{"key":"/s/a","value":"1","modifiedIndex":2,"createdIndex":2}}`,
		// The directory's delete once (Cairn does not repeat it, unlike etcd).
		`{"action":"delete","node":{"key":"/s","dir":true,"modifiedIndex":8,"createdIndex":1},"prevNode":{"key":"/s","dir":true,"modifiedIndex":1,"createdIndex":1}}`,
		`{"action":"set","node":{"key":"/s/c","value":"3","modifiedIndex":9,"createdIndex":9}}`,
	}
	for i, wl := range want {
		if got := w.line(t); got != wl+"\n" {
			t.Errorf("line %d:\n got %s\nwant %s", i, got, wl+"\n")
		}
	}
	if n := e.st.WatcherCount(); n != 1 {
		t.Errorf("stream watcher count = %d, want 1 while open", n)
	}
	w.close()
	waitWatchers(t, e.st, 0)
}

// A recursive watch on the root skips hidden keys at the top level too
// (docs/compat.md, table 3), live and from the history alike.
func TestWatchRootRecursiveSkipsHidden(t *testing.T) {
	e := newKEnv(t)
	w := e.startWatch(t, "/v2/keys/?wait=true&recursive=true")
	e.mustOK(t, "PUT", "/v2/keys/_top", "value=h")     // 1: hidden
	e.mustOK(t, "PUT", "/v2/keys/d/_below", "value=h") // 2: hidden
	e.mustOK(t, "PUT", "/v2/keys/visible", "value=v")  // 3
	want := `{"action":"set","node":{"key":"/visible","value":"v","modifiedIndex":3,"createdIndex":3}}` + "\n"
	if got := w.rest(t); got != want {
		t.Errorf("live: got %q, want %q", got, want)
	}
	r := e.do(t, "GET", "/v2/keys/?wait=true&recursive=true&waitIndex=1", "")
	if r.code != 200 || r.body != want {
		t.Errorf("from history: %d %q, want %q", r.code, r.body, want)
	}
	// Watching the hidden key itself works.
	r = e.do(t, "GET", "/v2/keys/_top?wait=true&waitIndex=1", "")
	if r.code != 200 || !strings.Contains(r.body, `"key":"/_top"`) {
		t.Errorf("watch on the hidden key: %d %q", r.code, r.body)
	}
}

// A stream watch that starts in the history keeps streaming afterwards
// (API.md "Where Cairn deliberately differs", 3).
func TestWatchStreamFromHistoryContinues(t *testing.T) {
	e := newKEnv(t)
	e.mustOK(t, "PUT", "/v2/keys/h", "value=1") // 1
	e.mustOK(t, "PUT", "/v2/keys/h", "value=2") // 2
	w := e.startWatch(t, "/v2/keys/h?wait=true&stream=true&waitIndex=1")
	checkWatchHeaders(t, e, w, "2")
	e.mustOK(t, "PUT", "/v2/keys/h", "value=3") // 3
	for i := 1; i <= 3; i++ {
		got := w.line(t)
		if !strings.Contains(got, fmt.Sprintf(`"node":{"key":"/h","value":"%d","modifiedIndex":%d,`, i, i)) {
			t.Errorf("event %d: %s", i, got)
		}
	}
}

func TestWatchClientDisconnect(t *testing.T) {
	for _, target := range []string{
		"/v2/keys/k?wait=true",
		"/v2/keys/k?wait=true&stream=true",
		"/v2/keys/?wait=true&recursive=true&waitIndex=5",
	} {
		t.Run(target, func(t *testing.T) {
			e := newKEnv(t)
			w := e.startWatch(t, target)
			if n := e.st.WatcherCount(); n != 1 {
				t.Fatalf("WatcherCount = %d after the headers, want 1", n)
			}
			w.close()
			waitWatchers(t, e.st, 0)
			// The store still works and nothing is delivered anywhere.
			e.mustOK(t, "PUT", "/v2/keys/k", "value=1")
		})
	}
}

// A stream watcher whose server side falls StreamBuffer events behind is
// ended with an error line naming the waitIndex to resume from. Here the
// backlog comes from the history, which makes it exact.
func TestWatchStreamFellBehindHistory(t *testing.T) {
	e := newKEnv(t)
	const n = store.StreamBuffer + 72
	for i := 1; i <= n; i++ {
		doSet(t, e, "/k", strconv.Itoa(i))
	}
	w := e.startWatch(t, "/v2/keys/k?wait=true&stream=true&waitIndex=1")
	checkWatchHeaders(t, e, w, strconv.Itoa(n))
	lines := strings.SplitAfter(w.rest(t), "\n")
	if last := lines[len(lines)-1]; last != "" {
		t.Fatalf("body does not end with a newline: %q", last)
	}
	lines = lines[:len(lines)-1]
	if len(lines) != store.StreamBuffer+1 {
		t.Fatalf("got %d lines, want %d events and an error line", len(lines), store.StreamBuffer)
	}
	checkEventRun(t, lines[:store.StreamBuffer], 1)
	next := store.StreamBuffer + 1
	want := fmt.Sprintf(`{"errorCode":400,"message":"watcher is cleared due to etcd recovery","cause":"watcher fell behind; resume with waitIndex=%d","index":%d}`+"\n", next, next-1)
	if got := lines[store.StreamBuffer]; got != want {
		t.Errorf("last line:\n got %s\nwant %s", got, want)
	}
	waitWatchers(t, e.st, 0)

	// Resuming where it said continues without a gap.
	w = e.startWatch(t, fmt.Sprintf("/v2/keys/k?wait=true&stream=true&waitIndex=%d", next))
	var rest []string
	for i := next; i <= n; i++ {
		rest = append(rest, w.line(t))
	}
	checkEventRun(t, rest, next)
}

// gateWriter blocks the handler in its first body Write until released, so
// that the server side of a stream cannot keep up.
type gateWriter struct {
	http.ResponseWriter
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gateWriter) Write(b []byte) (int, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.ResponseWriter.Write(b)
}

func (g *gateWriter) Flush() { g.ResponseWriter.(http.Flusher).Flush() }

// The same with live events: the handler is stuck writing the first event
// while more than StreamBuffer others arrive.
func TestWatchStreamFellBehindLive(t *testing.T) {
	gates := make(chan *gateWriter, 1)
	e := newKEnvOpts(t, kEnvOpts{handler: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("stream") == "" {
				h.ServeHTTP(w, r)
				return
			}
			g := &gateWriter{ResponseWriter: w, entered: make(chan struct{}), release: make(chan struct{})}
			gates <- g
			h.ServeHTTP(g, r)
		})
	}})
	w := e.startWatch(t, "/v2/keys/k?wait=true&stream=true")
	checkWatchHeaders(t, e, w, "0")
	g := <-gates
	defer func() {
		select {
		case <-g.release:
		default:
			close(g.release)
		}
	}()

	doSet(t, e, "/k", "1") // taken by the handler, which then blocks
	select {
	case <-g.entered:
	case <-time.After(hangGuard):
		t.Fatal("the handler never wrote the first event")
	}
	// StreamBuffer more fill the watcher's buffer; one more overflows it.
	for i := 2; i <= store.StreamBuffer+2; i++ {
		doSet(t, e, "/k", strconv.Itoa(i))
	}
	waitWatchers(t, e.st, 0) // the hub has ended it already
	close(g.release)

	lines := strings.SplitAfter(w.rest(t), "\n")
	lines = lines[:len(lines)-1]
	if len(lines) != store.StreamBuffer+2 {
		t.Fatalf("got %d lines, want %d events and an error line", len(lines), store.StreamBuffer+1)
	}
	checkEventRun(t, lines[:store.StreamBuffer+1], 1)
	next := store.StreamBuffer + 2
	want := fmt.Sprintf(`{"errorCode":400,"message":"watcher is cleared due to etcd recovery","cause":"watcher fell behind; resume with waitIndex=%d","index":%d}`+"\n", next, next-1)
	if got := lines[len(lines)-1]; got != want {
		t.Errorf("last line:\n got %s\nwant %s", got, want)
	}
}

// doSet sets p to v straight through the backend (no HTTP), at ktClock.
func doSet(t testing.TB, e *kEnv, p, v string) {
	t.Helper()
	_, err := e.be.Do(context.Background(), &store.Request{Op: store.OpSet, Path: p, Value: v, Time: ktClock.UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
}

// checkEventRun checks that lines are set events of consecutive indexes
// from first, each a single JSON object plus newline.
func checkEventRun(t testing.TB, lines []string, first int) {
	t.Helper()
	for i, l := range lines {
		var ev struct {
			Action string
			Node   struct {
				Value         string
				ModifiedIndex int
			}
		}
		if !strings.HasSuffix(l, "}\n") || json.Unmarshal([]byte(l), &ev) != nil {
			t.Fatalf("line %d is not an event: %q", i, l)
		}
		idx := first + i
		if ev.Action != "set" || ev.Node.ModifiedIndex != idx || ev.Node.Value != strconv.Itoa(idx) {
			t.Fatalf("line %d: %q, want the set at index %d", i, l, idx)
		}
	}
}
