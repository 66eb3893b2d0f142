package consensus

import "testing"

// The simulator is only evidence if it fails on a broken core. Each test
// switches on one classic Raft bug and requires a violation within a seed
// budget well inside what CI runs.

const bugSeedBudget = 2000

func requireCaught(t *testing.T, name string, b bugs) {
	t.Helper()
	seed, msg, _ := runSeeds(1, bugSeedBudget, b)
	if seed == 0 {
		t.Fatalf("%s: no violation found in %d seeds", name, bugSeedBudget)
	}
	t.Logf("%s caught at seed %d: %s", name, seed, msg)
}

// Raft §5.4.2 / Figure 8: counting replicas of a previous term's entry can
// commit an entry that a later leader overwrites.
func TestSimulatorCatchesCommitOfPriorTermEntry(t *testing.T) {
	requireCaught(t, "commit by counting prior-term entries", bugs{commitPriorTerm: true})
}

// Raft §5.2 and Figure 2 ("persistent state ... updated on stable storage
// before responding to RPCs"): a vote sent before it is persisted is
// forgotten by a crash, and the member can vote twice in one term.
func TestSimulatorCatchesVoteBeforePersist(t *testing.T) {
	requireCaught(t, "vote before persist", bugs{voteBeforePersist: true})
}

// Thesis §6.4.1: a lease read is only safe while the leader cannot have
// been replaced; serving it without the CheckQuorum lease lets a deposed
// leader answer stale reads.
func TestSimulatorCatchesLeaseReadWithoutCheckQuorum(t *testing.T) {
	requireCaught(t, "lease read without CheckQuorum", bugs{leaseWithoutCheckQuor: true})
}

// A leader that appends what the application's CheckProposal refuses puts
// into the log an entry that apply cannot take.
func TestSimulatorCatchesUncheckedProposal(t *testing.T) {
	requireCaught(t, "proposal appended without CheckProposal", bugs{skipProposalCheck: true})
}
