package peer

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cairnkv/cairn/consensus"
)

func sampleMessages() []consensus.Message {
	return []consensus.Message{
		{Type: consensus.MsgHeartbeat, To: 2, From: 1, Term: 3, Commit: 7, Index: 12, Context: []byte("rd1")},
		{Type: consensus.MsgApp, To: 3, From: 1, Term: 4, LogTerm: 3, Index: 9, Commit: 8,
			Entries: []consensus.Entry{{Term: 4, Index: 10, Data: []byte("x")}, {Term: 4, Index: 11, Type: consensus.EntryConfChange, Data: []byte{1, 2, 5, 0}}}},
		{Type: consensus.MsgAppResp, To: 1, From: 3, Term: 4, Index: 9, Reject: true, RejectHint: 6, LogTerm: 2},
		{Type: consensus.MsgSnap, To: 2, From: 1, Term: 5, Snapshot: &consensus.Snapshot{Meta: consensus.SnapshotMeta{Index: 100, Term: 4,
			ConfState: consensus.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{9}}}}},
		{Type: consensus.MsgVote, To: 2, From: 3, Term: 6, LogTerm: 5, Index: 120, Context: []byte("CampaignTransfer")},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	var body []byte
	for _, m := range sampleMessages() {
		body = appendFrame(body, &m)
	}
	got, err := decodeFrames(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sampleMessages()) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, sampleMessages())
	}
}

func TestCodecRefusesBadInput(t *testing.T) {
	good := appendMessage(nil, &sampleMessages()[1])
	cases := map[string][]byte{
		"empty":         nil,
		"version":       append([]byte{9}, good[1:]...),
		"local type":    append([]byte{1, byte(consensus.MsgHup)}, good[2:]...),
		"unknown flags": append([]byte{1, good[1], 0x80}, good[3:]...),
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte(nil), good...), 0),
	}
	for name, b := range cases {
		if _, err := decodeMessage(b); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: %v, want ErrBadMessage", name, err)
		}
	}
}

// FuzzDecodeMessage: decoding never panics, and what it accepts encodes
// back to the same bytes.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(appendMessage(nil, &m))
	}
	f.Add([]byte{1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		if again := appendMessage(nil, &m); string(again) != string(b) {
			t.Fatalf("re-encoding %x gave %x", b, again)
		}
	})
}

// Size is the length of the encoding, for every kind of message and for
// lengths on each side of a uvarint byte boundary.
func TestSize(t *testing.T) {
	msgs := sampleMessages()
	for _, n := range []int{0, 127, 128, 16383, 16384} {
		msgs = append(msgs, consensus.Message{Type: consensus.MsgApp, Term: 1 << 40, Index: uint64(n), Context: make([]byte, n),
			Entries: []consensus.Entry{{Term: 1 << 40, Index: 1<<63 + 5, Data: make([]byte, n)}}},
			consensus.Message{Type: consensus.MsgSnap, Snapshot: &consensus.Snapshot{Data: make([]byte, n),
				Meta: consensus.SnapshotMeta{Index: uint64(n), ConfState: consensus.ConfState{Voters: []uint64{1 << 62}}}}})
	}
	for i, m := range msgs {
		if got, want := Size(&m), len(appendMessage(nil, &m)); got != want {
			t.Errorf("message %d (%v): Size %d, encoding %d bytes", i, m.Type, got, want)
		}
	}
}
