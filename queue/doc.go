// Package queue implements Cairn's server-side FIFO queues, visible as
// ordinary hidden keys under store.QueuesDir.
//
// A queue is a directory of in-order keys. Enqueue, dequeue and reserve
// are each one store operation applied through the Raft log, so each item
// goes to exactly one dequeuer. A dequeuer that waits on an empty queue is
// registered in the queue's _waiters directory by the same operation that
// found it empty, and the enqueue that follows hands it the item in the
// same apply (store.ActionDeliver): no item is stored, nobody races. The
// member serving a waiting dequeuer keeps its registration alive and
// removes it when the caller goes away or times out; when it cannot (the
// delete's outcome is unknown), an item may yet be handed to it and reach
// nobody, so the caller is told the outcome is unknown
// (ErrRegistrationLeft), not that nothing came. The member follows the
// registration through its event history; when that watch ends (a
// snapshot installed) or cannot start (the history moved past it), it
// reads the registration again and watches from there, or, the
// registration being gone and nothing saying whether it was served, tells
// the caller the outcome is unknown (ErrDeliveryUnknown). GaveUp, a pure
// function, decides the answer of a wait that ends (the whole-cluster
// simulator runs it, and mirrors the rest).
//
// For consumers that may crash, Reserve gives the head item a visibility
// timeout instead of removing it; Ack removes it by its receipt. An
// unacknowledged item returns to the head when the timeout passes.
package queue
