// Package config is a member's configuration: etcd's flag names, the same
// settings as CAIRN_* environment variables (upper case, "-" as "_") and
// as keys of a YAML file (--config-file). Precedence: flags, then the
// environment, then the file, then the defaults. Every value goes through
// one parser per setting, and Validate names the setting that is wrong.
//
// The limits on client requests (--max-key-bytes, --max-key-depth,
// --max-value-bytes, --max-request-bytes, --max-answer-bytes,
// --quota-backend-bytes, --request-body-timeout) have httpapi's defaults
// (a test keeps the two in step) and are checked against the store's hard
// limits (store.MaxKeyBytes and the rest), which they may not exceed; main
// hands them to the client handler as httpapi.Limits.
package config
