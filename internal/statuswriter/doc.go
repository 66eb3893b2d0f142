// Package statuswriter records the status of an HTTP response for logs
// and metrics, for the client API and the proxy alike, without getting in
// the way of streaming: Flush and Unwrap reach the writer beneath.
package statuswriter
