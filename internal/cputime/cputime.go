package cputime

import "syscall"

// Process is the process's user and system CPU time so far, in
// nanoseconds (0 if the system does not say).
func Process() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
