package httpapi_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Deterministic scenarios that random sequences cannot cover: live and
// stream watches (answers that arrive after later writes), TTL expiry, form
// bodies at and past the size limits and with many parameters. They run on one
// fresh pair, one after another, each on its own keys.

type diffScenarios struct {
	t *testing.T
	d *differ
}

// runScenarios runs every scenario on one fresh etcd and one other server.
func runScenarios(t *testing.T, bin string, other func(*testing.T) *diffTarget) {
	etcd := startEtcd(t, bin)
	s := &diffScenarios{t: t, d: newDiffer(t, etcd, other(t), 0)}
	s.probes()
	s.rebase()
	s.liveWatches()
	s.rebase()
	s.streamWatch()
	s.rebase()
	s.bigBody()
	s.rebase()
	s.manyParams()
	s.rebase()
	s.expiry() // last: it sleeps
}

// rebase makes the current index of both servers relative 0, so that a
// difference in one scenario (an extra or missing write) does not show
// again in every index of the next.
func (s *diffScenarios) rebase() {
	for _, tg := range []*diffTarget{s.d.etcd, s.d.other} {
		r := tg.do(&wireRequest{method: "GET", target: "/v2/keys/"}, opTimeout)
		idx, err := strconv.ParseUint(r.header.Get("X-Etcd-Index"), 10, 64)
		if r.err != nil || err != nil {
			s.t.Fatalf("%s: reading the current index: status %d, %v", tg.name, r.status, r.err)
		}
		tg.base = idx
	}
}

// scPut is a PUT to target, with body as a form when not empty.
func scPut(target, body string) *diffOp {
	op := &diffOp{method: "PUT", target: target}
	if body != "" {
		op.body, op.withBody, op.ctype = body, true, "application/x-www-form-urlencoded"
	}
	return op
}

func scGet(target string) *diffOp { return &diffOp{method: "GET", target: target} }

// do runs op on both servers, compares, and returns etcd's relative index.
func (s *diffScenarios) do(what string, op *diffOp) int64 {
	op.kind = what
	op.watch = strings.Contains(op.target, "wait=true")
	er := s.d.exec(-1, op)
	if s.d.verbose {
		s.t.Logf("%s: %s -> %d", what, op, er.status)
	}
	idx, _ := strconv.ParseUint(er.header.Get("X-Etcd-Index"), 10, 64)
	return int64(idx) - int64(s.d.etcd.base)
}

// watch starts op on both servers and waits for both response heads: a
// watch answers its head at once, before any event (API.md §2.3).
func (s *diffScenarios) watch(what string, op *diffOp) (e, o *pendingResp) {
	deadline := time.Now().Add(3 * opTimeout)
	e, err := s.d.etcd.start(op.wire(s.d.etcd.base), deadline)
	if err != nil {
		s.t.Fatalf("%s: etcd: %v", what, err)
	}
	o, err = s.d.other.start(op.wire(s.d.other.base), deadline)
	if err != nil {
		s.t.Fatalf("%s: %s: %v", what, s.d.other.name, err)
	}
	eok, _ := e.waitHead(watchTimeout)
	ook, _ := o.waitHead(watchTimeout)
	if eok != ook {
		s.d.reported++
		s.t.Errorf("%s: %s\nresponse head before any event: etcd %v, %s %v", what, op, eok, s.d.other.name, ook)
	}
	return e, o
}

// probes are single requests on the root that random sequences reach
// only now and then.
func (s *diffScenarios) probes() {
	for _, op := range []*diffOp{
		{method: "DELETE", target: "/v2/keys/?prevValue=x"},
		{method: "DELETE", target: "/v2/keys?prevIndex=1"},
		{method: "DELETE", target: "/v2/keys/?recursive=true"},
		scPut("/v2/keys/?prevValue=x&value=y", ""),
		scPut("/v2/keys?prevExist=true", ""),
		scPut("/v2/keys/?dir=true", ""),
		{method: "POST", target: "/v2/keys/?value=r"},
		scGet("/v2/keys/?recursive=true&sorted=true"),
	} {
		s.do("root", op)
	}
}

// liveWatches: a watcher waiting when the write happens gets the first
// matching event; hidden children, refreshes and earlier events are skipped.
func (s *diffScenarios) liveWatches() {
	type watchCase struct {
		name   string
		setup  []*diffOp
		watch  string // target; {next:N} is the current index + N
		writes []*diffOp
	}
	cases := []watchCase{
		{name: "key", watch: "/v2/keys/lw/k?wait=true",
			writes: []*diffOp{scPut("/v2/keys/lw/k?value=a%3Cb", "")}},
		{name: "recursive dir skips hidden child", setup: []*diffOp{scPut("/v2/keys/lwd?dir=true", "")},
			watch:  "/v2/keys/lwd?wait=true&recursive=true",
			writes: []*diffOp{scPut("/v2/keys/lwd/_h/x?value=h", ""), scPut("/v2/keys/lwd/y?value=v", "")}},
		{name: "recursive root skips hidden top-level key", watch: "/v2/keys/?wait=true&recursive=true",
			writes: []*diffOp{scPut("/v2/keys/_lwhidden?value=h", ""), scPut("/v2/keys/lwvis?value=v", "")}},
		{name: "watch on the hidden key itself", watch: "/v2/keys/_lwh2?wait=true",
			writes: []*diffOp{scPut("/v2/keys/_lwh2?value=h", "")}},
		{name: "non-recursive dir ignores children", setup: []*diffOp{scPut("/v2/keys/lwn?dir=true", "")},
			watch:  "/v2/keys/lwn?wait=true",
			writes: []*diffOp{scPut("/v2/keys/lwn/c?value=1", ""), scPut("/v2/keys/lwn?dir=true&prevExist=true&ttl=500", "")}},
		{name: "refresh is not an event", setup: []*diffOp{scPut("/v2/keys/lwr?value=r&ttl=300", "")},
			watch:  "/v2/keys/lwr?wait=true",
			writes: []*diffOp{scPut("/v2/keys/lwr?refresh=true&ttl=400", ""), scPut("/v2/keys/lwr?value=after", "")}},
		{name: "future waitIndex", watch: "/v2/keys/lwf?wait=true&waitIndex={next:2}",
			writes: []*diffOp{scPut("/v2/keys/lwf?value=1", ""), scPut("/v2/keys/lwf?value=2", "")}},
		{name: "deleted parent", setup: []*diffOp{scPut("/v2/keys/lwp/c/k?value=1", "")},
			watch:  "/v2/keys/lwp/c/k?wait=true",
			writes: []*diffOp{{method: "DELETE", target: "/v2/keys/lwp?recursive=true"}}},
		{name: "expire-free delete of the key", setup: []*diffOp{scPut("/v2/keys/lwx?value=1", "")},
			watch:  "/v2/keys/lwx?wait=true&recursive=true",
			writes: []*diffOp{{method: "DELETE", target: "/v2/keys/lwx"}}},
		{name: "in-order child", setup: []*diffOp{scPut("/v2/keys/lwq?dir=true", "")},
			watch:  "/v2/keys/lwq?wait=true&recursive=true",
			writes: []*diffOp{{method: "POST", target: "/v2/keys/lwq?value=job"}}},
		{name: "form-body write seen by a sorted watch", watch: "/v2/keys/lwb?wait=true&sorted=true",
			writes: []*diffOp{scPut("/v2/keys/lwb", "value=%E2%80%A8%26")}},
		{name: "missing path inside a deleted directory", setup: []*diffOp{scPut("/v2/keys/lwm/c?value=1", "")},
			watch:  "/v2/keys/lwm/none?wait=true",
			writes: []*diffOp{{method: "DELETE", target: "/v2/keys/lwm?recursive=true"}, scPut("/v2/keys/lwm/none?value=2", "")}},
		{name: "non-recursive dir: child deleted, then the dir", setup: []*diffOp{scPut("/v2/keys/lwc/x?value=1", "")},
			watch:  "/v2/keys/lwc?wait=true",
			writes: []*diffOp{{method: "DELETE", target: "/v2/keys/lwc/x"}, {method: "DELETE", target: "/v2/keys/lwc?dir=true"}}},
		{name: "key replaced by a directory", setup: []*diffOp{scPut("/v2/keys/lwk?value=1", "")},
			watch:  "/v2/keys/lwk?wait=true",
			writes: []*diffOp{scPut("/v2/keys/lwk?dir=true", "")}},
		{name: "past waitIndex with no match waits", setup: []*diffOp{scPut("/v2/keys/lwo?value=1", ""), scPut("/v2/keys/lwo2?value=1", "")},
			watch:  "/v2/keys/lwo2/sub?wait=true&waitIndex={next:-1}",
			writes: []*diffOp{scPut("/v2/keys/lwo3?value=1", ""), {method: "DELETE", target: "/v2/keys/lwo2"}, scPut("/v2/keys/lwo2/sub?value=s", "")}},
		{name: "quorum read instead of a watch", watch: "/v2/keys/lwo?wait=true&quorum=true&waitIndex={next:0}"},
	}
	for _, c := range cases {
		s.rebase()
		what := "live watch, " + c.name
		cur := int64(0)
		for _, op := range c.setup {
			cur = s.do(what+" (setup)", op)
		}
		if cur == 0 {
			cur = s.do(what+" (current index)", scGet("/v2/keys/lw-none"))
		}
		target := c.watch
		if i := strings.Index(target, "{next:"); i >= 0 {
			j := i + strings.IndexByte(target[i:], '}')
			n, _ := strconv.Atoi(target[i+len("{next:") : j])
			target = target[:i] + fmt.Sprintf("{i:%d}", cur+int64(n)) + target[j+1:]
		}
		wop := scGet(target)
		e, o := s.watch(what, wop)
		for _, op := range c.writes {
			s.do(what+" (write)", op)
		}
		er, or := e.finish(), o.finish()
		s.d.check(-1, what+": "+wop.String(), er, or, strings.Contains(target, "sorted=true"))
	}
}

// streamWatch: stream=true delivers every matching event, one per line.
// (Only children change: etcd repeats the delete of the watched node
// itself, which Cairn deliberately does not; see docs/compat.md.)
func (s *diffScenarios) streamWatch() {
	what := "stream watch"
	s.do(what+" (setup)", scPut("/v2/keys/sw?dir=true", ""))
	wop := scGet("/v2/keys/sw?wait=true&stream=true&recursive=true")
	e, o := s.watch(what, wop)
	defer e.close()
	defer o.close()
	writes := []*diffOp{
		scPut("/v2/keys/sw/a?value=1", ""),
		scPut("/v2/keys/sw/b?value=2&ttl=500", ""),
		scPut("/v2/keys/sw/a?refresh=true&ttl=300&prevExist=true", ""), // no event
		scPut("/v2/keys/sw/_hidden?value=h", ""),                       // not seen
		scPut("/v2/keys/sw/a?value=3&prevExist=true", ""),
		{method: "DELETE", target: "/v2/keys/sw/b"},
		{method: "POST", target: "/v2/keys/sw?value=q"},
	}
	for _, op := range writes {
		s.do(what+" (write)", op)
	}
	s.streamEvents(what+": "+wop.String(), e, o, 5)
}

// streamEvents compares the next n events of a stream watch.
func (s *diffScenarios) streamEvents(what string, e, o *pendingResp, n int) {
	head := func(p *pendingResp) wireResponse {
		if ok, err := p.waitHead(watchTimeout); !ok || err != nil {
			return wireResponse{err: fmt.Errorf("no response head: %v", err), timedOut: !ok}
		}
		return wireResponse{status: p.resp.StatusCode, header: p.resp.Header}
	}
	eh, oh := head(e), head(o)
	for i := range n {
		er, or := eh, oh
		if eh.status != 0 {
			er.body, er.err = e.readLine(watchTimeout)
			er.timedOut = isNetTimeout(er.err)
		}
		if oh.status != 0 {
			or.body, or.err = o.readLine(watchTimeout)
			or.timedOut = isNetTimeout(or.err)
		}
		if !s.d.check(-1, fmt.Sprintf("%s, event %d", what, i+1), er, or, false) {
			return
		}
	}
}

// bigBody: a value at Cairn's default value limit (1 MiB) is a value
// like any other on both servers. Past it the two part (docs/compat.md,
// deliberate difference 16), and each server is held to its own answer:
// etcd takes any form body up to 10 MiB and refuses larger ones with 210;
// Cairn refuses a value over 1 MiB, and a request over 1.5 MiB unread,
// with 413 and errorCode 124.
func (s *diffScenarios) bigBody() {
	s.do("1 MiB value", scPut("/v2/keys/big?noValueOnSuccess=true", "value="+strings.Repeat("c", 1<<20)))
	s.do("read the 1 MiB value", scGet("/v2/keys/big"))
	s.do("delete the 1 MiB value", &diffOp{method: "DELETE", target: "/v2/keys/big"})
	form := func(value string) *wireRequest {
		return &wireRequest{method: "PUT", target: "/v2/keys/big", ctype: "application/x-www-form-urlencoded",
			body: []byte("value=" + value), withBody: true}
	}
	cases := []struct {
		what                  string
		req                   *wireRequest
		etcdStatus, cairnCode int
		etcdBody, cairnBody   string
	}{
		{"1 MiB + 1 value", form(strings.Repeat("d", 1<<20+1)), 201, 413, `"action":"set"`,
			`{"errorCode":124,"message":"Request too large","cause":"value of 1048577 bytes; at most 1048576 (--max-value-bytes)","index":0}` + "\n"},
		{"11 MiB form body", form(strings.Repeat("a", 11<<20)), 400, 413,
			`{"errorCode":210,"message":"Invalid POST form","cause":"http: POST too large","index":0}` + "\n",
			`{"errorCode":124,"message":"Request too large","cause":"request of 11534354 bytes; at most 1572864 (--max-request-bytes)","index":0}` + "\n"},
	}
	for _, c := range cases {
		for _, tg := range []*diffTarget{s.d.etcd, s.d.other} {
			r := tg.do(c.req, opTimeout)
			want, body := c.etcdStatus, c.etcdBody
			if tg.name == "cairn" {
				want, body = c.cairnCode, c.cairnBody
			}
			if r.err != nil || r.status != want || !strings.Contains(string(r.body), body) {
				s.t.Errorf("%s: %s: got %d %.300q (%v), want %d with %q", tg.name, c.what, r.status, r.body, r.err, want, body)
			}
		}
	}
	for _, tg := range []*diffTarget{s.d.etcd, s.d.other} {
		tg.do(&wireRequest{method: "DELETE", target: "/v2/keys/big"}, opTimeout) // etcd's 1 MiB + 1 value
	}
}

// manyParams: etcd (built with Go 1.19) parses a form of any number of
// parameters; Cairn keeps Go's limit of 10000 (docs/compat.md, deliberate
// difference 10). Each server is held to its own documented answer.
func (s *diffScenarios) manyParams() {
	req := &wireRequest{method: "PUT", target: "/v2/keys/many", ctype: "application/x-www-form-urlencoded",
		body: []byte("value=m" + strings.Repeat("&p=1", 10000)), withBody: true}
	for _, tg := range []*diffTarget{s.d.etcd, s.d.other} {
		r := tg.do(req, opTimeout)
		want, body := 201, `"action":"set"`
		if tg.name == "cairn" {
			want, body = 400, `{"errorCode":210,"message":"Invalid POST form","cause":"number of URL query parameters exceeded limit","index":0}`+"\n"
		}
		if r.err != nil || r.status != want || !strings.Contains(string(r.body), body) {
			s.t.Errorf("%s: 10001 form parameters: got %d %q (%v), want %d with %q", tg.name, r.status, r.body, r.err, want, body)
		}
	}
}

// waitGone polls both servers (without comparing) until every target
// answers 404, for at most 20 s.
func (s *diffScenarios) waitGone(targets ...string) {
	deadline := time.Now().Add(20 * time.Second)
	for _, tg := range []*diffTarget{s.d.etcd, s.d.other} {
		for _, target := range targets {
			for tg.do(&wireRequest{method: "GET", target: target}, opTimeout).status != 404 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
}

// expiry: a key with ttl=0, then a key and a directory with ttl=2, expire;
// each expiry is one event, a directory takes its children (with their
// own longer TTLs) with it. Watchers are registered before the writes,
// and the test waits until both servers have expired everything, so the
// order of events does not depend on how loaded the machine is.
func (s *diffScenarios) expiry() {
	what := "expiry"
	// ttl=0: an expiration of "now", gone at the next sweep.
	zeroSet := s.do(what, scPut("/v2/keys/ttl/zero?value=z&ttl=0", ""))
	s.waitGone("/v2/keys/ttl/zero")
	s.do(what, scGet("/v2/keys/ttl/zero"))
	s.do(what, scGet(fmt.Sprintf("/v2/keys/ttl/zero?wait=true&waitIndex={i:%d}", zeroSet+1)))

	writes := []*diffOp{
		scPut("/v2/keys/ttl/perm?value=stays", ""),
		scPut("/v2/keys/ttl/k?value=x&ttl=2", ""),
		scPut("/v2/keys/ttl/d?dir=true&ttl=2", ""),
		scPut("/v2/keys/ttl/d/child?value=c&ttl=100", ""),
		scPut("/v2/keys/ttl/long?value=l&ttl=100", ""),
	}
	cur := s.do(what, scGet("/v2/keys/ttl/none"))
	afterWrites := cur + int64(len(writes)) + 1
	// Waiting when the expiry happens: a key, a key inside the expiring
	// directory, and a stream over everything.
	kw := scGet(fmt.Sprintf("/v2/keys/ttl/k?wait=true&waitIndex={i:%d}", afterWrites))
	ke, ko := s.watch(what, kw)
	cw := scGet(fmt.Sprintf("/v2/keys/ttl/d/child?wait=true&waitIndex={i:%d}", afterWrites))
	ce, co := s.watch(what, cw)
	sw := scGet("/v2/keys/ttl?wait=true&recursive=true&stream=true")
	se, so := s.watch(what, sw)
	defer se.close()
	defer so.close()
	for _, op := range writes {
		s.do(what, op)
	}
	s.do(what, scGet("/v2/keys/ttl?recursive=true&sorted=true"))
	// etcd's leader sweeps every 500 ms (API.md §1.10).
	s.waitGone("/v2/keys/ttl/k", "/v2/keys/ttl/d")
	s.d.check(-1, what+": "+kw.String(), ke.finish(), ko.finish(), false)
	s.d.check(-1, what+": "+cw.String(), ce.finish(), co.finish(), false)
	s.streamEvents(what+": "+sw.String(), se, so, len(writes)+2) // the writes, then k and d expire
	s.do(what, scGet("/v2/keys/ttl/k"))
	s.do(what, scGet("/v2/keys/ttl/d/child"))
	s.do(what, scGet("/v2/keys/ttl?recursive=true"))
	s.do(what, scGet(fmt.Sprintf("/v2/keys/ttl?wait=true&recursive=true&waitIndex={i:%d}", afterWrites)))
	s.do(what, scGet(fmt.Sprintf("/v2/keys/ttl/d?wait=true&waitIndex={i:%d}", afterWrites)))
	// An event from the history shows the ttl as of its write (100), a
	// read shows what is left.
	s.do(what, scGet(fmt.Sprintf("/v2/keys/ttl/long?wait=true&waitIndex={i:%d}", afterWrites-1)))
	s.do(what, scGet("/v2/keys/ttl/long"))
}
