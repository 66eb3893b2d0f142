// Package tlsutil is where Cairn's TLS lives: certificates and trusted CA
// bundles loaded from PEM files and swapped in without a restart, the
// configs built around them for servers (client and peer listeners) and
// clients (the peer transport, `cairn health`, `snapshot save` and
// `bench`), the TLS policy settings (--cipher-suites, --tls-min-version),
// and the self-signed certificates of --auto-tls and --peer-auto-tls.
//
// A Source holds one certificate and key pair (optional for a client) and
// one CA pool (optional), each behind an atomic pointer. Reload reads the
// files again and replaces both at once, or, when anything fails to load,
// keeps what it had and returns (and logs) the error naming the file.
// Watch polls the files' size and modification time every few seconds
// and reloads when they change; `cairn` also reloads on SIGHUP. Nothing
// built from a Source holds a copy of what it loaded:
//
//   - ServerConfig's GetCertificate answers each handshake with the
//     current certificate, and GetConfigForClient hands out a config,
//     rebuilt on each reload, with the current pool as ClientCAs and fresh
//     session ticket keys (so a session resumed after a reload was
//     verified against the pool of that reload).
//   - DialTLSContext, for an http.Transport, builds each connection's
//     config at dial time: the current pool as RootCAs, the server name
//     from the address, and GetClientCertificate for the current
//     certificate. Go's own verification checks the chain and the name.
//   - ClientConfigFor is the same config for a client that dials by
//     itself (the proxy), asked for at every connection.
//   - ClientConfig is a snapshot for short-lived tools.
//
// With Options.AllowedCN set, the other side's verified leaf must carry
// that CommonName, on both sides of a connection (as etcd's
// --peer-cert-allowed-cn). With Options.InsecureSkipVerify (auto TLS) a
// client does not verify the server's chain: that gives encryption, not
// authentication.
//
// Private keys are read, parsed and handed to crypto/tls; they are never
// logged, and errors name files, never contents.
package tlsutil
