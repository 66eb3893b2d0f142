// Package dnstest is a tiny DNS server for tests: UDP on 127.0.0.1,
// answering SRV and A (and empty AAAA) queries from a fixed table, built
// on golang.org/x/net/dns/dnsmessage. Only tests import it.
package dnstest
