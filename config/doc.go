// Package config is a member's configuration: etcd's flag names, the same
// settings as CAIRN_* environment variables (upper case, "-" as "_") and
// as keys of a YAML file (--config-file). Precedence: flags, then the
// environment, then the file, then the defaults. Every value goes through
// one parser per setting, and Validate names the setting that is wrong.
// enable-v2 is etcd's flag, accepted as true only (Cairn serves only v2);
// it may stand alone on the command line, as a Go boolean flag.
//
// The listen and advertise client URLs and the listen peer URLs are lists
// of http and https URLs. The TLS settings (tls.go) are etcd's; the
// boolean ones (client-cert-auth, auto-tls and their peer- forms) may
// stand alone on the command line, as Go's boolean flags, and their
// consistency with each other and with the URLs is checked before
// anything starts (loading the files is the member's job, at start).
//
// The limits on client requests (--max-key-bytes, --max-key-depth,
// --max-value-bytes, --max-request-bytes, --max-answer-bytes,
// --quota-backend-bytes, --request-body-timeout) have httpapi's defaults
// (a test keeps the two in step) and are checked against the store's hard
// limits (store.MaxKeyBytes and the rest), which they may not exceed; main
// hands them to the client handler as httpapi.Limits.
//
// Test-only switches (Faults, faults.go: deliberate bugs and failpoints for
// the fault-injection tests) are read here, from CAIRN_UNSAFE_* and
// CAIRN_FAILPOINT_* variables only, and nowhere else in the program: no
// flag or YAML key sets them, --help does not list them, and main logs
// the ones that are on once, at start.
package config
