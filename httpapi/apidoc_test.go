package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/doctest"
)

// docs/api.md §14 onwards (locks, fencing, leader election, queues) is run
// as written. The convention of those sections:
//
//   - Every fenced block is read. In it, a line "$ curl ..." is a command,
//     "$ sleep N" waits N seconds (and until the expiries due by then have
//     been applied), "# terminal N ..." says which client sends the
//     commands that follow, "# terminal N shows" introduces the late
//     answer of terminal N's waiting command, and other "#" lines are
//     comments.
//   - The lines right after a command are its answer: one line of JSON (or
//     text), or, with curl -i, the status line, the headers (Date removed),
//     a blank line and the body. A command with no answer right after it
//     is waiting (a lock or a blocking dequeue in line, a watch): it is
//     sent in the background, and its answer is the one under "# terminal
//     N shows" further down the same section.
//   - curl may be given -i, -s, -X METHOD, -d DATA (repeatable) and one URL
//     starting with $CAIRN (or ${CAIRN}).
//
// Each section runs on a fresh real member (oneMember). adCompare
// normalises what varies between runs:
//
//   - Indexes (modifiedIndex, createdIndex, index, token, X-Etcd-Index,
//     20-digit runs in keys and causes, the numbers of a cause "[N != M]"
//     and of a receipt "N-M") must be the documented ones plus one offset
//     per section, fixed by the first non-zero index answered; 0 stays 0.
//     The same offset is added to the indexes a command quotes (token,
//     prevToken, waitIndex, prevIndex, 20-digit runs, a receipt in the
//     path) before it is sent.
//   - expiration: any RFC 3339 UTC instant where one is documented.
//   - ttl: between the documented one minus 5 and plus 1, and at least 1.
//   - Content-Length: that of the answer; the documented one when the body
//     is byte for byte the documented one. X-Etcd-Cluster-Id: 16 hex
//     digits (it derives from the cluster's peer URLs and token).
//   - Everything else is compared exactly: status, the set of headers and
//     their values, fields and their order, actions, values, messages,
//     causes, the newline at the end.

const (
	adDocPath = "../docs/api.md"
	// adFirstSection is the first section of docs/api.md written to this
	// convention; the earlier ones predate it.
	adFirstSection = 14
)

// adStep is one line of a section that does something.
type adStep struct {
	line     int
	kind     string // "curl", "sleep", "shows"
	terminal string
	command  string  // as written, without "$ "
	req      adCurl  // curl
	pause    float64 // sleep: seconds
	answer   *adAnswer
}

// adAnswer is a documented answer.
type adAnswer struct {
	status  string      // "HTTP/1.1 201 Created" with -i, else ""
	headers [][2]string // with -i, in the documented order
	body    string      // without its final newline
}

// adCurl is the request of a command (Target is what follows $CAIRN).
type adCurl struct {
	doctest.Curl
	headers bool // -i
}

type adSection struct {
	title string
	line  int
	steps []adStep
}

var adHeadingRE = regexp.MustCompile(`^## (\d+)\. `)

// adParse reads the sections of the convention from a page.
func adParse(doc string) ([]adSection, error) {
	var (
		secs    []adSection
		cur     *adSection
		inBlock bool
		term    string
	)
	lines := strings.Split(doc, "\n")
	// answerAt reads the answer that starts at line i, if any; it returns
	// the line after it.
	answerAt := func(i int) (*adAnswer, int) {
		if i >= len(lines) || lines[i] == "" || strings.HasPrefix(lines[i], "$ ") || strings.HasPrefix(lines[i], "#") || strings.HasPrefix(lines[i], "```") {
			return nil, i
		}
		a := &adAnswer{}
		if strings.HasPrefix(lines[i], "HTTP/1.1 ") {
			a.status = lines[i]
			for i++; i < len(lines) && lines[i] != "" && !strings.HasPrefix(lines[i], "```"); i++ {
				k, v, _ := strings.Cut(lines[i], ": ")
				a.headers = append(a.headers, [2]string{k, v})
			}
			if i < len(lines) && lines[i] == "" {
				i++
			}
		}
		var body []string
		for ; i < len(lines) && lines[i] != "" && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		a.body = strings.Join(body, "\n")
		return a, i
	}
	for i := 0; i < len(lines); {
		line := lines[i]
		if !inBlock {
			if m := adHeadingRE.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				cur = nil
				if n >= adFirstSection {
					secs = append(secs, adSection{title: strings.TrimPrefix(line, "## "), line: i + 1})
					cur = &secs[len(secs)-1]
				}
			} else if strings.HasPrefix(line, "## ") {
				cur = nil
			}
			if strings.HasPrefix(line, "```") {
				inBlock, term = true, "1"
			}
			i++
			continue
		}
		switch {
		case strings.HasPrefix(line, "```"):
			inBlock = false
			i++
		case cur == nil || line == "":
			i++
		case strings.HasPrefix(line, "# terminal "):
			f := strings.Fields(line)
			term = strings.TrimSuffix(f[2], ":")
			if len(f) == 4 && f[3] == "shows" {
				a, next := answerAt(i + 1)
				if a == nil {
					return nil, fmt.Errorf("line %d: %q is not followed by an answer", i+1, line)
				}
				cur.steps = append(cur.steps, adStep{line: i + 1, kind: "shows", terminal: term, answer: a})
				i = next
				continue
			}
			i++
		case strings.HasPrefix(line, "#"):
			i++
		case strings.HasPrefix(line, "$ sleep "):
			s, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "$ sleep ")), 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			cur.steps = append(cur.steps, adStep{line: i + 1, kind: "sleep", terminal: term, command: line[2:], pause: s})
			i++
		case strings.HasPrefix(line, "$ "):
			req, err := adParseCurl(line[2:])
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			a, next := answerAt(i + 1)
			cur.steps = append(cur.steps, adStep{line: i + 1, kind: "curl", terminal: term, command: line[2:], req: req, answer: a})
			i = next
		default:
			return nil, fmt.Errorf("line %d: %q is neither a command, a comment nor an answer right after a command", i+1, line)
		}
	}
	if inBlock {
		return nil, errors.New("unterminated block")
	}
	for _, s := range secs {
		if len(s.steps) == 0 {
			return nil, fmt.Errorf("section %q has no example: the test would not check it", s.title)
		}
	}
	return secs, nil
}

// adParseCurl reads a command: curl with -i, -s, -X METHOD, -d DATA
// (repeatable) and one URL starting with $CAIRN (or ${CAIRN}).
func adParseCurl(line string) (adCurl, error) {
	var c adCurl
	var err error
	c.Curl, err = doctest.ParseCurl(line, "CAIRN", func(a string, _ func() (string, error)) (bool, error) {
		if a == "-i" {
			c.headers = true
			return true, nil
		}
		return false, nil
	})
	return c, err
}

// adIdx is the offset between the page's indexes and the server's; 0
// stands for no index (a free lock) and stays 0.
type adIdx struct{ doctest.Offset }

func (x *adIdx) check(want, got uint64) error {
	if want == 0 || got == 0 {
		if want != got {
			return fmt.Errorf("index %d, documented %d", got, want)
		}
		return nil
	}
	return x.Check(want, got)
}

func (x *adIdx) shift(n uint64) (uint64, error) {
	if n == 0 {
		return 0, nil
	}
	return x.Shift(n)
}

var (
	adRunRE       = regexp.MustCompile(`\d{20}`)
	adCauseRE     = regexp.MustCompile(`\[(\d+) != (\d+)\]|(\d{20})`)
	adReceiptRE   = regexp.MustCompile(`^(\d+)-(\d+)$`)
	adPathRE      = regexp.MustCompile(`/reservations/(\d+)-(\d+)$|\d{20}`)
	adParamRE     = regexp.MustCompile(`^(token|prevToken|waitIndex|prevIndex)=(\d+)$`)
	adClusterIDRE = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// adTranslate shifts the indexes a command quotes.
func adTranslate(c adCurl, x *adIdx) (string, string, error) {
	shift := func(digits string) (string, error) {
		n, _ := strconv.ParseUint(digits, 10, 64)
		v, err := x.shift(n)
		r := strconv.FormatUint(v, 10)
		if len(digits) == 20 && len(r) < 20 {
			r = strings.Repeat("0", 20-len(r)) + r // an in-order key name
		}
		return r, err
	}
	param := func(kv string) (string, error) {
		if m := adParamRE.FindStringSubmatch(kv); m != nil {
			v, err := shift(m[2])
			return m[1] + "=" + v, err
		}
		return doctest.ReplaceNumbers(kv, adRunRE, shift)
	}
	p, q, hasQ := strings.Cut(c.Target, "?")
	p, err := doctest.ReplaceNumbers(p, adPathRE, shift)
	if err != nil {
		return "", "", err
	}
	if hasQ {
		parts := strings.Split(q, "&")
		for i := range parts {
			if parts[i], err = param(parts[i]); err != nil {
				return "", "", err
			}
		}
		p += "?" + strings.Join(parts, "&")
	}
	var data []string
	for _, d := range c.Data {
		v, err := param(d)
		if err != nil {
			return "", "", err
		}
		data = append(data, v)
	}
	return p, strings.Join(data, "&"), nil
}

// adCompareBody compares an answer's body with the documented one.
func adCompareBody(want, got string, x *adIdx) error {
	if !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != strings.Count(want, "\n")+1 {
		return fmt.Errorf("the answer is not the documented lines, each ending in a newline")
	}
	if !strings.HasPrefix(want, "{") {
		if got != want+"\n" {
			return fmt.Errorf("the text differs")
		}
		return nil
	}
	n := doctest.Normaliser{
		Indexes: []string{"modifiedIndex", "createdIndex", "index", "token"},
		Strings: func(field string) *regexp.Regexp {
			return map[string]*regexp.Regexp{"key": adRunRE, "cause": adCauseRE, "receipt": adReceiptRE}[field]
		},
		Check: x.check,
	}
	return doctest.CompareJSON(want, got, n.Value)
}

// adGot is an answer received.
type adGot struct {
	status string
	header http.Header
	body   string
}

// adCompare checks an answer against the documented one.
func adCompare(want *adAnswer, got adGot, headers bool, x *adIdx) error {
	if headers {
		if got.status != want.status {
			return fmt.Errorf("status %q, documented %q", got.status, want.status)
		}
		var names []string
		for k := range got.header {
			if k != "Date" {
				names = append(names, k)
			}
		}
		var wnames []string
		for _, h := range want.headers {
			wnames = append(wnames, h[0])
		}
		slices.Sort(names)
		slices.Sort(wnames)
		if !slices.Equal(names, wnames) {
			return fmt.Errorf("headers %q, documented %q", names, wnames)
		}
		for _, h := range want.headers {
			g := got.header.Get(h[0])
			switch h[0] {
			case "X-Etcd-Index":
				wn, err1 := strconv.ParseUint(h[1], 10, 64)
				gn, err2 := strconv.ParseUint(g, 10, 64)
				if err1 != nil || err2 != nil {
					return fmt.Errorf("X-Etcd-Index %q, documented %q", g, h[1])
				}
				if err := x.check(wn, gn); err != nil {
					return fmt.Errorf("X-Etcd-Index: %v", err)
				}
			case "X-Etcd-Cluster-Id":
				// Derived from the peer URLs and the cluster token.
				if !adClusterIDRE.MatchString(g) {
					return fmt.Errorf("X-Etcd-Cluster-Id %q is not 16 hex digits", g)
				}
			case "Content-Length":
				if g != strconv.Itoa(len(got.body)) || got.body == want.body+"\n" && g != h[1] {
					return fmt.Errorf("Content-Length %s for %d bytes, documented %s", g, len(got.body), h[1])
				}
			default:
				if g != h[1] {
					return fmt.Errorf("%s: %q, documented %q", h[0], g, h[1])
				}
			}
		}
	} else if want.status != "" {
		return errors.New("the page shows headers for a command without -i")
	}
	return adCompareBody(want.body, got.body, x)
}

// adPending is a command sent in the background.
type adPending struct {
	step    adStep
	target  string
	headers chan struct{} // closed when the headers came (or the request failed)
	done    chan struct{}
	got     adGot
	err     error
	cancel  context.CancelFunc
}

// adRunSection runs a section's steps in order against a fresh member.
func adRunSection(t *testing.T, sec adSection) {
	m, srv, _ := oneMember(t)
	t.Cleanup(srv.CloseClientConnections)
	st := m.Store
	x := &adIdx{}
	client := &http.Client{}
	send := func(ctx context.Context, c adCurl, target, data string, headers chan struct{}) (adGot, error) {
		var body io.Reader
		if c.Data != nil {
			body = strings.NewReader(data)
		}
		req, err := http.NewRequestWithContext(ctx, c.Method, srv.URL+target, body)
		if err != nil {
			return adGot{}, err
		}
		if c.Data != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if headers != nil {
			close(headers)
		}
		if err != nil {
			return adGot{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return adGot{status: resp.Proto + " " + resp.Status, header: resp.Header, body: string(b)}, err
	}
	fail := func(s adStep, target string, got adGot, err error) {
		t.Helper()
		want := "(none)"
		if s.answer != nil {
			want = strings.Join(append([]string{s.answer.status}, s.answer.body), "\n")
		}
		t.Fatalf("api.md:%d (%s): %s\nsent:       %s %s\ndocumented: %s\nanswered:   %s %s\n%v",
			s.line, sec.title, s.command, s.req.Method, target, strings.TrimSpace(want), got.status, strings.TrimSuffix(got.body, "\n"), err)
	}
	pending := map[string]*adPending{}
	for _, s := range sec.steps {
		switch s.kind {
		case "sleep":
			time.Sleep(time.Duration(s.pause * float64(time.Second)))
			// Let the expiries due by now be applied (Cairn proposes
			// them up to about half a second after the deadline).
			now := time.Now().UnixNano()
			deadline := time.Now().Add(10 * time.Second)
			for {
				d, ok := st().NextDeadline()
				if !ok || d > now {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("api.md:%d: expiries due at the end of the sleep not applied after 10s", s.line)
				}
				time.Sleep(10 * time.Millisecond)
			}
		case "curl":
			target, data, err := adTranslate(s.req, x)
			if err != nil {
				t.Fatalf("api.md:%d (%s): %s: %v", s.line, sec.title, s.command, err)
			}
			if s.answer != nil {
				ctx, cancel := context.WithTimeout(context.Background(), coGuard)
				got, err := send(ctx, s.req, target, data, nil)
				cancel()
				if err != nil {
					fail(s, target, got, err)
				}
				if err := adCompare(s.answer, got, s.req.headers, x); err != nil {
					fail(s, target, got, err)
				}
				continue
			}
			if pending[s.terminal] != nil {
				t.Fatalf("api.md:%d: terminal %s already has a command waiting (line %d)", s.line, s.terminal, pending[s.terminal].step.line)
			}
			ctx, cancel := context.WithTimeout(context.Background(), coGuard)
			t.Cleanup(cancel)
			p := &adPending{step: s, target: target, headers: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
			pending[s.terminal] = p
			before := st().Index()
			go func() {
				defer close(p.done)
				p.got, p.err = send(ctx, s.req, target, data, p.headers)
			}()
			// The command is waiting once it is registered (its key
			// took an index) or has its headers (a watch).
			registered := time.Now().Add(10 * time.Second)
			for st().Index() == before {
				select {
				case <-p.headers:
				case <-time.After(10 * time.Millisecond):
					if time.Now().After(registered) {
						t.Fatalf("api.md:%d: %s: neither registered nor answered after 10s", s.line, s.command)
					}
					continue
				}
				break
			}
		case "shows":
			p := pending[s.terminal]
			if p == nil {
				t.Fatalf("api.md:%d: terminal %s has no command waiting", s.line, s.terminal)
			}
			delete(pending, s.terminal)
			select {
			case <-p.done:
			case <-time.After(coGuard):
				t.Fatalf("api.md:%d: the command of line %d (%s) was not answered", s.line, p.step.line, p.step.command)
			}
			ps := p.step
			ps.answer = s.answer
			if p.err != nil {
				fail(ps, p.target, p.got, p.err)
			}
			if err := adCompare(s.answer, p.got, ps.req.headers, x); err != nil {
				fail(ps, p.target, p.got, fmt.Errorf("answer shown at line %d: %v", s.line, err))
			}
		}
	}
	for term, p := range pending {
		t.Errorf("api.md:%d: the waiting command of terminal %s (%s) is never shown answered", p.step.line, term, p.step.command)
	}
	t.Logf("%d steps answered as documented (index offset %d)", len(sec.steps), x.Off)
}

// TestAPIDocExamples runs the examples of docs/api.md §14 onwards against
// a real member, section by section, and checks every answer (see the
// convention above).
func TestAPIDocExamples(t *testing.T) {
	b, err := os.ReadFile(adDocPath)
	if err != nil {
		t.Fatal(err)
	}
	secs, err := adParse(string(b))
	if err != nil {
		t.Fatalf("api.md: %v", err)
	}
	if len(secs) == 0 {
		t.Fatalf("api.md has no section numbered %d or more", adFirstSection)
	}
	for _, sec := range secs {
		t.Run(sec.title, func(t *testing.T) { adRunSection(t, sec) })
	}
}

// TestAPIDocHarness checks the harness itself, without a server: the
// convention is parsed as described, and the comparison accepts what may
// differ and refuses everything else.
func TestAPIDocHarness(t *testing.T) {
	page := "## 13. Old\n\n```\n$ curl -I not run\nanything\n```\n\n## 14. New\n\ntext\n\n```\n" +
		"$ curl -i \"$CAIRN/v2/locks/job?ttl=30\" -XPOST -d value=alice\nHTTP/1.1 201 Created\nX-Etcd-Index: 1\n\n{\"token\":1}\n\n" +
		"# terminal 2: bob\n$ curl \"${CAIRN}/v2/locks/job?ttl=30&wait=true\" -XPOST -d value=bob\n\n" +
		"# terminal 1\n$ sleep 0.5\n$ curl \"$CAIRN/v2/locks/job?token=1\" -XDELETE    # alice\n{}\n\n" +
		"# terminal 2 shows\n{\"token\":2}\n```\n"
	secs, err := adParse(page)
	if err != nil {
		t.Fatal(err)
	}
	if len(secs) != 1 || secs[0].title != "14. New" || len(secs[0].steps) != 5 {
		t.Fatalf("parsed %+v", secs)
	}
	s := secs[0].steps
	if s[0].answer == nil || s[0].answer.status != "HTTP/1.1 201 Created" || s[0].answer.body != `{"token":1}` || !s[0].req.headers ||
		s[1].answer != nil || s[1].terminal != "2" || s[2].kind != "sleep" || s[2].pause != 0.5 ||
		s[3].req.Method != "DELETE" || s[3].terminal != "1" || s[4].kind != "shows" || s[4].terminal != "2" {
		t.Fatalf("steps %+v", s)
	}
	x := &adIdx{doctest.Offset{Known: true, Off: 3}}
	target, data, err := adTranslate(adCurl{Curl: doctest.Curl{Method: "DELETE", Target: "/v2/queues/q/reservations/2-7?token=4&ttl=30",
		Data: []string{"prevToken=4", "value=00000000000000000004"}}}, x)
	if err != nil || target != "/v2/queues/q/reservations/5-10?token=7&ttl=30" || data != "prevToken=7&value=00000000000000000007" {
		t.Fatalf("translated %q %q %v", target, data, err)
	}
	for _, bad := range []string{
		`curl -I "$CAIRN/v2/keys/a"`,           // unknown option
		`curl "$HOST/v2/keys/a"`,               // another variable
		`curl "$CAIRN/v2/keys/a" | jq .`,       // a pipe
		`wget "$CAIRN/v2/keys/a"`,              // not curl
		`curl http://127.0.0.1:2379/v2/keys/a`, // not $CAIRN
	} {
		if _, err := adParseCurl(bad); err == nil {
			t.Errorf("adParseCurl accepted %s", bad)
		}
	}
	if _, err := adParse("## 14. Empty\n\ntext only\n"); err == nil {
		t.Error("a section without examples was accepted")
	}

	doc := `{"action":"reserve","node":{"key":"/_cairn/queues/jobs/00000000000000000002","value":"b","expiration":"2026-11-21T09:29:14.487707378Z","ttl":30,"modifiedIndex":7,"createdIndex":2},"receipt":"2-7"}`
	same := `{"action":"reserve","node":{"key":"/_cairn/queues/jobs/00000000000000000005","value":"b","expiration":"2027-01-01T00:00:00.5Z","ttl":27,"modifiedIndex":10,"createdIndex":5},"receipt":"5-10"}`
	if err := adCompareBody(doc, same+"\n", &adIdx{}); err != nil {
		t.Errorf("an answer that differs only where it may was refused: %v", err)
	}
	cause := `{"errorCode":121,"message":"Lock token is not the holder's","cause":"[1 != 4]","index":4}`
	if err := adCompareBody(cause, `{"errorCode":121,"message":"Lock token is not the holder's","cause":"[3 != 6]","index":6}`+"\n", &adIdx{}); err != nil {
		t.Errorf("a shifted cause was refused: %v", err)
	}
	free := `{"errorCode":121,"message":"Lock token is not the holder's","cause":"[4 != 0]","index":6}`
	if err := adCompareBody(free, `{"errorCode":121,"message":"Lock token is not the holder's","cause":"[6 != 2]","index":8}`+"\n", &adIdx{}); err == nil {
		t.Error("a 0 in a cause was allowed to shift")
	}
	for name, got := range map[string]string{
		"value":         strings.Replace(same, `"value":"b"`, `"value":"c"`, 1),
		"action":        strings.Replace(same, `reserve`, `create`, 1),
		"field order":   strings.Replace(same, `"modifiedIndex":10,"createdIndex":5`, `"createdIndex":5,"modifiedIndex":10`, 1),
		"missing field": strings.Replace(same, `"ttl":27,`, ``, 1),
		"extra field":   strings.Replace(same, `"ttl":27,`, `"ttl":27,"dir":true,`, 1),
		"index":         strings.Replace(same, `"modifiedIndex":10`, `"modifiedIndex":11`, 1),
		"receipt":       strings.Replace(same, `"5-10"`, `"5-11"`, 1),
		"key text":      strings.Replace(same, `queues/jobs`, `queues/other`, 1),
		"ttl too high":  strings.Replace(same, `"ttl":27`, `"ttl":32`, 1),
		"ttl too low":   strings.Replace(same, `"ttl":27`, `"ttl":24`, 1),
		"expiration":    strings.Replace(same, `2027-01-01T00:00:00.5Z`, `soon`, 1),
		"two lines":     same + "\n" + same,
	} {
		if err := adCompareBody(doc, got+"\n", &adIdx{}); err == nil {
			t.Errorf("%s: a different answer was accepted", name)
		}
	}
	if err := adCompareBody(doc, same, &adIdx{}); err == nil {
		t.Error("an answer without its newline was accepted")
	}
	want := &adAnswer{status: "HTTP/1.1 412 Precondition Failed", headers: [][2]string{{"Content-Length", "90"}, {"X-Etcd-Index", "4"}}, body: cause}
	body := cause + "\n"
	hdr := http.Header{"Content-Length": {"90"}, "X-Etcd-Index": {"4"}, "Date": {"now"}}
	if err := adCompare(want, adGot{status: "HTTP/1.1 412 Precondition Failed", header: hdr, body: body}, true, &adIdx{}); err != nil {
		t.Errorf("the documented answer was refused: %v", err)
	}
	for name, g := range map[string]adGot{
		"status":      {status: "HTTP/1.1 404 Not Found", header: hdr, body: body},
		"extra":       {status: want.status, header: http.Header{"Content-Length": {"90"}, "X-Etcd-Index": {"4"}, "X-Raft-Term": {"2"}}, body: body},
		"missing":     {status: want.status, header: http.Header{"Content-Length": {"90"}}, body: body},
		"length":      {status: want.status, header: http.Header{"Content-Length": {"91"}, "X-Etcd-Index": {"4"}}, body: body},
		"index moved": {status: want.status, header: http.Header{"Content-Length": {"90"}, "X-Etcd-Index": {"5"}}, body: body},
	} {
		if err := adCompare(want, g, true, &adIdx{}); err == nil {
			t.Errorf("%s: a different answer was accepted", name)
		}
	}
}
