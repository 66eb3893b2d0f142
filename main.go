// Command cairn runs a Cairn member.
//
// With no flags it starts a single-member cluster serving the etcd v2 keys
// API on http://127.0.0.1:2379, keeping its state in ./default.cairn.
// --initial-cluster (etcd's flag) starts a member of a larger cluster.
package main

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/cairnkv/cairn/httpapi"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

// Version is Cairn's own version (/version reports the etcd API version
// it answers as).
const Version = "0.1.0-dev"

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) > 0 && args[0] == "version":
		fmt.Printf("cairn %s (etcd v2 API %s)\n", Version, httpapi.EtcdServerVersion)
	case len(args) > 0 && args[0] == "health":
		err = healthCmd(args[1:])
	case len(args) > 0 && args[0] == "snapshot":
		err = snapshotCmd(args[1:])
	default:
		err = run(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cairn:", err)
		os.Exit(1)
	}
}

// healthCmd checks /health on each endpoint; it fails unless all are
// healthy, so it serves as a container healthcheck.
func healthCmd(args []string) error {
	fs := flag.NewFlagSet("cairn health", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs to check")
	timeout := fs.Duration("timeout", 3*time.Second, "time allowed per endpoint")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client := &http.Client{Timeout: *timeout}
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

// memberID is derived as etcd derives it: SHA-1 over the member's peer
// URLs and the cluster token, first 8 bytes.
func memberID(peerURLs []string, token string) uint64 {
	h := sha1.Sum([]byte(strings.Join(peerURLs, "") + token))
	return binary.BigEndian.Uint64(h[:8])
}

// clusterID is SHA-1 over the member IDs (8 bytes each, big-endian).
func clusterID(ids ...uint64) uint64 {
	var b []byte
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// identities derives this member's ID, the cluster ID, the voters and the
// other members' peer URLs from the initial cluster.
func identities(members map[string]string, selfURL, token string) (id, cid uint64, voters []uint64, peers map[uint64]string) {
	id = memberID([]string{selfURL}, token)
	peers = map[uint64]string{}
	for _, u := range members {
		mid := memberID([]string{u}, token)
		voters = append(voters, mid)
		if mid != id {
			peers[mid] = u
		}
	}
	slices.Sort(voters)
	return id, clusterID(voters...), voters, peers
}

// snapshotCmd: cairn snapshot save|status|restore.
func snapshotCmd(args []string) error {
	if len(args) == 0 {
		return errors.New("snapshot: want save, status or restore")
	}
	fs := flag.NewFlagSet("cairn snapshot "+args[0], flag.ContinueOnError)
	// The file may come first (cairn snapshot restore FILE --name ...) or
	// after the flags.
	cmd, rest := args[0], args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		rest = append(rest[1:], rest[0]) // move the file after the flags
	}
	args = append([]string{cmd}, rest...)
	switch args[0] {
	case "save":
		endpoint := fs.String("endpoints", "http://127.0.0.1:2379", "the member to back up (one client URL)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("snapshot save: want one file name")
		}
		return snapshotSave(strings.TrimRight(*endpoint, "/"), fs.Arg(0))
	case "status":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("snapshot status: want one file name")
		}
		st, err := store.StatusOf(fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Printf("{\"storeIndex\":%d,\"raftIndex\":%d,\"keys\":%d,\"size\":%d,\"hash\":\"%016x\"}\n", st.StoreIndex, st.RaftIndex, st.Keys, st.Size, st.Hash)
		return nil
	case "restore":
		name := fs.String("name", "default", "the restored member's name")
		dataDir := fs.String("data-dir", "", "the new data directory (default ${name}.cairn)")
		peerURL := fs.String("initial-advertise-peer-urls", "http://localhost:2380", "the restored member's peer URL")
		initialCluster := fs.String("initial-cluster", "", "the new cluster: name=peerURL,... (default ${name}=${initial-advertise-peer-urls})")
		token := fs.String("initial-cluster-token", "cairn-cluster", "the new cluster's token")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("snapshot restore: want one file name")
		}
		if *dataDir == "" {
			*dataDir = *name + ".cairn"
		}
		if *initialCluster == "" {
			*initialCluster = *name + "=" + *peerURL
		}
		members, err := parseInitialCluster(*initialCluster)
		if err != nil {
			return err
		}
		self, ok := members[*name]
		if !ok {
			return fmt.Errorf("--initial-cluster %q has no member named %q", *initialCluster, *name)
		}
		id, cid, voters, _ := identities(members, self, *token)
		st, err := server.Restore(fs.Arg(0), server.MemberConfig{ID: id, ClusterID: cid, Voters: voters, DataDir: *dataDir})
		if err != nil {
			return err
		}
		fmt.Printf("restored %d keys (store index %d, raft index %d) into %s\n", st.Keys, st.StoreIndex, st.RaftIndex, *dataDir)
		return nil
	}
	return fmt.Errorf("snapshot: unknown command %q (want save, status or restore)", args[0])
}

// snapshotSave fetches a backup from the member at endpoint into file,
// atomically, and checks it before keeping it.
func snapshotSave(endpoint, file string) error {
	resp, err := http.Get(endpoint + "/snapshot")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %d %s", endpoint, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	tmp := file + ".part"
	if _, err := store.InstallSnapshot(resp.Body, tmp); err != nil {
		return err
	}
	st, err := store.StatusOf(tmp)
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("the backup received is not valid: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return err
	}
	fmt.Printf("saved %s: %d keys, store index %d, raft index %d, %d bytes\n", file, st.Keys, st.StoreIndex, st.RaftIndex, st.Size)
	return nil
}

// oneURL parses a flag that must hold one http://host:port URL.
func oneURL(flagName, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "http" || u.Host == "" || strings.Contains(v, ",") {
		return nil, fmt.Errorf("%s: want one http://host:port URL, got %q", flagName, v)
	}
	return u, nil
}

// parseInitialCluster parses "name=url,name=url".
func parseInitialCluster(v string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(v, ",") {
		name, u, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--initial-cluster: %q is not name=URL", part)
		}
		if _, err := oneURL("--initial-cluster", u); err != nil {
			return nil, err
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--initial-cluster: %q appears twice", name)
		}
		out[name] = u
	}
	return out, nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("cairn", flag.ContinueOnError)
	name := fs.String("name", "default", "human-readable name of this member")
	dataDir := fs.String("data-dir", "", "path to the data directory (default ${name}.cairn)")
	walDir := fs.String("wal-dir", "", "path to a dedicated WAL directory (default inside --data-dir)")
	listen := fs.String("listen-client-urls", "http://127.0.0.1:2379", "URL to serve clients on")
	listenPeer := fs.String("listen-peer-urls", "http://127.0.0.1:2380", "URL to serve peers on (used when the cluster has more than one member)")
	peerURL := fs.String("initial-advertise-peer-urls", "http://localhost:2380", "this member's peer URL (identifies it)")
	initialCluster := fs.String("initial-cluster", "", "initial cluster: name=peerURL,... (default ${name}=${initial-advertise-peer-urls})")
	clusterState := fs.String("initial-cluster-state", "new", "initial cluster state: new (existing is not supported yet)")
	token := fs.String("initial-cluster-token", "cairn-cluster", "initial cluster token (identifies the cluster)")
	history := fs.Int("event-history", store.DefaultEventHistory, "events kept for waitIndex watches")
	snapCount := fs.Uint64("snapshot-count", 100000, "applied entries between Raft snapshots (WAL purges)")
	maxWALs := fs.Int("max-wals", 5, "WAL segments to keep (0 is unlimited)")
	maxSnaps := fs.Int("max-snapshots", 5, "accepted for etcd compatibility: a member keeps one snapshot, its applied-state file")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "json", "log format: json, or console for people")
	heartbeat := fs.Int("heartbeat-interval", 100, "time (in milliseconds) of a heartbeat interval")
	election := fs.Int("election-timeout", 1000, "time (in milliseconds) for an election to timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *history < 1:
		return fmt.Errorf("--event-history must be at least 1, got %d", *history)
	case *heartbeat <= 0:
		return fmt.Errorf("--heartbeat-interval must be positive, got %d", *heartbeat)
	case *election < 2**heartbeat:
		return fmt.Errorf("--election-timeout (%d) must be at least twice --heartbeat-interval (%d)", *election, *heartbeat)
	case *maxWALs < 0:
		return fmt.Errorf("--max-wals must not be negative, got %d", *maxWALs)
	case *maxSnaps < 0:
		return fmt.Errorf("--max-snapshots must not be negative, got %d", *maxSnaps)
	}
	u, err := oneURL("--listen-client-urls", *listen)
	if err != nil {
		return err
	}
	if *clusterState != "new" {
		return fmt.Errorf("--initial-cluster-state %q: only \"new\" is supported so far", *clusterState)
	}
	if *initialCluster == "" {
		*initialCluster = *name + "=" + *peerURL
	}
	members, err := parseInitialCluster(*initialCluster)
	if err != nil {
		return err
	}
	selfURL, ok := members[*name]
	if !ok {
		return fmt.Errorf("--initial-cluster %q has no member named %q (--name)", *initialCluster, *name)
	}
	if *dataDir == "" {
		*dataDir = *name + ".cairn"
	}
	level, err := zerolog.ParseLevel(*logLevel)
	if err != nil || *logLevel == "" {
		return fmt.Errorf("--log-level: want debug, info, warn or error, got %q", *logLevel)
	}
	var out io.Writer = os.Stderr
	switch *logFormat {
	case "json":
	case "console":
		out = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339}
	default:
		return fmt.Errorf("--log-format: want json or console, got %q", *logFormat)
	}
	log := zerolog.New(out).Level(level).With().Timestamp().Str("member", *name).Logger()

	id, cid, voters, peers := identities(members, selfURL, *token)
	member, err := server.StartMember(server.MemberConfig{
		ID: id, ClusterID: cid, Voters: voters, Peers: peers, DataDir: *dataDir, WALDir: *walDir,
		HeartbeatInterval: time.Duration(*heartbeat) * time.Millisecond,
		ElectionTicks:     *election / *heartbeat,
		SnapshotCount:     *snapCount, MaxWALs: maxWALs, EventHistory: *history, Logger: log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		_ = member.Stop()
		return err
	}
	if len(peers) > 0 {
		pu, err := oneURL("--listen-peer-urls", *listenPeer)
		if err != nil {
			_ = member.Stop()
			return err
		}
		pln, err := net.Listen("tcp", pu.Host)
		if err != nil {
			_ = member.Stop()
			return err
		}
		psrv := &http.Server{Handler: member.PeerHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = psrv.Serve(pln) }()
		defer psrv.Close()
	}
	// Requests' contexts end when shutdown begins, so open watches return
	// at once (the client sees its 200 end with no event and re-watches)
	// instead of holding shutdown until its deadline.
	base, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	srv := &http.Server{
		Handler:           httpapi.NewHandler(httpapi.Config{Backend: member, Logger: log}),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	srv.RegisterOnShutdown(endRequests)
	log.Info().Str("client-url", *listen).Str("data-dir", *dataDir).
		Str("member-id", fmt.Sprintf("%x", id)).Str("cluster-id", fmt.Sprintf("%x", cid)).Msg("serving the v2 keys API")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-member.Done():
		err = member.Err()
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, context.DeadlineExceeded) && err == nil {
		err = serr
	}
	return errors.Join(err, member.Stop())
}
