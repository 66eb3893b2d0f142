package httpapi_test

import (
	"fmt"
	"math/rand/v2"
	"mime"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// The generator. It draws requests from a seeded source over a small key
// space so that operations collide, and learns what it needs for "right"
// compare values and history watches from etcd's answers only, so a given
// seed produces the same sequence whatever Cairn answers.
//
// Index values in requests are written in relative form, {i:N} for a
// plain index and {o:N} for a 20-digit in-order key name, and resolved per
// server against its start index.

// diffOp is one generated request.
type diffOp struct {
	kind     string // generator rule, for reports
	method   string
	target   string // request-target with placeholders
	ctype    string // Content-Type; none when empty
	body     string // with placeholders
	withBody bool
	key      string // logical key addressed ("/" for the root); "" when unknown
	sorted   bool   // sorted=true in effect: "nodes" order is compared
	watch    bool   // a waitIndex watch expected to be answered from history
	refresh  bool   // refresh=true in effect
	post     bool
	// authorization is the Authorization header to send ("": none).
	authorization string
}

var placeholder = regexp.MustCompile(`\{([io]):(-?[0-9]+)\}`)

// resolvePlaceholders turns {i:N} and {o:N} into base+N, as a plain number
// or a 20-digit in-order name.
func resolvePlaceholders(s string, base uint64) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		n, _ := strconv.ParseInt(sub[2], 10, 64)
		abs := max(int64(base)+n, 0)
		if sub[1] == "o" {
			return fmt.Sprintf("%020d", abs)
		}
		return strconv.FormatInt(abs, 10)
	})
}

// wire is op as sent to a server whose start index is base.
func (op *diffOp) wire(base uint64) *wireRequest {
	return &wireRequest{
		method:   op.method,
		target:   resolvePlaceholders(op.target, base),
		ctype:    op.ctype,
		body:     []byte(resolvePlaceholders(op.body, base)),
		withBody: op.withBody,

		authorization: op.authorization,
	}
}

func (op *diffOp) String() string {
	var b strings.Builder
	target := op.target
	if len(target) > 300 {
		target = target[:300] + fmt.Sprintf("...(%d bytes)", len(op.target))
	}
	fmt.Fprintf(&b, "%s %s", op.method, target)
	if op.ctype != "" {
		fmt.Fprintf(&b, " [Content-Type: %s]", op.ctype)
	}
	if op.authorization != "" {
		fmt.Fprintf(&b, " [Authorization: %s]", op.authorization)
	}
	if op.withBody || op.body != "" {
		body := op.body
		if len(body) > 200 {
			body = body[:200] + fmt.Sprintf("...(%d bytes)", len(op.body))
		}
		fmt.Fprintf(&b, " body %q", body)
	}
	return b.String()
}

// The key space: a few directories and ~20 names, with hidden ones, a
// /pfx vs /pfxbar pair (history-scan prefix quirk), and names that JSON
// must escape.
var (
	diffDirs = []string{"/a", "/a/b", "/c", "/_h", "/pfx", "/q"}
	diffKeys = []string{
		"/k1", "/k2", "/x<y&z", "/ü日本", "/sp ace", "/_hid", "/pfx", "/pfxbar",
		"/pfx/k1", "/a/k1", "/a/k2", "/a/_hid", "/a/b/k1", "/a/b/c\x01d",
		"/c/k1", "/c/k+2", "/_h/k1", "/_h/_k2", "/q/k1", "/a\u2028z",
	}
	diffMissing = []string{"/nope", "/a/nope/deeper", "/c/nope"}
	diffValues  = []string{
		"v1", "v2", "hello world", "<b>&amp;</b>", "ü€日本", "ctl\x01\x1f\x7f",
		"tab\tnl\nend", "sep\u2028\u2029", "pct%25+plus", "a=b&c=d",
		"bad\xff\xfeutf8", "quote\"back\\slash", "x", "\u00a0nbsp",
	}
	boolTrue  = []string{"true", "1", "t", "T", "TRUE", "True"}
	boolFalse = []string{"false", "0", "f", "F", "FALSE", "False"}
	boolBad   = []string{"yes", "no", "on", "off", "tRUE", "2", "", "+true", "true%20", "truee", "%20true", "-1"}
	uintBad   = []string{"-1", "1.5", "abc", "", "+5", "%205", "0x10", "18446744073709551616", "1e3", "5%20", "%D9%A3"}
)

// histEvent is what the generator knows of one event in the history.
type histEvent struct {
	index   int64 // relative
	key     string
	dirGone bool // delete of a directory
	refresh bool
}

type seenNode struct {
	value string
	mod   int64
	dir   bool
}

type diffGen struct {
	r       *rand.Rand
	cur     int64 // relative store index, as last reported by etcd
	events  []histEvent
	seen    map[string]seenNode // logical key → last known state
	inorder []string            // in-order keys created (logical)
}

func newDiffGen(seed uint64) *diffGen {
	return &diffGen{
		r:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		seen: make(map[string]seenNode),
	}
}

func (g *diffGen) pct(p int) bool { return g.r.IntN(100) < p }

func pickOne[T any](g *diffGen, xs []T) T { return xs[g.r.IntN(len(xs))] }

func (g *diffGen) boolStr(v bool) string {
	if v {
		return pickOne(g, boolTrue)
	}
	return pickOne(g, boolFalse)
}

func (g *diffGen) value() string {
	switch {
	case g.pct(8):
		return ""
	case g.pct(10):
		return fmt.Sprintf("v%d", g.r.IntN(1000))
	case g.pct(10):
		return "r" + g.randomBytes(1+g.r.IntN(8))
	}
	return pickOne(g, diffValues)
}

// randomBytes returns n arbitrary bytes (JSON escaping, invalid UTF-8),
// biased towards the ones encoders treat specially.
func (g *diffGen) randomBytes(n int) string {
	special := []byte{0, 0x08, 0x0c, '\t', '\n', '\r', 0x1f, '"', '\\', '<', '>', '&', 0x7f, 0x80, 0xc3, 0xe2, 0xed, 0xf0, 0xff, '%', '+', '/'}
	b := make([]byte, n)
	for i := range b {
		if g.pct(50) {
			b[i] = pickOne(g, special)
		} else {
			b[i] = byte(g.r.IntN(256))
		}
	}
	return string(b)
}

func (g *diffGen) ttl() string { return strconv.Itoa(100 + g.r.IntN(901)) }

// pickKey returns a logical key: a name, a directory, an in-order key, the
// root, something below a name (through a file) or something missing.
func (g *diffGen) pickKey() string {
	switch x := g.r.IntN(100); {
	case x < 55:
		return pickOne(g, diffKeys)
	case x < 72:
		return pickOne(g, diffDirs)
	case x < 82 && len(g.inorder) > 0:
		return pickOne(g, g.inorder)
	case x < 87:
		return "/"
	case x < 94:
		return pickOne(g, diffKeys) + "/sub"
	case x < 97:
		// A name of arbitrary bytes (no slash; "." and ".." would be
		// cleaned away) under its own directory.
		name := strings.ReplaceAll(g.randomBytes(1+g.r.IntN(4)), "/", "s")
		if name == "." || name == ".." {
			name += "x"
		}
		return "/r/" + name
	}
	return pickOne(g, diffMissing)
}

// escSeg escapes one path element, leaving placeholders as they are.
func escSeg(s string) string {
	if placeholder.MatchString(s) {
		return s
	}
	return url.PathEscape(s)
}

// path renders the request path for a logical key, sometimes with a
// trailing slash, an escaped slash or a needlessly escaped letter.
func (g *diffGen) path(key string) string {
	if key == "/" {
		return pickOne(g, []string{"/v2/keys", "/v2/keys/"})
	}
	segs := strings.Split(key[1:], "/")
	for i, s := range segs {
		segs[i] = escSeg(s)
	}
	p := "/v2/keys/" + strings.Join(segs, "/")
	switch x := g.r.IntN(100); {
	case x < 8:
		p += "/"
	case x < 13 && len(segs) > 1:
		i := strings.LastIndexByte(p, '/')
		p = p[:i] + pickOne(g, []string{"%2F", "%2f"}) + p[i+1:]
	case x < 18 && !strings.Contains(p, "{"):
		i := len("/v2/keys/") + g.r.IntN(len(p)-len("/v2/keys/"))
		if c := p[i]; c >= 'a' && c <= 'z' {
			p = p[:i] + fmt.Sprintf(pickOne(g, []string{"%%%02X", "%%%02x"}), c) + p[i+1:]
		}
	}
	return p
}

// diffParams collects query and form parameters.
type diffParams struct{ q, b []string }

// formPair is name=v, form-escaped.
func formPair(name, v string) string { return url.QueryEscape(name) + "=" + url.QueryEscape(v) }

// add puts name=v (escaped) in the query, or for PUT/POST sometimes the body.
func (g *diffGen) add(ps *diffParams, method, name, v string) {
	g.addRaw(ps, method, formPair(name, v))
}

func (g *diffGen) addRaw(ps *diffParams, method, kv string) {
	if (method == "PUT" || method == "POST") && g.pct(40) {
		ps.b = append(ps.b, kv)
		return
	}
	ps.q = append(ps.q, kv)
}

// op assembles a request to key's path with ps in the query and the body.
func (g *diffGen) op(kind, method, key string, ps diffParams) *diffOp {
	op := &diffOp{kind: kind, method: method, key: key, target: g.path(key)}
	if len(ps.q) > 0 {
		op.target += "?" + strings.Join(ps.q, "&")
	}
	if len(ps.b) > 0 {
		op.body = strings.Join(ps.b, "&")
		op.withBody = true
		op.ctype = pickOne(g, []string{"application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8"})
	}
	return op
}

// next draws the next operation.
func (g *diffGen) next() *diffOp {
	for {
		var op *diffOp
		switch x := g.r.IntN(100); {
		case x < 17:
			op = g.opGet()
		case x < 29:
			op = g.opSet()
		case x < 34:
			op = g.opCreate()
		case x < 39:
			op = g.opUpdate()
		case x < 48:
			op = g.opCAS()
		case x < 52:
			op = g.opRefresh()
		case x < 58:
			op = g.opPost()
		case x < 67:
			op = g.opDelete()
		case x < 74:
			op = g.opWatch()
		case x < 88:
			op = g.opBad()
		case x < 91:
			op = g.opUnclean()
		case x < 92:
			op = g.opMethod()
		case x < 93:
			op = g.opRoute()
		default:
			op = g.opForm()
		}
		if op != nil {
			op.post = op.method == "POST"
			op.refresh = op.method == "PUT" && op.flag("refresh")
			op.sorted = op.flag("sorted")
			return op
		}
	}
}

// formValue returns the first value of name as the server's ParseForm
// sees it: for PUT and POST a form body comes before the query.
func (op *diffOp) formValue(name string) (string, bool) {
	var srcs []string
	if op.method == "PUT" || op.method == "POST" {
		if mt, _, err := mime.ParseMediaType(op.ctype); err == nil && mt == "application/x-www-form-urlencoded" {
			srcs = append(srcs, op.body)
		}
	}
	if i := strings.IndexByte(op.target, '?'); i >= 0 {
		srcs = append(srcs, op.target[i+1:])
	}
	for _, s := range srcs {
		vs, _ := url.ParseQuery(s) // keeps the pairs that parse
		if v, ok := vs[name]; ok {
			return v[0], true
		}
	}
	return "", false
}

// flag reports whether name is in effect (parses as true).
func (op *diffOp) flag(name string) bool {
	v, ok := op.formValue(name)
	b, err := strconv.ParseBool(v)
	return ok && err == nil && b
}

func (g *diffGen) opGet() *diffOp {
	var ps diffParams
	method := "GET"
	if g.pct(6) {
		method = "HEAD"
	}
	if g.pct(50) {
		ps.q = append(ps.q, "recursive="+g.boolStr(g.pct(70)))
	}
	if g.pct(35) {
		ps.q = append(ps.q, "sorted="+g.boolStr(g.pct(60)))
	}
	switch {
	case g.pct(5):
		// quorum=true turns a watch into a plain get (API.md §1.3).
		ps.q = append(ps.q, "quorum="+g.boolStr(true))
		if method == "GET" && g.pct(50) {
			ps.q = append(ps.q, "wait="+g.boolStr(true))
		}
	case g.pct(4):
		ps.q = append(ps.q, "quorum="+g.boolStr(false))
	case g.pct(5):
		ps.q = append(ps.q, "wait="+g.boolStr(false))
	case g.pct(4):
		ps.q = append(ps.q, fmt.Sprintf("waitIndex={i:%d}", g.cur)) // ignored without wait
	case g.pct(4):
		ps.q = append(ps.q, "stream="+g.boolStr(g.pct(50))) // ignored without wait
	case g.pct(4):
		// Cairn's local read; etcd ignores the parameter (docs/compat.md).
		ps.q = append(ps.q, "serializable="+g.boolStr(g.pct(50)))
	}
	g.r.Shuffle(len(ps.q), func(i, j int) { ps.q[i], ps.q[j] = ps.q[j], ps.q[i] })
	return g.op("get", method, g.pickKey(), ps)
}

// writeKey is pickKey leaning towards names.
func (g *diffGen) writeKey() string {
	if g.pct(70) {
		return pickOne(g, diffKeys)
	}
	return g.pickKey()
}

func (g *diffGen) maybeTTL(ps *diffParams, method string, p int) {
	switch {
	case g.pct(p):
		g.add(ps, method, "ttl", g.ttl())
	case g.pct(4):
		g.add(ps, method, "ttl", "")
	}
}

func (g *diffGen) maybeNoValue(ps *diffParams, method string) {
	if g.pct(5) {
		g.add(ps, method, "noValueOnSuccess", g.boolStr(g.pct(70)))
	}
}

func (g *diffGen) shuffle(ps *diffParams) {
	g.r.Shuffle(len(ps.q), func(i, j int) { ps.q[i], ps.q[j] = ps.q[j], ps.q[i] })
	g.r.Shuffle(len(ps.b), func(i, j int) { ps.b[i], ps.b[j] = ps.b[j], ps.b[i] })
}

func (g *diffGen) opSet() *diffOp {
	var ps diffParams
	if g.pct(90) {
		g.add(&ps, "PUT", "value", g.value())
	}
	g.maybeTTL(&ps, "PUT", 25)
	if g.pct(8) {
		g.add(&ps, "PUT", "dir", g.boolStr(true))
	}
	g.maybeNoValue(&ps, "PUT")
	g.shuffle(&ps)
	return g.op("set", "PUT", g.writeKey(), ps)
}

func (g *diffGen) opCreate() *diffOp {
	var ps diffParams
	g.add(&ps, "PUT", "prevExist", g.boolStr(false))
	if g.pct(85) {
		g.add(&ps, "PUT", "value", g.value())
	}
	g.maybeTTL(&ps, "PUT", 20)
	if g.pct(12) {
		g.add(&ps, "PUT", "dir", g.boolStr(true))
	}
	if g.pct(12) {
		g.add(&ps, "PUT", "prevValue", pickOne(g, diffValues)) // ignored by create
	}
	g.maybeNoValue(&ps, "PUT")
	g.shuffle(&ps)
	return g.op("create", "PUT", g.writeKey(), ps)
}

func (g *diffGen) opUpdate() *diffOp {
	var ps diffParams
	key := g.writeKey()
	g.add(&ps, "PUT", "prevExist", g.boolStr(true))
	if g.seen[key].dir && g.pct(70) {
		// A directory's TTL is set, changed or removed by an update
		// without a value.
		if g.pct(50) {
			g.add(&ps, "PUT", "dir", g.boolStr(true))
		}
	} else if g.pct(85) {
		g.add(&ps, "PUT", "value", g.value())
	}
	g.maybeTTL(&ps, "PUT", 40)
	if g.pct(10) {
		g.add(&ps, "PUT", "dir", g.boolStr(true))
	}
	g.maybeNoValue(&ps, "PUT")
	g.shuffle(&ps)
	return g.op("update", "PUT", key, ps)
}

// prevValue returns the key's last known value (right) or another one.
func (g *diffGen) prevValue(key string, right bool) string {
	s, ok := g.seen[key]
	if right && ok && s.value != "" {
		return s.value
	}
	for {
		v := pickOne(g, diffValues)
		if !ok || v != s.value {
			return v
		}
	}
}

// prevIndex returns a placeholder for the key's last known modifiedIndex
// (right) or another index.
func (g *diffGen) prevIndex(key string, right bool) string {
	s, ok := g.seen[key]
	switch {
	case right && ok:
		return fmt.Sprintf("{i:%d}", s.mod)
	case ok && g.pct(50):
		return fmt.Sprintf("{i:%d}", s.mod+1+g.r.Int64N(3))
	}
	return fmt.Sprintf("{i:%d}", 1+g.r.Int64N(g.cur+2))
}

func (g *diffGen) opCAS() *diffOp {
	var ps diffParams
	key := g.writeKey()
	if g.pct(60) {
		// Prefer keys the generator has seen, so "right" can be right.
		for range 5 {
			if c := pickOne(g, diffKeys); g.seen[c] != (seenNode{}) {
				key = c
				break
			}
		}
	}
	mode := g.r.IntN(3) // 0 value, 1 index, 2 both
	if mode != 1 {
		g.add(&ps, "PUT", "prevValue", g.prevValue(key, g.pct(60)))
	}
	if mode != 0 {
		g.addRaw(&ps, "PUT", "prevIndex="+g.prevIndex(key, g.pct(60)))
	} else if g.pct(10) {
		g.addRaw(&ps, "PUT", "prevIndex=0") // 0 means "no index check"
	}
	if g.pct(4) {
		g.addRaw(&ps, "PUT", "prevIndex=18446744073709551615")
	}
	if g.pct(30) {
		g.add(&ps, "PUT", "prevExist", g.boolStr(true))
	}
	if g.pct(90) {
		g.add(&ps, "PUT", "value", g.value())
	}
	g.maybeTTL(&ps, "PUT", 20)
	g.maybeNoValue(&ps, "PUT")
	g.shuffle(&ps)
	return g.op("cas", "PUT", key, ps)
}

// opRefresh covers refresh=true on its own and with the other PUT forms,
// and the 211/212 refusals.
func (g *diffGen) opRefresh() *diffOp {
	var ps diffParams
	key := g.writeKey()
	refresh := true
	withTTL := true
	switch g.r.IntN(9) {
	case 1:
		g.add(&ps, "PUT", "prevExist", g.boolStr(true))
	case 2:
		g.add(&ps, "PUT", "prevValue", g.prevValue(key, g.pct(70)))
	case 3:
		g.add(&ps, "PUT", "value", "") // allowed
	case 4:
		g.add(&ps, "PUT", "value", g.value()) // 211 unless empty
	case 5:
		withTTL = false // 212
	case 6:
		withTTL = false
		g.add(&ps, "PUT", "ttl", "") // empty ttl is no ttl: 212
	case 7:
		g.add(&ps, "PUT", "prevExist", g.boolStr(false))
	case 8:
		refresh = false
	}
	g.add(&ps, "PUT", "refresh", g.boolStr(refresh))
	if withTTL {
		g.add(&ps, "PUT", "ttl", g.ttl())
	}
	g.maybeNoValue(&ps, "PUT")
	g.shuffle(&ps)
	return g.op("refresh", "PUT", key, ps)
}

func (g *diffGen) opPost() *diffOp {
	var ps diffParams
	parents := []string{"/q", "/q", "/", "/a", "/c/new", "/k1", "/_h"}
	if len(g.inorder) > 0 {
		parents = append(parents, pickOne(g, g.inorder))
	}
	if g.pct(85) {
		g.add(&ps, "POST", "value", g.value())
	}
	g.maybeTTL(&ps, "POST", 20)
	if g.pct(10) {
		g.add(&ps, "POST", "dir", g.boolStr(true))
	}
	if g.pct(5) {
		g.add(&ps, "POST", "prevExist", g.boolStr(g.pct(50))) // ignored
	}
	g.maybeNoValue(&ps, "POST")
	g.shuffle(&ps)
	return g.op("post", "POST", pickOne(g, parents), ps)
}

func (g *diffGen) opDelete() *diffOp {
	var ps diffParams
	key := g.pickKey()
	if g.pct(20) {
		key = pickOne(g, diffDirs)
	}
	if g.pct(25) {
		ps.q = append(ps.q, "dir="+g.boolStr(g.pct(80)))
	}
	if g.pct(25) {
		ps.q = append(ps.q, "recursive="+g.boolStr(g.pct(80)))
	}
	if g.pct(12) {
		ps.q = append(ps.q, formPair("prevValue", g.prevValue(key, g.pct(60))))
	}
	if g.pct(12) {
		ps.q = append(ps.q, "prevIndex="+g.prevIndex(key, g.pct(60)))
	}
	if g.pct(3) {
		ps.q = append(ps.q, "prevExist="+g.boolStr(g.pct(50))) // ignored
	}
	if g.pct(4) {
		ps.q = append(ps.q, "noValueOnSuccess="+g.boolStr(true)) // deletes keep their nodes
	}
	g.shuffle(&ps)
	return g.op("delete", "DELETE", key, ps)
}

// History-scan matching, as etcd 3.4.23 does it and as Cairn does it (see
// docs/compat.md): etcd's scan ignores hidden names and tests "a parent
// directory was deleted" with a plain string prefix. The generator only
// sends a history watch when both rules pick the same event.

// etcdHistMatch is etcd 3.4.23's history-scan test for a watch on p.
func etcdHistMatch(p string, rec bool, e histEvent) bool {
	if e.refresh {
		return false
	}
	if e.key == p {
		return true
	}
	if rec {
		pre := p
		if pre != "/" {
			pre += "/"
		}
		if strings.HasPrefix(e.key, pre) {
			return true
		}
	}
	return e.dirGone && strings.HasPrefix(p, e.key)
}

// isBelow reports whether p is strictly below directory d.
func isBelow(p, d string) bool {
	if d == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, d+"/")
}

// cairnHistMatch is Cairn's: the live-watch rules, hidden names included.
func cairnHistMatch(p string, rec bool, e histEvent) bool {
	if e.refresh {
		return false
	}
	if e.key == p {
		return true
	}
	if rec && isBelow(e.key, p) {
		rest := e.key
		if p != "/" {
			rest = e.key[len(p):]
		}
		if !strings.Contains(rest, "/_") {
			return true
		}
	}
	return e.dirGone && isBelow(p, e.key)
}

// firstMatch returns the first known event at or after from that match accepts.
func (g *diffGen) firstMatch(from int64, match func(histEvent) bool) (histEvent, bool) {
	for _, e := range g.events {
		if e.index >= from && match(e) {
			return e, true
		}
	}
	return histEvent{}, false
}

// opWatch sends GET ?wait=true&waitIndex=<past> that the history answers
// at once with the same event under both servers' rules.
func (g *diffGen) opWatch() *diffOp {
	if len(g.events) == 0 {
		return nil
	}
	for range 20 {
		var p string
		switch x := g.r.IntN(100); {
		case x < 55:
			p = pickOne(g, diffKeys)
		case x < 80:
			p = pickOne(g, diffDirs)
		case x < 90 || len(g.inorder) == 0:
			p = "/"
		default:
			p = pickOne(g, g.inorder)
		}
		rec := g.pct(50)
		// Start at or a little before some event, within etcd's 1000.
		w := max(pickOne(g, g.events).index-g.r.Int64N(4), g.cur-900, 1)
		ee, eok := g.firstMatch(w, func(e histEvent) bool { return etcdHistMatch(p, rec, e) })
		ce, cok := g.firstMatch(w, func(e histEvent) bool { return cairnHistMatch(p, rec, e) })
		if !eok || !cok || ee.index != ce.index {
			continue
		}
		ps := diffParams{q: []string{"wait=" + g.boolStr(true), fmt.Sprintf("waitIndex={i:%d}", w)}}
		if rec {
			ps.q = append(ps.q, "recursive="+g.boolStr(true))
		} else if g.pct(20) {
			ps.q = append(ps.q, "recursive="+g.boolStr(false))
		}
		if g.pct(10) {
			ps.q = append(ps.q, "sorted="+g.boolStr(true))
		}
		g.shuffle(&ps)
		op := g.op("watch", "GET", p, ps)
		op.watch = true
		return op
	}
	return nil
}

// opBad sends input the parser must refuse (or, for the harmless
// spellings, accept), alone or several at once to check which error wins.
func (g *diffGen) opBad() *diffOp {
	method := pickOne(g, []string{"GET", "PUT", "PUT", "POST", "DELETE", "HEAD"})
	var ps diffParams
	n := 1
	if g.pct(30) {
		n = 2 + g.r.IntN(2)
	}
	for range n {
		switch g.r.IntN(9) {
		case 0, 1: // a boolean
			name := pickOne(g, []string{"recursive", "sorted", "wait", "dir", "quorum", "stream", "noValueOnSuccess", "prevExist", "refresh"})
			v := pickOne(g, boolBad)
			if name == "wait" && method == "GET" && g.pct(30) {
				v = g.boolStr(false)
			}
			g.addRaw(&ps, method, name+"="+v)
		case 2, 3: // an unsigned integer
			g.addRaw(&ps, method, pickOne(g, []string{"prevIndex", "waitIndex", "ttl"})+"="+pickOne(g, uintBad))
		case 4: // empty prevValue
			g.addRaw(&ps, method, "prevValue=")
		case 5: // wait outside GET (refused), or a falsy wait (fine)
			if method == "GET" {
				g.addRaw(&ps, method, "wait="+g.boolStr(false))
			} else {
				g.addRaw(&ps, method, "wait="+g.boolStr(g.pct(80)))
			}
		case 6: // malformed escapes and separators
			g.addRaw(&ps, method, pickOne(g, []string{"value=%zz", "%zz=1", "value=%", "value=%4", "value=a;b", "recursive=%G1", "a=b;c=d", "value=%E2%82"}))
		case 7: // refresh combinations (211, 212)
			g.addRaw(&ps, method, "refresh="+g.boolStr(true))
			if g.pct(50) {
				g.addRaw(&ps, method, "value=x")
			}
			if g.pct(30) {
				g.addRaw(&ps, method, "ttl="+g.ttl())
			}
		case 8: // valid ones mixed in, some with escaped or miscased names
			g.addRaw(&ps, method, pickOne(g, []string{"value=ok", "recursive=true", "dir=false", "ttl=500", "prevIndex=0", "sorted=1", "rec%75rsive=true", "Recursive=zz", "%64ir=true", "TTL=abc", "value", "=x", "&&"}))
		}
	}
	g.shuffle(&ps)
	key := g.pickKey()
	if g.pct(10) {
		key = "/"
	}
	op := g.op("bad", method, key, ps)
	if method == "GET" && op.flag("wait") && !op.flag("quorum") {
		return nil // a real watch: not for this rule
	}
	if g.pct(3) {
		// A malformed escape in the path: Go's server refuses the request
		// line itself.
		op.target = "/v2/keys/" + pickOne(g, []string{"%zz", "a%", "a%2"}) + "?recursive=true"
		op.key = ""
	}
	return op
}

// Unclean paths are redirected (301) for every method before anything
// runs (API.md §1.8).
var uncleanPaths = []string{
	"/v2/keys//a", "/v2/keys/a/./k1", "/v2/keys/a/../k1", "/v2/keys/a/%2E%2E/k1",
	"/v2/keys/a%2F..%2Fk1", "/v2//keys/a", "/v2/keys/a//k1", "/v2/keys/.",
	"/v2/keys/..", "/v2/keys/a/.", "/v2/keys/./", "/v2/keys/a/b/..",
	"/v2/keys/%2E/k1", "/v2/keys//", "/v2/keys/a%2F%2Fk1", "/v2/keys//x%3Cy%26z",
	"/v2/keys//%C3%BC", "/v2/keys/a/../../..", "/v2/keys//sp%20ace/",
}

func (g *diffGen) opUnclean() *diffOp {
	op := &diffOp{kind: "unclean", method: pickOne(g, []string{"GET", "GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"})}
	op.target = pickOne(g, uncleanPaths)
	if g.pct(50) {
		op.target += "?" + pickOne(g, []string{"value=x&recursive=true", "prevIndex=5", "a=%3C%26", "wait=true", "value=%zz"})
	}
	if op.method == "PUT" && g.pct(50) {
		op.body, op.withBody, op.ctype = "value=b", true, "application/x-www-form-urlencoded"
	}
	return op
}

// opMethod sends a method the keys API does not serve.
func (g *diffGen) opMethod() *diffOp {
	var ps diffParams
	if g.pct(50) {
		ps.q = append(ps.q, "value=x")
	}
	return g.op("method", pickOne(g, []string{"PATCH", "FOO", "get", "Put", "OPTIONS", "TRACE", "PROPFIND"}), g.pickKey(), ps)
}

// Paths next to /v2/keys. Routing is on the decoded path, so an escaped
// slash right after "keys" still reaches the keys handler (key is the
// logical key that results, "" for none).
var routePaths = []struct{ target, key string }{
	{"/v2/keysx", ""}, {"/v2/keys%2Fk1", "/k1"}, {"/v2/keys%2F", "/"},
	{"/v2/keys%2fa%2Fk2", "/a/k2"}, {"/v2", ""}, {"/v2/", ""},
	{"/v2/keys.json", ""}, {"/v2/Keys/k1", ""}, {"/V2/keys/k1", ""},
	{"/v2/keys%2F_h", "/_h"}, {"/v2/%6beys/k1", "/k1"}, {"/%76%32/keys/a/k1", "/a/k1"},
	{"/v2/ke%79s", "/"},
}

func (g *diffGen) opRoute() *diffOp {
	r := pickOne(g, routePaths)
	op := &diffOp{kind: "route", method: pickOne(g, []string{"GET", "PUT", "DELETE", "POST", "HEAD"}), target: r.target, key: r.key}
	if g.pct(60) {
		op.target += "?" + pickOne(g, []string{"value=r", "recursive=true", "dir=true", "sorted=true&recursive=true"})
	}
	return op
}

// opForm checks where parameters are read from: body over query for
// PUT/POST, only the query for GET/DELETE, only form content types.
func (g *diffGen) opForm() *diffOp {
	form := "application/x-www-form-urlencoded"
	switch g.r.IntN(8) {
	case 0: // body value wins over query value
		op := g.op("form", "PUT", g.writeKey(), diffParams{q: []string{formPair("value", g.value())}})
		op.body, op.withBody, op.ctype = formPair("value", g.value()), true, form
		return op
	case 1: // body prevValue/ttl wins over a bad or different query one
		key := g.writeKey()
		q := pickOne(g, []string{"ttl=abc", "ttl=200", "prevValue=", formPair("prevValue", g.prevValue(key, false))})
		op := g.op("form", "PUT", key, diffParams{q: []string{q, "value=q"}})
		op.body, op.withBody, op.ctype = pickOne(g, []string{"ttl=300", formPair("prevValue", g.prevValue(key, true)), "value=b"}), true, form
		return op
	case 2: // a body that is not a form is ignored
		op := g.op("form", pickOne(g, []string{"PUT", "POST"}), g.writeKey(), diffParams{q: []string{"ttl=400"}})
		op.body, op.withBody = formPair("value", g.value()), true
		op.ctype = pickOne(g, []string{"", "application/json", "text/plain", "multipart/form-data; boundary=zz", "APPLICATION/X-WWW-FORM-URLENCODED", "text/plain; ;", "application/x-www-form-urlencoded;;"})
		return op
	case 3: // DELETE ignores its body
		key := g.pickKey()
		op := g.op("form", "DELETE", key, diffParams{})
		op.body, op.withBody, op.ctype = pickOne(g, []string{formPair("prevValue", g.prevValue(key, false)), "recursive=true", "dir=true", "prevIndex=1", "recursive=zz"}), true, form
		return op
	case 4: // POST: body over query
		op := g.op("form", "POST", pickOne(g, []string{"/q", "/"}), diffParams{q: []string{"value=fromquery", "dir=false"}})
		op.body, op.withBody, op.ctype = formPair("value", g.value()), true, form
		return op
	case 5: // GET reads no body
		op := g.op("form", "GET", g.pickKey(), diffParams{})
		op.body, op.withBody, op.ctype = pickOne(g, []string{"recursive=true", "wait=true", "recursive=zz"}), true, form
		return op
	case 6: // repeated parameters: the first counts
		op := g.op("form", "PUT", g.writeKey(), diffParams{q: []string{pickOne(g, []string{"value=a&value=b", "dir=false&dir=xyz", "ttl=300&ttl=-1", "prevExist=zz&prevExist=true"})}})
		return op
	default: // empty body with form content type, and value only in query
		op := g.op("form", "PUT", g.writeKey(), diffParams{q: []string{formPair("value", g.value())}})
		op.withBody, op.ctype = true, form
		return op
	}
}

// observe learns from etcd's answer to op: the current index, the event a
// write made, and the last known value and modifiedIndex of each key.
func (g *diffGen) observe(op *diffOp, w wireResponse, base uint64) {
	rel := int64(-1)
	if idx, err := strconv.ParseUint(w.header.Get("X-Etcd-Index"), 10, 64); err == nil && idx >= base {
		rel = int64(idx - base)
		g.cur = max(g.cur, rel)
	}
	if w.status != 200 && w.status != 201 || len(w.body) == 0 {
		return
	}
	top, _, _, err := parseJSONValue(w.body)
	if err != nil {
		return
	}
	node, prev := top.field("node"), top.field("prevNode")
	switch op.method {
	case "GET", "HEAD":
		if !op.watch {
			g.learn(node, base)
		}
		return
	case "PUT", "POST", "DELETE":
	default:
		return
	}
	if rel < 0 {
		return
	}
	action := top.field("action").text()
	key := op.key
	switch {
	case node != nil:
		key = logicalKey(node.field("key").text(), base)
	case op.post && op.key != "":
		key = strings.TrimSuffix(op.key, "/") + fmt.Sprintf("/{o:%d}", rel)
	}
	if key == "" {
		return
	}
	ev := histEvent{index: rel, key: key, refresh: op.refresh && action != "create"}
	switch action {
	case "delete", "compareAndDelete":
		ev.dirGone = prev.field("dir") != nil
		delete(g.seen, key)
		for k := range g.seen {
			if isBelow(k, key) {
				delete(g.seen, k)
			}
		}
	default:
		if node != nil {
			g.learn(node, base)
		} else {
			delete(g.seen, key)
		}
	}
	g.events = append(g.events, ev)
	if op.post {
		g.inorder = append(g.inorder, key)
		if len(g.inorder) > 8 {
			g.inorder = g.inorder[1:]
		}
	}
}

// learn records the state of n and of the children listed in it.
func (g *diffGen) learn(n *jnode, base uint64) {
	if n == nil || n.field("key") == nil {
		return
	}
	s := seenNode{value: n.field("value").text(), dir: n.field("dir") != nil}
	if m := n.field("modifiedIndex"); m != nil {
		abs, _ := strconv.ParseInt(m.raw, 10, 64)
		s.mod = abs - int64(base)
	}
	g.seen[logicalKey(n.field("key").text(), base)] = s
	if nodes := n.field("nodes"); nodes != nil {
		for _, c := range nodes.vals {
			g.learn(c, base)
		}
	}
}

// logicalKey turns a key as etcd reports it into the generator's form:
// "/" for the root, in-order names as {o:N} placeholders.
func logicalKey(k string, base uint64) string {
	if k == "" {
		return "/"
	}
	return inOrderName.ReplaceAllStringFunc(k, func(m string) string {
		n, _ := strconv.ParseUint(m[1:], 10, 64)
		return fmt.Sprintf("/{o:%d}", int64(n)-int64(base))
	})
}
