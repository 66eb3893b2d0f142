// Package e2e holds tests that run real cairn processes on loopback: the
// binary is built once per test run, members are started with etcd's
// flags, talked to over HTTP, killed with SIGKILL and restarted, and
// always stopped by PID.
package e2e
