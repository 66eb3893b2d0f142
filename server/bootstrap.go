package server

// Bootstrap: the identities a new member and a new cluster take from the
// initial cluster, and what a joining member learns from a running one.

import (
	"cmp"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// MemberIDOf is a member's ID, derived as etcd derives it: SHA-1 over the
// member's peer URLs and the cluster token, first 8 bytes.
func MemberIDOf(peerURLs []string, token string) uint64 {
	h := sha1.Sum([]byte(strings.Join(peerURLs, "") + token))
	return binary.BigEndian.Uint64(h[:8])
}

// ClusterIDOf is a cluster's ID: SHA-1 over its first members' IDs (8
// bytes each, big-endian, in the order given), first 8 bytes.
func ClusterIDOf(ids ...uint64) uint64 {
	var b []byte
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// Identities derives this member's ID, the cluster ID and the member
// list of a new cluster from the initial cluster.
func Identities(members map[string]string, selfURL, token string) (id, cid uint64, initial []MemberInfo) {
	id = MemberIDOf([]string{selfURL}, token)
	var voters []uint64
	for name, u := range members {
		mid := MemberIDOf([]string{u}, token)
		voters = append(voters, mid)
		initial = append(initial, MemberInfo{ID: mid, Name: name, PeerURLs: []string{u}, ClientURLs: []string{}})
	}
	slices.Sort(voters)
	slices.SortFunc(initial, func(a, b MemberInfo) int { return cmp.Compare(a.ID, b.ID) })
	return id, ClusterIDOf(voters...), initial
}

// JoinInfo asks the running members (the initial cluster's peer URLs,
// other than selfURL) for the cluster: its ID, its members, and the ID
// this member was given when it was added (found by its peer URL).
func JoinInfo(members map[string]string, selfURL string, client *http.Client) (id, cid uint64, list []MemberInfo, err error) {
	var errs []error
	urls := make([]string, 0, len(members))
	for _, u := range members {
		if u != selfURL {
			urls = append(urls, u)
		}
	}
	slices.Sort(urls)
	for _, u := range urls {
		resp, err := client.Get(strings.TrimRight(u, "/") + PeerMembersPath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s%s: %d %s", u, PeerMembersPath, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		if err == nil {
			cid, list, err = UnmarshalMembers(body)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := checkPeerVersion(client, u); err != nil {
			return 0, 0, nil, err
		}
		for _, mi := range list {
			if slices.Contains(mi.PeerURLs, selfURL) {
				return mi.ID, cid, list, nil
			}
		}
		return 0, 0, nil, fmt.Errorf("the cluster has no member with peer URL %s: add it first (POST /v2/members, or etcdctl member add)", selfURL)
	}
	return 0, 0, nil, fmt.Errorf("no member of the initial cluster answered: %w", errors.Join(errs...))
}

// checkPeerVersion asks a running member's peer endpoint /version which
// Cairn it runs and refuses to join one whose major.minor differs (their
// log and snapshot encodings may not be understood).
func checkPeerVersion(client *http.Client, peerURL string) error {
	resp, err := client.Get(strings.TrimRight(peerURL, "/") + PeerVersionPath)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var v struct {
		Cairn string `json:"cairn"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s: %d, %v", peerURL, PeerVersionPath, resp.StatusCode, err)
	}
	majorMinor := func(s string) string {
		parts := strings.SplitN(s, ".", 3)
		return strings.Join(parts[:min(2, len(parts))], ".")
	}
	if majorMinor(v.Cairn) != majorMinor(Version) {
		return fmt.Errorf("the member at %s runs cairn %s; this is %s: join with a matching release", peerURL, v.Cairn, Version)
	}
	return nil
}
