package httpapi

import (
	"net/http"
	"net/textproto"
	"testing"
)

// Headers assigned to the map directly must use the canonical names, or
// Header.Get (and net/http's own checks, such as Content-Length) would
// not find them.
func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, name := range []string{hdrContentType, hdrContentLength, hdrClusterID, hdrEtcdIndex,
		hdrRaftIndex, hdrRaftTerm, hdrCORSHeaders, hdrCORSMethods, hdrCORSOrigin} {
		if c := textproto.CanonicalMIMEHeaderKey(name); c != name {
			t.Errorf("%q is not canonical: %q", name, c)
		}
	}
}

func TestSetUintHeadersSetsEachNumber(t *testing.T) {
	hd := http.Header{}
	setUintHeaders(hd, uintHeader{hdrEtcdIndex, 0}, uintHeader{hdrRaftIndex, 18446744073709551615},
		uintHeader{hdrContentLength, 42}, uintHeader{hdrRaftTerm, 7})
	want := map[string]string{hdrEtcdIndex: "0", hdrRaftIndex: "18446744073709551615", hdrContentLength: "42", hdrRaftTerm: "7"}
	if len(hd) != len(want) {
		t.Fatalf("headers %v", hd)
	}
	for name, v := range want {
		if got := hd.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want [%q]", name, got, v)
		}
	}
	// The values share an array; adding a value to one must not touch
	// the next.
	hd.Add(hdrEtcdIndex, "1")
	if got := hd.Values(hdrRaftIndex); len(got) != 1 || got[0] != "18446744073709551615" {
		t.Fatalf("an Add to another header changed X-Raft-Index: %q", got)
	}
}

// A shared value is not changed by an Add to the header that holds it.
func TestSharedHeaderValuesSurviveAdd(t *testing.T) {
	hd := http.Header{}
	hd[hdrContentType] = valJSON
	hd.Add(hdrContentType, "text/plain")
	if len(valJSON) != 1 || valJSON[0] != "application/json" {
		t.Fatalf("the shared value changed: %q", valJSON)
	}
}

func TestCachedValueFollowsTheNumber(t *testing.T) {
	c := cachedValue{base: 16}
	a := c.get(0xbe1c)
	if len(a) != 1 || a[0] != "be1c" {
		t.Fatalf("%q", a)
	}
	if b := c.get(0xbe1c); &b[0] != &a[0] {
		t.Fatal("the same number was formatted again")
	}
	if b := c.get(255); len(b) != 1 || b[0] != "ff" {
		t.Fatalf("after a change: %q", b)
	}
}
