package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// SRV is one SRV record's data.
type SRV struct {
	Target   string // a host name, with or without the final dot
	Port     uint16
	Priority uint16
	Weight   uint16
}

// Server answers from its tables; names are matched without case and
// with the final dot.
type Server struct {
	Addr string // host:port of the UDP socket

	conn *net.UDPConn
	mu   sync.Mutex
	srv  map[string][]SRV
	a    map[string][]net.IP
	asks []string
}

// Start serves until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: conn.LocalAddr().String(), conn: conn, srv: map[string][]SRV{}, a: map[string][]net.IP{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

func fqdn(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// AddSRV adds an SRV record for name (e.g. _etcd-server._tcp.example.test).
func (s *Server) AddSRV(name string, r SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[fqdn(name)] = append(s.srv[fqdn(name)], r)
}

// AddA adds an A record.
func (s *Server) AddA(name string, ip net.IP) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.a[fqdn(name)] = append(s.a[fqdn(name)], ip.To4())
}

// Asked returns the questions received, as "TYPE name".
func (s *Server) Asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.asks...)
}

func (s *Server) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if out, ok := s.answer(buf[:n]); ok {
			_, _ = s.conn.WriteToUDP(out, from)
		}
	}
}

func (s *Server) answer(req []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(q.Name.String())
	s.mu.Lock()
	s.asks = append(s.asks, strings.TrimPrefix(q.Type.String(), "Type")+" "+name)
	srvs, as := s.srv[name], s.a[name]
	known := len(srvs) > 0 || len(as) > 0
	s.mu.Unlock()
	rcode := dnsmessage.RCodeSuccess
	if !known {
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RCode: rcode})
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	switch q.Type {
	case dnsmessage.TypeSRV:
		for _, r := range srvs {
			target, err := dnsmessage.NewName(fqdn(r.Target))
			if err != nil {
				return nil, false
			}
			if b.SRVResource(rh, dnsmessage.SRVResource{Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: target}) != nil {
				return nil, false
			}
		}
	case dnsmessage.TypeA:
		for _, ip := range as {
			var a [4]byte
			copy(a[:], ip)
			if b.AResource(rh, dnsmessage.AResource{A: a}) != nil {
				return nil, false
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
