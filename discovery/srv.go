package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// SRVConfig says where to look up the members and who this member is.
type SRVConfig struct {
	// Domain holds the records: _etcd-server-ssl._tcp.<Domain> and
	// _etcd-server._tcp.<Domain>.
	Domain string
	// ServiceName, when set, is appended to the service names:
	// _etcd-server-<ServiceName>._tcp (etcd's --discovery-srv-name).
	ServiceName string
	// Name is this member's name; AdvertisePeerURLs its peer URLs, which
	// identify its own record. A proxy leaves both empty.
	Name              string
	AdvertisePeerURLs []string
	// Resolver does the lookups; nil is net.DefaultResolver.
	Resolver *net.Resolver
}

// SRVCluster builds the initial cluster (name=peerURL,...) from the SRV
// records: https for _etcd-server-ssl, http for _etcd-server. The record
// whose address (resolved) is one of this member's advertised peer URLs
// takes this member's name; the others are named 0, 1, ... (their
// members publish their real names once the cluster runs).
func SRVCluster(ctx context.Context, cfg SRVConfig) (string, error) {
	r := cfg.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	self := map[string]*url.URL{} // resolved ip:port -> advertised URL
	for _, s := range cfg.AdvertisePeerURLs {
		u, err := url.Parse(s)
		if err != nil {
			return "", err
		}
		addrs, err := resolve(ctx, r, u.Host)
		if err != nil {
			return "", err
		}
		for _, a := range addrs {
			self[a] = u
		}
	}
	suffix := ""
	if cfg.ServiceName != "" {
		suffix = "-" + cfg.ServiceName
	}
	var parts []string
	temp := 0
	lookup := func(service, scheme string) error {
		_, srvs, err := r.LookupSRV(ctx, service, "tcp", cfg.Domain)
		if err != nil {
			return err
		}
		var mismatch error
		for _, srv := range srvs {
			port := strconv.Itoa(int(srv.Port))
			host := strings.TrimSuffix(srv.Target, ".")
			addrs, err := resolve(ctx, r, net.JoinHostPort(srv.Target, port))
			if err != nil {
				mismatch = err
				continue
			}
			name := ""
			for _, a := range addrs {
				if u, ok := self[a]; ok {
					name = cfg.Name
					if u.Scheme != scheme {
						mismatch = fmt.Errorf("bootstrap at %s from DNS for %s has scheme mismatch with expected peer %s", scheme+"://"+net.JoinHostPort(host, port), service, u)
					}
					break
				}
			}
			if name == "" {
				name = strconv.Itoa(temp)
				temp++
			}
			parts = append(parts, name+"="+scheme+"://"+net.JoinHostPort(host, port))
		}
		if len(parts) == 0 {
			if mismatch == nil {
				mismatch = errors.New("no records")
			}
			return mismatch
		}
		return mismatch
	}
	errSSL := lookup("etcd-server-ssl"+suffix, "https")
	errPlain := lookup("etcd-server"+suffix, "http")
	if len(parts) == 0 {
		return "", fmt.Errorf("srv: too many errors querying DNS SRV records (%q, %q)",
			fmt.Sprintf("error querying DNS SRV records for _etcd-server-ssl%s %v", suffix, errSSL),
			fmt.Sprintf("error querying DNS SRV records for _etcd-server%s %v", suffix, errPlain))
	}
	for _, err := range []error{errSSL, errPlain} {
		if err != nil && strings.Contains(err.Error(), "scheme mismatch") {
			return "", err
		}
	}
	return strings.Join(parts, ","), nil
}

// resolve returns the ip:port addresses of host:port.
func resolve(ctx context.Context, r *net.Resolver, hostport string) ([]string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	host = strings.TrimSuffix(host, ".")
	if ip := net.ParseIP(host); ip != nil {
		return []string{net.JoinHostPort(ip.String(), port)}, nil
	}
	ips, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = net.JoinHostPort(ip.IP.String(), port)
	}
	return out, nil
}

// NewResolver returns a resolver that sends every query to the DNS
// server at addr (host:port), over the network Go asks for (UDP, or TCP
// for long answers). The hosts file is still read first.
func NewResolver(addr string) *net.Resolver {
	var d net.Dialer
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}
}
