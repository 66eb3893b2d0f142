package peer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/consensus"
)

// benchApp is a leader's append to one follower carrying n entries of
// about what a put of a 256-byte value is in the log (envelope, request
// ID, path, value, time: ~300 bytes).
func benchApp(n int) consensus.Message {
	data := []byte(strings.Repeat("v", 300))
	m := consensus.Message{Type: consensus.MsgApp, To: 0x8211f1d0f64f3269, From: 0x91bc3c398fb3c146,
		Term: 7, LogTerm: 7, Index: 1_000_000, Commit: 999_990}
	for i := range n {
		m.Entries = append(m.Entries, consensus.Entry{Term: 7, Index: uint64(1_000_001 + i), Data: data})
	}
	return m
}

// benchMessages are the messages a put crosses the network as: the
// append (1 entry, or 64 batched under load), the follower's answer, and
// the heartbeat that carries a linearizable read's round.
func benchMessages() []struct {
	name string
	m    consensus.Message
} {
	return []struct {
		name string
		m    consensus.Message
	}{
		{"app-1", benchApp(1)},
		{"app-64", benchApp(64)},
		{"appresp", consensus.Message{Type: consensus.MsgAppResp, To: 0x91bc3c398fb3c146, From: 0x8211f1d0f64f3269, Term: 7, Index: 1_000_064}},
		{"heartbeat", consensus.Message{Type: consensus.MsgHeartbeat, To: 0x8211f1d0f64f3269, From: 0x91bc3c398fb3c146,
			Term: 7, Commit: 1_000_064, Context: []byte("\x00\x00\x00\x00\x00\x01\x86\xa0")}},
	}
}

// BenchmarkEncodeFrame is the sender's path (Transport.run): one message
// appended as a frame to a batch buffer that is reused. appendFrame
// encodes in place (its length comes from Size), so once the buffer has
// grown nothing is allocated.
func BenchmarkEncodeFrame(b *testing.B) {
	for _, c := range benchMessages() {
		b.Run(c.name, func(b *testing.B) {
			buf := appendFrame(nil, &c.m)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = appendFrame(buf[:0], &c.m)
			}
		})
	}
}

// BenchmarkDecodeFrames is the receiver's path (serveStream): one stream
// batch of frames decoded into messages. Each entry's data is copied out
// of the batch buffer (codec.Reader.Bytes), which the stream reuses; the
// other allocations are the message slice as it grows and each message's
// entry slice (made at its final size).
func BenchmarkDecodeFrames(b *testing.B) {
	for _, c := range benchMessages() {
		b.Run(c.name, func(b *testing.B) {
			body := appendFrame(nil, &c.m)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				msgs, err := decodeFrames(body)
				if err != nil || len(msgs) != 1 {
					b.Fatal(fmt.Sprint(len(msgs), err))
				}
			}
		})
	}
}
