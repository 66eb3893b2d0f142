package bench

import (
	"bytes"
	"crypto/tls"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/internal/tlsutil/tlstest"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// --cacert, --cert and --key reach an https endpoint that requires a
// client certificate; without --cert every request fails.
func TestTLSFlags(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	be := server.NewLocal(store.New(store.DefaultEventHistory), 1, nil)
	srv := httptest.NewUnstartedServer(httpapi.NewHandler(httpapi.Config{Backend: be}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "server", tlstest.Server, "127.0.0.1").TLSCertificate(t)},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	srv.StartTLS()
	t.Cleanup(func() { srv.Close(); be.Close() })
	caFile := ca.WriteCA(t, dir, "ca.crt")
	certFile, keyFile := ca.Issue(t, "bench", tlstest.Client).Write(t, dir, "bench")

	var out bytes.Buffer
	code := Main([]string{"--endpoints", srv.URL, "--total", "20", "--clients", "2", "--cacert", caFile, "--cert", certFile, "--key", keyFile}, &out)
	if code != 0 || !strings.Contains(out.String(), "requests=20 errors=0") {
		t.Fatalf("with a client certificate: exit %d\n%s", code, out.String())
	}
	out.Reset()
	code = Main([]string{"--endpoints", srv.URL, "--total", "20", "--clients", "2", "--cacert", caFile}, &out)
	if code == 0 && !strings.Contains(out.String(), "errors=20") {
		t.Fatalf("without a client certificate: exit %d\n%s", code, out.String())
	}
	if code := Main([]string{"--endpoints", srv.URL, "--cert", certFile}, &out); code != 2 {
		t.Fatalf("--cert without --key: exit %d", code)
	}
}
