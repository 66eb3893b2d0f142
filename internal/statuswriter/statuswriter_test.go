package statuswriter

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRecordsTheFirstStatus(t *testing.T) {
	rec := httptest.NewRecorder()
	w := New(rec)
	w.WriteHeader(http.StatusTeapot)
	w.WriteHeader(http.StatusOK)
	if w.Status != http.StatusTeapot {
		t.Fatalf("status %d", w.Status)
	}
	w2 := New(httptest.NewRecorder())
	_, _ = w2.Write([]byte("x"))
	w2.Flush()
	if w2.Status != http.StatusOK {
		t.Fatalf("a body without a status recorded %d", w2.Status)
	}
	if http.NewResponseController(w2).Flush() != nil {
		t.Fatal("Flush does not reach the writer beneath")
	}
}
