package store

import "sync/atomic"

// Stats counts store operations as etcd's /v2/stats/store reports them.
// They are figures about this member, not replicated state: they are not
// part of Hash and start from zero when the member starts.
type Stats struct {
	GetsSuccess, GetsFail                         atomic.Uint64
	SetsSuccess, SetsFail                         atomic.Uint64
	DeleteSuccess, DeleteFail                     atomic.Uint64
	UpdateSuccess, UpdateFail                     atomic.Uint64
	CreateSuccess, CreateFail                     atomic.Uint64
	CompareAndSwapSuccess, CompareAndSwapFail     atomic.Uint64
	CompareAndDeleteSuccess, CompareAndDeleteFail atomic.Uint64
	ExpireCount                                   atomic.Uint64
}

// Stats returns the store's operation counters.
func (s *Store) Stats() *Stats { return &s.stats }

func (st *Stats) count(op Op, ok bool) {
	var c *atomic.Uint64
	switch op {
	case OpSet:
		c = pick(ok, &st.SetsSuccess, &st.SetsFail)
	case OpCreate, OpCreateInOrder:
		c = pick(ok, &st.CreateSuccess, &st.CreateFail)
	case OpUpdate:
		c = pick(ok, &st.UpdateSuccess, &st.UpdateFail)
	case OpCompareAndSwap:
		c = pick(ok, &st.CompareAndSwapSuccess, &st.CompareAndSwapFail)
	case OpDelete:
		c = pick(ok, &st.DeleteSuccess, &st.DeleteFail)
	case OpCompareAndDelete:
		c = pick(ok, &st.CompareAndDeleteSuccess, &st.CompareAndDeleteFail)
	default:
		return
	}
	c.Add(1)
}

func pick(ok bool, yes, no *atomic.Uint64) *atomic.Uint64 {
	if ok {
		return yes
	}
	return no
}
