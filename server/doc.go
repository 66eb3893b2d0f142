// Package server runs a Cairn member.
//
// Until the replicated member lands (consensus, WAL and peers), the package
// offers Local: one process, no consensus and no disk, that serialises
// requests into a store.Store exactly as the member's apply loop will, and
// proposes expiry the way the leader will (an OpExpire carrying its clock,
// whenever a deadline has passed). Tests drive the HTTP handlers through it.
package server
