// Package discovery bootstraps a new cluster as etcd's discovery does,
// instead of listing every member in --initial-cluster.
//
// With a discovery URL (--discovery), a v2 keys directory such as
// http://host:2379/v2/keys/_etcd/registry/<token> whose _config/size holds
// the cluster size, each member registers itself as <dir>/<member-id>
// (created with prevExist=false, value name=peerURL), then lists the
// directory and waits (wait=true&waitIndex=) until size members have
// registered; the first size registrations by createdIndex make the
// cluster, and a member beyond them gets ErrFullCluster (it exits or,
// with --discovery-fallback proxy, serves as a proxy). Join registers and
// waits; Get only waits, for a proxy. Errors are etcd's, worded as
// etcd 3.4 words them, wrapped as etcd wraps them ("failed to join
// discovery cluster (...)"). The discovery URL, not
// --initial-cluster-token, is the token the member and cluster IDs are
// derived from, as in etcd.
//
// An https discovery URL is verified with the system's roots (which Go
// reads from SSL_CERT_FILE and SSL_CERT_DIR too) and no client
// certificate is presented, as etcd 3.4's discovery client does.
//
// With a DNS domain (--discovery-srv), SRV records
// _etcd-server-ssl._tcp.<domain> (https) and _etcd-server._tcp.<domain>
// (http) name the members' peer addresses; the member whose address
// matches --initial-advertise-peer-urls takes this member's name, the
// others are named 0, 1, ... until they publish their own (as etcd does).
// The lookups go through a net.Resolver, which a test points at its own
// DNS server.
package discovery
