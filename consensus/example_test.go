package consensus_test

import (
	"fmt"

	"github.com/cairnkv/cairn/consensus"
)

// Example bootstraps a one-member cluster, elects it, proposes an entry
// and prints it once committed. A member's run loop does the same work
// with a WAL, a transport and a ticker.
func Example() {
	storage := consensus.NewMemoryStorage()
	ents, hs := consensus.BootstrapEntries([]uint64{1})
	if err := storage.Append(ents); err != nil {
		panic(err)
	}
	storage.SetHardState(hs)

	n, err := consensus.NewNode(&consensus.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: storage, Seed: 1})
	if err != nil {
		panic(err)
	}

	// handle carries out every Ready in the order node.go prescribes.
	handle := func() {
		for n.HasReady() {
			rd := n.Ready()
			// 1. Messages could be sent now (a one-member cluster has none).
			// 2. Persist.
			if err := storage.Append(rd.Entries); err != nil {
				panic(err)
			}
			if !rd.HardState.IsEmpty() {
				storage.SetHardState(rd.HardState)
			}
			// 3. MessagesAfterPersist could be sent now.
			// 4. Apply.
			for _, e := range rd.CommittedEntries {
				switch {
				case e.Type == consensus.EntryConfChange:
					var cc consensus.ConfChange
					if err := cc.Unmarshal(e.Data); err != nil {
						panic(err)
					}
					cs := n.ApplyConfChange(cc)
					fmt.Printf("applied %v %d: voters %v\n", cc.Type, cc.NodeID, cs.Voters)
				case len(e.Data) > 0:
					fmt.Printf("committed %q at index %d, term %d\n", e.Data, e.Index, e.Term)
				}
			}
			// 5. Advance.
			n.Advance(rd)
		}
	}

	handle() // apply the bootstrap entry: the membership is {1}
	if err := n.Campaign(); err != nil {
		panic(err)
	}
	handle()
	st := n.Status()
	fmt.Printf("leader %d in term %d\n", st.Lead, st.Term)

	if err := n.Propose([]byte("hello")); err != nil {
		panic(err)
	}
	handle()
	// Output:
	// applied AddVoter 1: voters [1]
	// leader 1 in term 2
	// committed "hello" at index 3, term 2
}
