package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// JSON request bodies (/v2/members; the v2 auth endpoints are meant to use
// the same helpers) are read with gjson, never decoded by reflection into
// structs: the body is bounded before anything is parsed, checked to be
// one JSON value, and each field is then read, and its type checked, by
// hand. The errors keep the words etcd's encoding/json gave, since
// clients and scripts see them.

// MaxJSONBody bounds a JSON request body. Nothing Cairn takes as JSON
// comes near it (a member's peer URLs are at most
// server.MaxPeerURLs × server.MaxURLBytes); etcd reads any size.
const MaxJSONBody = 64 << 10

// jsonMaxDepth is encoding/json's nesting limit: deeper input is a
// syntax error there, so it is here.
const jsonMaxDepth = 10000

// errBodyTooLarge is a body over MaxJSONBody.
var errBodyTooLarge = errors.New("request body too large: the limit is " + strconv.Itoa(MaxJSONBody) + " bytes")

// jsonContentType checks Content-Type as etcd's JSON endpoints do: it
// must be application/json; only when parameters follow (after ";") is
// the media type trimmed and lower-cased. It returns the media type as
// etcd names it in its 415 message.
func jsonContentType(r *http.Request) (string, bool) {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(strings.ToLower(ct[:i]))
	}
	return ct, ct == "application/json"
}

// readJSONBody reads r's body, at most MaxJSONBody bytes, and checks that
// it is exactly one JSON value (white space around it allowed). The error
// is errBodyTooLarge, the read error, or the syntax error in
// encoding/json's words ("unexpected end of JSON input", "invalid
// character 'x' looking for beginning of value", ...).
func readJSONBody(w http.ResponseWriter, r *http.Request) (gjson.Result, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return gjson.Result{}, errBodyTooLarge
		}
		return gjson.Result{}, err
	}
	if !gjson.ValidBytes(body) || nestsDeeper(body, jsonMaxDepth) {
		return gjson.Result{}, jsonSyntaxError(body)
	}
	return gjson.ParseBytes(body), nil
}

// jsonSyntaxError phrases why body is not JSON. encoding/json's scanner
// runs only here, on a body already refused, so the words are exactly
// the ones etcd answers with.
func jsonSyntaxError(body []byte) error {
	var raw json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return err
	}
	return errors.New("invalid JSON") // gjson and encoding/json disagree; not seen
}

// nestsDeeper reports whether the (valid) JSON b nests arrays and objects
// more than max deep.
func nestsDeeper(b []byte, max int) bool {
	if len(b) <= max {
		return false
	}
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped = c == '\\'
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > max {
				return true
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return false
}

// jsonKind names a JSON value's kind as encoding/json's type errors do.
func jsonKind(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return "string"
	case gjson.Number:
		return "number"
	case gjson.True, gjson.False:
		return "bool"
	case gjson.Null:
		return "null"
	}
	if strings.HasPrefix(v.Raw, "[") {
		return "array"
	}
	return "object"
}

// jsonTypeError is encoding/json's *UnmarshalTypeError message for a
// value of the wrong kind: into a field (field is the path of JSON names,
// struct the Go struct's type name, "" for etcd's anonymous request
// structs) or, when field is "", into the top-level value.
type jsonTypeError struct {
	kind, goType, structName, field string
}

func (e *jsonTypeError) Error() string {
	if e.field != "" {
		return "json: cannot unmarshal " + e.kind + " into Go struct field " + e.structName + "." + e.field + " of type " + e.goType
	}
	return "json: cannot unmarshal " + e.kind + " into Go value of type " + e.goType
}

// jsonField returns the value of the member of object obj whose name is
// name as encoding/json matches struct fields: exactly, or else ignoring
// case (Unicode simple folding). When the name occurs more than once,
// each occurrence is passed to each, in order (encoding/json decodes
// every one; the last wins, and the first type error is the one
// reported).
func jsonField(obj gjson.Result, name string, each func(v gjson.Result)) {
	obj.ForEach(func(k, v gjson.Result) bool {
		if s := k.String(); s == name || strings.EqualFold(s, name) {
			each(v)
		}
		return true
	})
}

// jsonStringList reads a JSON array of strings as encoding/json decodes
// it into a []string field: null is nil, a null element is "", and any
// other kind, of the value or of an element, is a type error (the first
// found). structName and field name the field for the error.
func jsonStringList(v gjson.Result, structName, field string) ([]string, error) {
	switch {
	case v.Type == gjson.Null:
		return nil, nil
	case !v.IsArray():
		return nil, &jsonTypeError{kind: jsonKind(v), goType: "[]string", structName: structName, field: field}
	}
	out := []string{}
	var first error
	v.ForEach(func(_, e gjson.Result) bool {
		switch e.Type {
		case gjson.String:
			out = append(out, jsonString(e))
		case gjson.Null:
			out = append(out, "")
		default:
			if first == nil {
				first = &jsonTypeError{kind: jsonKind(e), goType: "string", structName: structName, field: field}
			}
		}
		return true
	})
	return out, first
}

// jsonString is a JSON string's value as encoding/json gives it: every
// byte that is not part of valid UTF-8 becomes U+FFFD (gjson keeps such
// bytes; it already turns lone surrogate escapes into U+FFFD).
func jsonString(v gjson.Result) string {
	s := v.String()
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s { // ranging yields U+FFFD for each bad byte
		b.WriteRune(r)
	}
	return b.String()
}
