package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Applied state on disk. A persisted store mirrors its tree, its store and
// Raft indexes and its event history into a bbolt file. Apply only notes
// what changed (paths put, subtrees removed); Flush, called by the member
// off the apply path in batches bounded by time and count, writes those
// changes in one transaction, reading the nodes from the version it
// captured, so readers and apply never wait for the disk. Load rebuilds
// the store; the member then replays the WAL entries after RaftIndex().
//
// bbolt layout:
//
//	keys     path -> node (flags, createdIndex, modifiedIndex, deadline, value)
//	history  8-byte big-endian store index -> event
//	meta     "store-index", "raft-index" -> 8-byte big-endian
var (
	bucketKeys    = []byte("keys")
	bucketHistory = []byte("history")
	bucketMeta    = []byte("meta")
	metaStore     = []byte("store-index")
	metaRaft      = []byte("raft-index")
	metaRaftMeta  = []byte("raft-meta")
)

// ErrBadDB is wrapped by every error about an unreadable applied-state file.
var ErrBadDB = errors.New("store: bad applied-state file")

// changes is what Apply changed since the last Flush.
type changes struct {
	puts    map[string]struct{}
	removes map[string]struct{}
	n       int // requests applied
}

func newChanges() *changes {
	return &changes{puts: map[string]struct{}{}, removes: map[string]struct{}{}}
}

func (c *changes) put(p string)     { c.puts[p] = struct{}{} }
func (c *changes) removed(p string) { c.removes[p] = struct{}{} }

type disk struct {
	db       *bolt.DB
	mu       sync.Mutex // one Write at a time
	captured uint64     // last event index captured for writing
	// drop, when set, will drop the file's mapped pages from resident
	// memory (dropMapped): one second after the first write since the
	// last drop, so a member writing 10 batches a second faults the
	// pages its writes touch back in once a second, not 10 times.
	drop   *time.Timer
	closed bool
}

// dropSoon arranges for the mapped pages to be dropped a second from
// now, unless that is arranged already. The caller holds d.mu.
func (d *disk) dropSoon() {
	if d.drop != nil {
		return
	}
	d.drop = time.AfterFunc(dropDelay, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.drop = nil
		if !d.closed {
			d.dropMapped()
		}
	})
}

// dropDelay is how long written pages may stay resident.
const dropDelay = time.Second

// close closes the file; a pending drop is cancelled.
func (d *disk) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.drop != nil {
		d.drop.Stop()
		d.drop = nil
	}
	return d.db.Close()
}

// OpenDB opens (creating) the applied-state file at path with the options
// Cairn relies on: a large initial mmap so that a long snapshot read does
// not stall writers when the file grows.
func OpenDB(path string) (*bolt.DB, error) {
	return bolt.Open(path, 0o600, &bolt.Options{InitialMmapSize: 1 << 30, FreelistType: bolt.FreelistMapType})
}

// Open returns the store persisted in db (empty if db is new), tracking
// changes for Flush.
func Open(db *bolt.DB, historySize int) (*Store, error) {
	s := New(historySize)
	s.dirty = newChanges()
	s.disk = &disk{db: db}
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketHistory, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.disk.readAhead()
	err = db.View(func(tx *bolt.Tx) error { return s.load(tx) })
	if err != nil {
		return nil, err
	}
	s.disk.mu.Lock()
	s.disk.dropMapped()
	s.disk.mu.Unlock()
	return s, nil
}

func (s *Store) load(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	index, raft := getU64(meta, metaStore), getU64(meta, metaRaft)
	root := &node{path: "/", dir: true}
	// Paths sort parents first, so each node's directory already exists.
	err := tx.Bucket(bucketKeys).ForEach(func(k, v []byte) error {
		n, err := decodeNode(string(k), v)
		if err != nil {
			return err
		}
		parent, lerr := lookup(root, parentPath(n.path), 0)
		if lerr != nil || !parent.dir {
			return fmt.Errorf("%w: %s has no parent directory", ErrBadDB, n.path)
		}
		// Nothing is published yet: insert in place, no path copying.
		if parent.children == nil {
			parent.children = newChildren()
		}
		parent.children.ReplaceOrInsert(n)
		if !n.permanent() {
			s.ttls.Set(n.path, n.expire)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sumBytes(root)
	// The history: the newest contiguous run of events ending at index.
	var events []*Event
	c := tx.Bucket(bucketHistory).Cursor()
	for k, v := c.Last(); k != nil && len(events) < len(s.hub.hist.ring); k, v = c.Prev() {
		e, err := decodeEvent(v)
		if err != nil {
			return err
		}
		want := index - uint64(len(events))
		if e.Index != want {
			break
		}
		events = append(events, e)
	}
	slices.Reverse(events)
	s.hub.hist.restart(index - uint64(len(events)))
	for _, e := range events {
		s.hub.hist.add(e)
	}
	s.disk.captured = index
	if m := meta.Get(metaRaftMeta); m != nil {
		s.raftMeta = append([]byte(nil), m...)
	}
	s.raftIndex.Store(raft)
	s.cur.Store(&version{root: root, index: index})
	return nil
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// Pending reports how many requests were applied since the last Flush.
func (s *Store) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirty == nil {
		return 0
	}
	return s.dirty.n
}

// Batch is the changes of one Flush, captured consistently.
type Batch struct {
	s        *Store
	v        *version
	raft     uint64
	raftMeta []byte
	ch       *changes
	events   []*Event
	capacity uint64
}

// RaftIndex is the Raft index the batch covers.
func (b *Batch) RaftIndex() uint64 { return b.raft }

// Capture takes every change applied since the last Capture, with the
// version it leads to and the Raft index it covers. raftMeta, when not
// nil, is the caller's description of that Raft index (its term and the
// membership there) and is stored with it, so that the file is a Raft
// snapshot. Capture is cheap; call it on the apply goroutine and Write the
// batch elsewhere, in capture order.
func (s *Store) Capture(raftMeta []byte) *Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &Batch{s: s, v: s.cur.Load(), raft: s.raftIndex.Load(), ch: s.dirty}
	if raftMeta != nil {
		b.raftMeta = append([]byte(nil), raftMeta...)
	}
	s.dirty = newChanges()
	s.hub.mu.Lock()
	h := s.hub.hist
	for i := max(s.disk.captured+1, h.first); h.n > 0 && i <= h.last; i++ {
		b.events = append(b.events, h.at(i))
	}
	b.capacity = uint64(len(h.ring))
	s.hub.mu.Unlock()
	s.disk.captured = b.v.index
	return b
}

// Write stores the batch in one bbolt transaction (which bbolt fsyncs).
// An error leaves the file as it was; the member must stop, as its
// applied state can no longer be mirrored.
func (b *Batch) Write() error {
	d := b.s.disk
	d.mu.Lock()
	defer d.mu.Unlock()
	defer d.dropSoon()
	return d.db.Update(func(tx *bolt.Tx) error {
		// bbolt copies the keys it is given but keeps the values until the
		// transaction commits: keys are built in one reused buffer, values
		// appended to the arena.
		var key []byte
		var vals arena
		keys := tx.Bucket(bucketKeys)
		for _, p := range sortedKeys(b.ch.removes) {
			if err := deleteSubtree(keys, p); err != nil {
				return err
			}
		}
		for _, p := range sortedKeys(b.ch.puts) {
			n, lerr := lookup(b.v.root, p, 0)
			if lerr != nil {
				continue // removed again later in the batch
			}
			key = append(key[:0], p...)
			start := vals.reserve(nodeSizeHint(n))
			vals.buf = appendNode(vals.buf, n)
			if err := keys.Put(key, vals.since(start)); err != nil {
				return err
			}
		}
		hist := tx.Bucket(bucketHistory)
		for _, e := range b.events {
			key = binary.BigEndian.AppendUint64(key[:0], e.Index)
			start := vals.reserve(eventSizeHint(e))
			vals.buf = appendEvent(vals.buf, e)
			if err := hist.Put(key, vals.since(start)); err != nil {
				return err
			}
		}
		if b.v.index > b.capacity {
			// Drop events the history no longer holds: find them in one
			// pass, then delete (a cursor re-positioned after each delete
			// walks the emptied leaves again every time).
			var drop []uint64
			c := hist.Cursor()
			for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= b.v.index-b.capacity; k, _ = c.Next() {
				drop = append(drop, binary.BigEndian.Uint64(k))
			}
			for _, i := range drop {
				if err := hist.Delete(binary.BigEndian.AppendUint64(key[:0], i)); err != nil {
					return err
				}
			}
		}
		meta := tx.Bucket(bucketMeta)
		if b.raftMeta != nil {
			if err := meta.Put(metaRaftMeta, b.raftMeta); err != nil {
				return err
			}
		}
		if err := meta.Put(metaStore, u64(b.v.index)); err != nil {
			return err
		}
		return meta.Put(metaRaft, u64(b.raft))
	})
}

// arena holds the values of one bbolt transaction, appended one after
// the other into chunks. A value handed out is never written again: a
// chunk that fills is left to the values in it and a new one begun.
type arena struct{ buf []byte }

// arenaChunk is the least an arena allocates at a time.
const arenaChunk = 64 << 10

// reserve makes room for about n more bytes and returns where the next
// value starts. (A value larger than its hint still fits: append moves it
// to a larger array, whose earlier bytes then belong to nobody.)
func (a *arena) reserve(n int) int {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(arenaChunk, n))
	}
	return len(a.buf)
}

// since returns the value appended from start on, capped so that it
// cannot be appended to.
func (a *arena) since(start int) []byte { return a.buf[start:len(a.buf):len(a.buf)] }

// Flush captures and writes at once (Capture(nil) then Write).
func (s *Store) Flush() error {
	if s.disk == nil {
		return errors.New("store: not persisted")
	}
	return s.Capture(nil).Write()
}

// RaftMeta returns the Raft metadata stored with the last batch written
// before Open (nil if none).
func (s *Store) RaftMeta() []byte { return s.raftMeta }

// deleteSubtree removes p and every key below it.
func deleteSubtree(keys *bolt.Bucket, p string) error {
	if err := keys.Delete([]byte(p)); err != nil {
		return err
	}
	prefix := []byte(p + "/")
	c := keys.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// SnapshotSizer is a writer that wants to know, before WriteSnapshot
// writes to it, how many bytes it will write (an HTTP answer, for its
// Content-Length).
type SnapshotSizer interface {
	SnapshotSize(n int64)
}

// WriteSnapshot streams a consistent copy of the applied-state file, as of
// the last batch written, to w (from one read transaction; apply and
// writes go on). It returns the Raft index the copy covers. It does not
// flush: batches must be written in capture order, so the owner of the
// store (the member's persister) covers what the caller needs first. A w
// that is a SnapshotSizer is told the size first: the copy is exactly
// the transaction's size.
func (s *Store) WriteSnapshot(w io.Writer) (raftIndex uint64, n int64, err error) {
	if s.disk == nil {
		return 0, 0, errors.New("store: not persisted")
	}
	err = s.disk.db.View(func(tx *bolt.Tx) error {
		raftIndex = getU64(tx.Bucket(bucketMeta), metaRaft)
		if sz, ok := w.(SnapshotSizer); ok {
			sz.SnapshotSize(tx.Size())
		}
		n, err = tx.WriteTo(w)
		return err
	})
	return raftIndex, n, err
}

// nodeSizeHint bounds a node record's size.
func nodeSizeHint(n *node) int { return 1 + 3*binary.MaxVarintLen64 + len(n.value) }

// appendNode appends n's record: flags (1 = dir), uvarint created, uvarint
// modified, varint deadline, then the value.
func appendNode(b []byte, n *node) []byte {
	var flags byte
	if n.dir {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, n.created)
	b = binary.AppendUvarint(b, n.modified)
	b = binary.AppendVarint(b, n.expire)
	return append(b, n.value...)
}

func decodeNode(p string, b []byte) (*node, error) {
	if len(b) < 1 || b[0] > 1 || p == "/" || CleanPath(p) != p {
		return nil, fmt.Errorf("%w: node %q", ErrBadDB, p)
	}
	d := newDecoder(b[1:], ErrBadDB)
	n := &node{path: p, dir: b[0] == 1}
	n.name = p[strings.LastIndexByte(p, '/')+1:]
	n.created = d.uvarint()
	n.modified = d.uvarint()
	n.expire = d.varint()
	if d.Err() != nil {
		return nil, fmt.Errorf("%w: node %q: %v", ErrBadDB, p, d.Err())
	}
	n.value = string(d.Rest())
	return n, nil
}

// Append only: the codes are persisted.
var actionCodes = []string{"", ActionGet, ActionSet, ActionCreate, ActionUpdate, ActionCompareAndSwap, ActionDelete, ActionCompareAndDelete, ActionExpire,
	ActionDequeue, ActionReserve, ActionDeliver, ActionRequeue}

// eventSizeHint bounds an event record's size.
func eventSizeHint(e *Event) int {
	n := 3 + 2*binary.MaxVarintLen64
	for _, v := range []*NodeView{e.Node, e.PrevNode} {
		if v != nil {
			n += 1 + 5*binary.MaxVarintLen64 + len(v.Key) + len(v.Value)
		}
	}
	return n
}

// appendEvent appends e's record: version 1, action code, flags (1
// refresh, 2 node, 4 prevNode), varint time, uvarint index, then the node
// views.
func appendEvent(b []byte, e *Event) []byte {
	b = append(b, 1, byte(slices.Index(actionCodes, e.Action)))
	var flags byte
	if e.Refresh {
		flags |= 1
	}
	if e.Node != nil {
		flags |= 2
	}
	if e.PrevNode != nil {
		flags |= 4
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, e.Time)
	b = binary.AppendUvarint(b, e.Index)
	for _, v := range []*NodeView{e.Node, e.PrevNode} {
		if v == nil {
			continue
		}
		var f byte
		if v.Dir {
			f |= 1
		}
		if v.HasValue {
			f |= 2
		}
		b = append(b, f)
		b = binary.AppendUvarint(b, uint64(len(v.Key)))
		b = append(b, v.Key...)
		b = binary.AppendUvarint(b, uint64(len(v.Value)))
		b = append(b, v.Value...)
		b = binary.AppendVarint(b, v.Expiration)
		b = binary.AppendUvarint(b, v.ModifiedIndex)
		b = binary.AppendUvarint(b, v.CreatedIndex)
	}
	return b
}

func decodeEvent(b []byte) (*Event, error) {
	if len(b) < 3 || b[0] != 1 || int(b[1]) >= len(actionCodes) || b[1] == 0 || b[2]&^7 != 0 {
		return nil, fmt.Errorf("%w: event header", ErrBadDB)
	}
	e := &Event{Action: actionCodes[b[1]], Refresh: b[2]&1 != 0}
	flags := b[2]
	d := newDecoder(b[3:], ErrBadDB)
	e.Time = d.varint()
	e.Index = d.uvarint()
	for _, dst := range []**NodeView{&e.Node, &e.PrevNode} {
		bit := byte(2)
		if dst == &e.PrevNode {
			bit = 4
		}
		if flags&bit == 0 {
			continue
		}
		if d.Len() == 0 {
			return nil, fmt.Errorf("%w: event node", ErrBadDB)
		}
		f := d.Byte()
		v := &NodeView{Dir: f&1 != 0, HasValue: f&2 != 0}
		v.Key = d.str()
		v.Value = d.str()
		v.Expiration = d.varint()
		v.ModifiedIndex = d.uvarint()
		v.CreatedIndex = d.uvarint()
		*dst = v
	}
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("%w: event %d: %v", ErrBadDB, e.Index, err)
	}
	return e, nil
}

// readAhead reads the whole applied-state file once, sequentially and
// in large requests, in the background, while the load walks its B+tree:
// the walk follows key order, not file order, and on a cold page cache it
// faulted the file in a page at a time. (The kernel's own read-ahead hint,
// fadvise WILLNEED, reads only a read-ahead window's worth.) A failure
// only costs the speed.
func (d *disk) readAhead() {
	f, err := os.Open(d.db.Path())
	if err != nil {
		return
	}
	go func() {
		defer f.Close()
		buf := make([]byte, 4<<20)
		for off := int64(0); ; off += int64(len(buf)) {
			if n, err := f.ReadAt(buf, off); n < len(buf) || err != nil {
				return
			}
		}
	}()
}
