// Package tlstest makes certificates for tests with crypto/x509: a CA,
// and leaf certificates it signs for servers (with IP and DNS SANs),
// clients and peers (both), written as PEM files where a test wants them.
// Keys are ECDSA P-256; every certificate has a fresh random serial, so a
// test can tell two of them apart on the wire. Nothing here is for
// production: the keys live in test directories.
package tlstest
