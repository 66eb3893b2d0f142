package httpapi

import (
	"net/http"
	"strconv"
	"sync/atomic"
)

// Response headers are assigned to the header map directly, under their
// canonical names, rather than with Header.Set, which allocates a slice
// for every value: the values every answer sends are slices made once and
// shared, and the numbers of one answer share two allocations. Sharing is
// safe because net/http only reads a handler's values (it copies the map
// at WriteHeader), and a shared slice has a capacity of one, so that an
// append to it copies it first.

// Canonical header names (textproto.CanonicalMIMEHeaderKey of each).
const (
	hdrContentType   = "Content-Type"
	hdrContentLength = "Content-Length"
	hdrClusterID     = "X-Etcd-Cluster-Id"
	hdrEtcdIndex     = "X-Etcd-Index"
	hdrRaftIndex     = "X-Raft-Index"
	hdrRaftTerm      = "X-Raft-Term"
	hdrCORSHeaders   = "Access-Control-Allow-Headers"
	hdrCORSMethods   = "Access-Control-Allow-Methods"
	hdrCORSOrigin    = "Access-Control-Allow-Origin"
)

// Shared header values; never to be changed in place.
var (
	valJSON        = []string{"application/json"}
	valCORSHeaders = []string{"accept, content-type, authorization"}
	valCORSMethods = []string{"POST, GET, OPTIONS, PUT, DELETE"}
	valCORSAny     = []string{"*"}
)

// uintHeader is a header whose value is a number in decimal.
type uintHeader struct {
	name string
	v    uint64
}

// maxUintHeaders is how many headers setUintHeaders sets at most.
const maxUintHeaders = 4

// setUintHeaders sets each header to its number in decimal with two
// allocations however many there are: one string holds the digits of
// them all, one array their value slices.
func setUintHeaders(hd http.Header, hs ...uintHeader) {
	var digits [maxUintHeaders * 20]byte
	var ends [maxUintHeaders]int
	b := digits[:0]
	for i, h := range hs {
		b = strconv.AppendUint(b, h.v, 10)
		ends[i] = len(b)
	}
	s := string(b)
	vals := make([]string, len(hs))
	start := 0
	for i, h := range hs {
		vals[i] = s[start:ends[i]]
		hd[h.name] = vals[i : i+1 : i+1]
		start = ends[i]
	}
}

// cachedValue is a header value that seldom changes (the cluster ID, the
// term): formatted again only when the number changes. Safe for
// concurrent use.
type cachedValue struct {
	base int
	p    atomic.Pointer[formattedValue]
}

type formattedValue struct {
	n uint64
	v []string
}

// get returns n formatted in c's base, as a shared header value.
func (c *cachedValue) get(n uint64) []string {
	if f := c.p.Load(); f != nil && f.n == n {
		return f.v
	}
	f := &formattedValue{n: n, v: []string{strconv.FormatUint(n, c.base)}}
	c.p.Store(f)
	return f.v
}
