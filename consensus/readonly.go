package consensus

import "github.com/cairnkv/cairn/consensus/quorum"

// readIndexStatus is one pending ReadIndex request on the leader.
type readIndexStatus struct {
	req   Message
	index uint64 // commit index when the request arrived
	acks  map[uint64]bool
}

// readOnly tracks ReadIndex requests waiting for a heartbeat quorum.
// Requests are identified by their context bytes, which callers keep
// unique. Acknowledging a later request confirms every earlier one: its
// heartbeat round was sent after they were registered.
type readOnly struct {
	option  ReadOnlyOption
	pending map[string]*readIndexStatus
	queue   []string // request contexts in arrival order
}

func newReadOnly(o ReadOnlyOption) *readOnly {
	return &readOnly{option: o, pending: map[string]*readIndexStatus{}}
}

func (ro *readOnly) addRequest(index uint64, m Message) {
	ctx := string(m.Context)
	if _, ok := ro.pending[ctx]; ok {
		return
	}
	ro.pending[ctx] = &readIndexStatus{req: m, index: index, acks: map[uint64]bool{}}
	ro.queue = append(ro.queue, ctx)
}

// recvAck records id's heartbeat answer for ctx and reports whether a
// quorum of voters has now acknowledged it.
func (ro *readOnly) recvAck(id uint64, ctx []byte, voters []uint64) bool {
	rs, ok := ro.pending[string(ctx)]
	if !ok {
		return false
	}
	rs.acks[id] = true
	return quorum.Vote(voters, func(v uint64) (bool, bool) {
		g, ok := rs.acks[v]
		return g, ok
	}) == quorum.VoteWon
}

// advance removes and returns every request up to and including ctx.
func (ro *readOnly) advance(ctx []byte) []*readIndexStatus {
	key := string(ctx)
	i := -1
	for j, c := range ro.queue {
		if c == key {
			i = j
			break
		}
	}
	if i < 0 {
		return nil
	}
	out := make([]*readIndexStatus, 0, i+1)
	for _, c := range ro.queue[:i+1] {
		out = append(out, ro.pending[c])
		delete(ro.pending, c)
	}
	ro.queue = ro.queue[i+1:]
	return out
}

func (ro *readOnly) lastPendingRequestCtx() []byte {
	if len(ro.queue) == 0 {
		return nil
	}
	return []byte(ro.queue[len(ro.queue)-1])
}
