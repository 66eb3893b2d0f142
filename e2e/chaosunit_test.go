package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Tests of the harness's parts: the fault proxy on its own (a fake peer
// that echoes a full-duplex stream), the model on hand-made histories,
// and the proxy in front of real members (a cut-off leader is replaced).

// chEchoPeer answers a POST by echoing each line of its body as it
// arrives (like a Raft stream: the answer flows while the body is still
// being sent). Like a member, it answers once it has read the first line:
// a 200 sent before the body is read would be the final answer to a
// sender that expects "100 Continue", which then sends no body.
func chEchoPeer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		br := bufio.NewReader(r.Body)
		for first := true; ; first = false {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if first {
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusOK)
			}
			if _, err := io.WriteString(w, "echo "+line); err != nil {
				return
			}
			_ = rc.Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// chOpenStream opens a stream from member index from through the proxy;
// send writes a line, recv reads the echo (bounded).
func chOpenStream(t *testing.T, p *chProxy, from uint64) (send func(string) error, recv func() (string, error), closeFn func()) {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, p.URL()+"/raft/stream", pr)
	req.Header.Set("X-Cairn-From", strconv.FormatUint(from, 16))
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second, DisableKeepAlives: true}
	type answer struct {
		resp *http.Response
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		ch <- answer{resp, err}
	}()
	if _, err := io.WriteString(pw, "hello\n"); err != nil {
		t.Fatal(err)
	}
	var a answer
	select {
	case a = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to the stream within 10 s")
	}
	if a.err != nil {
		t.Fatalf("stream: %v", a.err)
	}
	if a.resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", a.resp.StatusCode)
	}
	br := bufio.NewReader(a.resp.Body)
	lines := make(chan string)
	errc := make(chan error, 1)
	go func() {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				errc <- err
				return
			}
			lines <- l
		}
	}()
	send = func(s string) error { _, err := io.WriteString(pw, s+"\n"); return err }
	recv = func() (string, error) {
		select {
		case l := <-lines:
			return strings.TrimSpace(l), nil
		case err := <-errc:
			return "", err
		case <-time.After(10 * time.Second):
			return "", errors.New("nothing within 10 s")
		}
	}
	closeFn = func() {
		pw.Close()
		a.resp.Body.Close()
		tr.CloseIdleConnections()
	}
	t.Cleanup(closeFn)
	return send, recv, closeFn
}

func TestChaosProxy(t *testing.T) {
	peer := chEchoPeer(t)
	n := chNewNet()
	n.setID(0xa1, 0)
	n.setID(0xb2, 1)
	p, err := chStartProxy(n, 2, peer.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// A stream flows both ways through the proxy.
	send, recv, _ := chOpenStream(t, p, 0xa1)
	if l, err := recv(); err != nil || l != "echo hello" {
		t.Fatalf("first echo: %q %v", l, err)
	}
	if err := send("two"); err != nil {
		t.Fatal(err)
	}
	if l, err := recv(); err != nil || l != "echo two" {
		t.Fatalf("second echo: %q %v", l, err)
	}
	send2, recv2, _ := chOpenStream(t, p, 0xb2)
	if l, err := recv2(); err != nil || l != "echo hello" {
		t.Fatalf("b's first echo: %q %v", l, err)
	}

	// Blocking a -> 2 cuts a's stream, not b's; a new request from a is
	// refused, one from b (or with no sender) passes.
	n.block(chRefuse, chPair{0, 2})
	if l, err := recv(); err == nil {
		t.Fatalf("a's stream still flows after the block: %q", l)
	}
	if err := send2("three"); err != nil {
		t.Fatal(err)
	}
	if l, err := recv2(); err != nil || l != "echo three" {
		t.Fatalf("b's stream after a's block: %q %v", l, err)
	}
	post := func(from string) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, p.URL()+"/raft", strings.NewReader("x\n"))
		if from != "" {
			req.Header.Set("X-Cairn-From", from)
		}
		resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := post("a1"); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("POST from a while blocked: %d %v", code, err)
	}
	for _, from := range []string{"b2", ""} {
		if code, err := post(from); err != nil || code != http.StatusOK {
			t.Fatalf("POST from %q: %d %v", from, code, err)
		}
	}

	// Blackholed: no answer until healed, then the connection drops.
	n.heal()
	n.block(chBlackhole, chPair{0, 2})
	done := make(chan error, 1)
	go func() {
		_, err := post("a1")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a blackholed request ended before the heal: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	n.heal()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a blackholed request was answered")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a blackholed request still held 10 s after the heal")
	}
	if code, err := post("a1"); err != nil || code != http.StatusOK {
		t.Fatalf("POST from a after the heal: %d %v", code, err)
	}
	send3, recv3, _ := chOpenStream(t, p, 0xa1)
	if l, err := recv3(); err != nil || l != "echo hello" {
		t.Fatalf("a's new stream after the heal: %q %v", l, err)
	}
	_ = send3
}

// The model accepts linearizable histories and rejects the others,
// unknown outcomes included.
func TestChaosModel(t *testing.T) {
	const never = -1
	op := func(call, ret int64, in chInput, out chOutput) chOp {
		return chOp{Input: in, Output: out, Call: call, Return: ret}
	}
	w := func(v string) chInput { return chInput{Op: "write", Key: "/k", Value: v} }
	cas := func(prev, v string) chInput { return chInput{Op: "cas", Key: "/k", Prev: prev, Value: v} }
	r := chInput{Op: "read", Key: "/k"}
	ok := chOutput{Outcome: chOK}
	read := func(v string) chOutput { return chOutput{Outcome: chOK, Value: v} }
	unknown := chOutput{Outcome: chUnknown}
	for _, tc := range []struct {
		name string
		ops  []chOp
		want bool
	}{
		{"sequential", []chOp{op(0, 1, w("a"), ok), op(2, 3, r, read("a")), op(4, 5, cas("a", "b"), ok), op(6, 7, r, read("b"))}, true},
		{"stale read", []chOp{op(0, 1, w("a"), ok), op(2, 3, w("b"), ok), op(4, 5, r, read("a"))}, false},
		{"concurrent read may see either", []chOp{op(0, 1, w("a"), ok), op(2, 6, w("b"), ok), op(3, 4, r, read("a")), op(5, 7, r, read("b"))}, true},
		{"read goes back", []chOp{op(0, 1, w("a"), ok), op(2, 9, w("b"), ok), op(3, 4, r, read("b")), op(5, 6, r, read("a"))}, false},
		{"unknown write seen later", []chOp{op(0, 1, w("a"), ok), op(2, never, w("b"), unknown), op(10, 11, r, read("a")), op(12, 13, r, read("b"))}, true},
		{"unknown write never seen", []chOp{op(0, 1, w("a"), ok), op(2, never, w("b"), unknown), op(10, 11, r, read("a"))}, true},
		{"unknown write seen before it was sent", []chOp{op(0, 1, w("a"), ok), op(3, 4, r, read("b")), op(5, never, w("b"), unknown)}, false},
		{"cas failed on the current value", []chOp{op(0, 1, w("a"), ok), op(2, 3, cas("a", "b"), chOutput{Outcome: chCompareFailed})}, false},
		{"cas failed on another value", []chOp{op(0, 1, w("a"), ok), op(2, 3, cas("x", "b"), chOutput{Outcome: chCompareFailed}), op(4, 5, r, read("a"))}, true},
		{"cas not applied", []chOp{op(0, 1, w("a"), ok), op(2, 3, cas("a", "b"), chOutput{Outcome: chNotApplied}), op(4, 5, r, read("a"))}, true},
		{"unknown cas applied", []chOp{op(0, 1, w("a"), ok), op(2, never, cas("a", "b"), unknown), op(4, 5, r, read("b"))}, true},
		{"unknown cas cannot apply", []chOp{op(0, 1, w("a"), ok), op(2, never, cas("x", "b"), unknown), op(4, 5, r, read("b"))}, false},
	} {
		got := porcupine.CheckOperations(chModel, chOperations(tc.ops))
		if got != tc.want {
			t.Errorf("%s: linearizable %v, want %v", tc.name, got, tc.want)
		}
	}
	// The witness of a stale read names it; a linearizable history has none.
	stale := []chOp{op(0, 1, w("a"), ok), op(2, 3, w("b"), ok), op(4, 5, r, read("a"))}
	stale[2].Meta.Member = "c"
	if wit := chStaleWitness(stale, "/k"); !strings.Contains(wit, `returned "a"`) || !strings.Contains(wit, "c:1") {
		t.Errorf("witness of a stale read: %q", wit)
	}
	fresh := []chOp{op(0, 1, w("a"), ok), op(2, 6, w("b"), ok), op(3, 4, r, read("a")), op(5, 7, r, read("b"))}
	if wit := chStaleWitness(fresh, "/k"); wit != "" {
		t.Errorf("witness in a linearizable history: %q", wit)
	}

	// Resolving unknown outcomes with the event history.
	ops := []chOp{op(0, 1, w("a"), ok), op(2, never, w("b"), unknown), op(3, never, w("c"), unknown), op(4, 5, r, read("a"))}
	got, res := chResolve(ops, map[string]uint64{"/k\x00a": 1, "/k\x00b": 2})
	if res.applied != 1 || res.dropped != 1 || len(got) != 3 || got[1].Output.Outcome != chOK || got[1].Return != never {
		t.Fatalf("resolve: %+v %+v", res, got)
	}
	if !porcupine.CheckOperations(chModel, chOperations(got)) {
		t.Fatal("resolved history not linearizable")
	}
	// An unknown write applied before an acknowledged one returns, for the
	// checker, when that one's answer came. Here b (unknown) was applied
	// at 2, c at 3 (answered at 6), d at 4 (called at 7): a read after d
	// that returns b is stale, which only the bound shows (returning
	// "never", b could have taken effect after d).
	ops = []chOp{op(0, 1, w("a"), ok), op(2, never, w("b"), unknown), op(3, 6, w("c"), ok), op(7, 8, w("d"), ok), op(9, 10, r, read("b"))}
	events := map[string]uint64{"/k\x00a": 1, "/k\x00b": 2, "/k\x00c": 3, "/k\x00d": 4}
	got, _ = chResolve(ops, events)
	if got[1].Return != 6 {
		t.Fatalf("unknown write applied at 2, before the write applied at 3 and answered at 6: returns at %d", got[1].Return)
	}
	if porcupine.CheckOperations(chModel, chOperations(got)) {
		t.Fatal("a read of b after d took effect was accepted")
	}
	unbounded := slices.Clone(got)
	unbounded[1].Return = never
	if !porcupine.CheckOperations(chModel, chOperations(unbounded)) {
		t.Fatal("setup: without the bound the stale read should pass unseen")
	}
	ops = []chOp{op(0, 1, w("a"), ok), op(2, never, w("b"), unknown), op(3, 6, w("c"), ok), op(7, 8, r, read("b"))}
	got, _ = chResolve(ops, map[string]uint64{"/k\x00a": 1, "/k\x00c": 2, "/k\x00b": 3})
	if got[1].Return != never || !porcupine.CheckOperations(chModel, chOperations(got)) {
		t.Fatalf("unknown write applied last: returns at %d; its value read last must be accepted", got[1].Return)
	}
}

// The proxies stand in front of real members: cutting the leader off
// (both ways) makes the others elect one of themselves, and healing
// brings the old leader back as a follower of the new one.
func TestChaosProxyPartitionsMembers(t *testing.T) {
	c := chStartCluster(t, 3, nil, nil)
	old := c.leader(20 * time.Second)
	if old == nil {
		t.Fatal("no leader within 20 s")
	}
	var pairs []chPair
	for _, m := range c.members {
		if m != old {
			pairs = append(pairs, chPair{old.idx, m.idx}, chPair{m.idx, old.idx})
		}
	}
	// Every member keeps a stream open to every other, through the
	// proxies (opened at its start, before the harness knew the IDs).
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range pairs {
		for c.net.inFlight(p.from, p.to) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no stream from %s to %s through the proxy (%s)", c.members[p.from].name, c.members[p.to].name, c.net.counters())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if cut := c.net.block(chRefuse, pairs...); cut < len(pairs) {
		t.Fatalf("cutting %s off cut %d requests in flight, want a stream per pair (%d)", old.name, cut, len(pairs))
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		var leader *chMember
		for _, m := range c.members {
			if s, err := chStats(m, time.Second); m != old && err == nil && s.State == "StateLeader" {
				leader = m
			}
		}
		if leader != nil {
			t.Logf("%s cut off; %s leads the others", old.name, leader.name)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new leader among the others 20 s after cutting %s off (%s)", old.name, c.net.counters())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.net.heal()
	if err := chWaitRecovered(c, &chTimeline{start: time.Now()}, 30*time.Second); err != nil {
		t.Fatalf("after the heal: %v", err)
	}
	t.Logf("proxies: %s", c.net.counters())
}

// The append checker accepts appends whose indexes agree with real time
// and are all listed once, and names each kind of violation.
func TestChaosAppendCheck(t *testing.T) {
	node := func(idx uint64, v string) chNode {
		return chNode{Key: fmt.Sprintf("%s/%020d", chAppendDir, idx), Value: v, ModifiedIndex: idx, CreatedIndex: idx}
	}
	ok := func(v string, call, ret int64, idx uint64) chAppendOp {
		return chAppendOp{Value: v, Call: call, Return: ret, Outcome: chOK, Key: fmt.Sprintf("%s/%020d", chAppendDir, idx), Index: idx}
	}
	unknown := func(v string, call int64) chAppendOp {
		return chAppendOp{Value: v, Call: call, Return: -1, Outcome: chUnknown}
	}
	notApplied := chAppendOp{Value: "n", Call: 0, Return: 1, Outcome: chNotApplied}
	good := []chAppendOp{ok("a", 0, 10, 5), ok("b", 11, 20, 7), ok("c", 12, 30, 6), unknown("u", 25), unknown("v", 26), notApplied}
	listing := []chNode{node(5, "a"), node(6, "c"), node(7, "b"), node(9, "u")}
	if k := chCheckAppends(good, listing); len(k.violations) != 0 || k.acked != 3 || k.unknownIn != 1 || k.unknownOut != 1 || k.notApplied != 1 {
		t.Fatalf("a valid history: %+v", k)
	}
	for _, tc := range []struct {
		name    string
		ops     []chAppendOp
		listing []chNode
		want    string
	}{
		{"acknowledged, missing", good, []chNode{node(5, "a"), node(6, "c"), node(9, "u")}, `"b" acknowledged`},
		{"listed twice", good, []chNode{node(5, "a"), node(6, "c"), node(7, "b"), node(8, "b")}, "listed 2 times"},
		{"another index", good, []chNode{node(5, "a"), node(6, "c"), node(8, "b")}, "is listed as"},
		{"not applied, yet there", good, append(slices.Clone(listing), node(10, "n")), "answered not applied"},
		{"never sent", good, append(slices.Clone(listing), node(10, "x")), "never sent"},
		{"real time", []chAppendOp{ok("a", 0, 10, 7), ok("b", 11, 20, 5)}, []chNode{node(5, "b"), node(7, "a")}, `"b" (ok, index 5`},
		{"unknown before an earlier ack", []chAppendOp{ok("a", 0, 10, 7), unknown("u", 11)}, []chNode{node(5, "u"), node(7, "a")}, `"u" (unknown, index 5`},
		{"out of order", []chAppendOp{ok("a", 0, 10, 5), ok("b", 0, 10, 7)}, []chNode{node(7, "b"), node(5, "a")}, "out of order"},
	} {
		k := chCheckAppends(tc.ops, tc.listing)
		if !strings.Contains(strings.Join(k.violations, "\n"), tc.want) {
			t.Errorf("%s: violations %q, want one with %q", tc.name, k.violations, tc.want)
		}
	}
}

// The watch checker accepts watchers that saw exactly the history over
// their range, and names gaps, duplicates and events that did not happen.
func TestChaosWatchCheck(t *testing.T) {
	ev := func(i uint64, v string) chHistEvent {
		return chHistEvent{Index: i, Key: "/chaos/k0", Action: "set", Value: v}
	}
	history := []chHistEvent{ev(2, "a"), ev(3, "b"), ev(6, "c"), ev(9, "d")}
	w := func(start uint64, evs ...chHistEvent) *chWatcher {
		x := &chWatcher{Start: start, Events: evs}
		for range evs {
			x.Members = append(x.Members, "a")
		}
		return x
	}
	k := chCheckWatchers([]*chWatcher{w(1, history...), w(3, ev(3, "b"), ev(6, "c")), w(1)}, history, "/chaos", 9)
	if len(k.violations) != 0 || k.events != 6 || k.incomplete != 2 {
		t.Fatalf("valid watchers: %+v", k)
	}
	for _, tc := range []struct {
		name string
		x    *chWatcher
		want string
	}{
		{"gap", w(1, ev(2, "a"), ev(6, "c")), "differs from the history's"},
		{"duplicate", w(1, ev(2, "a"), ev(2, "a"), ev(3, "b")), "not increasing"},
		{"another value", w(1, ev(2, "a"), ev(3, "x")), "differs"},
		{"missing at the end", w(1, ev(2, "a"), ev(3, "b"), ev(9, "d")), "differs"},
		{"not in the history", w(7, ev(8, "z")), "not in the history"},
		{"outside the directory", w(1, chHistEvent{Index: 2, Key: "/chaosprobe/a", Action: "set", Value: "a"}), "outside"},
		{"below its start", w(3, ev(2, "a"), ev(3, "b")), "below its first waitIndex"},
	} {
		k := chCheckWatchers([]*chWatcher{tc.x}, history, "/chaos", 9)
		if !strings.Contains(strings.Join(k.violations, "\n"), tc.want) {
			t.Errorf("%s: violations %q, want one with %q", tc.name, k.violations, tc.want)
		}
	}
}
