package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/internal/progress"
	"github.com/cairnkv/cairn/internal/tlsutil"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/store"
)

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
		var tlsFlags tlsutil.ClientFlags
		tlsFlags.Register(fs)
		user := fs.String("user", "", "name:password of a user with the root role, when v2 auth is enabled")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("snapshot save: want one file name")
		}
		client, err := toolClient(&tlsFlags, 0)
		if err != nil {
			return err
		}
		return snapshotSave(client, strings.TrimRight(*endpoint, "/"), fs.Arg(0), *user)
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
		rc := config.Config{InitialCluster: *initialCluster}
		members, err := rc.Members()
		if err != nil {
			return err
		}
		self, ok := members[*name]
		if !ok {
			return fmt.Errorf("--initial-cluster %q has no member named %q", *initialCluster, *name)
		}
		id, cid, initial := server.Identities(members, self, *token)
		meter := progress.New(os.Stderr, progress.IsTerminal(os.Stderr), fs.Arg(0), nil)
		defer meter.End()
		st, err := server.Restore(fs.Arg(0), server.MemberConfig{ID: id, ClusterID: cid, InitialMembers: initial, DataDir: *dataDir}, meter)
		if err != nil {
			return err
		}
		meter.Done("copied")
		fmt.Printf("restored %d keys (store index %d, raft index %d) into %s\n", st.Keys, st.StoreIndex, st.RaftIndex, *dataDir)
		return nil
	}
	return fmt.Errorf("snapshot: unknown command %q (want save, status or restore)", args[0])
}

// snapshotSave fetches a backup from the member at endpoint into file,
// atomically, and checks it before keeping it. On a terminal, standard
// error shows how far it is (internal/progress).
func snapshotSave(client *http.Client, endpoint, file, user string) error {
	req, err := http.NewRequest(http.MethodGet, endpoint+"/snapshot", nil)
	if err != nil {
		return err
	}
	if name, password, ok := strings.Cut(user, ":"); ok {
		req.SetBasicAuth(name, password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %d %s", endpoint, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	meter := progress.New(os.Stderr, progress.IsTerminal(os.Stderr), file, nil)
	defer meter.End()
	tmp := file + ".part"
	n, err := store.InstallSnapshot(meter.Reader("saving", max(resp.ContentLength, 0), resp.Body), tmp)
	if err != nil {
		return err
	}
	meter.Step("checking", n)
	st, err := store.StatusOf(tmp)
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("the backup received is not valid: %w", err)
	}
	meter.Keys(st.Keys)
	if err := os.Rename(tmp, file); err != nil {
		return err
	}
	meter.Done("received")
	fmt.Printf("saved %s: %d keys, store index %d, raft index %d, %d bytes\n", file, st.Keys, st.StoreIndex, st.RaftIndex, st.Size)
	return nil
}
