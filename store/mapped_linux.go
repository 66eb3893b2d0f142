package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropMapped tells the kernel this process no longer needs the pages of
// the applied-state file it has mapped. bbolt reads its B+tree through a
// shared, read-only mapping and writes with pwrite, so the mapped pages
// are clean copies of the page cache: after a batch is written (which
// touches a page of every leaf it changes) or the store is loaded (which
// reads them all), they would stay counted in the member's resident
// memory although the tree in memory already holds everything. Dropped,
// they stay in the page cache, shared and reclaimable, and the next
// transaction that reads one faults it back in (which is why a write
// only arranges a drop a second later: dropSoon). The caller holds d.mu,
// so no write transaction (the only thing that remaps) runs meanwhile.
func (d *disk) dropMapped() {
	fi, err := os.Stat(d.db.Path())
	if err != nil || fi.Size() == 0 {
		return
	}
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, d.db.Info().Data, uintptr(fi.Size()), unix.MADV_DONTNEED)
}
