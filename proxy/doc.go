// Package proxy is Cairn's proxy mode (cairn --proxy on|readonly), etcd's
// v2 HTTP proxy: a process that keeps no Raft state and forwards the
// client API to the members of a cluster.
//
// It learns the cluster from peer URLs (the initial cluster, or what
// discovery found): it asks a reachable peer's GET /members for the member
// list, forwards to the members' client URLs, refreshes the list every
// RefreshInterval and keeps the peer URLs in DataDir/proxy/cluster, which
// wins over the initial peer URLs on a restart.
//
// Requests are forwarded by net/http/httputil.ReverseProxy; its Transport
// picks the member. A member that fails a request (no connection, or the
// connection broke before a response) is left out for FailureWait and the
// request goes to the next one, unless it may already have taken effect:
// a write (PUT, POST, DELETE) that reached a member is never sent again,
// and nothing is retried once a response has begun. Bodies up to
// MaxReplayBody are buffered so that they can be sent again; a longer
// body is streamed and retried only when no connection was made. Watches
// stream through without buffering.
//
// Members' https URLs are reached with the TLS configs Config.ClientTLS
// and Config.PeerTLS give, asked for at every new connection (so that
// reloaded certificates and CA bundles are used), under the same dial,
// read and write timeouts as plain connections.
//
// Served by the proxy itself: /health (healthy when some member says it
// is), /metrics (cairn_proxy_* and the Go and process collectors) and
// etcd's GET /v2/config/local/proxy (the endpoints in use).
package proxy
