package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadConfChange is wrapped by every ConfChange decoding failure.
var ErrBadConfChange = errors.New("bad conf change encoding")

const confChangeV1 = 1

// Marshal encodes cc: version, type, uvarint node ID, uvarint-prefixed
// context.
func (cc ConfChange) Marshal() []byte {
	b := make([]byte, 0, 12+len(cc.Context))
	b = append(b, confChangeV1, byte(cc.Type))
	b = binary.AppendUvarint(b, cc.NodeID)
	b = binary.AppendUvarint(b, uint64(len(cc.Context)))
	return append(b, cc.Context...)
}

// Unmarshal decodes what Marshal produced, validating it.
func (cc *ConfChange) Unmarshal(b []byte) error {
	if len(b) < 2 || b[0] != confChangeV1 {
		return fmt.Errorf("%w: bad header", ErrBadConfChange)
	}
	t := ConfChangeType(b[1])
	if t < AddVoter || t > RemoveNode {
		return fmt.Errorf("%w: type %d", ErrBadConfChange, b[1])
	}
	b = b[2:]
	id, n := binary.Uvarint(b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, id)) {
		return fmt.Errorf("%w: node ID", ErrBadConfChange)
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, l)) || l != uint64(len(b)-n) {
		return fmt.Errorf("%w: context length", ErrBadConfChange)
	}
	ctx := append([]byte(nil), b[n:]...)
	if len(ctx) == 0 {
		ctx = nil
	}
	*cc = ConfChange{Type: t, NodeID: id, Context: ctx}
	return nil
}

// BootstrapEntries returns the log a brand-new cluster starts from: one
// committed AddVoter entry per initial voter, at term 1. Every initial
// member appends them and persists HardState{Term: 1, Commit: len(voters)}
// before creating its Node; applying them (ApplyConfChange) makes the
// membership, so members that join later learn it by replaying the log.
func BootstrapEntries(voters []uint64) ([]Entry, HardState) {
	ents := make([]Entry, len(voters))
	for i, id := range voters {
		ents[i] = Entry{Term: 1, Index: uint64(i + 1), Type: EntryConfChange, Data: ConfChange{Type: AddVoter, NodeID: id}.Marshal()}
	}
	return ents, HardState{Term: 1, Commit: uint64(len(voters))}
}

// AppendConfState appends cs's encoding to b: the voter count and IDs,
// then the learner count and IDs, as uvarints.
func AppendConfState(b []byte, cs ConfState) []byte {
	for _, ids := range [][]uint64{cs.Voters, cs.Learners} {
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = binary.AppendUvarint(b, id)
		}
	}
	return b
}

// ErrBadConfState is wrapped by every ConfState decoding failure.
var ErrBadConfState = errors.New("bad membership encoding")

// DecodeConfState decodes what AppendConfState wrote at the start of b and
// returns the bytes after it.
func DecodeConfState(b []byte) (ConfState, []byte, error) {
	var cs ConfState
	for _, dst := range []*[]uint64{&cs.Voters, &cs.Learners} {
		n, k := binary.Uvarint(b)
		if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n > uint64(len(b)-k) {
			return ConfState{}, nil, fmt.Errorf("%w: member count", ErrBadConfState)
		}
		b = b[k:]
		for range n {
			id, k := binary.Uvarint(b)
			if k <= 0 || k != len(binary.AppendUvarint(nil, id)) {
				return ConfState{}, nil, fmt.Errorf("%w: member ID", ErrBadConfState)
			}
			b = b[k:]
			*dst = append(*dst, id)
		}
	}
	return cs, b, nil
}
