package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/doctest"
	"github.com/cairnkv/cairn/internal/etcdtest"
)

// docs/recipes.md is run as written. Its convention:
//
//   - Only fenced blocks tagged `console` are run, every one of them, in the
//     order of the page, against one fresh server.
//   - In such a block a line starting with "$ " is a command; it must be a
//     curl command (rcParseCurl lists the options it may use) whose URL
//     starts with $ETCD, which is replaced by the server's client URL. A
//     "#" word starts a comment, as in sh.
//   - The lines after a command, up to the next command or the end of the
//     block, are what curl prints: the JSON answer on one line, then the
//     HTTP status on a line of its own (every command carries
//     -w '%{http_code}\n').
//
// The answers on the page were captured on a fresh Cairn cluster, so the
// documented indexes start at 1. rcCompare normalises what varies between
// servers and runs:
//
//   - Indexes (modifiedIndex, createdIndex, an error's index, 20-digit runs
//     in strings such as in-order key names and fencing tokens, and the two
//     numbers of a cause "[N != M]") must equal the documented index plus
//     one offset per server, fixed by the first index the server answers
//     (0 for Cairn, 3 for a fresh etcd). The same offset is added to the
//     indexes a command quotes (waitIndex, prevIndex and 20-digit runs in
//     the path, the query or the -d data) before it is sent.
//   - expiration: present where documented, any RFC 3339 UTC instant.
//   - ttl: present where documented, a whole number of seconds between the
//     documented one minus 5 and plus 1 (the answer may come later than
//     the captured one), and at least 1.
//   - Everything else must be equal: the status, every field and the order
//     of the fields, actions, values, error codes, messages and causes, the
//     order of listed nodes (the page lists with sorted=true), and the
//     answer's single line ending in a newline.

const rcDocPath = "../docs/recipes.md"

// rcStep is one command of the page and the answer it documents.
type rcStep struct {
	line    int          // line of the command in docs/recipes.md
	section string       // the "## " heading above it
	command string       // as written, without "$ "
	req     doctest.Curl // Target is what follows $ETCD
	status  int          // documented HTTP status
	body    string       // documented answer, without its newline
}

// TestRecipes runs every console block of docs/recipes.md in order, as
// HTTP requests, against a fresh three-member Cairn cluster (spreading the
// steps over the members) and against a fresh single etcd 3.4.23 member
// with the v2 API, and checks that each answers every step as documented
// (after the normalisation described at the top of this file).
func TestRecipes(t *testing.T) {
	steps := rcParseDoc(t, rcDocPath)
	t.Run("cairn", func(t *testing.T) {
		c := startCluster(t, "a", "b", "c")
		n := 0
		rcRun(t, steps, func(method, target string, form url.Values) (int, string, error) {
			p := c.procs[n%len(c.procs)]
			n++
			code, body := c.do(p, method, target, form)
			return code, body, nil
		})
	})
	t.Run("etcd", func(t *testing.T) {
		bin := etcdtest.Require(t, "etcd")
		base, _ := etcdtest.Start(t, bin)
		rcRun(t, steps, func(method, target string, form url.Values) (int, string, error) {
			return rcSend(method, base+target, form)
		})
	})
}

// rcSender sends one request (target is path and query) and returns the
// status and the body.
type rcSender func(method, target string, form url.Values) (int, string, error)

// rcRun runs the steps in order against one server and stops at the first
// one whose answer is not the documented one.
func rcRun(t *testing.T, steps []rcStep, send rcSender) {
	t.Helper()
	idx := &rcIndexes{}
	for _, s := range steps {
		target, form, err := rcTranslate(s.req, idx)
		if err != nil {
			t.Fatalf("recipes.md:%d (%s): %s: %v", s.line, s.section, s.command, err)
		}
		code, body, err := send(s.req.Method, target, form)
		if err != nil {
			t.Fatalf("recipes.md:%d (%s): %s %s: %v", s.line, s.section, s.req.Method, target, err)
		}
		if err := rcCompare(s, code, body, idx); err != nil {
			t.Fatalf("recipes.md:%d (%s): %s\nsent:       %s %s %s\ndocumented: %s\n            %d\nanswered:   %s\n            %d\n%v",
				s.line, s.section, s.command, s.req.Method, target, form.Encode(), s.body, s.status, strings.TrimSuffix(body, "\n"), code, err)
		}
	}
	t.Logf("%d steps answered as documented (index offset %d)", len(steps), idx.Off)
}

// rcParseDoc reads the page and returns its steps, checking that every
// numbered section has some.
func rcParseDoc(t *testing.T, path string) []rcStep {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := rcParse(string(b))
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	counts := map[string]int{}
	var sections []string
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok && h != "" && h[0] >= '1' && h[0] <= '9' {
			sections = append(sections, h)
		}
	}
	for _, s := range steps {
		counts[s.section]++
	}
	if len(sections) == 0 {
		t.Fatalf("%s has no numbered sections", filepath.Base(path))
	}
	for _, h := range sections {
		if counts[h] == 0 {
			t.Errorf("%s: section %q has no console block: the test would not check it", filepath.Base(path), h)
		}
	}
	return steps
}

// rcParse extracts the steps of the console blocks of a page.
func rcParse(doc string) ([]rcStep, error) {
	var (
		steps   []rcStep
		section string
		inBlock bool // inside a ```console block
		inOther bool // inside another fenced block
		cur     *rcStep
		out     []string
	)
	finish := func() error {
		if cur == nil {
			return nil
		}
		for len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" {
			out = out[:len(out)-1]
		}
		if len(out) != 2 {
			return fmt.Errorf("line %d: a command must be followed by two lines, the JSON answer and the status; found %d", cur.line, len(out))
		}
		code, err := strconv.Atoi(out[1])
		if err != nil || code < 100 || code > 599 {
			return fmt.Errorf("line %d: %q is not an HTTP status", cur.line+2, out[1])
		}
		cur.body, cur.status = out[0], code
		steps = append(steps, *cur)
		cur, out = nil, nil
		return nil
	}
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case inOther:
			inOther = !strings.HasPrefix(line, "```")
		case !inBlock && strings.HasPrefix(line, "```console"):
			inBlock = true
		case !inBlock && strings.HasPrefix(line, "```"):
			inOther = true
		case !inBlock:
			if h, ok := strings.CutPrefix(line, "## "); ok {
				section = h
			}
		case strings.HasPrefix(line, "```"):
			if err := finish(); err != nil {
				return nil, err
			}
			inBlock = false
		case strings.HasPrefix(line, "$ "):
			if err := finish(); err != nil {
				return nil, err
			}
			start := i
			cmd := strings.TrimPrefix(line, "$ ")
			for strings.HasSuffix(cmd, `\`) && i+1 < len(lines) {
				i++
				cmd = strings.TrimSuffix(cmd, `\`) + " " + strings.TrimSpace(lines[i])
			}
			req, err := rcParseCurl(cmd)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", start+1, err)
			}
			cur = &rcStep{line: start + 1, section: section, command: cmd, req: req}
		case cur == nil:
			if strings.TrimSpace(line) != "" {
				return nil, fmt.Errorf("line %d: output before any command in a console block", i+1)
			}
		default:
			out = append(out, line)
		}
	}
	if inBlock {
		return nil, errors.New("unterminated console block")
	}
	if len(steps) == 0 {
		return nil, errors.New("no console blocks")
	}
	return steps, nil
}

// rcParseCurl understands the curl options the page uses: -w
// '%{http_code}\n' (required, so that the status is printed), -s, -X
// METHOD (or -XMETHOD), -d DATA (repeatable) and one URL starting with
// $ETCD (or ${ETCD}). Any other option, variable or shell syntax is an
// error.
func rcParseCurl(line string) (doctest.Curl, error) {
	hasW := false
	c, err := doctest.ParseCurl(line, "ETCD", func(a string, next func() (string, error)) (bool, error) {
		if a != "-w" {
			return false, nil
		}
		f, err := next()
		if err != nil {
			return true, err
		}
		if f != `%{http_code}\n` {
			return true, fmt.Errorf(`-w %q: the page prints the status with -w '%%{http_code}\n'`, f)
		}
		hasW = true
		return true, nil
	})
	if err == nil && !hasW {
		err = fmt.Errorf(`%q lacks -w '%%{http_code}\n'`, line)
	}
	return c, err
}

// rcIndexes is the offset between the page's indexes and a server's,
// fixed by the first index the server answers.
type rcIndexes = doctest.Offset

var (
	// rcTokenRE finds the indexes in a string: a 20-digit run.
	rcTokenRE = regexp.MustCompile(`\d{20}`)
	// rcCauseRE finds them in a cause, which also compares indexes as
	// "[N != M]" (prevIndex) and names keys with 20-digit runs.
	rcCauseRE = regexp.MustCompile(`\[(\d+) != (\d+)\]|(\d{20})`)
)

// rcShiftTokens replaces the 20-digit runs of s by the server's indexes.
func rcShiftTokens(s string, x *rcIndexes) (string, error) {
	var err error
	out := rcTokenRE.ReplaceAllStringFunc(s, func(tok string) string {
		n, _ := strconv.ParseUint(tok, 10, 64)
		v, e := x.Shift(n)
		if e != nil {
			err = e
			return tok
		}
		return fmt.Sprintf("%020d", v)
	})
	return out, err
}

// rcTranslate turns a documented request into the server's: the quoted
// indexes shifted (waitIndex and prevIndex values, 20-digit runs in the
// path, the query and the data), the -d arguments as a form.
func rcTranslate(c doctest.Curl, x *rcIndexes) (string, url.Values, error) {
	p, q, hasQ := strings.Cut(c.Target, "?")
	p, err := rcShiftTokens(p, x)
	if err != nil {
		return "", nil, err
	}
	param := func(kv string) (string, error) {
		k, v, _ := strings.Cut(kv, "=")
		if k == "waitIndex" || k == "prevIndex" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return "", fmt.Errorf("%s=%q is not a number", k, v)
			}
			s, err := x.Shift(n)
			return k + "=" + strconv.FormatUint(s, 10), err
		}
		v, err := rcShiftTokens(v, x)
		return k + "=" + v, err
	}
	target := p
	if hasQ {
		parts := strings.Split(q, "&")
		for i, kv := range parts {
			if parts[i], err = param(kv); err != nil {
				return "", nil, err
			}
		}
		target += "?" + strings.Join(parts, "&")
	}
	var form url.Values
	for _, d := range c.Data {
		kv, err := param(d)
		if err != nil {
			return "", nil, err
		}
		// curl sends -d as written; the server decodes it as a form.
		vals, err := url.ParseQuery(kv)
		if err != nil {
			return "", nil, fmt.Errorf("-d %q: %v", d, err)
		}
		if form == nil {
			form = url.Values{}
		}
		for k, vs := range vals {
			form[k] = append(form[k], vs...)
		}
	}
	return target, form, nil
}

// rcCompare checks a server's answer against the step's documented one.
func rcCompare(s rcStep, code int, body string, x *rcIndexes) error {
	if code != s.status {
		return fmt.Errorf("status %d, documented %d", code, s.status)
	}
	return rcCompareBody(s.body, body, x)
}

// rcCompareBody checks one answer body (documented without its newline).
func rcCompareBody(want, got string, x *rcIndexes) error {
	line, ok := strings.CutSuffix(got, "\n")
	if !ok || strings.Contains(line, "\n") {
		return errors.New("the answer is not one line ending in a newline")
	}
	n := doctest.Normaliser{
		Indexes: []string{"modifiedIndex", "createdIndex", "index"},
		Strings: func(field string) *regexp.Regexp {
			if field == "cause" {
				return rcCauseRE
			}
			return rcTokenRE
		},
		Check: x.Check,
	}
	return doctest.CompareJSON(want, line, n.Value)
}

// rcSend sends one request as curl would (a -d body is form-encoded).
func rcSend(method, u string, form url.Values) (int, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return 0, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestRecipesNormaliser checks the harness itself, without servers: the
// page's convention is parsed as described above, and the comparison
// accepts what only differs where it may and refuses everything else.
func TestRecipesNormaliser(t *testing.T) {
	page := "## 1. A\n\n```sh\n$ not run\n```\n\n```console\n" +
		`$ curl -w '%{http_code}\n' -XPUT "$ETCD/v2/keys/q/00000000000000000004?prevIndex=4&ttl=3" -d value=00000000000000000004 -d x=y    # a comment` + "\n" +
		"{\"action\":\"get\"}\n200\n\n" +
		`$ curl -w '%{http_code}\n' "${ETCD}/v2/keys/w?wait=true&waitIndex=5"` + "\n{}\n404\n```\n"
	steps, err := rcParse(page)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].section != "1. A" || steps[0].status != 200 || steps[1].status != 404 || steps[1].req.Method != "GET" {
		t.Fatalf("parsed %+v", steps)
	}
	x := &rcIndexes{Known: true, Off: 3}
	target, form, err := rcTranslate(steps[0].req, x)
	if err != nil || steps[0].req.Method != "PUT" ||
		target != "/v2/keys/q/00000000000000000007?prevIndex=7&ttl=3" ||
		form.Encode() != "value=00000000000000000007&x=y" {
		t.Fatalf("translated %s %q %q %v", steps[0].req.Method, target, form.Encode(), err)
	}
	for _, bad := range []string{
		`curl "$ETCD/v2/keys/a"`,                                   // no -w
		`curl -w '%{http_code}\n' -i "$ETCD/v2/keys/a"`,            // unknown option
		`curl -w '%{http_code}\n' "$HOST/v2/keys/a"`,               // another variable
		`curl -w '%{http_code}\n' "$ETCD/v2/keys/a" | jq .`,        // a pipe
		`wget -w '%{http_code}\n' "$ETCD/v2/keys/a"`,               // not curl
		`curl -w '%{http_code}' "$ETCD/v2/keys/a"`,                 // no newline after the status
		`curl -w '%{http_code}\n' http://127.0.0.1:2379/v2/keys/a`, // not $ETCD
	} {
		if _, err := rcParseCurl(bad); err == nil {
			t.Errorf("rcParseCurl accepted %s", bad)
		}
	}

	doc := `{"action":"compareAndSwap","node":{"key":"/q/00000000000000000004","value":"a","expiration":"2026-11-21T09:09:38.613062437Z","ttl":30,"modifiedIndex":5,"createdIndex":4},"prevNode":{"key":"/q/00000000000000000004","value":"a","modifiedIndex":4,"createdIndex":4}}`
	same := `{"action":"compareAndSwap","node":{"key":"/q/00000000000000000007","value":"a","expiration":"2027-01-01T00:00:00.5Z","ttl":29,"modifiedIndex":8,"createdIndex":7},"prevNode":{"key":"/q/00000000000000000007","value":"a","modifiedIndex":7,"createdIndex":7}}`
	if err := rcCompareBody(doc, same+"\n", &rcIndexes{}); err != nil {
		t.Errorf("an answer that differs only where it may was refused: %v", err)
	}
	cause := `{"errorCode":101,"message":"Compare failed","cause":"[7 != 10]","index":10}`
	if err := rcCompareBody(cause, `{"errorCode":101,"message":"Compare failed","cause":"[10 != 13]","index":13}`+"\n", &rcIndexes{}); err != nil {
		t.Errorf("a shifted cause was refused: %v", err)
	}
	for name, got := range map[string]string{
		"value":              strings.Replace(same, `"value":"a"`, `"value":"b"`, 1),
		"action":             strings.Replace(same, `compareAndSwap`, `update`, 1),
		"field order":        strings.Replace(same, `"modifiedIndex":8,"createdIndex":7`, `"createdIndex":7,"modifiedIndex":8`, 1),
		"missing field":      strings.Replace(same, `"ttl":29,`, ``, 1),
		"extra field":        strings.Replace(same, `"ttl":29,`, `"ttl":29,"dir":true,`, 1),
		"index offset":       strings.Replace(same, `"modifiedIndex":8`, `"modifiedIndex":9`, 1),
		"key name index":     strings.Replace(same, `"key":"/q/00000000000000000007","value":"a","modifiedIndex"`, `"key":"/q/00000000000000000008","value":"a","modifiedIndex"`, 1),
		"key name text":      strings.Replace(same, `/q/00000000000000000007`, `/r/00000000000000000007`, 1),
		"ttl too high":       strings.Replace(same, `"ttl":29`, `"ttl":32`, 1),
		"ttl too low":        strings.Replace(same, `"ttl":29`, `"ttl":20`, 1),
		"expiration":         strings.Replace(same, `2027-01-01T00:00:00.5Z`, `soon`, 1),
		"expiration no zone": strings.Replace(same, `2027-01-01T00:00:00.5Z`, `2027-01-01T00:00:00.5+01:00`, 1),
		"two lines":          same + "\n" + same,
	} {
		if err := rcCompareBody(doc, got+"\n", &rcIndexes{}); err == nil {
			t.Errorf("%s: a different answer was accepted", name)
		}
	}
	if err := rcCompareBody(doc, same, &rcIndexes{}); err == nil {
		t.Error("an answer without its newline was accepted")
	}
	if err := rcCompareBody(cause, `{"errorCode":101,"message":"Compare failed","cause":"[10 != 14]","index":13}`+"\n", &rcIndexes{}); err == nil {
		t.Error("a cause with an unshifted index was accepted")
	}
	if err := rcCompare(rcStep{status: 200, body: doc}, 201, same+"\n", &rcIndexes{}); err == nil {
		t.Error("a different status was accepted")
	}
}
