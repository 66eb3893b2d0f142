// Package regmodel is the register model the linearizability checkers
// share (porcupine's sequential specification): the chaos harness's
// (e2e/chaos*) and the whole-cluster simulator's (server/sim_test.go).
//
// Every key is a register whose state is its value ("" while the key does
// not exist; no operation writes ""). Operations are reads, writes and
// compare-and-swaps. One whose outcome is unknown returns "never" (after
// everything else) in the history given to porcupine, so it may take
// effect at any point after its call, or not at all; one certainly without
// effect (NotApplied) changes nothing.
package regmodel
