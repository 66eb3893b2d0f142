package store_test

import (
	"bytes"
	"errors"
	"math"
	"path"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/store"
)

func sampleRequests() []*store.Request {
	return []*store.Request{
		rqSet("/", ""),
		rqSet("/a", "hello"),
		ttl(dir(rqSet("/d/e", "")), 30),
		refresh(rqUpdate("/r", ""), 5),
		rqCAS("/k", "new", "old", 42),
		rqDelete("/d", true, true),
		rqCAD("/k", "v", 7),
		ttl(rqInOrder("/queue", "job"), 0),
		rqExpire(math.MinInt64),
		at(ttl(rqCreate("/x y/\x00/é", strings.Repeat("v", 300)), math.MaxUint64), math.MaxInt64),
		at(rqSet("/t", "negative time"), -1),
		{Op: store.OpAcquire, Path: "/_cairn/locks/l", Value: "me", HasTTL: true, TTL: 10, Wait: true, Time: t0},
		{Op: store.OpDequeue, Path: "/_cairn/queues/q", Wait: true, Time: t0},
		{Op: store.OpSet, Path: "/guarded", Value: "v", FenceLock: "/_cairn/locks/l", FenceToken: 1<<63 + 5, Time: t0},
	}
}

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range sampleRequests() {
		prefix := []byte("prefix")
		b := r.Marshal(bytes.Clone(prefix))
		if !bytes.HasPrefix(b, prefix) {
			t.Fatalf("Marshal did not append to its argument")
		}
		var got store.Request
		if err := got.Unmarshal(b[len(prefix):]); err != nil {
			t.Fatalf("%s: %v", fmtReq(r), err)
		}
		if got != *r {
			t.Fatalf("round trip of %s gave %s", fmtReq(r), fmtReq(&got))
		}
	}
}

func TestRequestUnmarshalRejects(t *testing.T) {
	good := rqCAS("/k", "new", "old", 42).Marshal(nil)
	ttlReq := ttl(rqSet("/k", "v"), 300).Marshal(nil)
	mod := func(b []byte, i int, v byte) []byte {
		b = bytes.Clone(b)
		b[i] = v
		return b
	}
	cases := map[string][]byte{
		"empty":            nil,
		"two bytes":        good[:2],
		"version 0":        mod(good, 0, 0),
		"version 2":        mod(good, 0, 2),
		"op 0":             mod(good, 1, 0),
		"op 12":            mod(good, 1, 12),
		"op 255":           mod(good, 1, 255),
		"unknown flag":     mod(good, 2, 0x20),
		"high flag":        mod(good, 2, 0x80),
		"truncated":        good[:len(good)-1],
		"truncated time":   good[:4],
		"trailing byte":    append(bytes.Clone(good), 0),
		"ttl flag cleared": mod(ttlReq, 2, ttlReq[2]&^4), // the TTL is then read as prevIndex...
		"huge length":      append(good[:len(good)-1-len("old")], 0xff, 0xff, 0xff, 0xff, 0x0f),
		"varint overflow":  append(good[:3], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
	}
	for _, p := range []string{"", "a", "/a/", "//a", "/a/./b", "/a/../b", "/..", "/."} {
		cases["path "+p] = (&store.Request{Op: store.OpSet, Path: p}).Marshal(nil)
	}
	for name, b := range cases {
		r := store.Request{Path: "/untouched"}
		err := r.Unmarshal(b)
		if err == nil {
			t.Errorf("%s: accepted %x as %s", name, b, fmtReq(&r))
			continue
		}
		if !errors.Is(err, store.ErrBadEncoding) {
			t.Errorf("%s: error %v does not wrap ErrBadEncoding", name, err)
		}
		if r.Path != "/untouched" {
			t.Errorf("%s: a failed Unmarshal changed the request", name)
		}
	}
}

// TestUnmarshalRejectsOverlongVarint: the encoding is canonical, so that
// a request has exactly one encoding (what FuzzRequestUnmarshal checks):
// a varint with redundant continuation bytes (0x80 0x00 is an overlong 0)
// is refused wherever it appears.
func TestUnmarshalRejectsOverlongVarint(t *testing.T) {
	// 01 op flags | time | ttl | prevIndex | len "/k" | len "v" | len ""
	build := func(tm, ttlv, prev, plen []byte) []byte {
		b := []byte{1, byte(store.OpSet), 4} // hasTTL
		b = append(b, tm...)
		b = append(b, ttlv...)
		b = append(b, prev...)
		b = append(b, plen...)
		b = append(b, "/k"...)
		return append(b, 1, 'v', 0)
	}
	var r store.Request
	if err := r.Unmarshal(build([]byte{0x02}, []byte{0x05}, []byte{0x00}, []byte{0x02})); err != nil {
		t.Fatalf("the minimal form is refused: %v", err)
	}
	for name, b := range map[string][]byte{
		"time":        build([]byte{0x82, 0x00}, []byte{0x05}, []byte{0x00}, []byte{0x02}),
		"ttl":         build([]byte{0x02}, []byte{0x85, 0x80, 0x00}, []byte{0x00}, []byte{0x02}),
		"prevIndex":   build([]byte{0x02}, []byte{0x05}, []byte{0x80, 0x00}, []byte{0x02}),
		"path length": build([]byte{0x02}, []byte{0x05}, []byte{0x00}, []byte{0x82, 0x00}),
	} {
		var r store.Request
		if err := r.Unmarshal(b); err == nil {
			t.Errorf("%s: accepted %x (re-marshals to %x)", name, b, r.Marshal(nil))
		} else if !errors.Is(err, store.ErrBadEncoding) {
			t.Errorf("%s: %v does not wrap ErrBadEncoding", name, err)
		}
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[store.Op]string{
		store.OpSet: "set", store.OpCreate: "create", store.OpUpdate: "update",
		store.OpCompareAndSwap: "compareAndSwap", store.OpDelete: "delete",
		store.OpCompareAndDelete: "compareAndDelete", store.OpCreateInOrder: "createInOrder",
		store.OpExpire: "expire", store.OpAcquire: "acquire", store.OpEnqueue: "enqueue",
		store.OpDequeue: "dequeue", 0: "op(0)", 12: "op(12)",
	} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", uint8(op), got, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"": "/", "/": "/", "a": "/a", "/a/": "/a", "a/b/": "/a/b", "//a//b": "/a/b",
		"/a/./b": "/a/b", "/a/../b": "/b", "../../x": "/x", "/..": "/", ".": "/", "/_h/": "/_h",
		"/a b/%2F": "/a b/%2F",
	} {
		if got := store.CleanPath(in); got != want {
			t.Errorf("CleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRequestUnmarshal: Unmarshal never panics, and whatever it accepts is
// a valid request that re-marshals to the identical bytes.
func FuzzRequestUnmarshal(f *testing.F) {
	for _, r := range sampleRequests() {
		f.Add(r.Marshal(nil))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0})
	f.Add([]byte{1, 4, 0xf, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 0, 0x80, 0x00, 0, 1, '/', 0, 0}) // overlong time
	f.Fuzz(func(t *testing.T, b []byte) {
		var r store.Request
		if err := r.Unmarshal(b); err != nil {
			if !errors.Is(err, store.ErrBadEncoding) {
				t.Fatalf("error %v does not wrap ErrBadEncoding", err)
			}
			return
		}
		if r.Op < store.OpSet || r.Op > store.OpDequeue {
			t.Fatalf("accepted op %d", r.Op)
		}
		if r.Path == "" || store.CleanPath(r.Path) != r.Path {
			t.Fatalf("accepted unclean path %q", r.Path)
		}
		if !r.HasTTL && r.TTL != 0 {
			t.Fatalf("TTL %d without HasTTL", r.TTL)
		}
		if r.FenceLock != "" && store.CleanPath(r.FenceLock) != r.FenceLock {
			t.Fatalf("accepted unclean fence path %q", r.FenceLock)
		}
		if again := r.Marshal(nil); !bytes.Equal(again, b) {
			t.Fatalf("accepted %x as %s, which marshals to %x", b, fmtReq(&r), r.Marshal(nil))
		}
	})
}

// FuzzRequestRoundTrip: for any field values with a clean path, Unmarshal
// inverts Marshal; an unclean path is refused.
func FuzzRequestRoundTrip(f *testing.F) {
	for _, r := range sampleRequests() {
		var flags uint8
		for i, b := range []bool{r.Dir, r.Recursive, r.HasTTL, r.Refresh, r.Wait} {
			if b {
				flags |= 1 << i
			}
		}
		f.Add(uint8(r.Op), flags, r.Time, r.TTL, r.PrevIndex, r.Path, r.Value, r.PrevValue, r.FenceLock, r.FenceToken)
	}
	f.Add(uint8(3), uint8(0xff), int64(-1), uint64(math.MaxUint64), uint64(math.MaxUint64), "/a/../b", "", "", "", uint64(0))
	f.Add(uint8(3), uint8(0), int64(1), uint64(0), uint64(0), "/a", "", "", "/l/../m", uint64(1))
	f.Fuzz(func(t *testing.T, op, flags uint8, tm int64, ttlv, prevIndex uint64, p, value, prevValue, fence string, token uint64) {
		r := store.Request{
			Op:         store.Op(1 + op%uint8(store.OpDequeue)),
			Dir:        flags&1 != 0,
			Recursive:  flags&2 != 0,
			HasTTL:     flags&4 != 0,
			Refresh:    flags&8 != 0,
			Wait:       flags&16 != 0,
			Time:       tm,
			PrevIndex:  prevIndex,
			Path:       p,
			Value:      value,
			PrevValue:  prevValue,
			FenceLock:  fence,
			FenceToken: token,
		}
		if r.HasTTL {
			r.TTL = ttlv // meaningful (and encoded) only with HasTTL
		}
		b := r.Marshal(nil)
		var got store.Request
		err := got.Unmarshal(b)
		if p == "" || store.CleanPath(p) != p || fence != "" && store.CleanPath(fence) != fence {
			if err == nil {
				t.Fatalf("unclean path %q or fence %q accepted", p, fence)
			}
			return
		}
		if fence == "" {
			r.FenceToken = 0 // encoded only with a fence
			got.FenceToken = 0
		}
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(%s)): %v", fmtReq(&r), err)
		}
		if got != r {
			t.Fatalf("round trip of %s gave %s", fmtReq(&r), fmtReq(&got))
		}
	})
}

// FuzzCleanPath: the result is absolute and clean, CleanPath is
// idempotent, only "/" ends in a slash, no element is "", "." or "..",
// and without ".." in the input the elements are the input's non-empty,
// non-"." elements in order.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"", "/", "a", "/a/", "//a//b/", "/a/./b/../c", "../..", "/_h/x", "a\x00b", "/.../..a/a..", "é/ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := store.CleanPath(in)
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("CleanPath(%q) = %q is not absolute", in, out)
		}
		if path.Clean(out) != out || store.CleanPath(out) != out {
			t.Fatalf("CleanPath(%q) = %q is not clean / not idempotent", in, out)
		}
		if out != "/" && strings.HasSuffix(out, "/") {
			t.Fatalf("CleanPath(%q) = %q has a trailing slash", in, out)
		}
		if out == "/" {
			return
		}
		elems := strings.Split(out[1:], "/")
		for _, e := range elems {
			if e == "" || e == "." || e == ".." {
				t.Fatalf("CleanPath(%q) = %q has element %q", in, out, e)
			}
		}
		var want []string
		for _, e := range strings.Split(in, "/") {
			if e == ".." {
				return
			}
			if e != "" && e != "." {
				want = append(want, e)
			}
		}
		if strings.Join(want, "/") != strings.Join(elems, "/") {
			t.Fatalf("CleanPath(%q) = %q, want elements %q", in, out, want)
		}
	})
}

// FuzzCheckEncoded: CheckEncoded refuses exactly what Unmarshal followed
// by CheckLimits refuses, with the same error. (Requests over the limits
// are too large to fuzz quickly: TestCheckEncodedRefusesOverLimits.)
func FuzzCheckEncoded(f *testing.F) {
	for _, r := range sampleRequests() {
		f.Add(r.Marshal(nil))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 0, 2, '/', '/', 0, 0})
	f.Add([]byte{2, 1, 0, 0, 0, 2, '/', 'a', 0, 0, 3, '/', '.', '.', 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r store.Request
		want := r.Unmarshal(b)
		if want == nil {
			if lerr := store.CheckLimits(&r); lerr != nil {
				want = lerr
			}
		}
		got := store.CheckEncoded(b)
		if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
			t.Fatalf("CheckEncoded(%x) = %v; Unmarshal and CheckLimits say %v", b, got, want)
		}
	})
}

// overLimits are requests that each break one hard limit.
func overLimits() []*store.Request {
	return []*store.Request{
		rqSet("/"+strings.Repeat("k", store.MaxKeyBytes), "v"),
		rqSet(strings.Repeat("/d", store.MaxKeyDepth+1), "v"),
		{Op: store.OpSet, Path: "/a", FenceLock: strings.Repeat("/l", store.MaxKeyDepth+1), FenceToken: 1},
		rqCAS("/k", "v", strings.Repeat("p", store.MaxValueBytes+1), 0),
	}
}

// CheckEncoded refuses each hard limit as CheckLimits does.
func TestCheckEncodedRefusesOverLimits(t *testing.T) {
	for _, r := range overLimits() {
		want := store.CheckLimits(r)
		if want == nil {
			t.Fatalf("%.40s...: CheckLimits accepts it", fmtReq(r))
		}
		err := store.CheckEncoded(r.Marshal(nil))
		var se *store.Error
		if !errors.As(err, &se) || se.Code != store.EcodeTooLarge || err.Error() != want.Error() {
			t.Errorf("%.40s...: CheckEncoded says %v, want %v", fmtReq(r), err, want)
		}
	}
}

// CheckEncoded allocates nothing for a request it accepts.
func TestCheckEncodedAllocatesNothing(t *testing.T) {
	for _, r := range sampleRequests() {
		b := r.Marshal(nil)
		if n := testing.AllocsPerRun(100, func() {
			if err := store.CheckEncoded(b); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations", fmtReq(r), n)
		}
	}
}
