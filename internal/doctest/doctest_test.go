package doctest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestWords(t *testing.T) {
	vars := map[string]string{"ETCD": "<e>", "CAIRN": "<c>"}
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`curl -s  -XPUT`, []string{"curl", "-s", "-XPUT"}},
		{"a\tb", []string{"a", "b"}},
		{`'a b' "c d"`, []string{"a b", "c d"}},
		{`'$ETCD' "$ETCD"`, []string{"$ETCD", "<e>"}},             // no expansion in single quotes
		{`-w '%{http_code}\n'`, []string{"-w", `%{http_code}\n`}}, // nor escapes
		{`"a\"b\\c\$d\n"`, []string{`a"b\c$d\n`}},                 // escapes in double quotes
		{`a\ b\'c`, []string{"a b'c"}},                            // escapes outside quotes
		{`x'y'"z"w`, []string{"xyzw"}},                            // one word of quoted parts
		{`$ETCD/v2/keys "${CAIRN}/v2?x=1"`, []string{"<e>/v2/keys", "<c>/v2?x=1"}},
		{`${ETCD}x $CAIRN/`, []string{"<e>x", "<c>/"}},
		{`curl $ETCD/a # a comment 'unterminated`, []string{"curl", "<e>/a"}},
		{`# only a comment`, nil},
		{`a#b`, []string{"a#b"}}, // # inside a word is not a comment
		{`''`, []string{""}},
		{``, nil},
	} {
		got, err := Words(tc.line, vars)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Words(%s) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		`'unterminated`,
		`"unterminated`,
		`"ends in a backslash\"`,
		`$HOME/x`,   // not one of vars
		`"$ETCDX/"`, // a longer name is another variable
		`${ETCD`,    // unterminated ${
		`${HOME}`,   // not one of vars
		`$`,         // no name
		`a | b`,     // a pipe
		`a > f`,     // a redirection
		`a; b`,      // a list
		`a*`,        // a glob
		"a `b`",     // a command substitution
	} {
		if got, err := Words(bad, vars); err == nil {
			t.Errorf("Words(%s) = %q, want an error", bad, got)
		}
	}
}

func TestParseCurl(t *testing.T) {
	c, err := ParseCurl(`curl -s "$V/v2/keys/a?x=1" -d value=b -d 'c=d e'`, "V", nil)
	if err != nil || c.Method != "POST" || c.Target != "/v2/keys/a?x=1" || !slices.Equal(c.Data, []string{"value=b", "c=d e"}) {
		t.Errorf("got %+v, %v", c, err)
	}
	c, err = ParseCurl(`curl -X DELETE ${V}/a`, "V", nil)
	if err != nil || c.Method != "DELETE" || c.Target != "/a" {
		t.Errorf("got %+v, %v", c, err)
	}
	c, err = ParseCurl(`curl $V/a`, "V", nil)
	if err != nil || c.Method != "GET" {
		t.Errorf("got %+v, %v", c, err)
	}
	var seen []string
	opt := func(a string, next func() (string, error)) (bool, error) {
		if a != "-w" {
			return false, nil
		}
		f, err := next()
		seen = append(seen, f)
		return true, err
	}
	if c, err = ParseCurl(`curl -w '%{http_code}\n' -XPUT $V/a`, "V", opt); err != nil || c.Method != "PUT" || !slices.Equal(seen, []string{`%{http_code}\n`}) {
		t.Errorf("got %+v, %v, option saw %q", c, err, seen)
	}
	for _, bad := range []string{
		`wget $V/a`,
		`curl $V/a $V/b`,
		`curl -i $V/a`,
		`curl -w`,
		`curl -X`,
		`curl -d`,
		`curl -s`,
		`curl http://127.0.0.1/a`,
		`curl $W/a`,
		`curl "$V/a`,
	} {
		if c, err := ParseCurl(bad, "V", opt); err == nil {
			t.Errorf("ParseCurl(%s) = %+v, want an error", bad, c)
		}
	}
}

func TestNumbers(t *testing.T) {
	re := regexp.MustCompile(`\[(\d+) != (\d+)\]|\d{3}`)
	s, nums := SplitNumbers("[1 != 22] k/123/4567 [x != 1]", re)
	if s != "[# != #] k/#/#7 [x != 1]" || !slices.Equal(nums, []uint64{1, 22, 123, 456}) {
		t.Errorf("SplitNumbers: %q %v", s, nums)
	}
	n := 0
	out, err := ReplaceNumbers("a111b222", re, func(d string) (string, error) {
		n++
		if n == 2 {
			return "<" + d + ">", fmt.Errorf("second")
		}
		return "<" + d + ">", nil
	})
	if out != "a<111>b<222>" || err == nil || err.Error() != "second" {
		t.Errorf("ReplaceNumbers: %q %v", out, err)
	}
}

func TestCompareJSON(t *testing.T) {
	toks, err := Tokens(`{"a":[1,{"b":"x"}],"c":null}`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range toks {
		got = append(got, fmt.Sprintf("%v|%s|%s|%v", tk.Key, tk.Field, tk.Path, tk.Value))
	}
	want := []string{
		"false|||{", "true|||a", "false|a|a|[", "false|a|a[0]|1", "false|a|a[1]|{",
		"true||a[1]|b", "false|b|a[1].b|x", "false|a|a[1]|}", "false|a|a|]",
		"true|||c", "false|c|c|<nil>", "false|||}",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Tokens:\n got %q\nwant %q", got, want)
	}
	if _, ok := toks[3].Value.(json.Number); !ok {
		t.Errorf("a number is %T, want json.Number", toks[3].Value)
	}

	var fields []string
	equal := func(field string, w, g any) error {
		fields = append(fields, field)
		if w != g {
			return fmt.Errorf("%v, documented %v", g, w)
		}
		return nil
	}
	doc := `{"action":"get","node":{"key":"/a","nodes":[{"v":1},{"v":2}]}}`
	if err := CompareJSON(doc, doc+"\n", equal); err != nil {
		t.Errorf("an equal answer was refused: %v", err)
	}
	if want := []string{"action", "key", "v", "v"}; !slices.Equal(fields, want) {
		t.Errorf("value was given the fields %q, want %q", fields, want)
	}
	for name, g := range map[string]string{
		"field order":   `{"node":{"key":"/a","nodes":[{"v":1},{"v":2}]},"action":"get"}`,
		"missing field": `{"action":"get","node":{"nodes":[{"v":1},{"v":2}]}}`,
		"extra field":   `{"action":"get","node":{"key":"/a","dir":true,"nodes":[{"v":1},{"v":2}]}}`,
		"value":         `{"action":"get","node":{"key":"/a","nodes":[{"v":1},{"v":3}]}}`,
		"extra element": `{"action":"get","node":{"key":"/a","nodes":[{"v":1},{"v":2},{"v":3}]}}`,
		"fewer":         `{"action":"get","node":{"key":"/a","nodes":[{"v":1}]}}`,
		"object":        `{"action":"get","node":{"key":{},"nodes":[{"v":1},{"v":2}]}}`,
		"array":         `{"action":"get","node":{"key":"/a","nodes":{"v":1}}}`,
		"two values":    doc + doc,
		"truncated":     `{"action":"get","node":{"key":"/a","nodes":[{"v":1},{"v":2}]}`,
		"not JSON":      `{"action":get}`,
	} {
		if err := CompareJSON(doc, g, equal); err == nil {
			t.Errorf("%s: a different answer was accepted", name)
		}
	}
	err = CompareJSON(doc, strings.Replace(doc, `"v":2`, `"v":3`, 1), equal)
	if err == nil || !strings.HasPrefix(err.Error(), "node.nodes[1].v: ") {
		t.Errorf("the error does not name the path: %v", err)
	}
}

func TestNormaliser(t *testing.T) {
	off := int64(3)
	n := Normaliser{
		Indexes: []string{"index"},
		Strings: func(field string) *regexp.Regexp {
			if field == "key" {
				return regexp.MustCompile(`\d{20}`)
			}
			return nil
		},
		Check: func(want, got uint64) error {
			if int64(got) != int64(want)+off {
				return fmt.Errorf("index %d, documented %d", got, want)
			}
			return nil
		},
	}
	num := func(s string) json.Number { return json.Number(s) }
	for _, tc := range []struct {
		field string
		w, g  any
		ok    bool
	}{
		{"index", num("4"), num("7"), true},
		{"index", num("4"), num("8"), false},
		{"index", num("4"), "7", false},
		{"other", num("4"), num("4"), true},
		{"other", num("4"), num("7"), false},
		{"ttl", num("30"), num("30"), true},
		{"ttl", num("30"), num("25"), true},
		{"ttl", num("30"), num("31"), true},
		{"ttl", num("30"), num("24"), false},
		{"ttl", num("30"), num("32"), false},
		{"ttl", num("2"), num("0"), false},
		{"expiration", "2026-11-21T09:09:38.613062437Z", "2027-01-01T00:00:00Z", true},
		{"expiration", "2026-11-21T09:09:38Z", "soon", false},
		{"expiration", "2026-11-21T09:09:38Z", "2027-01-01T00:00:00+01:00", false},
		{"key", "/q/00000000000000000004", "/q/00000000000000000007", true},
		{"key", "/q/00000000000000000004", "/q/00000000000000000008", false},
		{"key", "/q/00000000000000000004", "/r/00000000000000000007", false},
		{"value", "00000000000000000004", "00000000000000000007", false}, // no pattern: equal
		{"value", "a", "a", true},
		{"value", true, true, true},
		{"value", true, false, false},
		{"value", nil, nil, true},
		{"value", nil, "", false},
	} {
		if err := n.Value(tc.field, tc.w, tc.g); (err == nil) != tc.ok {
			t.Errorf("Value(%s, %v, %v) = %v, want ok %v", tc.field, tc.w, tc.g, err, tc.ok)
		}
	}
}

func TestOffset(t *testing.T) {
	var o Offset
	if _, err := o.Shift(4); err == nil {
		t.Error("Shift before any answer was accepted")
	}
	if err := o.Check(5, 8); err != nil || o.Off != 3 {
		t.Fatalf("the first index did not fix the offset: %v, %+v", err, o)
	}
	if err := o.Check(6, 9); err != nil {
		t.Error(err)
	}
	if err := o.Check(6, 10); err == nil {
		t.Error("a wrong index was accepted")
	}
	if n, err := o.Shift(4); err != nil || n != 7 {
		t.Errorf("Shift(4) = %d, %v", n, err)
	}
	o = Offset{Known: true, Off: -3}
	if _, err := o.Shift(1); err == nil {
		t.Error("a negative index was accepted")
	}
}
