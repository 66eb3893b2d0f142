package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path"

	"github.com/cairnkv/cairn/internal/codec"
)

// Op is a store operation. Ops are domain actions, never HTTP verbs: the
// keys handler decides, from the request parameters, which op a PUT means.
type Op uint8

// The operations the store applies. Their numbers are part of the log
// encoding: never renumber, only add.
const (
	OpSet              Op = 1 // create or replace a key (or make a dir)
	OpCreate           Op = 2 // create; fails if the node exists
	OpUpdate           Op = 3 // replace value/TTL of an existing node
	OpCompareAndSwap   Op = 4 // update guarded by PrevValue/PrevIndex
	OpDelete           Op = 5 // delete (Dir/Recursive for directories)
	OpCompareAndDelete Op = 6 // delete guarded by PrevValue/PrevIndex
	OpCreateInOrder    Op = 7 // create a child named by the new index
	OpExpire           Op = 8 // expire every deadline at or before Time
	// 9–11 (OpAcquire, OpEnqueue, OpDequeue) are in coord.go.
	opMax = OpDequeue
)

var opNames = [...]string{
	OpSet:              "set",
	OpCreate:           "create",
	OpUpdate:           "update",
	OpCompareAndSwap:   "compareAndSwap",
	OpDelete:           "delete",
	OpCompareAndDelete: "compareAndDelete",
	OpCreateInOrder:    "createInOrder",
	OpExpire:           "expire",
	OpAcquire:          "acquire",
	OpEnqueue:          "enqueue",
	OpDequeue:          "dequeue",
}

func (o Op) String() string {
	if o == 0 || o > opMax {
		return fmt.Sprintf("op(%d)", uint8(o))
	}
	return opNames[o]
}

// Request is one change to the tree, as proposed through the Raft log.
//
// Time is the proposer's wall clock in Unix nanoseconds. Apply uses it, and
// nothing else, for time: new deadlines are Time + TTL, and OpExpire expires
// every deadline at or before Time. Replicas therefore agree without
// consulting their own clocks.
type Request struct {
	Op        Op
	Path      string // absolute and clean (see CleanPath)
	Value     string
	Dir       bool
	Recursive bool // OpDelete: remove a whole subtree (implies Dir)
	PrevValue string
	PrevIndex uint64
	HasTTL    bool
	TTL       uint64 // seconds; meaningful only when HasTTL
	Refresh   bool   // keep the value, set the TTL, notify no watcher
	Wait      bool   // OpAcquire: queue behind a holder; OpDequeue: block when empty
	Time      int64
	// FenceLock and FenceToken make any change conditional on FenceToken
	// being the token of the current holder of the lock at FenceLock.
	FenceLock  string
	FenceToken uint64
}

// CleanPath turns a client path into the store's form: absolute, no
// trailing slash, no "." or ".." elements. The root is "/".
func CleanPath(p string) string {
	return path.Clean("/" + p)
}

// Encoding, version 1:
//
//	version  byte   (1)
//	op       byte
//	flags    byte   dir=1 recursive=2 hasTTL=4 refresh=8
//	time     varint
//	ttl      uvarint (only if hasTTL)
//	prevIdx  uvarint
//	path, value, prevValue: uvarint length + bytes each
//
// Version 2 (only when a fence is set) adds the fence lock's path (uvarint
// length + bytes) and token (uvarint).
const (
	encVersion1 = 1
	encVersion2 = 2

	flagDir       = 1 << 0
	flagRecursive = 1 << 1
	flagHasTTL    = 1 << 2
	flagRefresh   = 1 << 3
	flagWait      = 1 << 4
	flagsKnown    = flagDir | flagRecursive | flagHasTTL | flagRefresh | flagWait
)

// ErrBadEncoding is wrapped by every decoding failure.
var ErrBadEncoding = errors.New("store: bad request encoding")

// maxFieldLen bounds one string field of an encoded request; the HTTP layer
// refuses bodies above 10 MiB long before this.
const maxFieldLen = 64 << 20

// Marshal appends the binary encoding of r to b.
func (r *Request) Marshal(b []byte) []byte {
	var flags byte
	if r.Dir {
		flags |= flagDir
	}
	if r.Recursive {
		flags |= flagRecursive
	}
	if r.HasTTL {
		flags |= flagHasTTL
	}
	if r.Refresh {
		flags |= flagRefresh
	}
	if r.Wait {
		flags |= flagWait
	}
	version := byte(encVersion1)
	if r.FenceLock != "" {
		version = encVersion2
	}
	b = append(b, version, byte(r.Op), flags)
	b = binary.AppendVarint(b, r.Time)
	if r.HasTTL {
		b = binary.AppendUvarint(b, r.TTL)
	}
	b = binary.AppendUvarint(b, r.PrevIndex)
	for _, s := range [...]string{r.Path, r.Value, r.PrevValue} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	if version == encVersion2 {
		b = binary.AppendUvarint(b, uint64(len(r.FenceLock)))
		b = append(b, r.FenceLock...)
		b = binary.AppendUvarint(b, r.FenceToken)
	}
	return b
}

// Unmarshal decodes a request encoded by Marshal. It validates everything
// apply relies on: a known version and op, known flags, a clean absolute
// path and no trailing bytes.
func (r *Request) Unmarshal(b []byte) error {
	e, err := parseRequest(b)
	if err != nil {
		return err
	}
	*r = Request{
		Op:         e.op,
		Path:       string(e.path),
		Value:      string(e.value),
		Dir:        e.flags&flagDir != 0,
		Recursive:  e.flags&flagRecursive != 0,
		PrevValue:  string(e.prevValue),
		PrevIndex:  e.prevIndex,
		HasTTL:     e.flags&flagHasTTL != 0,
		TTL:        e.ttl,
		Refresh:    e.flags&flagRefresh != 0,
		Wait:       e.flags&flagWait != 0,
		Time:       e.time,
		FenceLock:  string(e.fenceLock),
		FenceToken: e.fenceToken,
	}
	return nil
}

// CheckEncoded returns what Unmarshal followed by CheckLimits would
// refuse in the request b encodes (an error wrapping ErrBadEncoding, or a
// limit's *Error), or nil, without building the request: it allocates
// nothing for a request it accepts. A leader calls it on every proposal.
func CheckEncoded(b []byte) error {
	e, err := parseRequest(b)
	if err != nil {
		return err
	}
	if lerr := checkLimits(e.op, e.path, e.fenceLock, e.value, e.prevValue); lerr != nil {
		return lerr
	}
	return nil
}

// encodedRequest is a request's encoding read into its fields; the byte
// fields alias the encoding.
type encodedRequest struct {
	op                                Op
	flags                             byte
	time                              int64
	ttl, prevIndex, fenceToken        uint64
	path, value, prevValue, fenceLock []byte
}

// parseRequest reads and validates a request's encoding: Unmarshal's
// checks, in one place for Unmarshal and CheckEncoded.
func parseRequest(b []byte) (encodedRequest, error) {
	if len(b) < 3 {
		return encodedRequest{}, fmt.Errorf("%w: %d bytes", ErrBadEncoding, len(b))
	}
	if b[0] != encVersion1 && b[0] != encVersion2 {
		return encodedRequest{}, fmt.Errorf("%w: unknown version %d", ErrBadEncoding, b[0])
	}
	out := encodedRequest{op: Op(b[1]), flags: b[2]}
	if out.op == 0 || out.op > opMax {
		return encodedRequest{}, fmt.Errorf("%w: unknown op %d", ErrBadEncoding, b[1])
	}
	if out.flags&^flagsKnown != 0 {
		return encodedRequest{}, fmt.Errorf("%w: unknown flags %#x", ErrBadEncoding, out.flags)
	}
	d := newDecoder(b[3:], ErrBadEncoding)
	out.time = d.varint()
	if out.flags&flagHasTTL != 0 {
		out.ttl = d.uvarint()
	}
	out.prevIndex = d.uvarint()
	out.path = d.field()
	out.value = d.field()
	out.prevValue = d.field()
	if b[0] == encVersion2 {
		out.fenceLock = d.field()
		out.fenceToken = d.uvarint()
		if d.Err() == nil && !isCleanPath(out.fenceLock) {
			return encodedRequest{}, fmt.Errorf("%w: fence path %q is not clean", ErrBadEncoding, out.fenceLock)
		}
	}
	if err := d.Finish(); err != nil {
		return encodedRequest{}, err
	}
	if !isCleanPath(out.path) {
		return encodedRequest{}, fmt.Errorf("%w: path %q is not clean", ErrBadEncoding, out.path)
	}
	return out, nil
}

// isCleanPath reports whether CleanPath(p) == p and p != "", without
// allocating: p is absolute, and it is "/" or its elements are neither
// empty (no double and no trailing slash) nor "." nor "..".
func isCleanPath[S ~string | ~[]byte](p S) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	if len(p) == 1 {
		return true
	}
	start := 1 // of the current element
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch n := i - start; {
		case n == 0, n == 1 && p[start] == '.', n == 2 && p[start] == '.' && p[start+1] == '.':
			return false
		}
		start = i + 1
	}
	return true
}

// decoder reads store's encodings (a request, and the node and event
// records of the applied-state file) with the rules every Cairn encoding
// shares (internal/codec): minimal integers, bounded fields.
type decoder struct{ *codec.Reader }

func newDecoder(b []byte, wrap error) decoder {
	return decoder{codec.NewReader(b, maxFieldLen, wrap)}
}

func (d decoder) uvarint() uint64 { return d.Uvarint() }
func (d decoder) varint() int64   { return d.Varint() }
func (d decoder) str() string     { return d.String() }

// field reads a length-prefixed field without copying it, under the
// same bound as str.
func (d decoder) field() []byte {
	n := d.Uvarint()
	if d.Err() != nil {
		return nil
	}
	if n > maxFieldLen || n > uint64(d.Len()) {
		d.Fail("field of %d bytes, %d left", n, d.Len())
		return nil
	}
	f := d.Peek()[:n:n]
	d.Skip(int(n))
	return f
}
