package store

import "fmt"

// Hard limits. Apply refuses a request past any of them with EcodeTooLarge,
// on every member alike: they are constants of the log's format, never
// settings, because members that disagreed on them would diverge. The
// configurable limits of the HTTP layer (docs/api.md, "Limits") are at or
// below them, so a well-formed client request never meets these; they keep
// a request that came another way (a forwarded proposal, an entry written
// by a buggy or hostile peer) from taking the state machine somewhere the
// applied-state file cannot follow.
const (
	// MaxKeyBytes bounds a key's path. bbolt refuses keys of 32 KiB and
	// more; the applied-state file keys nodes by path.
	MaxKeyBytes = 8 << 10
	// MaxKeyDepth bounds the number of path elements. Every node keeps its
	// full path, so the memory a key costs grows with the square of its
	// depth.
	MaxKeyDepth = 1024
	// MaxValueBytes bounds a value (and a prevValue).
	MaxValueBytes = 32 << 20
)

// EcodeTooLarge and EcodeQuotaExceeded are Cairn's own error codes for
// limits (etcd's v2 had none): a request over a size limit, and a change
// refused because the data has reached the quota. EcodeKeyIsPreserved is
// etcd's code for a key under a reserved prefix.
const (
	EcodeKeyIsPreserved = 106
	EcodeTooLarge       = 124
	EcodeQuotaExceeded  = 125
)

// PathDepth is the number of elements in a clean path ("/" has none).
func PathDepth(p string) int { return pathDepth(p) }

func pathDepth[S ~string | ~[]byte](p S) int {
	if len(p) == 1 && p[0] == '/' {
		return 0
	}
	n := 0
	for i := range len(p) {
		if p[i] == '/' {
			n++
		}
	}
	return n
}

// CheckLimits returns the first hard limit r breaks, or nil. Apply calls
// it; so does the member before it proposes. A leader checks a proposal's
// encoding instead (CheckEncoded), by the same rules.
func CheckLimits(r *Request) *Error {
	return checkLimits(r.Op, r.Path, r.FenceLock, r.Value, r.PrevValue)
}

func checkLimits[S ~string | ~[]byte](op Op, path, fenceLock, value, prevValue S) *Error {
	for _, p := range [...]S{path, fenceLock} {
		if len(p) > MaxKeyBytes {
			return NewError(EcodeTooLarge, fmt.Sprintf("key of %d bytes; at most %d", len(p), MaxKeyBytes), 0)
		}
		if d := pathDepth(p); d > MaxKeyDepth {
			return NewError(EcodeTooLarge, fmt.Sprintf("key of %d path elements; at most %d", d, MaxKeyDepth), 0)
		}
	}
	for _, v := range [...]S{value, prevValue} {
		if len(v) > MaxValueBytes {
			return NewError(EcodeTooLarge, fmt.Sprintf("value of %d bytes; at most %d", len(v), MaxValueBytes), 0)
		}
	}
	if op < OpSet || op > opMax {
		return NewError(EcodeInvalidField, fmt.Sprintf("unknown operation %d", op), 0)
	}
	return nil
}
