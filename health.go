package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/internal/tlsutil"
)

// healthCmd checks /health on each endpoint; it fails unless all are
// healthy (ready: see server.Member.Ready), so it serves as a container
// healthcheck. An unhealthy member's reason is printed when it gives one.
func healthCmd(args []string) error {
	fs := flag.NewFlagSet("cairn health", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs to check")
	timeout := fs.Duration("timeout", 3*time.Second, "time allowed per endpoint")
	var tlsFlags tlsutil.ClientFlags
	tlsFlags.Register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := toolClient(&tlsFlags, *timeout)
	if err != nil {
		return err
	}
	var failed []string
	for _, ep := range strings.Split(*endpoints, ",") {
		ep = strings.TrimRight(strings.TrimSpace(ep), "/")
		resp, err := client.Get(ep + "/health")
		status := "unhealthy"
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`) {
				status = "healthy"
			} else {
				err = fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
				if reason := resp.Header.Get(httpapi.HeaderHealthReason); reason != "" {
					err = fmt.Errorf("%w (%s)", err, reason)
				}
			}
		}
		if err != nil {
			fmt.Printf("%s is unhealthy: %v\n", ep, err)
			failed = append(failed, ep)
			continue
		}
		fmt.Printf("%s is %s\n", ep, status)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of the endpoints unhealthy", len(failed))
	}
	return nil
}
