package doctest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Token is one token of a JSON text: a field name, a delimiter or a value.
type Token struct {
	Key   bool   // a field name
	Field string // the field the value or delimiter belongs to (an array's for its elements); "" for a field name and at the top
	Path  string // where it stands, as node.nodes[0].key; "" at the top
	Value any    // json.Delim, string, json.Number, bool or nil
}

// Tokens returns the tokens of a JSON text (one value, or several in a
// row as a stream of answers) in order, numbers as json.Number.
func Tokens(s string) ([]Token, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	type frame struct {
		obj, wantKey bool
		key, path    string // the field and path of the object or array
		field        string // in an object, the current field
		n            int    // in an array, the elements so far
	}
	var (
		stack []*frame
		out   []Token
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			out = append(out, Token{Field: top.key, Path: top.path, Value: d})
			continue
		}
		if top != nil && top.obj && top.wantKey {
			top.field, top.wantKey = tok.(string), false
			out = append(out, Token{Key: true, Path: top.path, Value: tok})
			continue
		}
		var field, path string
		switch {
		case top == nil:
		case top.obj:
			field, top.wantKey = top.field, true
			path = top.field
			if top.path != "" {
				path = top.path + "." + top.field
			}
		default:
			field, path = top.key, fmt.Sprintf("%s[%d]", top.path, top.n)
			top.n++
		}
		out = append(out, Token{Field: field, Path: path, Value: tok})
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &frame{obj: d == '{', wantKey: d == '{', key: field, path: path})
		}
	}
	return out, nil
}

// CompareJSON compares two JSON texts token by token: the same field
// names in the same order, the same structure, and for every value the
// verdict of value, given the field it belongs to (see Token.Field).
// Errors name the path of the first difference.
func CompareJSON(want, got string, value func(field string, w, g any) error) error {
	wt, err := Tokens(want)
	if err != nil {
		return fmt.Errorf("documented answer: %v", err)
	}
	gt, err := Tokens(got)
	if err != nil {
		return fmt.Errorf("answer: %v", err)
	}
	for i := range wt {
		w := wt[i]
		at := w.Path
		if at == "" {
			at = "the answer"
		}
		if i >= len(gt) {
			return fmt.Errorf("%s: answer ends, documented %v", at, w.Value)
		}
		g := gt[i]
		_, delim := w.Value.(json.Delim)
		switch {
		case w.Key != g.Key || w.Path != g.Path:
			return fmt.Errorf("%s: %v, documented %v", at, g.Value, w.Value)
		case w.Key || delim:
			if w.Value != g.Value {
				return fmt.Errorf("%s: %v, documented %v", at, g.Value, w.Value)
			}
		default:
			if err := value(w.Field, w.Value, g.Value); err != nil {
				return fmt.Errorf("%s: %v", at, err)
			}
		}
	}
	if len(gt) > len(wt) {
		return fmt.Errorf("%d JSON tokens, documented %d", len(gt), len(wt))
	}
	return nil
}
