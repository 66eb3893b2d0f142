// Package codec is the one binary reader Cairn's encodings share: store
// requests (store), Raft messages on the wire (peer), and the member and
// auth registries and log-entry payloads (server).
//
// Its rules are those of every one of those formats: integers are
// uvarints in their minimal encoding only (so that every value has exactly
// one encoding, and replicas that compare or hash encoded bytes agree),
// signed integers zig-zag varints, likewise minimal; a length-prefixed
// field is bounded by the reader's limit and by the bytes left; a count of
// strings is bounded by the bytes left (each takes at least one). The
// first error sticks: later reads return zero values, and Err (or Finish,
// which also refuses trailing bytes) reports it, wrapped in the sentinel
// the caller gave, so each package keeps its own error identity.
//
// Writing needs no type: encoding/binary's Append functions and
// AppendString, AppendStrings here produce what Reader reads.
package codec
