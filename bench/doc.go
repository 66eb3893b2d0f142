// Package bench is `cairn bench`, a load generator for any etcd v2 keys
// API endpoint: a Cairn cluster, or etcd 3.4 run with --enable-v2, so the
// two can be measured with the same client.
//
// A run sends requests from --clients concurrent clients, spread
// round-robin over --endpoints, each holding its own keep-alive
// connection, until --total requests are done or --duration has passed.
// The workloads:
//
//   - put: PUT a random key of the key space.
//   - get: linearizable GET of a random key (quorum=true, which both
//     products serve linearizably).
//   - get-serializable: GET answered by the member asked, without a
//     round with the others (serializable=true: Cairn's spelling; etcd
//     ignores it and serves its default, local read).
//   - cas: compare-and-swap loops (prevValue) on one key per client.
//   - post: in-order keys, POST to one directory.
//   - mixed: gets (--read-ratio of the requests, with --consistency)
//     and puts on the key space.
//   - lock (Cairn only): each request is one cycle of a server-side lock:
//     POST /v2/locks/<name>?ttl=10&wait=true (waiting in line while
//     another client holds it), then DELETE ?token=<its token>; its
//     latency is the whole cycle's. --locks names the distinct locks;
//     client i uses lock i mod --locks, so --locks 1 measures contention
//     and --locks equal to --clients none.
//   - queue (Cairn only): each request is one enqueue (POST
//     /v2/queues/<name>, a --value-size item) followed by one dequeue
//     (DELETE) on the client's queue, i mod --queues.
//   - watch: fan-out. --watchers long-poll watchers wait on one key, each
//     re-arming with waitIndex after every event; one writer puts the
//     key --total times (or for --duration). The latency of an event is
//     the time from the writer's receipt of the write's acknowledgement
//     (the nearest a client gets to the moment it was sent) to a
//     watcher's receipt of the event, and 0 if the watcher had it first.
//     The report gives the events delivered against those expected
//     (watchers × acknowledged writes).
//
// Lock and queue names start with --prefix made a name ("bench-lock-0",
// "bench-queue-0" by default).
//
// get, get-serializable and mixed first write every key of the key space;
// cas first writes each client's key; watch first writes the watched key.
// Those writes are not measured.
//
// Every request of the run counts, and its latency is kept: a transport
// error or an answer other than 2xx is an error, and the first one's text
// is printed. Percentiles are exact (nearest rank over the sorted
// latencies). The report is one line for people, then one of key=value
// pairs for scripts:
//
//	workload=put clients=64 requests=20000 errors=0 duration=3.21s throughput=6230.1/s mean=10.21ms p50=9.80ms p90=18.02ms p99=31.20ms p999=60.40ms max=80.10ms
//
// A watch run adds watchers=, events= and expected=; its throughput is the
// writer's, and its percentiles are the events' delivery latencies.
//
// https endpoints are verified with --cacert (default: the system's
// roots), and --cert/--key present a client certificate to members
// started with --client-cert-auth (etcdctl v3's flag names);
// --insecure-skip-tls-verify is for members with --auto-tls.
// --user name:password sends HTTP basic auth with every request, for a
// server with v2 auth enabled. bench/authcost.sh uses it to measure the
// server CPU a request costs with auth off and on (docs/auth.md).
//
// --rate paces the whole run (requests per second over all clients);
// latencies are measured from each request's actual start, so a server
// slower than the pace shows as lower throughput, not as longer latency.
package bench
