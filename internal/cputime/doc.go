// Package cputime reads the CPU time this process has used, for
// benchmarks that report CPU per operation (steadier than wall time on a
// shared machine).
package cputime
