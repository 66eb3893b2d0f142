package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The data quota on real members: with --quota-backend-bytes small,
// writes are accepted until the data would pass it, then refused with 507
// and errorCode 125 on every member (nothing proposed: the index does not
// move); deletes still work, and once they have made room writes are
// served again. The members stay healthy throughout.
func TestQuotaOnRealMembers(t *testing.T) {
	c := startClusterWith(t, []string{"--quota-backend-bytes", "3000"}, "a", "b", "c")
	value := strings.Repeat("v", 200)
	var written []string
	for i := 0; ; i++ {
		key := "/q/k" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		code, body := c.do(c.procs[i%3], "PUT", "/v2/keys"+key, url.Values{"value": {value}})
		if code == http.StatusInsufficientStorage {
			if !strings.Contains(body, `"errorCode":125`) || !strings.Contains(body, "--quota-backend-bytes") {
				t.Fatalf("the refusal: %d %s", code, body)
			}
			break
		}
		if code != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", key, code, body)
		}
		written = append(written, key)
		if i > 100 {
			t.Fatal("no refusal after 100 writes of 200 bytes under a 3000-byte quota")
		}
	}
	if len(written) < 5 {
		t.Fatalf("only %d writes before the quota", len(written))
	}
	// Every member refuses, and the refusal proposes nothing.
	_, before := c.do(c.procs[0], "GET", "/v2/keys/q", nil)
	for _, p := range c.procs {
		// A linearizable read first: p has then applied every write
		// (the quota is checked against the member's own copy).
		c.do(p, "GET", "/v2/keys/q", nil)
		if code, body := c.do(p, "PUT", "/v2/keys/q/more", url.Values{"value": {value}}); code != http.StatusInsufficientStorage {
			t.Fatalf("%s at the quota: %d %s", p.name, code, body)
		}
	}
	if _, after := c.do(c.procs[0], "GET", "/v2/keys/q", nil); after != before {
		t.Fatalf("a refused write changed the data:\n%s\n%s", before, after)
	}
	// Deletes work at the quota, and make room.
	for _, k := range written[:3] {
		if code, body := c.do(c.procs[1], "DELETE", "/v2/keys"+k, nil); code != http.StatusOK {
			t.Fatalf("DELETE %s at the quota: %d %s", k, code, body)
		}
	}
	if code, body := c.do(c.procs[2], "PUT", "/v2/keys/q/again", url.Values{"value": {value}}); code != http.StatusCreated {
		t.Fatalf("a write after deletes made room: %d %s", code, body)
	}
	for _, p := range c.procs {
		fltWaitHealthy(t, p, 10*time.Second)
	}
}
