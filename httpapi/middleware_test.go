package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// A request is logged at debug level, with its method, path, status and
// duration, and not at all when the logger's level is above debug.
func TestRequestsAreLoggedAtDebugLevel(t *testing.T) {
	for _, level := range []zerolog.Level{zerolog.DebugLevel, zerolog.InfoLevel} {
		var out bytes.Buffer
		be := server.NewLocal(store.New(store.DefaultEventHistory), 0x1234, nil)
		t.Cleanup(be.Close)
		h := NewHandler(Config{Backend: be, Logger: zerolog.New(&out).Level(level)})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/keys/missing", nil))
		if rec.Code != 404 {
			t.Fatalf("status %d", rec.Code)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if level > zerolog.DebugLevel {
			if out.Len() != 0 {
				t.Fatalf("level %v logged %q", level, out.String())
			}
			continue
		}
		if len(lines) != 1 {
			t.Fatalf("log lines %q", lines)
		}
		var entry struct {
			Level, Method, Path, Message string
			Status                       int
			Took                         *float64
		}
		if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
			t.Fatal(err)
		}
		if entry.Level != "debug" || entry.Message != "request" || entry.Method != "GET" ||
			entry.Path != "/v2/keys/missing" || entry.Status != 404 || entry.Took == nil {
			t.Fatalf("log line %s", lines[0])
		}
	}
}

// BenchmarkLogRequestsOff is what logRequests costs a request when debug
// logging is off: the status writer, and nothing else.
func BenchmarkLogRequestsOff(b *testing.B) {
	h := logRequests(zerolog.New(io.Discard).Level(zerolog.InfoLevel))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	w, r := &benchWriter{h: http.Header{}}, httptest.NewRequest("GET", "/v2/keys/a", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
