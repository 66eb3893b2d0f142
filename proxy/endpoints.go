package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// membersPath is the peer endpoint that lists the members (Cairn's
// server.PeerMembersPath, etcd's too).
const membersPath = "/members"

// ClusterFile is where, under the data directory, the proxy keeps the
// peer URLs it last learned (etcd's layout and JSON).
const ClusterFile = "proxy/cluster"

// endpoints is the proxy's view of the cluster: the peer URLs it asks
// for the member list and the client URLs it forwards to, in the order
// they are tried, with the ones that failed recently left out.
type endpoints struct {
	cfg     Config
	log     zerolog.Logger
	metrics *metrics
	file    string

	mu       sync.Mutex
	peerURLs []string
	clients  []string             // shuffled at each refresh, as etcd does
	failed   map[string]time.Time // client URL -> until when it is left out
}

func newEndpoints(cfg Config, log zerolog.Logger, m *metrics) (*endpoints, error) {
	e := &endpoints{cfg: cfg, log: log, metrics: m, failed: map[string]time.Time{}, peerURLs: slices.Clone(cfg.PeerURLs)}
	if cfg.DataDir != "" {
		e.file = filepath.Join(cfg.DataDir, filepath.FromSlash(ClusterFile))
		if err := os.MkdirAll(filepath.Dir(e.file), 0o700); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(e.file)
		switch {
		case err == nil:
			var f clusterFile
			if err := json.Unmarshal(b, &f); err != nil {
				return nil, fmt.Errorf("%s: %w", e.file, err)
			}
			if len(f.PeerURLs) > 0 {
				e.peerURLs = f.PeerURLs
				log.Info().Strs("peer-urls", f.PeerURLs).Str("cluster-file", e.file).
					Msg("proxy using the peer URLs of its cluster file (initial-cluster and discovery are ignored)")
			}
		case errors.Is(err, os.ErrNotExist):
		default:
			return nil, err
		}
	}
	if len(e.peerURLs) == 0 {
		return nil, errors.New("proxy: no peer URLs to find the cluster from")
	}
	return e, nil
}

// clusterFile is the JSON of DataDir/proxy/cluster.
type clusterFile struct {
	PeerURLs []string
}

// available returns the client URLs to try, in order, leaving out those
// that failed within FailureWait.
func (e *endpoints) available() []string {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.clients))
	for _, u := range e.clients {
		if until, ok := e.failed[u]; ok {
			if now.Before(until) {
				continue
			}
			delete(e.failed, u)
			e.log.Info().Str("endpoint", u).Msg("proxy: endpoint available again, to retest connectivity")
		}
		out = append(out, u)
	}
	e.metrics.available.Set(float64(len(out)))
	return out
}

// all returns every known client URL.
func (e *endpoints) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.clients)
}

// fail leaves a client URL out for FailureWait.
func (e *endpoints) fail(u string, err error) {
	e.metrics.failure(u)
	e.mu.Lock()
	_, already := e.failed[u]
	e.failed[u] = time.Now().Add(e.cfg.FailureWait)
	e.mu.Unlock()
	if !already {
		e.log.Warn().Str("endpoint", u).Err(err).Dur("for", e.cfg.FailureWait).Msg("proxy: endpoint failed; marked unavailable")
	}
}

// refresh asks the peers, in turn, for the member list. On success the
// members' client URLs become the endpoints and their peer URLs the ones
// asked next time (and are written to the cluster file); on failure the
// endpoints stay as they were.
func (e *endpoints) refresh(client *http.Client) {
	e.mu.Lock()
	peers := slices.Clone(e.peerURLs)
	e.mu.Unlock()
	var errs []error
	for _, pu := range peers {
		members, err := fetchMembers(client, pu)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var peerURLs, clients []string
		for _, m := range members {
			peerURLs = append(peerURLs, m.PeerURLs...)
			clients = append(clients, m.ClientURLs...) // a member not started yet has none
		}
		slices.Sort(peerURLs)
		peerURLs = slices.Compact(peerURLs)
		if len(peerURLs) == 0 {
			errs = append(errs, fmt.Errorf("%s%s: no members", pu, membersPath))
			continue
		}
		rand.Shuffle(len(clients), func(i, j int) { clients[i], clients[j] = clients[j], clients[i] })
		// The file first: whoever sees the new endpoints (a client
		// asking /v2/members through the proxy, an operator) then finds
		// the same members in the file a restart would read.
		e.mu.Lock()
		oldPeers := e.peerURLs
		e.mu.Unlock()
		if !slices.Equal(sorted(oldPeers), peerURLs) || !e.fileWritten() {
			e.writeFile(peerURLs)
		}
		e.mu.Lock()
		oldClients := e.clients
		e.peerURLs, e.clients = peerURLs, clients
		for u := range e.failed {
			if !slices.Contains(clients, u) {
				delete(e.failed, u)
			}
		}
		e.mu.Unlock()
		if !sameSet(oldClients, clients) {
			e.log.Info().Strs("endpoints", sorted(clients)).Strs("peer-urls", peerURLs).Msg("proxy: endpoints found")
		}
		e.metrics.refreshes.WithLabelValues("ok").Inc()
		e.available()
		return
	}
	e.metrics.refreshes.WithLabelValues("failed").Inc()
	e.log.Warn().Strs("peer-urls", peers).Err(errors.Join(errs...)).Msg("proxy: no peer answered with the member list; keeping the endpoints known")
}

func (e *endpoints) fileWritten() bool {
	if e.file == "" {
		return true
	}
	_, err := os.Stat(e.file)
	return err == nil
}

// writeFile replaces the cluster file atomically.
func (e *endpoints) writeFile(peerURLs []string) {
	if e.file == "" {
		return
	}
	b, _ := json.Marshal(clusterFile{PeerURLs: peerURLs})
	tmp := e.file + ".tmp"
	err := func() error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, e.file)
	}()
	if err != nil {
		e.log.Warn().Err(err).Str("cluster-file", e.file).Msg("proxy: could not write the cluster file")
	}
}

// member is one entry of a peer's member list; Cairn answers
// {"clusterID":..,"members":[...]}, etcd a bare array.
type member struct {
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

func fetchMembers(client *http.Client, peerURL string) ([]member, error) {
	u := strings.TrimRight(peerURL, "/") + membersPath
	resp, err := client.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %d %s", u, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var list []member
	if b := strings.TrimSpace(string(body)); strings.HasPrefix(b, "[") {
		err = json.Unmarshal(body, &list)
	} else {
		var c struct {
			Members []member `json:"members"`
		}
		err = json.Unmarshal(body, &c)
		list = c.Members
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return list, nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func sameSet(a, b []string) bool { return slices.Equal(sorted(a), sorted(b)) }
