// Package wal is the Raft log on disk: the entries, hard states and
// snapshot markers a member must not lose, in append-only segments.
//
// Layout: a directory of segments named "%016x-%016x.wal" (sequence
// number, index of the first entry the segment may hold). A segment is
// created as a temp file, preallocated to Options.SegmentSize (64 MB),
// headed by the chain seed, the caller's metadata, the current hard state
// and snapshot marker, fsynced, renamed into place, and the directory
// fsynced; so a crash leaves either no new segment or a whole one (a
// segment renamed into place whose directory fsync failed is made durable
// by the next Open, before anything is appended to it). When a segment
// fills, the next is cut. CreateWith writes a new log's first
// records (a new cluster's bootstrap entries and hard state) into its
// first segment before the rename: a crash or failure leaves no log or
// one with them.
//
// Records carry a CRC-32C chained across records and segments (see
// record.go), so a record out of place is as detectable as a damaged one.
// Open replays every segment from the one that may hold the first entry
// the caller needs. It reads a segment as far as its records go (in chunks
// of at least 1 MiB, as the scan asks for bytes) and checks the
// preallocated zeros after them through a 1 MiB buffer it does not keep,
// so a restart holds in memory what the records take, not the 64 MB a
// segment is preallocated to; every byte is still checked:
//   - in the last segment, a record cut short by the end of the file, or a
//     damaged record followed only by zeros, is a torn write: it is cut off
//     and the tail zeroed before appends resume (at the record's aligned
//     end);
//   - damage anywhere else is refused with ErrCorrupt naming the file and
//     offset: a record length that fails its check byte (so a flipped
//     length bit is never mistaken for a torn write), non-zero padding, a
//     broken chain, a missing segment, damage among a segment's header
//     records (they are fsynced before the segment is renamed into
//     place), and bytes after what looks like the end of the records. The
//     last case includes a write whose later sectors reached the disk but
//     not its first: the WAL does not guess whether what follows was
//     acknowledged; the operator removes and re-adds the member;
//   - an entry index written again replaces the earlier entry and
//     everything after it (Raft overwrote a conflicting suffix), also when
//     the rewrite is at or below the index the caller asked to read from;
//   - after a snapshot marker, entries may resume at its index + 1.
//
// Durability: Save returns only after its records are written and
// fsynced; it refuses an entry whose record would pass MaxRecordSize
// (ErrTooLarge), which the 24-bit length could not describe. Concurrent Saves are grouped: one flusher goroutine writes
// everything that queued up during the previous fsync with one write and
// one fsync (group commit). SaveCommit, for a hard state that moves only
// the commit index, returns once its record is written, without an
// fsync: the next Save's fsync makes it durable, and a crash before it
// may lose it (Raft learns a commit index again). A failed write or fsync is fatal and sticky:
// the WAL answers ErrFailed to every later call, so nothing written after
// an unknown failure is ever acknowledged; the member stops.
//
// All file operations go through FS, so tests can fail any write, fsync
// or rename.
//
// Options.UnsafeTrustTornTail is a deliberate bug, a test-only failpoint:
// Open takes a torn record at the tail (crc failing, zeros after it, its
// an entry record) as whole instead of cutting it off. The whole-cluster
// simulator (server/sim_test.go) switches it on to show that its checkers
// catch lost unsynced data the WAL does not detect. It is an Options field
// rather than a file-system hook because the FS sees bytes, not records
// or checksums: only the scan can decide to trust a record.
package wal
