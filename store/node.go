package store

import (
	"strings"

	"github.com/google/btree"
)

// node is one file or directory of the tree.
//
// Invariant: a node reachable from a published version is never modified.
// Every change builds new nodes along the path from the root (path copying)
// and shares the untouched subtrees, so readers of an older version keep a
// consistent view without locks while apply builds the next one.
type node struct {
	path     string // absolute; "/" for the root
	name     string // last path element; "" for the root
	created  uint64
	modified uint64
	expire   int64 // Unix nanoseconds; 0 = permanent
	value    string
	dir      bool
	// children of a directory, ordered by name; nil when it has none.
	// Invariant: nil for files; never an empty tree.
	children *btree.BTreeG[*node]
	// bytes is the data this subtree holds: the lengths of the paths and
	// values of n and of every node below it (the root's own path not
	// counted). Invariant: n.own() plus the children's bytes; with keeps it
	// so along every changed path, so the root's is the store's DataBytes.
	bytes int64
}

// own is the data n itself holds: its path and its value.
func (n *node) own() int64 {
	if n.path == "/" {
		return 0
	}
	return int64(len(n.path) + len(n.value))
}

// btreeDegree keeps small directories in one B-tree node.
const btreeDegree = 16

// freeList is shared by every children tree; a zero-size list allocates
// afresh, which is what copy-on-write clones need anyway.
var freeList = btree.NewFreeListG[*node](0)

func byName(a, b *node) bool { return a.name < b.name }

func newChildren() *btree.BTreeG[*node] {
	return btree.NewWithFreeListG(btreeDegree, byName, freeList)
}

// hidden reports whether name marks a hidden node (API.md §1.8).
func hidden(name string) bool { return strings.HasPrefix(name, "_") }

func (n *node) permanent() bool { return n.expire == 0 }

func (n *node) numChildren() int {
	if n.children == nil {
		return 0
	}
	return n.children.Len()
}

// child returns the child called name, or nil.
func (n *node) child(name string) *node {
	if n.children == nil {
		return nil
	}
	c, _ := n.children.Get(&node{name: name})
	return c
}

// each calls f for every child in name order until f returns false.
func (n *node) each(f func(*node) bool) {
	if n.children != nil {
		n.children.Ascend(f)
	}
}

// with returns a copy of directory n whose child called name is c
// (or removed, when c is nil), its bytes adjusted by the difference. n
// itself is not changed.
func (n *node) with(name string, c *node) *node {
	cp := *n
	var old *node
	switch {
	case c != nil && n.children == nil:
		cp.children = newChildren()
		cp.children.ReplaceOrInsert(c)
	case c != nil:
		cp.children = n.children.Clone()
		old, _ = cp.children.ReplaceOrInsert(c)
	case n.children != nil:
		cp.children = n.children.Clone()
		old, _ = cp.children.Delete(&node{name: name})
		if cp.children.Len() == 0 {
			cp.children = nil
		}
	}
	if old != nil {
		cp.bytes -= old.bytes
	}
	if c != nil {
		cp.bytes += c.bytes
	}
	return &cp
}

// joinPath joins a directory path and a child name.
func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// parentPath returns the directory holding p ("/" for top-level nodes).
func parentPath(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// splitPath returns the elements of a clean absolute path ("/" has none).
func splitPath(p string) []string {
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// put returns a copy of directory dir in which the node at the relative
// path elems is leaf (or removed, when leaf is nil). Missing directories
// on the way are created with index idx.
func put(dir *node, elems []string, leaf *node, idx uint64) *node {
	name := elems[0]
	if len(elems) == 1 {
		return dir.with(name, leaf)
	}
	c := dir.child(name)
	if c == nil {
		c = &node{path: joinPath(dir.path, name), name: name, created: idx, modified: idx, dir: true}
		c.bytes = c.own()
	}
	return dir.with(name, put(c, elems[1:], leaf, idx))
}

// lookup walks to p the way etcd's internalGet does: a file on the way is
// 104 (cause: the file's path); a missing element is 100 (cause: the first
// missing path).
func lookup(root *node, p string, index uint64) (*node, *Error) {
	n := root
	// The elements one by one, as splitPath has them, without the slice:
	// reads run here.
	for rest := p[1:]; p != "/"; {
		name, tail, more := strings.Cut(rest, "/")
		rest = tail
		if !n.dir {
			return nil, NewError(EcodeNotDir, n.path, index)
		}
		c := n.child(name)
		if c == nil {
			return nil, NewError(EcodeKeyNotFound, joinPath(n.path, name), index)
		}
		n = c
		if !more {
			break
		}
	}
	return n, nil
}

// checkParents verifies that the directory path dir can hold a new child:
// every existing element must be a directory. Missing ones will be created.
func checkParents(root *node, dir string, index uint64) *Error {
	n := root
	for _, name := range splitPath(dir) {
		c := n.child(name)
		if c == nil {
			return nil
		}
		if !c.dir {
			return NewError(EcodeNotDir, c.path, index)
		}
		n = c
	}
	return nil
}

// sumBytes sets the bytes of n and of every node below it from their
// paths and values (for a tree built in place, as Open does) and returns
// n's.
func sumBytes(n *node) int64 {
	n.bytes = n.own()
	n.each(func(c *node) bool {
		n.bytes += sumBytes(c)
		return true
	})
	return n.bytes
}

// walkSubtree calls f for n and every node below it, parents first.
func walkSubtree(n *node, f func(*node)) {
	f(n)
	n.each(func(c *node) bool {
		walkSubtree(c, f)
		return true
	})
}
