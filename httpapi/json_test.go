package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cairnkv/cairn/store"
)

// The hand-written encoder must produce encoding/json's bytes as etcd 3.4
// had them (API.md §0, §1.4-1.5, §3.1). etcd 3.4 was built with a Go older
// than 1.22, which wrote \b and \f as \u0008 and \u000c; the modern
// encoding/json names them, so the reference maps them back.

// legacyEscapes rewrites the \b and \f escapes of modern encoding/json
// output as \u0008 and \u000c, leaving every other escape (\\b included)
// alone.
func legacyEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			b.WriteString(`\u0008`)
		case 'f':
			b.WriteString(`\u000c`)
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// refString is s as etcd's encoding/json wrote it (HTML escaping on).
func refString(t testing.TB, s string) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(s); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return legacyEscapes(strings.TrimSuffix(buf.String(), "\n"))
}

// sanitize replaces each invalid UTF-8 byte with U+FFFD, as encoding/json
// does (strings.ToValidUTF8 would merge runs).
func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // RuneError for an invalid byte, n == 1
		i += n
	}
	return b.String()
}

func TestLegacyEscapes(t *testing.T) {
	for in, want := range map[string]string{
		`"\b"`:        `"\u0008"`,
		`"\f\n"`:      `"\u000c\n"`,
		`"\\b\\f"`:    `"\\b\\f"`,
		`"\\\b"`:      `"\\\u0008"`,
		`"a\u003cb"`:  `"a\u003cb"`,
		`"\\\\\\\f"`:  `"\\\\\\\u000c"`,
		`"\"b\"f"`:    `"\"b\"f"`,
		`"plain b f"`: `"plain b f"`,
	} {
		if got := legacyEscapes(in); got != want {
			t.Errorf("legacyEscapes(%s) = %s, want %s", in, got, want)
		}
	}
}

var trickyStrings = []string{
	"",
	"plain ascii",
	`"quoted"`,
	`back\slash`,
	`\b \f literally`, // backslash + letter: not the control characters
	"\b\f\n\r\t",
	"\x00\x01\x02\x03\x04\x05\x06\x07\x0b\x0e\x0f\x10\x11\x1a\x1b\x1e\x1f",
	"\x7f del",
	"<script>alert('x&y')</script>",
	"a > b && c < d",
	"/slash/ 'single' `back`",
	"\u2028line\u2029para",
	"\u2027\u202a", // neighbours of the two escaped separators
	"é€😀 中文 \ufeff",
	"\xef\xbf\xbd",     // a literal U+FFFD stays raw
	"\xff",             // invalid byte
	"a\xffb\xfe",       // invalid bytes inside
	"\xc3\x28",         // bad continuation
	"\xe2\x82",         // truncated 3-byte sequence at the end
	"\xe2\x82x",        // truncated inside
	"\xed\xa0\x80",     // UTF-8-encoded surrogate half
	"\xf4\x90\x80\x80", // above U+10FFFF
	"\xc0\xaf",         // overlong '/'
	"\xf0\x9f\x98",     // truncated emoji
	"mixed <\x00\xff\u2028\"\\&>",
	strings.Repeat("a", 1000) + "\n" + strings.Repeat("<", 100),
	"\u0080\u00a0\u00ad\u0600\u200b\ufeff\U0010ffff",
}

func TestAppendStringTable(t *testing.T) {
	for _, s := range trickyStrings {
		got := string(appendString(nil, s))
		if want := refString(t, s); got != want {
			t.Errorf("appendString(%q)\n got %s\nwant %s", s, got, want)
		}
	}
}

// Specific bytes, independent of any reference encoder.
func TestAppendStringExact(t *testing.T) {
	for in, want := range map[string]string{
		"":             `""`,
		"\b":           `"\u0008"`,
		"\f":           `"\u000c"`,
		"\n\r\t":       `"\n\r\t"`,
		"\x00\x1f":     `"\u0000\u001f"`,
		"<>&":          `"\u003c\u003e\u0026"`,
		"\u2028\u2029": `"\u2028\u2029"`,
		"\xff":         `"\ufffd"`,
		"\xe2\x82":     `"\ufffd\ufffd"`,
		`"\`:           `"\"\\"`,
		"\x7f":         "\"\x7f\"",
		"é":            `"é"`,
		"a\xffb":       `"a\ufffdb"`,
		"/v2/keys/a b": `"/v2/keys/a b"`,
	} {
		if got := string(appendString(nil, in)); got != want {
			t.Errorf("appendString(%q) = %s, want %s", in, got, want)
		}
	}
}

// appendString appends: what is already in the buffer stays.
func TestAppendStringAppends(t *testing.T) {
	b := []byte("prefix:")
	b = appendString(b, "<x>")
	b = append(b, ',')
	b = appendString(b, "\xff")
	if got, want := string(b), `prefix:"\u003cx\u003e","\ufffd"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// randomString draws strings rich in the characters that need care.
func randomString(r *rand.Rand) string {
	pieces := []string{
		"<", ">", "&", `"`, `\`, "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f", "\x7f",
		"\u2028", "\u2029", "é", "€", "😀", "\ufffd", "\xef\xbf\xbd",
		"\xff", "\xfe", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf",
		`\b`, `\f`, `\u0008`, "a", "b", "f", "u", "0", " ", "/",
	}
	n := r.IntN(24)
	var b strings.Builder
	for i := 0; i < n; i++ {
		switch r.IntN(4) {
		case 0:
			b.WriteByte(byte(r.IntN(256)))
		case 1:
			b.WriteRune(rune(r.IntN(0x110000)))
		default:
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
	}
	return b.String()
}

func TestAppendStringRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	for i := 0; i < 20000; i++ {
		s := randomString(r)
		got := appendString(nil, s)
		if want := refString(t, s); string(got) != want {
			t.Fatalf("seed %d, case %d: appendString(%q)\n got %s\nwant %s", seed, i, s, got, want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("seed %d: appendString(%q) = %s is not valid JSON: %v", seed, s, got, err)
		}
		if back != sanitize(s) {
			t.Fatalf("seed %d: appendString(%q) decodes to %q, want %q", seed, s, back, sanitize(s))
		}
	}
}

// refNode is the node object as etcd declared it: field order and
// omitempty rules of API.md §1.5, encoded by encoding/json.
type refNode struct {
	Key           string     `json:"key,omitempty"`
	Value         *string    `json:"value,omitempty"`
	Dir           bool       `json:"dir,omitempty"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
	Nodes         []*refNode `json:"nodes,omitempty"`
	ModifiedIndex uint64     `json:"modifiedIndex,omitempty"`
	CreatedIndex  uint64     `json:"createdIndex,omitempty"`
}

type refEvent struct {
	Action   string   `json:"action"`
	Node     *refNode `json:"node,omitempty"`
	PrevNode *refNode `json:"prevNode,omitempty"`
}

type refError struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause,omitempty"`
	Index     uint64 `json:"index"`
}

// ceilSeconds is ceil(d / 1s) computed with floor division.
func ceilSeconds(d int64) int64 {
	const s = int64(time.Second)
	q := -d / s // truncated toward zero: floor(-d/s) for -d >= 0
	if -d < 0 && -d%s != 0 {
		q-- // floor for negative -d
	}
	return -q
}

func toRef(n *store.NodeView, now int64) *refNode {
	if n == nil {
		return nil
	}
	r := &refNode{Key: n.Key, Dir: n.Dir, ModifiedIndex: n.ModifiedIndex, CreatedIndex: n.CreatedIndex}
	if n.HasValue {
		v := n.Value
		r.Value = &v
	}
	if n.Expiration != 0 {
		exp := time.Unix(0, n.Expiration).UTC()
		r.Expiration = &exp
		r.TTL = ceilSeconds(n.Expiration - now)
	}
	for _, c := range n.Nodes {
		r.Nodes = append(r.Nodes, toRef(c, now))
	}
	return r
}

func refJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v) // HTML escaping on, as in etcd
	if err != nil {
		t.Fatal(err)
	}
	return legacyEscapes(string(b))
}

func TestCeilSeconds(t *testing.T) {
	for d, want := range map[int64]int64{
		0: 0, 1: 1, 1e9: 1, 1e9 + 1: 2, 5e9: 5, 4999999999: 5,
		-1: 0, -999999999: 0, -1e9: -1, -1e9 - 1: -1, -1999999999: -1, -2e9: -2,
	} {
		if got := ceilSeconds(d); got != want {
			t.Errorf("ceilSeconds(%d) = %d, want %d", d, got, want)
		}
	}
}

var jsonNow = time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC).UnixNano()

func TestAppendNodeRules(t *testing.T) {
	sec := int64(time.Second)
	exp := jsonNow + 5*sec
	tests := []struct {
		name string
		n    store.NodeView
		want string
	}{
		{"root: no key, no indexes", store.NodeView{Dir: true}, `{"dir":true}`},
		{"root with children", store.NodeView{Dir: true, Nodes: []*store.NodeView{{Key: "/a", HasValue: true, Value: "1", ModifiedIndex: 2, CreatedIndex: 2}}},
			`{"dir":true,"nodes":[{"key":"/a","value":"1","modifiedIndex":2,"createdIndex":2}]}`},
		{"empty value on a file is present", store.NodeView{Key: "/a", HasValue: true, ModifiedIndex: 1, CreatedIndex: 1},
			`{"key":"/a","value":"","modifiedIndex":1,"createdIndex":1}`},
		{"deleted node: no value", store.NodeView{Key: "/a", ModifiedIndex: 3, CreatedIndex: 1},
			`{"key":"/a","modifiedIndex":3,"createdIndex":1}`},
		{"dir only when true", store.NodeView{Key: "/d", Dir: true, ModifiedIndex: 4, CreatedIndex: 4},
			`{"key":"/d","dir":true,"modifiedIndex":4,"createdIndex":4}`},
		{"empty nodes omitted", store.NodeView{Key: "/d", Dir: true, Nodes: []*store.NodeView{}, ModifiedIndex: 4, CreatedIndex: 4},
			`{"key":"/d","dir":true,"modifiedIndex":4,"createdIndex":4}`},
		{"ttl exact", store.NodeView{Key: "/t", HasValue: true, Value: "v", Expiration: exp, ModifiedIndex: 1, CreatedIndex: 1},
			`{"key":"/t","value":"v","expiration":"2026-11-21T05:00:05Z","ttl":5,"modifiedIndex":1,"createdIndex":1}`},
		{"ttl rounds up", store.NodeView{Key: "/t", HasValue: true, Value: "v", Expiration: jsonNow + 4*sec + 1, ModifiedIndex: 1, CreatedIndex: 1},
			`{"key":"/t","value":"v","expiration":"2026-11-21T05:00:04.000000001Z","ttl":5,"modifiedIndex":1,"createdIndex":1}`},
		{"ttl rounds up from a nanosecond", store.NodeView{Key: "/t", HasValue: true, Value: "v", Expiration: jsonNow + 1, ModifiedIndex: 1, CreatedIndex: 1},
			`{"key":"/t","value":"v","expiration":"2026-11-21T05:00:00.000000001Z","ttl":1,"modifiedIndex":1,"createdIndex":1}`},
		{"ttl 0 omitted, expiration kept", store.NodeView{Key: "/t", HasValue: true, Value: "v", Expiration: jsonNow, ModifiedIndex: 1, CreatedIndex: 1},
			`{"key":"/t","value":"v","expiration":"2026-11-21T05:00:00Z","modifiedIndex":1,"createdIndex":1}`},
		{"ttl just passed rounds to 0", store.NodeView{Key: "/t", HasValue: true, Value: "v", Expiration: jsonNow - sec + 1, ModifiedIndex: 1, CreatedIndex: 1},
			`{"key":"/t","value":"v","expiration":"2026-11-21T04:59:59.000000001Z","modifiedIndex":1,"createdIndex":1}`},
		{"negative ttl", store.NodeView{Key: "/t", HasValue: true, Value: "v", Expiration: jsonNow - 1500*int64(time.Millisecond), ModifiedIndex: 1, CreatedIndex: 1},
			`{"key":"/t","value":"v","expiration":"2026-11-21T04:59:58.5Z","ttl":-1,"modifiedIndex":1,"createdIndex":1}`},
		{"negative ttl whole seconds", store.NodeView{Key: "/t", HasValue: true, Value: "v", Expiration: jsonNow - 3*sec, ModifiedIndex: 1, CreatedIndex: 1},
			`{"key":"/t","value":"v","expiration":"2026-11-21T04:59:57Z","ttl":-3,"modifiedIndex":1,"createdIndex":1}`},
		{"fraction trailing zeros trimmed", store.NodeView{Key: "/t", HasValue: true, Value: "v", Expiration: jsonNow + 57*sec + 974846080, ModifiedIndex: 1, CreatedIndex: 1},
			`{"key":"/t","value":"v","expiration":"2026-11-21T05:00:57.97484608Z","ttl":58,"modifiedIndex":1,"createdIndex":1}`},
		{"dir ttl before nodes", store.NodeView{Key: "/d", Dir: true, Expiration: exp, Nodes: []*store.NodeView{{Key: "/d/sub", Dir: true, ModifiedIndex: 7, CreatedIndex: 7}}, ModifiedIndex: 6, CreatedIndex: 6},
			`{"key":"/d","dir":true,"expiration":"2026-11-21T05:00:05Z","ttl":5,"nodes":[{"key":"/d/sub","dir":true,"modifiedIndex":7,"createdIndex":7}],"modifiedIndex":6,"createdIndex":6}`},
		{"escaped key and value", store.NodeView{Key: "/a<b>&c", HasValue: true, Value: "\"\\\u2028\xff\b", ModifiedIndex: 1, CreatedIndex: 1},
			`{"key":"/a\u003cb\u003e\u0026c","value":"\"\\\u2028\ufffd\u0008","modifiedIndex":1,"createdIndex":1}`},
		{"big indexes", store.NodeView{Key: "/i", HasValue: true, ModifiedIndex: 1<<64 - 1, CreatedIndex: 1 << 63},
			`{"key":"/i","value":"","modifiedIndex":18446744073709551615,"createdIndex":9223372036854775808}`},
	}
	for _, tc := range tests {
		got := string(appendNode(nil, &tc.n, jsonNow))
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
		if ref := refJSON(t, toRef(&tc.n, jsonNow)); got != ref {
			t.Errorf("%s: differs from encoding/json:\n got %s\n ref %s", tc.name, got, ref)
		}
	}
}

func TestAppendEventRules(t *testing.T) {
	node := &store.NodeView{Key: "/k", HasValue: true, Value: "v", ModifiedIndex: 2, CreatedIndex: 2}
	prev := &store.NodeView{Key: "/k", HasValue: true, Value: "u", ModifiedIndex: 1, CreatedIndex: 1}
	tests := []struct {
		name    string
		e       store.Event
		noValue bool
		want    string
	}{
		{"node only", store.Event{Action: "set", Node: node}, false,
			`{"action":"set","node":{"key":"/k","value":"v","modifiedIndex":2,"createdIndex":2}}`},
		{"node and prevNode", store.Event{Action: "compareAndSwap", Node: node, PrevNode: prev}, false,
			`{"action":"compareAndSwap","node":{"key":"/k","value":"v","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/k","value":"u","modifiedIndex":1,"createdIndex":1}}`},
		{"noValue strips both", store.Event{Action: "set", Node: node, PrevNode: prev}, true, `{"action":"set"}`},
		{"no nodes", store.Event{Action: "get"}, false, `{"action":"get"}`},
		{"prevNode without node", store.Event{Action: "x", PrevNode: prev}, false,
			`{"action":"x","prevNode":{"key":"/k","value":"u","modifiedIndex":1,"createdIndex":1}}`},
		{"refresh flag never serialised", store.Event{Action: "set", Node: node, Refresh: true}, false,
			`{"action":"set","node":{"key":"/k","value":"v","modifiedIndex":2,"createdIndex":2}}`},
		{"escaped action", store.Event{Action: "<&>"}, false, `{"action":"\u003c\u0026\u003e"}`},
	}
	for _, tc := range tests {
		got := string(appendEvent(nil, &tc.e, jsonNow, tc.noValue))
		if got != tc.want+"\n" {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want+"\n")
		}
		if !tc.noValue {
			ref := refJSON(t, refEvent{Action: tc.e.Action, Node: toRef(tc.e.Node, jsonNow), PrevNode: toRef(tc.e.PrevNode, jsonNow)})
			if got != ref+"\n" {
				t.Errorf("%s: differs from encoding/json:\n got %s\n ref %s", tc.name, got, ref)
			}
		}
	}
}

func TestAppendErrorRules(t *testing.T) {
	tests := []struct {
		e    *store.Error
		want string
	}{
		{store.NewError(100, "/a", 7), `{"errorCode":100,"message":"Key not found","cause":"/a","index":7}`},
		{store.NewError(300, "", 0), `{"errorCode":300,"message":"Raft Internal Error","index":0}`},
		{store.NewError(101, "[<a> != b&c]", 1<<64-1), `{"errorCode":101,"message":"Compare failed","cause":"[\u003ca\u003e != b\u0026c]","index":18446744073709551615}`},
		{store.NewError(999, "x", 0), `{"errorCode":999,"message":"","cause":"x","index":0}`},
		{store.NewError(209, `invalid value for "dir"`, 0), `{"errorCode":209,"message":"Invalid field","cause":"invalid value for \"dir\"","index":0}`},
	}
	for _, tc := range tests {
		got := string(appendError(nil, tc.e))
		if got != tc.want+"\n" {
			t.Errorf("%v:\n got %s\nwant %s", tc.e, got, tc.want+"\n")
		}
		ref := refJSON(t, refError{ErrorCode: tc.e.Code, Message: tc.e.Message(), Cause: tc.e.Cause, Index: tc.e.Index})
		if got != ref+"\n" {
			t.Errorf("%v: differs from encoding/json:\n got %s\n ref %s", tc.e, got, ref)
		}
	}
}

// randomNode draws a node tree with every optional field sometimes set.
func randomNode(r *rand.Rand, depth int) *store.NodeView {
	n := &store.NodeView{}
	if r.IntN(8) != 0 {
		n.Key = "/" + randomString(r)
	}
	if r.IntN(3) == 0 {
		n.Dir = true
	} else if r.IntN(4) != 0 {
		n.HasValue = true
		n.Value = randomString(r)
	}
	if r.IntN(3) == 0 {
		// Within ±100 years of now, any nanosecond.
		n.Expiration = jsonNow + r.Int64N(200*365*24*int64(time.Hour)) - 100*365*24*int64(time.Hour)
		if r.IntN(4) == 0 {
			n.Expiration = jsonNow + r.Int64N(4e9) - 2e9 // around now: ttl -2..2
		}
	}
	if r.IntN(4) != 0 {
		n.ModifiedIndex = r.Uint64() >> uint(r.IntN(64)) // small and large
	}
	if r.IntN(4) != 0 {
		n.CreatedIndex = r.Uint64()
	}
	if n.Dir && depth < 3 {
		for i := r.IntN(4); i > 0; i-- {
			n.Nodes = append(n.Nodes, randomNode(r, depth+1))
		}
		if n.Nodes == nil && r.IntN(2) == 0 {
			n.Nodes = []*store.NodeView{}
		}
	}
	return n
}

func TestAppendEventRandomAgainstEncodingJSON(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 0xe7e7))
	actions := []string{"get", "set", "create", "update", "compareAndSwap", "delete", "compareAndDelete", "expire"}
	for i := 0; i < 3000; i++ {
		e := &store.Event{Action: actions[r.IntN(len(actions))]}
		if r.IntN(6) != 0 {
			e.Node = randomNode(r, 0)
		}
		if r.IntN(2) == 0 {
			e.PrevNode = randomNode(r, 2)
		}
		now := jsonNow + r.Int64N(10e9) - 5e9
		got := string(appendEvent(nil, e, now, false))
		ref := refJSON(t, refEvent{Action: e.Action, Node: toRef(e.Node, now), PrevNode: toRef(e.PrevNode, now)}) + "\n"
		if got != ref {
			t.Fatalf("seed %d, case %d:\n got %s\n ref %s", seed, i, got, ref)
		}
	}
}

// stringLen and nodeLen, which size an answer before it is built, agree
// with the encoder byte for byte.
func TestLengthsMatchTheEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "Z", "/", " ", "\"", "\\", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "<", ">", "&",
		"é", "日本", "\u2028", "\u2029", "\xff", "\xe2\x80", "😀", "\ufffd"}
	str := func() string {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC).UnixNano()
	for range 5000 {
		s := str()
		if got, want := stringLen(s), len(appendString(nil, s)); got != want {
			t.Fatalf("stringLen(%q) = %d, want %d", s, got, want)
		}
		n := &store.NodeView{Key: "/" + str(), Value: str(), HasValue: rng.IntN(2) == 0, Dir: rng.IntN(3) == 0,
			ModifiedIndex: rng.Uint64N(1 << rng.IntN(64)), CreatedIndex: rng.Uint64N(1 << rng.IntN(64))}
		if rng.IntN(2) == 0 {
			n.Key = ""
		}
		if rng.IntN(2) == 0 {
			n.Expiration = now + rng.Int64N(1e15) - 1e12 // past ones too: negative ttl
		}
		if got, want := nodeLen(n, now), len(appendNode(nil, n, now)); got != want {
			t.Fatalf("nodeLen(%+v) = %d, want %d (%s)", n, got, want, appendNode(nil, n, now))
		}
		if got, most := nodeLen(n, now)+1+len(`,"nodes":[]`), maxNodeOverhead+6*(len(n.Key)+len(n.Value)); got > most {
			t.Fatalf("nodeLen(%+v) = %d, more than maxNodeOverhead allows (%d)", n, got, most)
		}
	}
	// The longest node there can be, at the clocks that make its ttl
	// longest.
	n := &store.NodeView{Key: "/\x00", Value: "\u2028", HasValue: true, Dir: true, Expiration: math.MaxInt64,
		ModifiedIndex: math.MaxUint64, CreatedIndex: math.MaxUint64}
	for _, at := range []int64{math.MinInt64, -1, 0, math.MaxInt64} {
		for _, exp := range []int64{math.MinInt64, -1, 1, math.MaxInt64} {
			n.Expiration = exp
			if got, most := nodeLen(n, at)+1+len(`,"nodes":[]`), maxNodeOverhead+6*(len(n.Key)+len(n.Value)); got > most {
				t.Errorf("expiration %d at %d: %d bytes, more than maxNodeOverhead allows (%d)", exp, at, got, most)
			}
		}
	}
}

// answerSize is never below the answer a get builds, above it by at most
// a comma and an empty nodes array per node, and never above answerBound.
func TestAnswerSizeBoundsTheAnswer(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC).UnixNano()
	st := store.New(10)
	names := []string{"a", "b", "_h", "c<&>", "d\n"}
	var paths []string
	for i := range 300 {
		p := ""
		for range 1 + rng.IntN(4) {
			p += "/" + names[rng.IntN(len(names))]
		}
		r := &store.Request{Op: store.OpSet, Path: p, Value: strings.Repeat("v\"", rng.IntN(5)), Time: now}
		if rng.IntN(4) == 0 {
			r.HasTTL, r.TTL = true, uint64(1+rng.IntN(100))
		}
		if rng.IntN(6) == 0 {
			r.Op, r.Path = store.OpCreateInOrder, store.CleanPath(p+"/..")
		}
		if _, err := st.Apply(uint64(i+1), r); err == nil {
			paths = append(paths, p)
		}
	}
	paths = append(paths, "/", "/a", "/b", "/nope")
	for _, p := range paths {
		for _, recursive := range []bool{false, true} {
			e, gerr := st.Get(p, recursive)
			size, err := answerSize(st, p, recursive, now, 1<<62)
			if (gerr == nil) != (err == nil) {
				t.Fatalf("%s: Get %v, answerSize %v", p, gerr, err)
			}
			if gerr != nil {
				continue
			}
			got := int64(len(appendEvent(nil, e, now, false)))
			nodes := int64(0)
			_ = st.Visit(p, recursive, func(store.NodeView) bool { nodes++; return true })
			if size < got || size > got+nodes*int64(1+len(`,"nodes":[]`)) {
				t.Fatalf("get %s recursive=%v: answerSize %d for an answer of %d bytes (%d nodes)", p, recursive, size, got, nodes)
			}
			if data, _ := st.SubtreeBytes(p); size > answerBound(data) {
				t.Fatalf("get %s: answerSize %d over answerBound(%d) = %d", p, size, data, answerBound(data))
			}
			// It stops once past stopAt.
			if stop, _ := answerSize(st, p, recursive, now, got/2); got/2 > 0 && nodes > 2 && stop >= size {
				t.Fatalf("get %s: answerSize went on past its stop: %d", p, stop)
			}
		}
	}
}
