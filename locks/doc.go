// Package locks implements Cairn's server-side locks: fair (FIFO), fenced,
// and visible as ordinary hidden keys under store.LocksDir.
//
// A lock is a directory of waiters, each an in-order key with a TTL whose
// value describes its owner. The first waiter holds the lock, and its
// createdIndex is the fencing token: grants go in arrival order, so tokens
// strictly increase. Acquiring is one store operation (store.OpAcquire),
// applied through the Raft log. A caller that waits is woken only when the
// waiter just ahead of it goes away (it watches that one key), so a
// release wakes exactly one waiter. While it waits, the member serving it
// keeps its waiter key alive; when the caller goes away or its timeout
// passes, the waiter key is deleted, and a waiter whose member stops
// serving it expires; either way it is never granted. A waiter whose key
// expires while its caller still waits joins the line again, at its end;
// WaitEnded, a pure function the whole-cluster simulator runs too,
// decides between rejoining and answering. A holder that stops refreshing
// expires and the next waiter holds the lock. A waiter that reaches the
// head confirms with a linearizable read that its key still exists; when
// no leader can confirm the read (an election, a member cut off), it
// keeps its place and asks again while its caller waits.
//
// The package works through Backend alone and imports no server code, so
// that package server's simulator can run its rules.
package locks
