package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// unhealthyBackend fails every read, as a member without a quorum does.
type unhealthyBackend struct{ *server.Local }

func (unhealthyBackend) Get(context.Context, string, bool, bool) (*store.Event, error) {
	return nil, errors.New("no leader")
}

func fetch(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func TestVersionAndHealth(t *testing.T) {
	be := server.NewLocal(store.New(10), 1, nil)
	defer be.Close()
	h := httpapi.NewHandler(httpapi.Config{Backend: be})
	cases := []struct {
		h            http.Handler
		method, path string
		status       int
		ctype, body  string
	}{
		{h, "GET", "/version", 200, "application/json", `{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}`},
		{h, "POST", "/version", 405, "text/plain; charset=utf-8", "Method Not Allowed\n"},
		{h, "GET", "/health", 200, "text/plain; charset=utf-8", `{"health":"true"}`},
		{httpapi.NewHandler(httpapi.Config{Backend: unhealthyBackend{be}}), "GET", "/health", 503, "text/plain; charset=utf-8", "{\"health\":\"false\"}\n"},
	}
	for _, c := range cases {
		resp, body := fetch(t, c.h, c.method, c.path)
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != c.ctype || body != c.body {
			t.Errorf("%s %s: %d %q %q, want %d %q %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.status, c.ctype, c.body)
		}
	}
}

// panicBackend panics in every call, as a handler bug would.
type panicBackend struct{ *server.Local }

func (panicBackend) Get(context.Context, string, bool, bool) (*store.Event, error) {
	panic("bug")
}

// A panicking handler answers a JSON 500 and the server keeps serving.
func TestPanicAnswersJSON500(t *testing.T) {
	be := server.NewLocal(store.New(10), 1, nil)
	defer be.Close()
	h := httpapi.NewHandler(httpapi.Config{Backend: panicBackend{be}})
	resp, body := fetch(t, h, "GET", "/v2/keys/a")
	if resp.StatusCode != 500 || body != "{\"errorCode\":300,\"message\":\"Raft Internal Error\",\"cause\":\"internal server error\",\"index\":0}\n" {
		t.Fatalf("keys: %d %q", resp.StatusCode, body)
	}
	resp, body = fetch(t, h, "GET", "/health")
	if resp.StatusCode != 500 || body != `{"message":"Internal Server Error"}` {
		t.Fatalf("health: %d %q", resp.StatusCode, body)
	}
	if resp, _ := fetch(t, h, "GET", "/version"); resp.StatusCode != 200 {
		t.Fatalf("after panics: /version %d", resp.StatusCode)
	}
}

// /metrics serves the HTTP figures with etcd's names (cairn_ for etcd_):
// requests by method, failures by method and code; watches not counted.
func TestMetrics(t *testing.T) {
	be := server.NewLocal(store.New(10), 1, nil)
	defer be.Close()
	reg := prometheus.NewRegistry()
	h := httpapi.NewHandler(httpapi.Config{Backend: be, Metrics: reg})
	fetch(t, h, "PUT", "/v2/keys/a?value=1")
	fetch(t, h, "GET", "/v2/keys/missing")
	fetch(t, h, "GET", "/v2/keys/a?quorum=true")
	fetch(t, h, "GET", "/v2/keys/a?wait=true&waitIndex=1")
	_, body := fetch(t, h, "GET", "/metrics")
	for _, want := range []string{
		`cairn_http_received_total{method="PUT"} 1`,
		`cairn_http_received_total{method="GET"} 1`,
		`cairn_http_received_total{method="QGET"} 1`,
		`cairn_http_failed_total{code="404",method="GET"} 1`,
		`cairn_http_successful_duration_seconds_count{method="PUT"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Count(body, "cairn_http_received_total{") != 3 {
		t.Errorf("a watch was counted:\n%s", body)
	}
}

// Every request of a method is counted, not only the first; a method
// whose requests all failed has no duration series.
func TestMetricsCountEveryRequest(t *testing.T) {
	be := server.NewLocal(store.New(10), 1, nil)
	defer be.Close()
	reg := prometheus.NewRegistry()
	h := httpapi.NewHandler(httpapi.Config{Backend: be, Metrics: reg})
	for range 3 {
		fetch(t, h, "PUT", "/v2/keys/a?value=1")
	}
	for range 2 {
		fetch(t, h, "GET", "/v2/keys/missing")
	}
	_, body := fetch(t, h, "GET", "/metrics")
	for _, want := range []string{
		`cairn_http_received_total{method="PUT"} 3`,
		`cairn_http_successful_duration_seconds_count{method="PUT"} 3`,
		`cairn_http_received_total{method="GET"} 2`,
		`cairn_http_failed_total{code="404",method="GET"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `cairn_http_successful_duration_seconds_count{method="GET"}`) {
		t.Errorf("a duration series for GET, which only failed:\n%s", body)
	}
}

// /v2/stats/store counts each operation's outcome, in etcd's field order.
func TestStoreStats(t *testing.T) {
	be := server.NewLocal(store.New(10), 1, nil)
	defer be.Close()
	h := httpapi.NewHandler(httpapi.Config{Backend: be})
	for _, r := range []struct{ method, path string }{
		{"PUT", "/v2/keys/a?value=1"},
		{"PUT", "/v2/keys/b?value=1&prevExist=false"},
		{"PUT", "/v2/keys/b?value=1&prevExist=false"},
		{"GET", "/v2/keys/missing"},
		{"GET", "/v2/keys/a"},
		{"PUT", "/v2/keys/a?value=2&prevValue=zz"},
		{"PUT", "/v2/keys/a?value=2&prevExist=true"},
		{"DELETE", "/v2/keys/a"},
		{"DELETE", "/v2/keys/b?prevIndex=99"},
		{"POST", "/v2/keys/q?value=x"},
	} {
		fetch(t, h, r.method, r.path)
	}
	resp, body := fetch(t, h, "GET", "/v2/stats/store")
	want := `{"getsSuccess":1,"getsFail":1,"setsSuccess":1,"setsFail":0,"deleteSuccess":1,"deleteFail":0,` +
		`"updateSuccess":1,"updateFail":0,"createSuccess":2,"createFail":1,"compareAndSwapSuccess":0,"compareAndSwapFail":1,` +
		`"compareAndDeleteSuccess":0,"compareAndDeleteFail":1,"expireCount":0,"watchers":0}`
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || body != want {
		t.Fatalf("got %d %q\n%s\nwant\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body, want)
	}
}

// selfStatsBackend reports fixed /v2/stats/self figures.
type selfStatsBackend struct {
	*server.Local
	st server.SelfStats
}

func (b selfStatsBackend) SelfStats() server.SelfStats { return b.st }

// /v2/stats/self carries the rates in etcd's field order when there is
// traffic and leaves them out when they are 0; JSON without a newline.
func TestSelfStatsFields(t *testing.T) {
	be := server.NewLocal(store.New(10), 1, nil)
	defer be.Close()
	at := time.Date(2026, 11, 21, 5, 0, 19, 661835642, time.UTC)
	st := server.SelfStats{Name: "r0", ID: "8876210cd96651c6", State: "StateFollower", StartTime: at,
		LeaderInfo:           server.LeaderInfo{Leader: "1", Uptime: "1m0s", StartTime: at},
		RecvAppendRequestCnt: 7, RecvPkgRate: 12.5, RecvBandwidthRate: 1000.25, SendAppendRequestCnt: 3, SendPkgRate: 1, SendBandwidthRate: 64}
	const head = `{"name":"r0","id":"8876210cd96651c6","state":"StateFollower","startTime":"2026-11-21T05:00:19.661835642Z",` +
		`"leaderInfo":{"leader":"1","uptime":"1m0s","startTime":"2026-11-21T05:00:19.661835642Z"},`
	_, body := fetch(t, httpapi.NewHandler(httpapi.Config{Backend: selfStatsBackend{be, st}}), "GET", "/v2/stats/self")
	if want := head + `"recvAppendRequestCnt":7,"recvPkgRate":12.5,"recvBandwidthRate":1000.25,"sendAppendRequestCnt":3,"sendPkgRate":1,"sendBandwidthRate":64}`; body != want {
		t.Errorf("with traffic:\n got %s\nwant %s", body, want)
	}
	st.RecvPkgRate, st.RecvBandwidthRate, st.SendPkgRate, st.SendBandwidthRate = 0, 0, 0, 0
	_, body = fetch(t, httpapi.NewHandler(httpapi.Config{Backend: selfStatsBackend{be, st}}), "GET", "/v2/stats/self")
	if want := head + `"recvAppendRequestCnt":7,"sendAppendRequestCnt":3}`; body != want {
		t.Errorf("idle:\n got %s\nwant %s", body, want)
	}
}
