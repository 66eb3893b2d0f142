package store

import "fmt"

// Error codes of the v2 keys API. The numbers and messages are part of the
// wire contract (API.md §3.2); which HTTP status each maps to is decided by
// httpapi, not here.
const (
	EcodeKeyNotFound        = 100
	EcodeTestFailed         = 101
	EcodeNotFile            = 102
	EcodeNotDir             = 104
	EcodeNodeExist          = 105
	EcodeRootROnly          = 107
	EcodeDirNotEmpty        = 108
	EcodeUnauthorized       = 110
	EcodePrevValueRequired  = 201
	EcodeTTLNaN             = 202
	EcodeIndexNaN           = 203
	EcodeInvalidField       = 209
	EcodeInvalidForm        = 210
	EcodeRefreshValue       = 211
	EcodeRefreshTTLRequired = 212
	EcodeRaftInternal       = 300
	EcodeLeaderElect        = 301
	EcodeWatcherCleared     = 400
	EcodeEventIndexCleared  = 401
	// Cairn's own, for locks and queues (EcodeLockHeld, EcodeFenceFailed
	// and EcodeQueueEmpty are in coord.go).
	EcodeWaitTimeout = 123
)

var messages = map[int]string{
	100: "Key not found",
	101: "Compare failed",
	102: "Not a file",
	103: "Reached the max number of peers in the cluster",
	104: "Not a directory",
	105: "Key already exists",
	106: "The prefix of given key is a keyword in etcd",
	107: "Root is read only",
	108: "Directory not empty",
	109: "Peer address has existed",
	110: "The request requires user authentication",
	200: "Value is Required in POST form",
	201: "PrevValue is Required in POST form",
	202: "The given TTL in POST form is not a number",
	203: "The given index in POST form is not a number",
	204: "Value or TTL is required in POST form",
	205: "The given timeout in POST form is not a number",
	206: "Name is required in POST form",
	207: "Index or value is required",
	208: "Index and value cannot both be specified",
	209: "Invalid field",
	210: "Invalid POST form",
	211: "Value provided on refresh",
	212: "A TTL must be provided on refresh",
	120: "Lock is held",
	121: "Lock token is not the holder's",
	122: "Queue is empty",
	123: "Timed out waiting",
	124: "Request too large",
	125: "Data quota exceeded",
	300: "Raft Internal Error",
	301: "During Leader Election",
	400: "watcher is cleared due to etcd recovery",
	401: "The event in requested index is outdated and cleared",
	402: "Standby Internal Error",
	403: "Invalid active size",
	404: "Standby remove delay",
	500: "Client Internal Error",
}

// Error is a v2 error: a code from the table above, a cause naming what
// failed (usually a key path), and the store index the error was observed at
// (0 for errors found before the store was consulted).
type Error struct {
	Code  int
	Cause string
	Index uint64
}

// NewError returns an error with the given code, cause and index.
func NewError(code int, cause string, index uint64) *Error {
	return &Error{Code: code, Cause: cause, Index: index}
}

// Message is the fixed text that belongs to the error's code.
func (e *Error) Message() string { return Message(e.Code) }

// Message returns the fixed text of a v2 error code ("" if unknown).
func Message(code int) string { return messages[code] }

func (e *Error) Error() string {
	if e.Cause == "" {
		return fmt.Sprintf("%d: %s (%d)", e.Code, e.Message(), e.Index)
	}
	return fmt.Sprintf("%d: %s (%s) [%d]", e.Code, e.Message(), e.Cause, e.Index)
}

// Is lets errors.Is match two *Error values by code alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}
