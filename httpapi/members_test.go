package httpapi_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
)

// oneMember starts a real single-member cluster (data in a temp dir, peer
// endpoints on loopback) and its client handler.
func oneMember(t *testing.T) (*server.Member, *httptest.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peerURL := "http://" + ln.Addr().String()
	m, err := server.StartMember(server.MemberConfig{ID: 0x8e9e05c52164694d, ClusterID: 0xcdf818194e3a8c32, Name: "solo",
		PeerURLs: []string{peerURL}, ClientURLs: []string{"http://127.0.0.1:2379"}, DataDir: t.TempDir(),
		HeartbeatInterval: 10 * time.Millisecond, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	psrv := &http.Server{Handler: m.PeerHandler()}
	go psrv.Serve(ln)
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Config{Backend: m}))
	t.Cleanup(func() {
		srv.Close()
		psrv.Close()
		m.Stop()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ms := m.Members(); len(ms) == 1 && ms[0].Name == "solo" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the member did not publish its name")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return m, srv, peerURL
}

func call(t *testing.T, method, url, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// The membership endpoints answer with etcd 3.4.23's statuses, headers
// and bytes (captured from etcd; the IDs and URLs are this cluster's).
func TestMembersEndpoints(t *testing.T) {
	_, srv, peerURL := oneMember(t)
	self := `{"id":"8e9e05c52164694d","name":"solo","peerURLs":["` + peerURL + `"],"clientURLs":["http://127.0.0.1:2379"]}`
	const js = "application/json"
	type want struct {
		status int
		body   string // a regexp when it starts with ^
	}
	check := func(method, path, ctype, body string, w want) string {
		t.Helper()
		resp, got := call(t, method, srv.URL+path, ctype, body)
		ok := resp.StatusCode == w.status
		if strings.HasPrefix(w.body, "^") {
			ok = ok && regexp.MustCompile(w.body).MatchString(got)
		} else {
			ok = ok && got == w.body
		}
		if !ok {
			t.Errorf("%s %s %s: %d %q, want %d %q", method, path, body, resp.StatusCode, got, w.status, w.body)
		}
		// /v2/members answers carry the cluster ID; /v2/machines and
		// /v2/stats do not (as etcd).
		hasID := resp.Header.Get("X-Etcd-Cluster-Id") == "cdf818194e3a8c32"
		if wantID := strings.HasPrefix(path, "/v2/members") && resp.StatusCode != 405; hasID != wantID {
			t.Errorf("%s %s: X-Etcd-Cluster-Id %q", method, path, resp.Header.Get("X-Etcd-Cluster-Id"))
		}
		return got
	}
	check("GET", "/v2/members", "", "", want{200, `{"members":[` + self + "]}\n"})
	check("GET", "/v2/members/", "", "", want{200, `{"members":[` + self + "]}\n"})
	check("GET", "/v2/members/leader", "", "", want{200, self + "\n"})
	check("GET", "/v2/members/xyz", "", "", want{404, `{"message":"Not found"}`})
	check("HEAD", "/v2/members", "", "", want{405, ""})
	check("PUT", "/v2/members", js, `{"peerURLs":["http://127.0.0.1:9"]}`, want{405, "Method Not Allowed\n"})
	check("DELETE", "/v2/members", "", "", want{405, "Method Not Allowed\n"})

	// POST: the body's checks, in etcd's order and words.
	check("POST", "/v2/members", "application/x-www-form-urlencoded", `{"peerURLs":["http://127.0.0.1:1"]}`,
		want{415, `{"message":"Bad Content-Type application/x-www-form-urlencoded, accept application/json"}`})
	check("POST", "/v2/members", js, `{"peerURLs":`, want{400, `{"message":"unexpected end of JSON input"}`})
	check("POST", "/v2/members", js, `{"peerURLs":[]}`, want{400, `{"message":"no valid URLs given"}`})
	check("POST", "/v2/members", js, `{"peerURLs":["foo"]}`, want{400, `{"message":"URL scheme must be http, https, unix, or unixs: foo"}`})
	check("POST", "/v2/members", js, `{"peerURLs":["http://127.0.0.1:1/x"]}`, want{400, `{"message":"URL must not contain a path: http://127.0.0.1:1/x"}`})
	check("POST", "/v2/members", js, `{"peerURLs":["http://127.0.0.1"]}`, want{400, `{"message":"URL address does not have the form \"host:port\": http://127.0.0.1"}`})
	check("POST", "/v2/members", js, `{"peerURLs":["`+peerURL+`"]}`, want{409, `{"message":"membership: peerURL exists"}`})

	// A member added but not started: empty name and client URLs. It is a
	// learner, so the cluster of one still commits.
	added := check("POST", "/v2/members", "application/json; charset=utf-8", `{"peerURLs":["http://127.0.0.1:1"]}`,
		want{201, `^\{"id":"[0-9a-f]+","name":"","peerURLs":\["http://127.0.0.1:1"\],"clientURLs":\[\]\}\n$`})
	id := regexp.MustCompile(`"id":"([0-9a-f]+)"`).FindStringSubmatch(added)[1]
	check("GET", "/v2/members", "", "", want{200, "^" + regexp.QuoteMeta(`{"members":[`) + ".*" + regexp.QuoteMeta(`"id":"`+id+`"`) + ".*\n$"})
	check("GET", "/v2/machines", "", "", want{200, "http://127.0.0.1:2379"})
	if resp, body := call(t, "PUT", srv.URL+"/v2/keys/still-commits", "application/x-www-form-urlencoded", "value=1"); resp.StatusCode != 201 {
		t.Fatalf("a write after adding a member that never started: %d %s", resp.StatusCode, body)
	}
	// The leader reports the added member as a follower it cannot reach.
	check("GET", "/v2/stats/leader", "", "", want{200, `^\{"leader":"8e9e05c52164694d","followers":\{"` + id + `":\{"latency":\{.*\},"counts":\{"fail":\d+,"success":0\}\}\}\}$`})

	// PUT updates the peer URLs; a URL another member uses is a conflict.
	check("PUT", "/v2/members/"+id, js, `{"peerURLs":["http://127.0.0.1:2"]}`, want{204, ""})
	check("PUT", "/v2/members/"+id, js, `{"peerURLs":["`+peerURL+`"]}`, want{409, `{"message":"membership: peerURL exists"}`})
	check("PUT", "/v2/members/abc", js, `{"peerURLs":["http://127.0.0.1:9"]}`, want{404, `{"message":"No such member: abc"}`})
	check("PUT", "/v2/members/"+id, "text/plain", `{}`, want{415, `{"message":"Bad Content-Type text/plain, accept application/json"}`})
	check("GET", "/v2/members", "", "", want{200, "^.*" + regexp.QuoteMeta(`"peerURLs":["http://127.0.0.1:2"]`) + ".*\n$"})

	// DELETE: 204, then 410 for the removed ID, 404 for strangers.
	check("DELETE", "/v2/members/"+id, "", "", want{204, ""})
	check("DELETE", "/v2/members/"+id, "", "", want{410, fmt.Sprintf(`{"message":"Member permanently removed: %s"}`, id)})
	check("DELETE", "/v2/members/abc", "", "", want{404, `{"message":"No such member: abc"}`})
	check("DELETE", "/v2/members/zzz", "", "", want{404, `{"message":"No such member: zzz"}`})
	check("GET", "/v2/members", "", "", want{200, `{"members":[` + self + "]}\n"})
	check("GET", "/v2/stats/leader", "", "", want{200, `{"leader":"8e9e05c52164694d","followers":{}}`})
}

// POST /v2/members with 30,000 peer URLs is refused with 400 and says
// why; so is a URL that is within the bound as sent but not once
// normalised (the member's own check). Nothing is proposed.
func TestMembersAddOverTheBoundsProposesNothing(t *testing.T) {
	m, srv, _ := oneMember(t)
	before, index := m.Members(), m.Status().RaftIndex
	for _, c := range []struct{ name, body, want string }{
		{"30,000 URLs", peerURLsBody(30000), `{"message":"request body too large: the limit is 65536 bytes"}`},
		{"2,000 URLs", peerURLsBody(2000), `{"message":"too many peer URLs: 2000, at most 16"}`},
		// 97 bytes as sent, 273 once normalised: each é (2 bytes) is
		// escaped to %C3%A9.
		{"a URL that grows", peerURLsBody(0, "http://"+strings.Repeat("é", 44)+":1"), `{"message":"peer URL too long: 273 bytes, at most 256"}`},
	} {
		resp, got := call(t, "POST", srv.URL+"/v2/members", "application/json", c.body)
		if resp.StatusCode != 400 || got != c.want {
			t.Errorf("%s: %d %s, want 400 %s", c.name, resp.StatusCode, got, c.want)
		}
	}
	if got := m.Status().RaftIndex; got != index {
		t.Errorf("the Raft index moved from %d to %d", index, got)
	}
	if got := m.Members(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("members %+v, were %+v", got, before)
	}
}

// An idle member of one sends and receives no appends: /v2/stats/self
// has no rates.
func TestSelfStatsIdleMember(t *testing.T) {
	_, srv, _ := oneMember(t)
	time.Sleep(100 * time.Millisecond)
	resp, body := call(t, "GET", srv.URL+"/v2/stats/self", "", "")
	re := `^\{"name":"solo","id":"8e9e05c52164694d","state":"StateLeader","startTime":"[^"]+",` +
		`"leaderInfo":\{"leader":"8e9e05c52164694d","uptime":"[^"]+","startTime":"[^"]+"\},"recvAppendRequestCnt":0,"sendAppendRequestCnt":0\}$`
	if resp.StatusCode != 200 || !regexp.MustCompile(re).MatchString(body) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
