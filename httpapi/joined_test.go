package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// notJoined is a backend that has not applied its own addition yet.
type notJoined struct {
	*server.Local
	joined bool
}

func (b *notJoined) Joined() error {
	if b.joined {
		return nil
	}
	return server.ErrNotJoined
}

// A member that has not joined yet refuses client requests (it could not
// check their permissions: its auth state may lack what was committed
// before it joined), in the v2 shape on keys, locks and queues and
// etcd's {"message"} elsewhere; /health, /version and /v2/stats answer;
// once it has joined, everything is served.
func TestNotJoinedRefusesClients(t *testing.T) {
	l := server.NewLocal(store.New(100), 1, nil)
	defer l.Close()
	be := &notJoined{Local: l}
	h := NewHandler(Config{Backend: be})
	do := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader("value=x")))
		return rec.Code, rec.Body.String()
	}
	for _, p := range []string{"/v2/keys/a", "/v2/locks/l", "/v2/queues/q"} {
		code, body := do(http.MethodGet, p)
		if code != http.StatusInternalServerError || !strings.Contains(body, `"errorCode":300`) || !strings.Contains(body, "own addition") {
			t.Errorf("GET %s before joining: %d %s", p, code, body)
		}
	}
	for _, p := range []string{"/v2/members", "/v2/auth/enable", "/v2/machines"} {
		if code, body := do(http.MethodGet, p); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, `{"message":`) {
			t.Errorf("GET %s before joining: %d %s", p, code, body)
		}
	}
	for _, p := range []string{"/health", "/version", "/v2/stats/store"} {
		if code, _ := do(http.MethodGet, p); code == http.StatusServiceUnavailable && p != "/health" {
			t.Errorf("GET %s before joining: %d", p, code)
		}
	}
	be.joined = true
	if code, body := do(http.MethodPut, "/v2/keys/a"); code != http.StatusCreated {
		t.Fatalf("PUT after joining: %d %s", code, body)
	}
}
