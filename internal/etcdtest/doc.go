// Package etcdtest starts a real etcd 3.4 for tests that compare Cairn
// with it: find the programs (skipping, or failing under
// CAIRN_REQUIRE_ETCD=1, when they are missing) and run a fresh
// single-member etcd with the v2 API on loopback, stopped by its PID when
// the test ends.
package etcdtest
