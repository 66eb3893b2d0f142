package peer

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/consensus"
)

func post(t *testing.T, url string, hdr map[string]string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The receiving side refuses strangers: another cluster, a message for
// another member, a removed sender, a sender that is not a member, a
// message claiming another sender, a body that does not decode. Each
// refusal is counted by reason. A member it knows of is accepted.
func TestHandlerRefusesStrangers(t *testing.T) {
	var mu sync.Mutex
	var got []consensus.Message
	refused := map[string]int{}
	tr := New(Config{ID: 2, ClusterID: 7, Peers: map[uint64]string{1: "http://127.0.0.1:1"},
		Receive: func(m consensus.Message) {
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		},
		IsRemoved: func(id uint64) bool { return id == 5 },
		IsMember:  func(id uint64) bool { return id == 1 || id == 9 },
		Refused: func(reason string) {
			mu.Lock()
			refused[reason]++
			mu.Unlock()
		}})
	defer tr.Stop()
	srv := httptest.NewServer(tr.Handler())
	defer srv.Close()
	good := map[string]string{HeaderCluster: "7", HeaderFrom: "1", HeaderTo: "2"}
	msg := consensus.Message{Type: consensus.MsgHeartbeat, From: 1, To: 2, Term: 3}
	body := appendFrame(nil, &msg)
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for a, b := range good {
			h[a] = b
		}
		h[k] = v
		return h
	}
	foreign := consensus.Message{Type: consensus.MsgHeartbeat, From: 3, To: 2}
	newcomer := consensus.Message{Type: consensus.MsgHeartbeat, From: 9, To: 2, Term: 4}
	cases := []struct {
		name string
		hdr  map[string]string
		body []byte
		want int
	}{
		{"other cluster", with(HeaderCluster, "8"), body, http.StatusPreconditionFailed},
		{"other member", with(HeaderTo, "3"), body, http.StatusPreconditionFailed},
		{"newly added member", with(HeaderFrom, "9"), appendFrame(nil, &newcomer), http.StatusNoContent},
		{"stranger", with(HeaderFrom, "6"), appendFrame(nil, &consensus.Message{Type: consensus.MsgProp, From: 6, To: 2,
			Entries: []consensus.Entry{{Data: []byte("forged")}}}), http.StatusNotFound},
		{"removed sender", with(HeaderFrom, "5"), body, http.StatusGone},
		{"bad sender", with(HeaderFrom, "zz"), body, http.StatusForbidden},
		{"message from another member", good, appendFrame(nil, &foreign), http.StatusBadRequest},
		{"garbage", good, []byte{5, 1, 2}, http.StatusBadRequest},
		{"good", good, body, http.StatusNoContent},
	}
	for _, c := range cases {
		if code := post(t, srv.URL+RaftPath, c.hdr, c.body); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Term != 4 || got[1].Term != 3 {
		t.Fatalf("received %+v, want the newcomer's and the good heartbeat", got)
	}
	wantRefused := map[string]int{"cluster": 1, "recipient": 1, "stranger": 1, "removed": 1, "sender": 1, "message": 2}
	if !maps.Equal(refused, wantRefused) {
		t.Fatalf("refusals counted %v, want %v", refused, wantRefused)
	}
	resp, err := http.Get(srv.URL + RaftPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET %s: %d", RaftPath, resp.StatusCode)
	}
}

// Two transports exchange messages and a snapshot stream; an unreachable
// peer is reported.
func TestTransportsTalk(t *testing.T) {
	recv := make(chan consensus.Message, 16)
	snapBody := make(chan []byte, 1)
	var b *Transport
	srvB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.Handler().ServeHTTP(w, r) }))
	defer srvB.Close()
	b = New(Config{ID: 2, ClusterID: 7, Peers: map[uint64]string{1: "http://127.0.0.1:1"},
		Receive: func(m consensus.Message) { recv <- m },
		ReceiveSnapshot: func(m consensus.Message, r io.Reader) error {
			data, err := io.ReadAll(r)
			snapBody <- data
			return err
		}})
	defer b.Stop()
	unreachable := make(chan uint64, 16)
	done := make(chan bool, 1)
	a := New(Config{ID: 1, ClusterID: 7, Peers: map[uint64]string{2: srvB.URL, 3: "http://127.0.0.1:1"},
		Unreachable:   func(id uint64) { unreachable <- id },
		SnapshotDone:  func(id uint64, failed bool) { done <- failed },
		WriteSnapshot: func(w io.Writer) error { _, err := w.Write([]byte("state")); return err }})
	defer a.Stop()
	a.Send([]consensus.Message{
		{Type: consensus.MsgApp, From: 1, To: 2, Term: 1, Entries: []consensus.Entry{{Term: 1, Index: 1, Data: []byte("x")}}},
		{Type: consensus.MsgHeartbeat, From: 1, To: 3, Term: 1},
		{Type: consensus.MsgSnap, From: 1, To: 2, Term: 1, Snapshot: &consensus.Snapshot{Meta: consensus.SnapshotMeta{Index: 5, Term: 1}}},
	})
	timeout := time.After(10 * time.Second)
	select {
	case m := <-recv:
		if m.Type != consensus.MsgApp || string(m.Entries[0].Data) != "x" {
			t.Fatalf("received %+v", m)
		}
	case <-timeout:
		t.Fatal("no message arrived")
	}
	select {
	case data := <-snapBody:
		if string(data) != "state" {
			t.Fatalf("snapshot body %q", data)
		}
	case <-timeout:
		t.Fatal("no snapshot arrived")
	}
	select {
	case failed := <-done:
		if failed {
			t.Fatal("snapshot reported failed")
		}
	case <-timeout:
		t.Fatal("snapshot outcome not reported")
	}
	select {
	case id := <-unreachable:
		if id != 3 {
			t.Fatalf("unreachable %d, want 3", id)
		}
	case <-timeout:
		t.Fatal("unreachable peer not reported")
	}
}
