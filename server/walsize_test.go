package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// A request within the store's hard limits whose log entry no WAL record
// could hold (a value of more than wal.MaxEntryData bytes, which
// store.MaxValueBytes allows) is refused with error 124 before it is
// proposed, and a leader refuses such an entry from any proposer: it
// would be acknowledged and then make every member's WAL unreadable.
func TestRequestTooLargeForTheWALRefused(t *testing.T) {
	m := startMember(t, testConfig(t.TempDir()))
	defer m.Stop()
	set(t, m, "/before", "1")
	r := &store.Request{Op: store.OpSet, Path: "/big", Value: strings.Repeat("v", wal.MaxEntryData)}
	if err := store.CheckLimits(r); err != nil {
		t.Fatalf("the request is over the store's limits: %v", err)
	}
	_, err := m.Do(context.Background(), r)
	var se *store.Error
	if !errors.As(err, &se) || se.Code != store.EcodeTooLarge {
		t.Fatalf("Do of a %d-byte value: %v, want errorCode %d", len(r.Value), err, store.EcodeTooLarge)
	}
	r.Time = 1
	e := consensus.Entry{Type: consensus.EntryNormal, Data: encodeProposal(7, r)}
	if err := checkProposal(e); !errors.Is(err, ErrBadEntry) {
		t.Fatalf("checkProposal of a %d-byte entry: %v, want ErrBadEntry", len(e.Data), err)
	}
	set(t, m, "/after", "2")
	if _, err := m.Get(context.Background(), "/big", false, false); !errors.As(err, &se) || se.Code != store.EcodeKeyNotFound {
		t.Fatalf("get /big after the refusal: %v, want errorCode %d", err, store.EcodeKeyNotFound)
	}
}
