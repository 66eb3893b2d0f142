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
	if len(b) < 3 {
		return fmt.Errorf("%w: %d bytes", ErrBadEncoding, len(b))
	}
	if b[0] != encVersion1 && b[0] != encVersion2 {
		return fmt.Errorf("%w: unknown version %d", ErrBadEncoding, b[0])
	}
	op, flags := Op(b[1]), b[2]
	if op == 0 || op > opMax {
		return fmt.Errorf("%w: unknown op %d", ErrBadEncoding, b[1])
	}
	if flags&^flagsKnown != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrBadEncoding, flags)
	}
	d := newDecoder(b[3:], ErrBadEncoding)
	out := Request{
		Op:        op,
		Dir:       flags&flagDir != 0,
		Recursive: flags&flagRecursive != 0,
		HasTTL:    flags&flagHasTTL != 0,
		Refresh:   flags&flagRefresh != 0,
		Wait:      flags&flagWait != 0,
	}
	out.Time = d.varint()
	if out.HasTTL {
		out.TTL = d.uvarint()
	}
	out.PrevIndex = d.uvarint()
	out.Path = d.str()
	out.Value = d.str()
	out.PrevValue = d.str()
	if b[0] == encVersion2 {
		out.FenceLock = d.str()
		out.FenceToken = d.uvarint()
		if d.Err() == nil && (out.FenceLock == "" || CleanPath(out.FenceLock) != out.FenceLock) {
			return fmt.Errorf("%w: fence path %q is not clean", ErrBadEncoding, out.FenceLock)
		}
	}
	if err := d.Finish(); err != nil {
		return err
	}
	if out.Path == "" || CleanPath(out.Path) != out.Path {
		return fmt.Errorf("%w: path %q is not clean", ErrBadEncoding, out.Path)
	}
	*r = out
	return nil
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
