package store

// Actions, as they appear in the "action" field of responses.
const (
	ActionGet              = "get"
	ActionSet              = "set"
	ActionCreate           = "create"
	ActionUpdate           = "update"
	ActionCompareAndSwap   = "compareAndSwap"
	ActionDelete           = "delete"
	ActionCompareAndDelete = "compareAndDelete"
	ActionExpire           = "expire"
)

// minExpire is 2000-01-01T00:00:00Z in Unix nanoseconds. As in etcd, a
// computed deadline before it means "no TTL".
const minExpire int64 = 946684800 * 1e9

// NodeView is an immutable copy of a node as a client sees it. Field rules
// follow API.md §1.5: Key is "" for the root; HasValue is false for
// directories and for the node of delete/compareAndDelete/expire events.
type NodeView struct {
	Key           string
	Value         string
	HasValue      bool
	Dir           bool
	Expiration    int64 // Unix nanoseconds; 0 = no TTL
	ModifiedIndex uint64
	CreatedIndex  uint64
	Nodes         []*NodeView // directories in a get only; hidden children left out
}

// TTL is the remaining time to live in whole seconds at time now (Unix
// nanoseconds), rounded up as etcd does; 0 means "omit". It is negative
// for a deadline passed more than a second ago.
func (v *NodeView) TTL(now int64) int64 {
	if v.Expiration == 0 {
		return 0
	}
	d := v.Expiration - now
	ttl := d / 1e9
	if d%1e9 > 0 {
		ttl++
	}
	return ttl
}

// Event is the outcome of one change (or of a get). Index is the store
// index the change was given (for a get, the store index it was read at).
// Time is the request time: TTLs of an event are rendered relative to it,
// so every replica, and every later watcher, sees the same numbers.
type Event struct {
	Action   string
	Node     *NodeView
	PrevNode *NodeView
	Index    uint64
	Time     int64
	// Refresh marks a TTL refresh: it takes an index and a history slot but
	// no watcher is woken by it and history scans skip it.
	Refresh bool
}

// IsCreated reports whether the event created its node (HTTP 201).
func (e *Event) IsCreated() bool {
	return e.Action == ActionCreate || (e.Action == ActionSet && e.PrevNode == nil)
}

// view renders n. recursive descends into directories (hidden children are
// left out at every level); without it a directory's immediate children are
// listed only when list is true.
func view(n *node, list, recursive bool) *NodeView {
	v := new(NodeView)
	viewInto(v, n, list, recursive)
	return v
}

// viewInto is view, rendered into v.
func viewInto(v *NodeView, n *node, list, recursive bool) {
	*v = flat(n)
	if !n.dir || !list && !recursive {
		return
	}
	n.each(func(c *node) bool {
		if !hidden(c.name) {
			v.Nodes = append(v.Nodes, view(c, false, recursive))
		}
		return true
	})
}

// flat renders n without its children.
func flat(n *node) NodeView {
	v := NodeView{
		Expiration:    n.expire,
		ModifiedIndex: n.modified,
		CreatedIndex:  n.created,
		Dir:           n.dir,
	}
	if n.path != "/" {
		v.Key = n.path
	}
	if !n.dir {
		v.Value, v.HasValue = n.value, true
	}
	return v
}

// visit calls f for n and for the nodes view(n, list, recursive) would
// list below it, parents first, until f returns false; it reports whether
// f always returned true.
func visit(n *node, list, recursive bool, f func(NodeView) bool) bool {
	if !f(flat(n)) {
		return false
	}
	if !n.dir || !list && !recursive {
		return true
	}
	ok := true
	n.each(func(c *node) bool {
		if !hidden(c.name) {
			ok = visit(c, false, recursive, f)
		}
		return ok
	})
	return ok
}

// bare is the node of a delete or expire event: no value, no TTL.
func bare(n *node, index uint64) *NodeView {
	return &NodeView{Key: n.path, Dir: n.dir, ModifiedIndex: index, CreatedIndex: n.created}
}
