// Package e2e holds tests that run real cairn processes on loopback: the
// binary is built once per test run, members are started with etcd's
// flags, talked to over HTTP, killed with SIGKILL and restarted, and
// always stopped by PID. Beside the cluster scenarios (faults, membership,
// clients, v2 auth set up with etcdctl and kept across restarts and
// snapshot installs, locks and queues, backups, the compose cluster, the
// README's quick start, the recipes page), chaos*_test.go is a fault-injection
// harness: peer proxies for partitions, kills, pauses, slow disks and
// membership changes on a seeded schedule, with register histories
// checked by porcupine and appends, watches, locks and queues checked
// against the cluster's own event history (-chaos.soak for long runs).
package e2e
