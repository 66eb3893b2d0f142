package consensus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"
)

func TestConfChangeRoundTrip(t *testing.T) {
	tests := []ConfChange{
		{Type: AddVoter, NodeID: 1},
		{Type: AddLearner, NodeID: 0x7f},
		{Type: AddLearner, NodeID: 0x80},
		{Type: RemoveNode, NodeID: math.MaxUint64},
		{Type: AddVoter, NodeID: 3, Context: []byte("http://10.0.0.3:2380")},
		{Type: AddVoter, NodeID: 4, Context: bytes.Repeat([]byte{0xff}, 300)},
	}
	for _, cc := range tests {
		b := cc.Marshal()
		var got ConfChange
		if err := got.Unmarshal(b); err != nil {
			t.Fatalf("Unmarshal(Marshal(%+v)): %v", cc, err)
		}
		if !reflect.DeepEqual(got, cc) {
			t.Fatalf("round trip: %+v, want %+v", got, cc)
		}
		if !bytes.Equal(got.Marshal(), b) {
			t.Fatalf("re-marshal differs for %+v", cc)
		}
	}
	// An empty context decodes as nil.
	var got ConfChange
	if err := got.Unmarshal(ConfChange{Type: AddVoter, NodeID: 1, Context: []byte{}}.Marshal()); err != nil || got.Context != nil {
		t.Fatalf("empty context: %+v, %v", got, err)
	}
}

func TestConfChangeMarshalFormat(t *testing.T) {
	got := ConfChange{Type: RemoveNode, NodeID: 300, Context: []byte("ab")}.Marshal()
	want := []byte{1, 3, 0xac, 0x02, 2, 'a', 'b'}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal = %x, want %x", got, want)
	}
}

func TestConfChangeUnmarshalErrors(t *testing.T) {
	good := ConfChange{Type: AddVoter, NodeID: 5, Context: []byte("xyz")}.Marshal()
	tests := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"one byte", []byte{1}},
		{"bad version", append([]byte{2}, good[1:]...)},
		{"type 0", []byte{1, 0, 5, 0}},
		{"type 4", []byte{1, 4, 5, 0}},
		{"no node ID", []byte{1, 1}},
		{"truncated node ID", []byte{1, 1, 0x80}},
		{"overflowing node ID", append([]byte{1, 1}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"no context length", []byte{1, 1, 5}},
		{"context too short", good[:len(good)-1]},
		{"trailing bytes", append(bytes.Clone(good), 0)},
		{"huge context length", []byte{1, 1, 5, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tt := range tests {
		cc := ConfChange{Type: RemoveNode, NodeID: 77}
		err := cc.Unmarshal(tt.b)
		if !errors.Is(err, ErrBadConfChange) {
			t.Errorf("%s: err %v, want ErrBadConfChange", tt.name, err)
		}
		if cc.Type != RemoveNode || cc.NodeID != 77 {
			t.Errorf("%s: failed Unmarshal modified the receiver: %+v", tt.name, cc)
		}
	}
}

// BUG: Unmarshal accepts non-minimal (overlong) uvarints for the node ID
// and the context length, so several encodings decode to one ConfChange
// and re-marshalling does not give the input back.
func TestConfChangeUnmarshalRejectsOverlongVarints(t *testing.T) {
	for _, b := range [][]byte{
		{1, 1, 0x85, 0x00, 0x00}, // node ID 5 in two bytes
		{1, 1, 5, 0x80, 0x00},    // context length 0 in two bytes
	} {
		var cc ConfChange
		if err := cc.Unmarshal(b); err == nil {
			knownBug(t, "ConfChange.Unmarshal accepted the non-canonical encoding %x as %+v, which re-marshals to %x (overlong uvarints are not rejected)", b, cc, cc.Marshal())
		}
	}
}

func TestConfChangeTypeString(t *testing.T) {
	for ty, want := range map[ConfChangeType]string{AddVoter: "AddVoter", AddLearner: "AddLearner", RemoveNode: "RemoveNode", 0: "ConfChangeType(0)", 9: "ConfChangeType(9)"} {
		if got := ty.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestBootstrapEntries(t *testing.T) {
	ents, hs := BootstrapEntries([]uint64{3, 1, 2})
	if hs != (HardState{Term: 1, Commit: 3}) || len(ents) != 3 {
		t.Fatalf("hs %v, %d entries", hs, len(ents))
	}
	for i, e := range ents {
		var cc ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			t.Fatal(err)
		}
		if e.Index != uint64(i+1) || e.Term != 1 || e.Type != EntryConfChange || cc.Type != AddVoter || cc.NodeID != []uint64{3, 1, 2}[i] {
			t.Fatalf("entry %d: %+v %+v", i, e, cc)
		}
	}
}

// isCanonicalUvarint reports whether the uvarint at the start of b uses
// the minimal number of bytes.
func isCanonicalUvarint(b []byte) bool {
	v, n := binary.Uvarint(b)
	return n > 0 && n == len(binary.AppendUvarint(nil, v))
}

// FuzzConfChangeUnmarshal: Unmarshal never panics; whatever it accepts is
// a valid change that re-marshals to exactly the input.
func FuzzConfChangeUnmarshal(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 1, 0, 0})
	f.Add([]byte{1, 4, 1, 0})
	f.Add([]byte{1, 2, 0x80})
	f.Add([]byte{1, 3, 5, 3, 'a', 'b'})
	f.Add(ConfChange{Type: AddVoter, NodeID: 1, Context: []byte("http://127.0.0.1:2380")}.Marshal())
	f.Add(ConfChange{Type: RemoveNode, NodeID: math.MaxUint64}.Marshal())
	f.Add(ConfChange{Type: AddLearner, NodeID: 1 << 40, Context: bytes.Repeat([]byte("z"), 200)}.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		var cc ConfChange
		if err := cc.Unmarshal(b); err != nil {
			if !errors.Is(err, ErrBadConfChange) {
				t.Fatalf("error %v does not wrap ErrBadConfChange", err)
			}
			return
		}
		if cc.Type < AddVoter || cc.Type > RemoveNode {
			t.Fatalf("accepted type %v", cc.Type)
		}
		if cc.Context != nil && len(cc.Context) == 0 {
			t.Fatal("empty non-nil context")
		}
		if out := cc.Marshal(); !bytes.Equal(out, b) {
			// Known bug, reported separately: overlong uvarints are
			// accepted (see TestConfChangeUnmarshalRejectsOverlongVarints).
			_, n := binary.Uvarint(b[2:])
			if !isCanonicalUvarint(b[2:]) || !isCanonicalUvarint(b[2+n:]) {
				knownBug(t, "overlong uvarint accepted in %x (see TestConfChangeUnmarshalRejectsOverlongVarints)", b)
			}
			t.Fatalf("accepted %x re-marshals to %x", b, out)
		}
		var again ConfChange
		if err := again.Unmarshal(cc.Marshal()); err != nil || !reflect.DeepEqual(again, cc) {
			t.Fatalf("round trip of %+v: %+v, %v", cc, again, err)
		}
	})
}

func TestConfStateEncoding(t *testing.T) {
	for _, cs := range []ConfState{{}, {Voters: []uint64{1}}, {Voters: []uint64{1, 2, 300000}, Learners: []uint64{7}}} {
		b := AppendConfState([]byte{9}, cs)
		got, rest, err := DecodeConfState(append(b[1:], 0xaa))
		if err != nil || !slices.Equal(got.Voters, cs.Voters) || !slices.Equal(got.Learners, cs.Learners) || len(rest) != 1 || rest[0] != 0xaa {
			t.Fatalf("%+v: decoded %+v, rest %x, %v", cs, got, rest, err)
		}
	}
	for _, b := range [][]byte{nil, {1}, {5, 1, 2}, {0, 200}, {0xff}} {
		if _, _, err := DecodeConfState(b); !errors.Is(err, ErrBadConfState) {
			t.Fatalf("DecodeConfState(%x) = %v, want ErrBadConfState", b, err)
		}
	}
}

func TestConfStateRejectsOverlongVarints(t *testing.T) {
	for _, b := range [][]byte{{0x80, 0x00, 0x00}, {0x01, 0x81, 0x00, 0x00}} {
		if _, _, err := DecodeConfState(b); !errors.Is(err, ErrBadConfState) {
			t.Fatalf("DecodeConfState(%x) = %v, want ErrBadConfState", b, err)
		}
	}
}
