package server

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// The log-entry envelope. Every normal entry's data starts with its kind;
// the request ID (8 bytes, big-endian) of the proposer's waiter follows:
//
//	kind 1 (entryRequest): ID, then a store.Request's encoding
//	kind 2 (memberEntry):  ID, then a membership operation (membership.go)
//	kind 3 (authEntry):    ID, then a v2 auth operation (auth.go)
//
// An empty entry is a new leader's no-op. Conf-change entries carry a
// consensus.ConfChange whose Context is encodeCCContext's.
//
// Invariant: applying an entry never fails on its content. An entry that
// cannot be decoded, or whose operation is impossible, is refused the same
// way on every member (decodeEntry and store.Apply read nothing but the
// entry) and its waiter, if one can be named, is answered with the reason.
// Only the disk's failures stop a member.
const (
	entryRequest = 1
	memberEntry  = 2
	authEntry    = 3
)

// ErrBadEntry wraps every reason an entry cannot be applied. A leader
// refuses such a proposal before it enters the log (checkProposal); one
// that is in the log anyway (written by another version, or a peer that
// skipped the check) is applied as a refusal.
var ErrBadEntry = errors.New("server: log entry cannot be applied")

// entry is a decoded log entry.
type entry struct {
	kind byte   // entryRequest, memberEntry, authEntry, or 0 for a no-op or a conf change
	id   uint64 // the waiter's request ID (0: none, or not known)
	req  *store.Request
	op   memberOp // memberEntry
	auth *authOp  // authEntry
	cc   *consensus.ConfChange
	mi   MemberInfo // a conf change's member
	err  error      // why it cannot be applied (wraps ErrBadEntry)
}

// encodeProposal is a store request's entry data.
func encodeProposal(id uint64, r *store.Request) []byte {
	b := make([]byte, 9, 64+len(r.Path)+len(r.Value)+len(r.PrevValue))
	b[0] = entryRequest
	binary.BigEndian.PutUint64(b[1:], id)
	return r.Marshal(b)
}

// decodeEntry decodes e. It reads nothing but e, so every member decodes
// an entry alike.
func decodeEntry(e consensus.Entry) entry {
	bad := func(id uint64, format string, args ...any) entry {
		return entry{id: id, err: badEntry(e, format, args...)}
	}
	switch e.Type {
	case consensus.EntryConfChange:
		var cc consensus.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return bad(0, "%v", err)
		}
		id, mi, err := decodeCCContext(cc.Context)
		if err != nil {
			return bad(id, "%v", err)
		}
		return entry{id: id, cc: &cc, mi: mi}
	case consensus.EntryNormal:
	default:
		return bad(0, "unknown entry type %d", e.Type)
	}
	if len(e.Data) == 0 {
		return entry{}
	}
	var id uint64
	if len(e.Data) >= 9 {
		// Every kind this version knows, and so presumably a later one's,
		// names its waiter here; answering a wrong ID costs nothing.
		id = binary.BigEndian.Uint64(e.Data[1:9])
	}
	switch kind := e.Data[0]; {
	case len(e.Data) < 9:
		return bad(0, "entry of %d bytes has no request ID", len(e.Data))
	case kind == entryRequest:
		var r store.Request
		if err := r.Unmarshal(e.Data[9:]); err != nil {
			return bad(id, "%v", err)
		}
		return entry{kind: kind, id: id, req: &r}
	case kind == memberEntry:
		op, err := decodeMemberOp(e.Data[9:])
		if err != nil {
			return bad(id, "%v", err)
		}
		return entry{kind: kind, id: id, op: op}
	case kind == authEntry:
		o, err := decodeAuthOp(e.Data[9:])
		if err != nil {
			return bad(id, "%v", err)
		}
		return entry{kind: kind, id: id, auth: o}
	default:
		return bad(id, "unknown entry kind %d (written by a later version?)", kind)
	}
}

// badEntry is the reason entry e cannot be applied.
func badEntry(e consensus.Entry, format string, args ...any) error {
	return fmt.Errorf("%w (index %d): %s", ErrBadEntry, e.Index, fmt.Sprintf(format, args...))
}

// checkProposal is the leader's consensus.Config.CheckProposal: it refuses
// an entry apply could not take, or the WAL could not hold
// (wal.MaxEntryData), so that it never enters the log. Otherwise it
// refuses exactly what decodeEntry, and then store.CheckLimits, would
// refuse, with the same errors; a store request (nearly every proposal)
// is checked on its encoding, without building it (store.CheckEncoded).
func checkProposal(e consensus.Entry) error {
	if len(e.Data) > wal.MaxEntryData {
		// Within the store's limits (a value and a prevValue of up to
		// store.MaxValueBytes each) but too long for a WAL record.
		return fmt.Errorf("%w: entry of %d bytes; a WAL record holds at most %d", ErrBadEntry, len(e.Data), wal.MaxEntryData)
	}
	if e.Type == consensus.EntryNormal && len(e.Data) >= 9 && e.Data[0] == entryRequest {
		switch err := store.CheckEncoded(e.Data[9:]); {
		case err == nil:
			return nil
		case errors.Is(err, store.ErrBadEncoding):
			return badEntry(e, "%v", err)
		default: // a hard limit
			return fmt.Errorf("%w: %v", ErrBadEntry, err)
		}
	}
	d := decodeEntry(e)
	if d.err != nil {
		return d.err
	}
	if d.req != nil {
		if err := store.CheckLimits(d.req); err != nil {
			return fmt.Errorf("%w: %v", ErrBadEntry, err)
		}
	}
	return nil
}

// requestIDOf returns the waiter's request ID in entry e, if it names one.
func requestIDOf(e consensus.Entry) (uint64, bool) {
	switch {
	case e.Type == consensus.EntryConfChange:
		var cc consensus.ConfChange
		if cc.Unmarshal(e.Data) != nil {
			return 0, false
		}
		id, _, err := decodeCCContext(cc.Context)
		return id, err == nil && id != 0
	case len(e.Data) >= 9 && (e.Data[0] == entryRequest || e.Data[0] == memberEntry || e.Data[0] == authEntry):
		return binary.BigEndian.Uint64(e.Data[1:9]), true
	}
	return 0, false
}
