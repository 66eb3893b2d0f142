// Package quorum holds the majority arithmetic of Raft: which index a
// majority of voters has acknowledged, and whether a vote is won, lost or
// still open. It is pure: no state, no I/O, deterministic.
package quorum
