package store

import (
	"encoding/binary"
	"hash/fnv"
)

// Hash returns a digest of the whole replicated state: the tree (every
// node's path, value, indexes, deadline and kind, in name order), the store
// index and the event history. Two replicas that applied the same requests
// return the same hash.
func (s *Store) Hash() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := fnv.New64a()
	var b []byte
	str := func(x string) {
		b = binary.AppendUvarint(b, uint64(len(x)))
		b = append(b, x...)
	}
	flush := func() {
		h.Write(b)
		b = b[:0]
	}
	v := s.cur.Load()
	b = binary.AppendUvarint(b, v.index)
	walkSubtree(v.root, func(n *node) {
		str(n.path)
		str(n.value)
		b = binary.AppendUvarint(b, n.created)
		b = binary.AppendUvarint(b, n.modified)
		b = binary.AppendVarint(b, n.expire)
		b = append(b, flag(n.dir))
		flush()
	})
	nv := func(x *NodeView) {
		if x == nil {
			b = append(b, 0)
			return
		}
		b = append(b, 1, flag(x.Dir), flag(x.HasValue))
		str(x.Key)
		str(x.Value)
		b = binary.AppendUvarint(b, x.ModifiedIndex)
		b = binary.AppendUvarint(b, x.CreatedIndex)
		b = binary.AppendVarint(b, x.Expiration)
	}
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	for _, e := range s.hub.hist.events() {
		b = append(b, flag(e.Refresh))
		str(e.Action)
		b = binary.AppendUvarint(b, e.Index)
		b = binary.AppendVarint(b, e.Time)
		nv(e.Node)
		nv(e.PrevNode)
		flush()
	}
	flush()
	return h.Sum64()
}

func flag(v bool) byte {
	if v {
		return 1
	}
	return 0
}
