package httpapi

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cairnkv/cairn/store"
)

// The keys API's JSON is written by hand into a byte slice: field order,
// omission rules and string escaping must match what etcd's encoding/json
// produced (API.md §1.4-1.5, §3.1), and a recursive listing of 10k keys
// should not cost reflection per node.

const hexDigits = "0123456789abcdef"

// jsonSafe[c] reports whether byte c is copied into a JSON string as it
// is: ASCII from 0x20 but for quote, backslash, <, > and &. Bytes from
// 0x80 are not: they start a rune that is checked.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string escaped as Go's encoding/json
// did for etcd 3.4 (HTML escaping on): quote, backslash and control
// characters escaped (\n \r \t by name, the rest as \u00XX), <, > and & as
// \u003c \u003e \u0026, invalid UTF-8 as \ufffd, U+2028/U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendNode appends a node object. TTLs are computed at now (Unix ns).
func appendNode(b []byte, n *store.NodeView, now int64) []byte {
	b = append(b, '{')
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if n.Key != "" {
		field("key")
		b = appendString(b, n.Key)
	}
	if n.HasValue {
		field("value")
		b = appendString(b, n.Value)
	}
	if n.Dir {
		field("dir")
		b = append(b, "true"...)
	}
	if n.Expiration != 0 {
		field("expiration")
		b = append(b, '"')
		b = time.Unix(0, n.Expiration).UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
		if ttl := n.TTL(now); ttl != 0 {
			field("ttl")
			b = strconv.AppendInt(b, ttl, 10)
		}
	}
	if len(n.Nodes) > 0 {
		field("nodes")
		b = append(b, '[')
		for i, c := range n.Nodes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNode(b, c, now)
		}
		b = append(b, ']')
	}
	if n.ModifiedIndex != 0 {
		field("modifiedIndex")
		b = strconv.AppendUint(b, n.ModifiedIndex, 10)
	}
	if n.CreatedIndex != 0 {
		field("createdIndex")
		b = strconv.AppendUint(b, n.CreatedIndex, 10)
	}
	return append(b, '}')
}

// appendEvent appends an event object and a newline. noValue strips the
// nodes (noValueOnSuccess).
func appendEvent(b []byte, e *store.Event, now int64, noValue bool) []byte {
	b = append(b, `{"action":`...)
	b = appendString(b, e.Action)
	if !noValue {
		if e.Node != nil {
			b = append(b, `,"node":`...)
			b = appendNode(b, e.Node, now)
		}
		if e.PrevNode != nil {
			b = append(b, `,"prevNode":`...)
			b = appendNode(b, e.PrevNode, now)
		}
	}
	return append(b, '}', '\n')
}

// appendError appends a v2 error object and a newline.
func appendError(b []byte, e *store.Error) []byte {
	b = append(b, `{"errorCode":`...)
	b = strconv.AppendInt(b, int64(e.Code), 10)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message())
	if e.Cause != "" {
		b = append(b, `,"cause":`...)
		b = appendString(b, e.Cause)
	}
	b = append(b, `,"index":`...)
	b = strconv.AppendUint(b, e.Index, 10)
	return append(b, '}', '\n')
}

// stringLen is len(appendString(nil, s)), without writing it.
func stringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case jsonSafe[c]:
				n++
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			default:
				n += len(`\u0000`)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			n += len(`\ufffd`)
		} else {
			n += size
		}
		i += size
	}
	return n
}

// nodeLen is len(appendNode(nil, n, now)) for n without its Nodes.
func nodeLen(n *store.NodeView, now int64) int {
	size, fields := len("{}"), 0
	field := func(name string, l int) {
		size += len(`"":`) + len(name) + l
		fields++
	}
	if n.Key != "" {
		field("key", stringLen(n.Key))
	}
	if n.HasValue {
		field("value", stringLen(n.Value))
	}
	if n.Dir {
		field("dir", len("true"))
	}
	if n.Expiration != 0 {
		var buf [48]byte
		field("expiration", len(`""`)+len(time.Unix(0, n.Expiration).UTC().AppendFormat(buf[:0], time.RFC3339Nano)))
		if ttl := n.TTL(now); ttl != 0 {
			field("ttl", len(strconv.AppendInt(buf[:0], ttl, 10)))
		}
	}
	if n.ModifiedIndex != 0 {
		field("modifiedIndex", digits(n.ModifiedIndex))
	}
	if n.CreatedIndex != 0 {
		field("createdIndex", digits(n.CreatedIndex))
	}
	if fields > 1 {
		size += fields - 1 // the commas
	}
	return size
}

// digits is the length of v in decimal.
func digits(v uint64) int {
	n := 1
	for ; v >= 10; v /= 10 {
		n++
	}
	return n
}
