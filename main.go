// Command cairn runs a Cairn member.
//
// Until the replicated member exists, cairn serves the etcd v2 keys API
// from a single in-memory process (server.Local): every request goes
// through the same encoding and apply path a committed Raft entry will,
// but nothing is written to disk.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cairn:", err)
		os.Exit(1)
	}
}

// localClusterID identifies the single in-memory process in the
// X-Etcd-Cluster-Id header; the replicated member derives its cluster ID
// from its bootstrap configuration instead.
const localClusterID = 0xca1e_0000_0000_0001

func run(args []string) error {
	fs := flag.NewFlagSet("cairn", flag.ContinueOnError)
	listen := fs.String("listen-client-urls", "http://127.0.0.1:2379", "URL to serve clients on")
	history := fs.Int("event-history", store.DefaultEventHistory, "events kept for waitIndex watches")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *history < 1 {
		return fmt.Errorf("--event-history must be at least 1, got %d", *history)
	}
	u, err := url.Parse(*listen)
	if err != nil || u.Scheme != "http" || u.Host == "" || strings.Contains(*listen, ",") {
		return fmt.Errorf("--listen-client-urls: want one http://host:port URL, got %q", *listen)
	}
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()

	st := store.New(*history)
	be := server.NewLocal(st, localClusterID, nil)
	defer be.Close()
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return err
	}
	// Requests' contexts end when shutdown begins, so open watches return
	// at once (the client sees its 200 end with no event and re-watches)
	// instead of holding shutdown until its deadline.
	base, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	srv := &http.Server{
		Handler:           httpapi.NewHandler(httpapi.Config{Backend: be}),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	srv.RegisterOnShutdown(endRequests)
	log.Info().Str("client-url", *listen).Msg("serving the v2 keys API from memory (single process, not durable)")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
