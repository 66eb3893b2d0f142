package httpapi_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Normalisation: what may legitimately differ between etcd and Cairn is
// rewritten the same way on both sides, then the two renderings must be
// byte-identical. Index values become relative to each server's start
// index; expirations become a placeholder; ttl may differ by one second;
// "nodes" order counts only when sorted=true was asked. Everything else —
// field order, escaping, omitted fields, trailing newline — must match.

// jnode is a parsed JSON value that keeps its source text: strings keep
// their quotes and escapes, numbers their digits, objects their member
// order. Writing it back compactly reproduces Go's encoding/json output.
type jnode struct {
	kind byte     // '{' object, '[' array, '"' string, '0' number, 'l' true/false/null
	raw  string   // string, number and literal text as sent
	keys []string // object member names, quoted as sent
	vals []*jnode
}

type jparser struct {
	s     []byte
	i     int
	space bool // whitespace seen between tokens (Go never emits any)
}

var errJSON = errors.New("not JSON")

// parseJSONValue parses one value at the start of b and returns it with the
// bytes after it. compact reports whether no insignificant whitespace was
// used.
func parseJSONValue(b []byte) (n *jnode, rest []byte, compact bool, err error) {
	p := &jparser{s: b}
	n, err = p.value()
	if err != nil {
		return nil, nil, false, err
	}
	return n, b[p.i:], !p.space, nil
}

func (p *jparser) ws() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
		p.space = true
	}
}

func (p *jparser) value() (*jnode, error) {
	p.ws()
	if p.i >= len(p.s) {
		return nil, errJSON
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		n := &jnode{kind: '{'}
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return n, nil
		}
		for {
			p.ws()
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, errJSON
			}
			p.i++
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k)
			n.vals = append(n.vals, v)
			p.ws()
			if p.i >= len(p.s) {
				return nil, errJSON
			}
			p.i++
			if p.s[p.i-1] == '}' {
				return n, nil
			}
			if p.s[p.i-1] != ',' {
				return nil, errJSON
			}
		}
	case c == '[':
		p.i++
		n := &jnode{kind: '['}
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			return n, nil
		}
		for {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
			p.ws()
			if p.i >= len(p.s) {
				return nil, errJSON
			}
			p.i++
			if p.s[p.i-1] == ']' {
				return n, nil
			}
			if p.s[p.i-1] != ',' {
				return nil, errJSON
			}
		}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return &jnode{kind: '"', raw: s}, nil
	case c == '-' || c >= '0' && c <= '9':
		j := p.i + 1
		for j < len(p.s) && strings.IndexByte("0123456789.eE+-", p.s[j]) >= 0 {
			j++
		}
		n := &jnode{kind: '0', raw: string(p.s[p.i:j])}
		p.i = j
		return n, nil
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(p.s[p.i:], []byte(lit)) {
				p.i += len(lit)
				return &jnode{kind: 'l', raw: lit}, nil
			}
		}
		return nil, errJSON
	}
}

// str scans a quoted string and returns it with quotes and escapes.
func (p *jparser) str() (string, error) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", errJSON
	}
	for j := p.i + 1; j < len(p.s); j++ {
		switch p.s[j] {
		case '\\':
			j++
		case '"':
			s := string(p.s[p.i : j+1])
			p.i = j + 1
			return s, nil
		}
	}
	return "", errJSON
}

func (n *jnode) write(b *strings.Builder) {
	switch n.kind {
	case '{':
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(k)
			b.WriteByte(':')
			n.vals[i].write(b)
		}
		b.WriteByte('}')
	case '[':
		b.WriteByte('[')
		for i, v := range n.vals {
			if i > 0 {
				b.WriteByte(',')
			}
			v.write(b)
		}
		b.WriteByte(']')
	default:
		b.WriteString(n.raw)
	}
}

// field returns the member named name (unquoted) of an object, or nil.
func (n *jnode) field(name string) *jnode {
	if n == nil || n.kind != '{' {
		return nil
	}
	q := strconv.Quote(name)
	for i, k := range n.keys {
		if k == q {
			return n.vals[i]
		}
	}
	return nil
}

// text decodes a string node; "" for anything else.
func (n *jnode) text() string {
	if n == nil || n.kind != '"' {
		return ""
	}
	s, err := unquoteJSON(n.raw)
	if err != nil {
		return n.raw
	}
	return s
}

// unquoteJSON decodes a JSON string literal (Go's strconv.Unquote does
// not know \u escapes of surrogate pairs or \/).
func unquoteJSON(q string) (string, error) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", errJSON
	}
	var b strings.Builder
	s := q[1 : len(q)-1]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", errJSON
		}
		switch s[i] {
		case '"', '\\', '/':
			b.WriteByte(s[i])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			if i+4 >= len(s) {
				return "", errJSON
			}
			r, err := strconv.ParseUint(s[i+1:i+5], 16, 32)
			if err != nil {
				return "", errJSON
			}
			i += 4
			if r >= 0xd800 && r < 0xdc00 && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				lo, err := strconv.ParseUint(s[i+3:i+7], 16, 32)
				if err == nil && lo >= 0xdc00 && lo < 0xe000 {
					r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
					i += 6
				}
			}
			b.WriteRune(rune(r))
		default:
			return "", errJSON
		}
	}
	return b.String(), nil
}

// normaliser rewrites one server's output into comparable form.
type normaliser struct {
	base   uint64 // the server's X-Etcd-Index before the first operation
	sorted bool   // the request asked for sorted=true
}

var (
	// An in-order key name: 20 digits as a path element (a 20-digit number
	// elsewhere, such as prevIndex=18446744073709551615 echoed in a cause,
	// is a literal).
	inOrderName    = regexp.MustCompile(`/[0-9]{20}\b`)
	expirationForm = regexp.MustCompile(`^"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,8}[1-9])?Z"$`)
	causeCmp       = regexp.MustCompile(`\[([0-9]+) != ([0-9]+)\]`)
	causeHist      = regexp.MustCompile(`\[([0-9]+)/([0-9]+)\]`)
)

// relIndex maps an absolute index to one relative to base. 0 stays 0 (it
// means "none": parse errors, the root's omitted indexes); values far above
// any index a test reaches are literals the request carried and stay.
func (nz normaliser) relIndex(s string) string {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > 1<<40 {
		return s
	}
	return strconv.FormatInt(int64(n)-int64(nz.base), 10)
}

// inOrder rewrites 20-digit in-order key names to relative ones.
func (nz normaliser) inOrder(s string) string {
	return inOrderName.ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.ParseUint(m[1:], 10, 64)
		if n < nz.base {
			return m
		}
		return fmt.Sprintf("/%020d", n-nz.base)
	})
}

func (nz normaliser) cause(s string) string {
	for _, re := range []*regexp.Regexp{causeCmp, causeHist} {
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			sub := re.FindStringSubmatch(m)
			sep := " != "
			if re == causeHist {
				sep = "/"
			}
			return "[" + nz.relIndex(sub[1]) + sep + nz.relIndex(sub[2]) + "]"
		})
	}
	return s
}

// node normalises v in place; name is the object member it is the value
// of ("" at the top level).
func (nz normaliser) node(v *jnode, name string) {
	switch v.kind {
	case '"':
		v.raw = nz.inOrder(v.raw)
		switch name {
		case "expiration":
			// Any instant, but in Go's time.Time JSON form: UTC,
			// nanoseconds with trailing zeros trimmed.
			if expirationForm.MatchString(v.raw) {
				v.raw = `"<expiration>"`
			}
		case "cause":
			v.raw = nz.cause(v.raw)
		}
	case '0':
		switch name {
		case "modifiedIndex", "createdIndex", "index":
			v.raw = nz.relIndex(v.raw)
		}
	case '{':
		for i, k := range v.keys {
			nz.node(v.vals[i], strings.Trim(k, `"`))
		}
	case '[':
		for _, c := range v.vals {
			nz.node(c, "")
		}
		if name == "nodes" && !nz.sorted {
			// etcd lists children in Go map order; only sorted=true fixes it.
			sort.SliceStable(v.vals, func(i, j int) bool {
				return v.vals[i].field("key").raw < v.vals[j].field("key").raw
			})
		}
	}
}

// bodyValue is one JSON value of a response body, or raw text.
type bodyValue struct {
	json *jnode // nil when the text is not JSON
	text string // non-JSON text, or what follows the value (newline)
	// loose is set when the JSON was not in Go's compact form.
	loose bool
}

// parseBody splits a body into its JSON values (a stream watch sends
// several, one per line). A body that is not JSON is kept as text.
func (nz normaliser) parseBody(b []byte) []bodyValue {
	var out []bodyValue
	for len(b) > 0 {
		n, rest, compact, err := parseJSONValue(b)
		if err != nil {
			return append(out, bodyValue{text: nz.inOrder(string(b))})
		}
		nz.node(n, "")
		// The separator: everything up to and including the next newline.
		sep := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			sep = rest[:i+1]
		}
		out = append(out, bodyValue{json: n, text: string(sep), loose: !compact})
		b = rest[len(sep):]
	}
	return out
}

// alignTTL copies etcd's ttl into Cairn's where they differ by at most one
// second: the two servers render the same deadline at slightly different
// moments. It walks only where the two structures agree.
func alignTTL(e, c *jnode) {
	if e == nil || c == nil || e.kind != c.kind {
		return
	}
	switch e.kind {
	case '{':
		for i, k := range c.keys {
			ev := e.field(strings.Trim(k, `"`))
			if ev == nil {
				continue
			}
			if k == `"ttl"` && ev.kind == '0' && c.vals[i].kind == '0' {
				a, err1 := strconv.ParseInt(ev.raw, 10, 64)
				b, err2 := strconv.ParseInt(c.vals[i].raw, 10, 64)
				if err1 == nil && err2 == nil && a-b <= 1 && b-a <= 1 {
					c.vals[i].raw = ev.raw
				}
				continue
			}
			alignTTL(ev, c.vals[i])
		}
	case '[':
		for i := range min(len(e.vals), len(c.vals)) {
			alignTTL(e.vals[i], c.vals[i])
		}
	}
}

// renderBody writes normalised body values back out.
func renderBody(vs []bodyValue) string {
	var b strings.Builder
	for _, v := range vs {
		if v.json != nil {
			v.json.write(&b)
			if v.loose {
				b.WriteString("<whitespace inside JSON>")
			}
		}
		b.WriteString(v.text)
	}
	return b.String()
}
