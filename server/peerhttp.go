package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cairnkv/cairn/peer"
)

// PeerHandler serves the peer endpoints: the Raft transport, and
// /members and /version, which a joining member reads.
func (m *Member) PeerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", m.transport.Handler())
	mux.HandleFunc("GET "+PeerMembersPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(peer.HeaderCluster, hex(m.cfg.ClusterID))
		_, _ = w.Write(MarshalMembers(m.cfg.ClusterID, m.Members()))
	})
	mux.HandleFunc("GET "+PeerVersionPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"cairn":"` + Version + `"}`))
	})
	return mux
}

// Peer endpoints a joining member reads.
const (
	PeerMembersPath = "/members"
	PeerVersionPath = "/version"
)

// Version is Cairn's own version.
const Version = "0.1.0-dev"

type memberJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// MarshalJSON renders a member as etcd's /v2/members does: the ID in hex
// without padding, empty lists as [].
func (mi MemberInfo) MarshalJSON() ([]byte, error) {
	j := memberJSON{ID: strconv.FormatUint(mi.ID, 16), Name: mi.Name, PeerURLs: mi.PeerURLs, ClientURLs: mi.ClientURLs}
	if j.PeerURLs == nil {
		j.PeerURLs = []string{}
	}
	if j.ClientURLs == nil {
		j.ClientURLs = []string{}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (mi *MemberInfo) UnmarshalJSON(b []byte) error {
	var j memberJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	id, err := strconv.ParseUint(j.ID, 16, 64)
	if err != nil {
		return fmt.Errorf("member ID %q: %w", j.ID, err)
	}
	*mi = MemberInfo{ID: id, Name: j.Name, PeerURLs: j.PeerURLs, ClientURLs: j.ClientURLs}
	return nil
}

type clusterJSON struct {
	ClusterID string       `json:"clusterID"`
	Members   []MemberInfo `json:"members"`
}

// MarshalMembers is the body of the peer endpoint /members.
func MarshalMembers(clusterID uint64, members []MemberInfo) []byte {
	b, _ := json.Marshal(clusterJSON{ClusterID: strconv.FormatUint(clusterID, 16), Members: members})
	return b
}

// UnmarshalMembers reads the body of the peer endpoint /members.
func UnmarshalMembers(b []byte) (clusterID uint64, members []MemberInfo, err error) {
	var j clusterJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return 0, nil, err
	}
	cid, err := strconv.ParseUint(j.ClusterID, 16, 64)
	if err != nil || cid == 0 {
		return 0, nil, fmt.Errorf("bad cluster ID %q", j.ClusterID)
	}
	return cid, j.Members, nil
}
