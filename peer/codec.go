package peer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/internal/codec"
)

// ErrBadMessage is wrapped by every message decoding failure.
var ErrBadMessage = errors.New("peer: bad message encoding")

// maxField bounds one decoded length (entry data, context, snapshot data).
const maxField = 256 << 20

const codecV1 = 1

// Message encoding, version 1:
//
//	version byte, type byte, flags byte (1 reject, 2 snapshot)
//	uvarints: to, from, term, logTerm, index, commit, rejectHint
//	context: uvarint length + bytes
//	entries: uvarint count, each: uvarint term, uvarint index, type byte,
//	         uvarint length + data
//	snapshot (flag 2): uvarint index, uvarint term, membership
//	         (consensus.AppendConfState), uvarint length + data
func appendMessage(b []byte, m *consensus.Message) []byte {
	var flags byte
	if m.Reject {
		flags |= 1
	}
	if m.Snapshot != nil {
		flags |= 2
	}
	b = append(b, codecV1, byte(m.Type), flags)
	for _, v := range [...]uint64{m.To, m.From, m.Term, m.LogTerm, m.Index, m.Commit, m.RejectHint} {
		b = binary.AppendUvarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Context)))
	b = append(b, m.Context...)
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	for _, e := range m.Entries {
		b = binary.AppendUvarint(b, e.Term)
		b = binary.AppendUvarint(b, e.Index)
		b = append(b, byte(e.Type))
		b = binary.AppendUvarint(b, uint64(len(e.Data)))
		b = append(b, e.Data...)
	}
	if s := m.Snapshot; s != nil {
		b = binary.AppendUvarint(b, s.Meta.Index)
		b = binary.AppendUvarint(b, s.Meta.Term)
		b = consensus.AppendConfState(b, s.Meta.ConfState)
		b = binary.AppendUvarint(b, uint64(len(s.Data)))
		b = append(b, s.Data...)
	}
	return b
}

// Size is the length of m's encoding (appendMessage), without encoding
// it: what /v2/stats/self counts as the bytes of an append, as etcd counts
// a message's protobuf size.
func Size(m *consensus.Message) int {
	n := 3
	for _, v := range [...]uint64{m.To, m.From, m.Term, m.LogTerm, m.Index, m.Commit, m.RejectHint} {
		n += uvarintLen(v)
	}
	n += uvarintLen(uint64(len(m.Context))) + len(m.Context)
	n += uvarintLen(uint64(len(m.Entries)))
	for _, e := range m.Entries {
		n += uvarintLen(e.Term) + uvarintLen(e.Index) + 1 + uvarintLen(uint64(len(e.Data))) + len(e.Data)
	}
	if s := m.Snapshot; s != nil {
		n += uvarintLen(s.Meta.Index) + uvarintLen(s.Meta.Term)
		for _, ids := range [][]uint64{s.Meta.ConfState.Voters, s.Meta.ConfState.Learners} {
			n += uvarintLen(uint64(len(ids)))
			for _, id := range ids {
				n += uvarintLen(id)
			}
		}
		n += uvarintLen(uint64(len(s.Data))) + len(s.Data)
	}
	return n
}

// uvarintLen is the length of v's uvarint encoding.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// decodeMessage decodes exactly one message from b, validating what the
// core relies on: a known version, a message type that may cross the
// network, known flags and entry types, and no trailing bytes.
func decodeMessage(b []byte) (consensus.Message, error) {
	var m consensus.Message
	r := codec.NewReader(b, maxField, ErrBadMessage)
	if v := r.Byte(); r.Err() == nil && v != codecV1 {
		return m, fmt.Errorf("%w: version %d", ErrBadMessage, v)
	}
	m.Type = consensus.MessageType(r.Byte())
	flags := r.Byte()
	if r.Err() != nil {
		return m, r.Err()
	}
	if m.Type == 0 || m.Type > consensus.MsgSnapStatus || m.Type.IsLocal() {
		return m, fmt.Errorf("%w: message type %d", ErrBadMessage, m.Type)
	}
	if flags&^3 != 0 {
		return m, fmt.Errorf("%w: flags %#x", ErrBadMessage, flags)
	}
	m.Reject = flags&1 != 0
	for _, p := range []*uint64{&m.To, &m.From, &m.Term, &m.LogTerm, &m.Index, &m.Commit, &m.RejectHint} {
		*p = r.Uvarint()
	}
	m.Context = r.Bytes()
	n := r.Uvarint()
	if r.Err() == nil && n > uint64(r.Len()) {
		r.Fail("%d entries in %d bytes", n, r.Len())
	}
	if r.Err() == nil && n > 0 {
		m.Entries = make([]consensus.Entry, 0, n) // bounded by the bytes left
	}
	for i := uint64(0); i < n && r.Err() == nil; i++ {
		e := consensus.Entry{Term: r.Uvarint(), Index: r.Uvarint(), Type: consensus.EntryType(r.Byte())}
		if e.Type != consensus.EntryNormal && e.Type != consensus.EntryConfChange {
			r.Fail("entry type %d", e.Type)
		}
		e.Data = r.Bytes()
		m.Entries = append(m.Entries, e)
	}
	if flags&2 != 0 && r.Err() == nil {
		s := &consensus.Snapshot{}
		s.Meta.Index = r.Uvarint()
		s.Meta.Term = r.Uvarint()
		if r.Err() == nil {
			in := r.Peek()
			cs, rest, err := consensus.DecodeConfState(in)
			if err != nil {
				r.Fail("%v", err)
			}
			s.Meta.ConfState = cs
			r.Skip(len(in) - len(rest))
		}
		s.Data = r.Bytes()
		m.Snapshot = s
	}
	if r.Err() != nil {
		return consensus.Message{}, r.Err()
	}
	if r.Len() != 0 {
		return consensus.Message{}, fmt.Errorf("%w: %d trailing bytes", ErrBadMessage, r.Len())
	}
	return m, nil
}

// appendFrame appends one length-prefixed message (the body of a POST to
// /raft, and the batch in a stream frame, is a sequence of frames).
func appendFrame(b []byte, m *consensus.Message) []byte {
	// The length first, from Size, so the message is encoded in place.
	b = binary.AppendUvarint(b, uint64(Size(m)))
	return appendMessage(b, m)
}

// MarshalMessages is the body of a POST to RaftPath that carries msgs
// (with the headers HeaderCluster, HeaderFrom and HeaderTo set). Members
// write it themselves; it is exported for tools and tests that speak the
// peer protocol from outside.
func MarshalMessages(msgs ...consensus.Message) []byte {
	var b []byte
	for i := range msgs {
		b = appendFrame(b, &msgs[i])
	}
	return b
}

// decodeFrames decodes a sequence of frames.
func decodeFrames(b []byte) ([]consensus.Message, error) {
	var out []consensus.Message
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return out, fmt.Errorf("%w: frame length", ErrBadMessage)
		}
		m, err := decodeMessage(b[k : k+int(n)])
		if err != nil {
			return out, err
		}
		out = append(out, m)
		b = b[k+int(n):]
	}
	return out, nil
}

// appendStreamFrame appends one stream frame: the uvarint length of batch,
// then batch, a sequence of frames as in the body of a POST to /raft. An
// empty batch is a keepalive.
func appendStreamFrame(b, batch []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(batch)))
	return append(b, batch...)
}

// readStreamFrame reads one stream frame from r into buf (reused) and
// returns its batch. A frame longer than limit is refused before any of
// it is read, and the buffer grows only as bytes arrive, so a peer that
// claims a long frame and sends nothing costs nothing. io.EOF means the
// stream ended cleanly between frames.
func readStreamFrame(r *bufio.Reader, buf []byte, limit uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err == io.EOF {
		return buf[:0], io.EOF
	}
	if err != nil {
		return buf[:0], fmt.Errorf("peer: stream frame length: %w", err)
	}
	if n > limit {
		return buf[:0], fmt.Errorf("%w: stream frame of %d bytes (limit %d)", ErrBadMessage, n, limit)
	}
	buf = buf[:0]
	for uint64(len(buf)) < n {
		chunk := int(min(n-uint64(len(buf)), 1<<20))
		buf = slices.Grow(buf, chunk)
		k, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, fmt.Errorf("peer: stream frame: %w", err)
		}
	}
	return buf, nil
}
