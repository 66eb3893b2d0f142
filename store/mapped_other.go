//go:build !linux

package store

// dropMapped does nothing where the member's resident memory is not
// measured against the mapped applied-state file.
func (d *disk) dropMapped() {}
