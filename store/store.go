package store

import (
	"fmt"
	"math"
	"path"
	"sync"
	"sync/atomic"

	"github.com/cairnkv/cairn/ttl"
)

// DefaultEventHistory is the default size of the event history, in events.
const DefaultEventHistory = 10000

// version is one published state of the tree.
type version struct {
	root  *node
	index uint64 // store index: one per change
}

// Store is the v2 tree, its event history and its watchers.
//
// Apply is the only writer and must be called from one goroutine at a time
// (it also takes a lock, so misuse is safe if slow). Reads (Get, Index)
// take no lock: they load the current immutable version.
type Store struct {
	mu        sync.Mutex // serialises Apply; guards ttls and dirty
	ttls      *ttl.Heap
	cur       atomic.Pointer[version]
	raftIndex atomic.Uint64
	hub       *hub
	// dirty records what changed since the last Flush; nil for a store
	// that is not persisted.
	dirty    *changes
	disk     *disk
	raftMeta []byte // as loaded by Open
	path     string // the file, when opened by OpenFile
	stats    Stats
}

// New returns an empty store keeping historySize events for waitIndex.
func New(historySize int) *Store {
	s := &Store{ttls: ttl.New(), hub: newHub(historySize)}
	s.cur.Store(&version{root: &node{path: "/", dir: true}})
	return s
}

// Index is the current store index.
func (s *Store) Index() uint64 { return s.cur.Load().index }

// DataBytes is the size of the data: the lengths of every key's and
// directory's path and of every value, summed. Apply keeps it as it
// changes the tree (O(depth) per change) and Open recomputes it, so it is
// the same on every replica at the same index and costs nothing to read.
func (s *Store) DataBytes() int64 { return s.cur.Load().root.bytes }

// RaftIndex is the Raft index of the last applied request.
func (s *Store) RaftIndex() uint64 { return s.raftIndex.Load() }

// WatcherCount is the number of registered watchers.
func (s *Store) WatcherCount() int { return s.hub.Count() }

// NextDeadline returns the earliest TTL deadline, if any key has one. The
// leader proposes an OpExpire once it has passed.
func (s *Store) NextDeadline() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, d, ok := s.ttls.Peek()
	return d, ok
}

// MarkApplied records that the Raft entry at raftIndex, which carried no
// store request (a leader's empty entry, a membership change), is applied.
func (s *Store) MarkApplied(raftIndex uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if raftIndex > s.raftIndex.Load() {
		s.raftIndex.Store(raftIndex)
		if s.dirty != nil {
			s.dirty.n++
		}
	}
}

// Get reads the node at p (clean, absolute). The returned event's Index is
// the store index of the version read.
func (s *Store) Get(p string, recursive bool) (*Event, error) {
	v := s.cur.Load()
	n, err := lookup(v.root, p, v.index)
	if err != nil {
		s.stats.GetsFail.Add(1)
		return nil, err
	}
	s.stats.GetsSuccess.Add(1)
	// The event and the node it reads share one allocation.
	g := new(struct {
		e    Event
		node NodeView
	})
	viewInto(&g.node, n, true, recursive)
	g.e = Event{Action: ActionGet, Node: &g.node, Index: v.index}
	return &g.e, nil
}

// SubtreeBytes is the data of the node at p and of everything below it,
// counted as DataBytes counts (hidden nodes included); O(depth).
func (s *Store) SubtreeBytes(p string) (int64, error) {
	v := s.cur.Load()
	n, err := lookup(v.root, p, v.index)
	if err != nil {
		return 0, err
	}
	return n.bytes, nil
}

// Visit calls f with each node that Get(p, recursive) would return, in the
// order Get lists them (the node at p first, then each listed child and,
// when recursive, its subtree, parents first), each without its Nodes, and
// stops as soon as f returns false. It builds no view, so the cost of
// sizing a read before making it is bounded by where f stops. It returns
// Get's error when p cannot be read.
func (s *Store) Visit(p string, recursive bool, f func(NodeView) bool) error {
	v := s.cur.Load()
	n, err := lookup(v.root, p, v.index)
	if err != nil {
		return err
	}
	visit(n, true, recursive, f)
	return nil
}

// Watch registers a watcher on p. since is the first index of interest
// (0: the next change). A since older than the history answers error 401.
func (s *Store) Watch(p string, recursive, stream bool, since uint64) (*Watcher, error) {
	return s.hub.watch(p, recursive, stream, since)
}

// Apply applies req, which was committed at Raft index raftIndex, and
// returns its event or a *Error. It is deterministic: it reads no clock
// (time comes in req.Time), no randomness and no map order, so replicas that
// apply the same sequence hold byte-identical state.
//
// OpExpire returns a nil event: each expiry is published as its own event.
func (s *Store) Apply(raftIndex uint64, req *Request) (*Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if raftIndex > 0 {
		s.raftIndex.Store(raftIndex)
		if s.dirty != nil {
			s.dirty.n++
		}
	}
	if lerr := CheckLimits(req); lerr != nil {
		lerr.Index = s.cur.Load().index
		s.stats.count(req.Op, false)
		return nil, lerr
	}
	v := s.cur.Load()
	a := applier{s: s, root: v.root, index: v.index, req: req}
	e, removed, err := a.apply()
	s.stats.count(req.Op, err == nil)
	if err != nil {
		return nil, err
	}
	if e != nil {
		s.cur.Store(&version{root: a.root, index: e.Index})
		s.hub.publish(e, removed)
	}
	return e, nil
}

// applier carries one Apply.
type applier struct {
	s     *Store
	root  *node
	index uint64 // current store index; a change takes index+1
	req   *Request
}

func (a *applier) next() uint64 { return a.index + 1 }

func (a *applier) apply() (*Event, *node, error) {
	r := a.req
	if err := a.checkFence(); err != nil {
		return nil, nil, err
	}
	switch r.Op {
	case OpSet:
		e, err := a.set()
		return e, nil, err
	case OpCreate:
		e, err := a.create(r.Path, false)
		return e, nil, err
	case OpCreateInOrder:
		e, err := a.create(joinPath(r.Path, fmt.Sprintf("%020d", a.next())), true)
		return e, nil, err
	case OpUpdate:
		e, err := a.update()
		return e, nil, err
	case OpCompareAndSwap:
		e, err := a.compareAndSwap()
		return e, nil, err
	case OpDelete, OpCompareAndDelete:
		return a.del()
	case OpExpire:
		a.expire(r.Time)
		return nil, nil, nil
	case OpAcquire:
		e, err := a.acquire()
		return e, nil, err
	case OpEnqueue:
		return a.enqueue()
	case OpDequeue:
		return a.dequeue()
	}
	return nil, nil, fmt.Errorf("store: unknown op %v", r.Op)
}

// deadline is the expiry a request asks for: 0 without a TTL (or, as in
// etcd, when it would fall before 2000-01-01).
func (a *applier) deadline() (int64, *Error) {
	r := a.req
	if !r.HasTTL {
		return 0, nil
	}
	const maxTTL = math.MaxInt64 / int64(1e9)
	if r.TTL > uint64(maxTTL) || r.Time > 0 && int64(r.TTL)*1e9 > math.MaxInt64-r.Time {
		return 0, NewError(EcodeTTLNaN, `invalid value for "ttl"`, a.index)
	}
	d := r.Time + int64(r.TTL)*1e9
	if d < minExpire {
		return 0, nil
	}
	return d, nil
}

// setTTL records n's deadline (or its absence) in the heap.
func (a *applier) setTTL(n *node) {
	if n.permanent() {
		a.s.ttls.Remove(n.path)
	} else {
		a.s.ttls.Set(n.path, n.expire)
	}
}

// replace installs leaf at p (creating missing parents at idx).
func (a *applier) replace(p string, leaf *node, idx uint64) {
	if d := a.s.dirty; d != nil {
		if leaf == nil {
			d.removed(p)
		} else {
			d.put(p)
			// Directories that put creates on the way are new records too.
			for dir := parentPath(p); dir != "/"; dir = parentPath(dir) {
				if n, _ := lookup(a.root, dir, 0); n != nil {
					break
				}
				d.put(dir)
			}
		}
	}
	a.root = put(a.root, p[1:], leaf, idx)
}

// forgetTTLs drops the deadlines of n and everything below it.
func (a *applier) forgetTTLs(n *node) {
	if a.s.ttls.Len() == 0 {
		return
	}
	walkSubtree(n, func(c *node) {
		if !c.permanent() {
			a.s.ttls.Remove(c.path)
		}
	})
}

func (a *applier) event(action string, n *NodeView, prev *NodeView) *Event {
	return &Event{Action: action, Node: n, PrevNode: prev, Index: a.next(), Time: a.req.Time}
}

func (a *applier) set() (*Event, error) {
	r := a.req
	prev, gerr := lookup(a.root, r.Path, a.index)
	if gerr != nil && gerr.Code != EcodeKeyNotFound {
		return nil, gerr
	}
	value := r.Value
	if r.Refresh {
		if gerr != nil {
			return nil, gerr
		}
		value = prev.value
	}
	e, err := a.put(r.Path, ActionSet, value, prev)
	if err != nil {
		return nil, err
	}
	e.Refresh = r.Refresh
	return e, nil
}

func (a *applier) create(p string, inOrder bool) (*Event, error) {
	if p == "/" {
		return nil, NewError(EcodeRootROnly, "/", a.index)
	}
	prev, _ := lookup(a.root, p, a.index)
	if prev != nil {
		return nil, NewError(EcodeNodeExist, p, a.index)
	}
	return a.put(p, ActionCreate, a.req.Value, nil)
}

// put creates p as a new file or directory, replacing the file prev (set).
func (a *applier) put(p, action, value string, prev *node) (*Event, error) {
	r := a.req
	if p == "/" {
		return nil, NewError(EcodeRootROnly, "/", a.index)
	}
	dir, name := path.Split(p)
	if err := checkParents(a.root, path.Clean(dir), a.index); err != nil {
		return nil, err
	}
	var pv *NodeView
	if prev != nil {
		if prev.dir {
			return nil, NewError(EcodeNotFile, p, a.index)
		}
		pv = view(prev, false, false)
	}
	exp, err := a.deadline()
	if err != nil {
		return nil, err
	}
	idx := a.next()
	n := &node{path: p, name: name, created: idx, modified: idx, expire: exp, dir: r.Dir}
	if !r.Dir {
		n.value = value
	}
	n.bytes = n.own()
	if prev != nil {
		a.forgetTTLs(prev)
	}
	a.replace(p, n, idx)
	a.setTTL(n)
	return a.event(action, view(n, false, false), pv), nil
}

func (a *applier) update() (*Event, error) {
	r := a.req
	if r.Path == "/" {
		return nil, NewError(EcodeRootROnly, "/", a.index)
	}
	n, err := lookup(a.root, r.Path, a.index)
	if err != nil {
		return nil, err
	}
	if n.dir && r.Value != "" {
		return nil, NewError(EcodeNotFile, r.Path, a.index)
	}
	return a.rewrite(n, ActionUpdate)
}

func (a *applier) compareAndSwap() (*Event, error) {
	r := a.req
	if r.Path == "/" {
		return nil, NewError(EcodeRootROnly, "/", a.index)
	}
	n, err := lookup(a.root, r.Path, a.index)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, NewError(EcodeNotFile, r.Path, a.index)
	}
	if cause, ok := compare(n, r.PrevValue, r.PrevIndex); !ok {
		return nil, NewError(EcodeTestFailed, cause, a.index)
	}
	return a.rewrite(n, ActionCompareAndSwap)
}

// rewrite gives existing node n a new value and TTL, keeping createdIndex.
// A directory keeps its stored modifiedIndex (etcd never persists it),
// although the event reports the new index.
func (a *applier) rewrite(n *node, action string) (*Event, error) {
	r := a.req
	exp, err := a.deadline()
	if err != nil {
		return nil, err
	}
	idx := a.next()
	pv := view(n, false, false)
	cp := *n
	cp.expire = exp
	if !n.dir {
		cp.modified = idx
		if !r.Refresh {
			cp.value = r.Value
		}
	}
	cp.bytes += cp.own() - n.own()
	a.replace(n.path, &cp, idx)
	a.setTTL(&cp)
	nv := view(&cp, false, false)
	nv.ModifiedIndex = idx
	e := a.event(action, nv, pv)
	e.Refresh = r.Refresh
	return e, nil
}

// compare checks prevValue/prevIndex against n ("" and 0 always match) and
// formats etcd's cause on failure.
func compare(n *node, prevValue string, prevIndex uint64) (string, bool) {
	indexOK := prevIndex == 0 || n.modified == prevIndex
	valueOK := prevValue == "" || n.value == prevValue
	switch {
	case indexOK && valueOK:
		return "", true
	case indexOK:
		return fmt.Sprintf("[%s != %s]", prevValue, n.value), false
	case valueOK:
		return fmt.Sprintf("[%d != %d]", prevIndex, n.modified), false
	}
	return fmt.Sprintf("[%s != %s] [%d != %d]", prevValue, n.value, prevIndex, n.modified), false
}

func (a *applier) del() (*Event, *node, error) {
	r := a.req
	// etcd checks the root for a plain delete only; compare-and-delete
	// finds it a directory (102, with the root's empty key as cause).
	if r.Path == "/" && r.Op != OpCompareAndDelete {
		return nil, nil, NewError(EcodeRootROnly, "/", a.index)
	}
	n, err := lookup(a.root, r.Path, a.index)
	if err != nil {
		return nil, nil, err
	}
	action := ActionDelete
	if r.Op == OpCompareAndDelete {
		action = ActionCompareAndDelete
		if n.dir {
			cause := r.Path
			if cause == "/" {
				cause = ""
			}
			return nil, nil, NewError(EcodeNotFile, cause, a.index)
		}
		if cause, ok := compare(n, r.PrevValue, r.PrevIndex); !ok {
			return nil, nil, NewError(EcodeTestFailed, cause, a.index)
		}
	} else if n.dir {
		if !r.Dir && !r.Recursive {
			return nil, nil, NewError(EcodeNotFile, r.Path, a.index)
		}
		if n.numChildren() > 0 && !r.Recursive {
			return nil, nil, NewError(EcodeDirNotEmpty, r.Path, a.index)
		}
	}
	return a.remove(n, action), n, nil
}

// remove takes n and its subtree out of the tree and returns the event.
func (a *applier) remove(n *node, action string) *Event {
	idx := a.next()
	e := a.event(action, bare(n, idx), view(n, false, false))
	a.forgetTTLs(n)
	a.replace(n.path, nil, idx)
	return e
}

// expire removes, one event each, every node whose deadline is at or
// before t. Removing a directory takes its subtree (and the subtree's own
// deadlines) with it.
func (a *applier) expire(t int64) {
	for {
		p, _, ok := a.s.ttls.PopDue(t)
		if !ok {
			return
		}
		n, err := lookup(a.root, p, a.index)
		if err != nil {
			// Invariant: the heap only holds live nodes.
			panic(fmt.Sprintf("store: deadline for missing node %s: %v", p, err))
		}
		if isQueueItem(n) {
			// A reservation ran out: the item goes back, not away.
			e := a.requeue(n)
			a.index = e.Index
			a.s.cur.Store(&version{root: a.root, index: a.index})
			a.s.hub.publish(e, nil)
			continue
		}
		e := a.remove(n, ActionExpire)
		a.s.stats.ExpireCount.Add(1)
		a.index = e.Index
		a.s.cur.Store(&version{root: a.root, index: a.index})
		a.s.hub.publish(e, n)
	}
}
