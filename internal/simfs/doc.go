// Package simfs is an in-memory file system for simulations: a wal.FS
// whose durability is explicit and whose faults are drawn from a seed.
//
// What a file holds is what was written; what survives Crash is what was
// synced, plus a random prefix (possibly empty, possibly all) of what was
// written after the last sync, as a power loss can leave. Files created,
// renamed or removed survive a crash only once SyncDir made their
// directory durable. Faults (Faults) make Sync and SyncDir fail, and
// WriteAt fail, optionally after writing a prefix of its data (a torn
// write). Latency gives writes and syncs a duration in virtual time (a
// sync may stall): the file system never sleeps, it sums the durations in
// Elapsed, and the simulator keeps the member busy for as long. Every
// random choice comes from the seed given to New and is made in a fixed
// order, so a run replays exactly.
//
// It exists for the whole-cluster simulator: members run the real WAL on
// it, a crash is FS.Crash followed by reopening, and the WAL must recover
// every record it acknowledged as synced. Directories are kept simply
// (created by MkdirAll, never lost); preallocated space reads as zeros.
package simfs
