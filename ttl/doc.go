// Package ttl keeps the expiry bookkeeping of the v2 store: a min-heap of
// deadlines keyed by node path.
//
// It answers one question for the store's apply path: "which paths have a
// deadline at or before t?". Deadlines are Unix nanoseconds supplied by the
// caller (the store takes them from proposed requests); the package never
// reads the clock.
//
// Invariants:
//   - a path appears at most once; Set on a present path moves its deadline;
//   - ordering is total and deterministic: by deadline, then by path, so two
//     replicas that made the same calls pop paths in the same order.
//
// A Heap is not safe for concurrent use; the store guards it with its apply
// lock.
package ttl
