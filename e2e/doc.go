// Package e2e holds tests that run real cairn processes on loopback: the
// binary is built once per test run, members are started with etcd's
// flags, talked to over HTTP, killed with SIGKILL and restarted, and
// always stopped by PID. Beside the cluster scenarios (faults, membership,
// clients, v2 auth set up with etcdctl and kept across restarts and
// snapshot installs, locks and queues, backups, the compose cluster, the README's
// quick start, the recipes page), it covers:
//   - etcd's --version and --enable-v2;
//   - readiness at the first healthy answer on a loaded machine;
//   - hostile requests against the request limits, with the members'
//     memory measured, and forged peer messages that must not poison the
//     log;
//   - TLS on both ports with certificates the tests make, their rotation,
//     auto TLS and mixed listeners;
//   - proxy mode and discovery (a Cairn or etcd key prefix, Debian's
//     etcd-discovery service, DNS SRV records), and a proxy over TLS in
//     front of a mutual TLS cluster, found by https discovery too;
//   - the deploy/ kit: a real Prometheus scraping a cluster and firing an
//     alert, the dashboard's and rules' metric names checked against what
//     members serve, the systemd unit.
//
// chaos*_test.go is a fault-injection harness: peer proxies for
// partitions, kills, pauses, slow disks and membership changes on a
// seeded schedule, with register histories checked by porcupine and
// appends, watches, locks and queues checked against the cluster's own
// event history (-chaos.soak for long runs), also with v2 auth on
// (TestChaosWithAuth, -chaos.auth: every client sends credentials, and a
// prober checks that auth refuses what it must throughout).
package e2e
