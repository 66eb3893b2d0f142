package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/internal/etcdtest"
)

// memberRequest is one request to the membership endpoints.
type memberRequest struct {
	name, method, path, ctype, body string
}

// memberRequests are the requests TestMembersAsEtcd sends to both
// servers. None may succeed on etcd: an added member would be a voter
// that never starts, and etcd would lose its quorum. A body that passes
// every check therefore carries SELF, the answering member's own peer URL
// (409), and PUT goes to ID 2, which no member has (404 once the body is
// good).
func memberRequests() []memberRequest {
	var out []memberRequest
	for _, c := range memberBodyCases {
		out = append(out,
			memberRequest{"POST " + c.name, "POST", "/v2/members", "application/json", c.body},
			memberRequest{"PUT " + c.name, "PUT", "/v2/members/2", "application/json", c.body})
	}
	for _, ct := range []string{"application/json; x", "Application/JSON; x", "Application/JSON", "text/plain; charset=utf-8", "application/json, text/plain", ""} {
		out = append(out, memberRequest{"Content-Type " + ct, "POST", "/v2/members", ct, `{"peerURLs":`})
	}
	return append(out, memberIDCases...)
}

// The membership endpoints' answers to malformed, mistyped and refused
// requests are etcd 3.4.23's, compared with a live etcd: status,
// Content-Type and body byte for byte.
func TestMembersAsEtcd(t *testing.T) {
	etcdURL, _ := etcdtest.Start(t, etcdtest.Require(t, "etcd"))
	etcdSelf := etcdPeerURL(t, etcdURL)
	_, srv, cairnSelf := oneMember(t)
	for _, r := range memberRequests() {
		eresp, ebody := call(t, r.method, etcdURL+r.path, r.ctype, expandSelf(r.body, etcdSelf))
		// A good PUT makes etcd propose the update (refused when applied:
		// 404); on a loaded machine that may time out (500). Ask again.
		for try := 0; eresp.StatusCode == http.StatusInternalServerError && try < 3; try++ {
			t.Logf("%s: etcd answered %d %s; again", r.name, eresp.StatusCode, ebody)
			eresp, ebody = call(t, r.method, etcdURL+r.path, r.ctype, expandSelf(r.body, etcdSelf))
		}
		cresp, cbody := call(t, r.method, srv.URL+r.path, r.ctype, expandSelf(r.body, cairnSelf))
		if eresp.StatusCode/100 == 2 {
			t.Fatalf("%s: etcd accepted it (%d %s); the case must not change etcd's membership", r.name, eresp.StatusCode, ebody)
		}
		// Messages that quote the URL name each server's own.
		ebody = expandSelf(unexpandSelf(ebody, etcdSelf), cairnSelf)
		if cresp.StatusCode != eresp.StatusCode || cbody != ebody ||
			cresp.Header.Get("Content-Type") != eresp.Header.Get("Content-Type") {
			t.Errorf("%s %s (%s):\n  etcd  %d %s %q\n  cairn %d %s %q", r.method, r.path, r.name,
				eresp.StatusCode, eresp.Header.Get("Content-Type"), ebody, cresp.StatusCode, cresp.Header.Get("Content-Type"), cbody)
		}
	}
}

// etcdPeerURL asks a one-member etcd for its peer URL.
func etcdPeerURL(t *testing.T, clientURL string) string {
	t.Helper()
	resp, body := call(t, http.MethodGet, clientURL+"/v2/members", "", "")
	var ms struct {
		Members []struct {
			PeerURLs []string `json:"peerURLs"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(body), &ms); err != nil || resp.StatusCode != 200 || len(ms.Members) != 1 || len(ms.Members[0].PeerURLs) != 1 {
		t.Fatalf("etcd /v2/members: %d %s (%v)", resp.StatusCode, body, err)
	}
	return ms.Members[0].PeerURLs[0]
}

// unexpandSelf is expandSelf undone.
func unexpandSelf(s, selfURL string) string { return strings.ReplaceAll(s, selfURL, "SELF") }
