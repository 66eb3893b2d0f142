package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn/consensus"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

// FuzzApplyEntry feeds arbitrary bytes as the data of a log entry to a
// real member (its WAL, its bbolt file) whose leader does not check
// proposals, so the bytes reach apply: whatever they are, the member must
// not stop, and must go on applying writes.
func FuzzApplyEntry(f *testing.F) {
	for _, p := range poisonEntries(&Member{}) {
		f.Add(p.data)
	}
	f.Add(encodeProposal(1, &store.Request{Op: store.OpSet, Path: "/a", Value: "b", Time: 1}))
	f.Add(encodeProposal(2, &store.Request{Op: store.OpCreateInOrder, Path: "/q", Value: "b", HasTTL: true, TTL: 5, Time: 1}))
	f.Add(encodeProposal(3, &store.Request{Op: store.OpExpire, Path: "/", Time: 1 << 62}))
	f.Add(encodeProposal(4, &store.Request{Op: store.OpDequeue, Path: store.QueuesDir + "/q", Wait: true, HasTTL: true, TTL: 1, Time: 1}))
	f.Add(encodeMemberOp(5, opAttributes, 1, "n", []string{"http://x:1"}))
	f.Add(encodeMemberOp(6, opUpdatePeerURLs, 77, "", []string{"http://x:1"}))
	f.Add(encodeAuthOp(7, &authOp{op: authOpPutUser, mode: UserCreateOrUpdate, name: "root", hash: "$2a$10$x"}))
	f.Add(encodeAuthOp(8, &authOp{op: authOpEnable, guest: GuestNone}))
	f.Add(encodeAuthOp(9, &authOp{op: authOpUpdateRole, name: "r", grantPerms: &AuthPerms{Read: []string{"/a*"}}}))
	f.Add([]byte{})
	cfg := testConfig(f.TempDir())
	cfg.UnsafeSkipProposalCheck = true
	cfg.RequestTimeout = 2 * time.Second
	m, err := StartMember(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = m.Stop() })
	for deadline := time.Now().Add(10 * time.Second); m.lead.Load() != m.cfg.ID; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.Fatal("the member did not lead within 10 s")
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id := m.nextID.Add(1)
		if len(data) >= 9 {
			// Keep the waiter's ID our own, so the answer finds us.
			b := binary.BigEndian.AppendUint64([]byte{data[0]}, id)
			data = append(b, data[9:]...)
		}
		wait := 2 * time.Second
		if len(data) < 9 {
			wait = 200 * time.Millisecond // nobody can be answered: it times out
		}
		actx, acancel := context.WithTimeout(context.Background(), wait)
		_, _ = m.await(actx, proposal{id: id, data: data})
		acancel()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		select {
		case <-m.Done():
			t.Fatalf("the member stopped: %v", m.Err())
		default:
		}
		if _, err := m.Do(ctx, &store.Request{Op: store.OpSet, Path: "/alive", Value: "yes"}); err != nil {
			t.Fatalf("a write after the entry: %v", err)
		}
	})
}

// FuzzDecodeEntry: decoding any entry, normal or conf change, never
// panics, names a refusal with ErrBadEntry, and is the same twice; the
// leader's checkProposal refuses exactly the entries that do not decode
// or break a hard limit (or that no WAL record could hold), with the same
// error.
func FuzzDecodeEntry(f *testing.F) {
	for _, p := range poisonEntries(&Member{}) {
		f.Add(false, p.data)
	}
	cc := consensus.ConfChange{Type: consensus.AddLearner, NodeID: 5,
		Context: encodeCCContext(3, MemberInfo{ID: 5, Name: "e", PeerURLs: []string{"http://e:2380"}})}
	f.Add(true, cc.Marshal())
	f.Fuzz(func(t *testing.T, conf bool, data []byte) {
		e := consensus.Entry{Index: 3, Term: 1, Data: data}
		if conf {
			e.Type = consensus.EntryConfChange
		}
		d := decodeEntry(e)
		d2 := decodeEntry(e)
		if (d.err == nil) != (d2.err == nil) || d.id != d2.id || d.kind != d2.kind {
			t.Fatalf("two decodes differ: %+v and %+v", d, d2)
		}
		want := d.err
		if len(data) > wal.MaxEntryData {
			want = fmt.Errorf("%w: entry of %d bytes; a WAL record holds at most %d", ErrBadEntry, len(data), wal.MaxEntryData)
		}
		if want == nil && d.req != nil {
			if lerr := store.CheckLimits(d.req); lerr != nil {
				want = fmt.Errorf("%w: %v", ErrBadEntry, lerr)
			}
		}
		err := checkProposal(e)
		if (err == nil) != (want == nil) || err != nil && (err.Error() != want.Error() || !errors.Is(err, ErrBadEntry)) {
			t.Fatalf("checkProposal says %v; decodeEntry and store.CheckLimits say %v", err, want)
		}
	})
}

// FuzzDecodeAuthState: the auth registry saved with the applied state
// never panics its decoder, and what decodes encodes back to the same
// bytes.
func FuzzDecodeAuthState(f *testing.F) {
	st := NewAuthState()
	st.enabled = true
	st.users["root"] = AuthUser{Name: "root", Hash: "h", Roles: []string{"root"}}
	st.roles["r"] = AuthRole{Name: "r", Read: []string{"/a*"}, Write: []string{}}
	f.Add(st.appendTo(nil))
	f.Add(NewAuthState().appendTo(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeAuthState(b)
		if err != nil {
			return
		}
		if again := s.appendTo(nil); string(again) != string(b) {
			// Users or roles keyed under a name their record does not
			// hold, or listed twice, decode to fewer entries: then the
			// encoding of what decoded must itself round-trip.
			s2, err := decodeAuthState(again)
			if err != nil || string(s2.appendTo(nil)) != string(again) {
				t.Fatalf("%x decodes, re-encodes to %x, which does not round-trip: %v", b, again, err)
			}
		}
	})
}

// FuzzDecodeWALMeta: the WAL's metadata (the member's identity, and the
// members a joining member was told of) decodes without panicking, and
// what decodes encodes back to the same bytes.
func FuzzDecodeWALMeta(f *testing.F) {
	f.Add(encodeWALMeta(1, 2, nil))
	f.Add(encodeWALMeta(7, 9, []MemberInfo{{ID: 3, Name: "a", PeerURLs: []string{"http://a:2380"}, ClientURLs: []string{}}, {ID: 7, PeerURLs: []string{"http://b:2380"}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, cid, join, err := decodeWALMeta(b)
		if err != nil {
			return
		}
		if again := encodeWALMeta(id, cid, join); string(again) != string(b) {
			t.Fatalf("%x decodes to %x %x %+v, which encodes to %x", b, id, cid, join, again)
		}
	})
}
