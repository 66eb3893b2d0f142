package codec

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

var errBad = errors.New("bad")

// What the Append functions write, Reader reads back, and nothing is left.
func TestRoundTrip(t *testing.T) {
	b := []byte{7}
	b = binary.AppendUvarint(b, 1<<40)
	b = binary.AppendVarint(b, -12345)
	b = AppendString(b, "hello")
	b = AppendStrings(b, []string{"a", "", "ccc"})
	r := NewReader(b, 1<<10, errBad)
	if r.Byte() != 7 || r.Uvarint() != 1<<40 || r.Varint() != -12345 || r.String() != "hello" ||
		!slices.Equal(r.Strings(), []string{"a", "", "ccc"}) || r.Finish() != nil {
		t.Fatalf("round trip failed: %v", r.Err())
	}
}

// Every refusal wraps the caller's sentinel, and the first error sticks.
func TestRefusals(t *testing.T) {
	cases := map[string][]byte{
		"non-minimal uvarint": {0x80, 0x00},
		"truncated uvarint":   {0x80},
		"field over the max":  binary.AppendUvarint(nil, 2000),
		"field past the end":  {5, 'a'},
		"count past the end":  {200, 1, 'a'},
		"trailing bytes":      {0, 9},
	}
	for name, b := range cases {
		r := NewReader(b, 1000, errBad)
		if name == "count past the end" {
			_ = r.Strings()
		} else {
			_ = r.String()
		}
		if err := r.Finish(); !errors.Is(err, errBad) {
			t.Errorf("%s: %v, want an error wrapping the sentinel", name, err)
		}
		if r.Uvarint() != 0 || r.Byte() != 0 {
			t.Errorf("%s: reads after an error return values", name)
		}
	}
	if r := NewReader(binary.AppendVarint(nil, -1)[:0], 10, errBad); r.Varint() != 0 || r.Err() == nil {
		t.Error("an empty varint was read")
	}
	// -1 as a zig-zag varint padded to two bytes is not minimal.
	r := NewReader([]byte{0x81, 0x00}, 10, errBad)
	if r.Varint(); r.Err() == nil {
		t.Error("a non-minimal varint was read")
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{1, 2, 'a', 'b', 1, 1, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b, 64, errBad)
		_ = r.Byte()
		_ = r.Uvarint()
		_ = r.Varint()
		_ = r.Bytes()
		_ = r.Strings()
		if err := r.Finish(); err != nil && !errors.Is(err, errBad) {
			t.Fatalf("an error not wrapping the sentinel: %v", err)
		}
	})
}
