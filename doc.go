// Command cairn runs a Cairn member.
//
// With no flags it starts a single-member cluster serving the etcd v2 keys
// API on http://127.0.0.1:2379, keeping its state in ./default.cairn.
// --initial-cluster (etcd's flag) starts a member of a larger cluster.
//
// main.go is the sub-command switch (serve, version, health, snapshot,
// bench); serve.go starts a member (or, with --proxy, a proxy:
// bootstrap.go, which also finds a new member's cluster by discovery) and
// its listeners, tls.go builds their TLS, health.go and snapshot.go are
// the tools.
package main
