package codec

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Reader reads one encoded value; the first error sticks.
type Reader struct {
	b    []byte
	max  uint64
	wrap error
	err  error
}

// NewReader reads b. A length-prefixed field longer than maxField is an
// error; every error wraps wrap.
func NewReader(b []byte, maxField uint64, wrap error) *Reader {
	return &Reader{b: b, max: maxField, wrap: wrap}
}

// Err is the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Len is the number of bytes not read yet.
func (r *Reader) Len() int { return len(r.b) }

// Peek returns the bytes not read yet, without reading them (for a
// decoder of another package to read from); Skip then reads n of them.
func (r *Reader) Peek() []byte { return r.b }

// Skip reads n bytes (at most those left).
func (r *Reader) Skip(n int) {
	if r.err == nil {
		r.b = r.b[min(n, len(r.b)):]
	}
}

// Rest reads every byte left (not copied).
func (r *Reader) Rest() []byte {
	if r.err != nil {
		return nil
	}
	out := r.b
	r.b = nil
	return out
}

// Fail records a decoding error (if none was met before) in the caller's
// words, for checks the caller makes on what it read.
func (r *Reader) Fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", r.wrap, fmt.Sprintf(format, args...))
	}
}

// Finish returns the first error, or an error if bytes are left unread.
func (r *Reader) Finish() error {
	if r.err == nil && len(r.b) != 0 {
		r.Fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.Fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// UvarintLen is the length of v's minimal uvarint encoding.
func UvarintLen(v uint64) int { return max(1, (bits.Len64(v)+6)/7) }

// Uvarint reads an unsigned integer in its minimal encoding.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n != UvarintLen(v) {
		r.Fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a signed (zig-zag) integer in its minimal encoding.
func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 || n != UvarintLen(uint64(v)<<1^uint64(v>>63)) {
		r.Fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// field reads a length prefix and returns the bytes it covers, not copied.
func (r *Reader) field() []byte {
	n := r.Uvarint()
	if r.err != nil {
		return nil
	}
	if n > r.max || n > uint64(len(r.b)) {
		r.Fail("field of %d bytes, %d left", n, len(r.b))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// Bytes reads a length-prefixed field as a copy (nil when empty).
func (r *Reader) Bytes() []byte {
	f := r.field()
	if len(f) == 0 {
		return nil
	}
	return append([]byte(nil), f...)
}

// String reads a length-prefixed field as a string.
func (r *Reader) String() string { return string(r.field()) }

// Strings reads a count and that many strings. The count is bounded by
// the bytes left, so a forged count cannot make it allocate.
func (r *Reader) Strings() []string {
	n := r.Uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.Fail("%d strings in %d bytes", n, len(r.b))
		return nil
	}
	out := make([]string, 0, n)
	for ; n > 0 && r.err == nil; n-- {
		out = append(out, r.String())
	}
	if r.err != nil {
		return nil
	}
	return out
}

// AppendString appends s as Reader.String reads it.
func AppendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// AppendStrings appends ss as Reader.Strings reads them.
func AppendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = AppendString(b, s)
	}
	return b
}
