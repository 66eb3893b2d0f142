// Package httpapi is Cairn's client API over HTTP: the etcd v2 keys API at
// /v2/keys, byte-compatible with etcd 3.4's answers (API.md in the shared
// design documents is the contract; docs/compat.md lists the deliberate
// differences); Cairn's server-side locks and queues at /v2/locks and
// /v2/queues (through the locks and queue packages), and the fence
// parameters prevLock/prevToken on any keys write; and /version, /health,
// /v2/members, /v2/machines, /v2/stats/self|leader|store, /metrics and
// /snapshot (a backup stream) when the Backend offers them.
//
// Handlers parse and validate a request (errors 200-212, index 0, in
// etcd's order) into a store.Request or a read or a watch, and reach the
// data only through the Backend interface, which the member implements.
// Domain errors arrive as *store.Error; this package alone maps them to
// HTTP statuses and the v2 JSON shape. The JSON is written by hand to
// match encoding/json's bytes: field order, omitted fields, HTML escaping
// of < > &, and a trailing newline.
//
// Limits (limits.go, Config.Limits, docs/api.md "Limits") are admission
// control on the member that takes a request, before anything is proposed
// or read, so they need no agreement between members: every request's
// URL and body are bounded in size and the body in time (a middleware in
// front of every route; the deadline is cleared once the body is read,
// so watches and waits are not bounded); a keys write's key length and
// depth, values and the reserved tree /_cairn (read-only here: locks and
// queues change it through their own endpoints); and, through the
// backend's local store (LocalStorer), the data quota and the size of a
// read's answer, sized without building it. Refusals are v2 errors (124,
// 125, 106, 123) naming the limit and its flag, counted in
// cairn_requests_refused_total.
//
// The keys request path is kept cheap, since nearly every client request
// takes it: it goes through the middleware straight to the keys handler,
// not through the router (clientAPI); its parameters are read from the
// query string and form body as Request.ParseForm reads them, same values
// and same errors, without building url.Values (form.go); a clean path is
// not cleaned again; answers set their headers without Header.Set's
// allocation per value (headers.go: shared values, the numbers of one
// answer in one string); and disabled auth costs one atomic load.
// BenchmarkKeys measures it.
//
// JSON request bodies (/v2/members) are bounded (MaxJSONBody) before they
// are parsed, then read with gjson field by field (jsonbody.go), never
// decoded by reflection; syntax and type errors keep the words etcd's
// encoding/json answered with.
//
// Reads are linearizable unless serializable=true; a read the backend
// cannot confirm (server.ErrReadNoLeader, server.ErrReadTimeout) is
// answered like any other non-store error, code 300 with its cause.
// Watches flush their headers at once and end when the client goes away.
//
// /health is etcd's: 200 {"health":"true"} or 503 {"health":"false"}\n.
// It is healthy when the backend is ready (Readier, which server.Member
// implements: a leader, caught up, its client URLs published) and a
// linearizable read completes within a second; an unhealthy answer names
// the reason in the X-Cairn-Health-Reason header. A backend that has not
// yet applied its own addition to the cluster (Joiner) gets no client
// request but /health, /version, /metrics and /v2/stats: it could not
// check their permissions (joinedOnly).
//
// etcd's v2 auth (API.md §5) is served at /v2/auth when the Backend
// implements Auth, and enforced on every endpoint once enabled: keys,
// watches, locks and queues (through their hidden directories
// /_cairn/locks/NAME and /_cairn/queues/NAME) take read or write
// permission on the path, /v2/members changes and /snapshot need the
// root role, /version, /health, /metrics, /v2/stats and /v2/machines stay
// open. A request is made by the user of its HTTP basic credentials (or,
// with ClientCertAuth, of its TLS client certificate's common name), or
// by a guest when it carries none; a bad Authorization header is refused
// even where a guest would be let in. Verified credentials are cached
// (salted SHA-256 of the password, never the password) so that only the
// first request of a client pays bcrypt; an entry counts only while the
// user's stored hash is the one it was verified against. Roles are read
// fresh on every request.
package httpapi
