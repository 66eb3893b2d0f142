package wal

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/consensus"
)

const (
	crashDirEnv   = "CAIRN_WAL_CRASH_DIR"
	crashRoundEnv = "CAIRN_WAL_CRASH_ROUND"
	crashSeg      = 16 << 10
	crashHSWriter = 4 // hard-state writers next to the entry writer
)

// TestCrashHelper is the child process of TestCrash: it opens (or
// creates) the log in $CAIRN_WAL_CRASH_DIR and saves until killed,
// printing each acknowledged Save on stdout once Save has returned:
//
//	e <index>           entries up to index (data mkEntry(i, 1))
//	h <writer> <commit> hard state {Term: round+1, Vote: writer, Commit: commit}
//
// One goroutine appends entries, in index order as Raft does; the others
// save hard states concurrently, so Saves are grouped.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child process of TestCrash")
	}
	round, _ := strconv.ParseUint(os.Getenv(crashRoundEnv), 10, 64)
	opts := Options{SegmentSize: crashSeg}
	var (
		w    *WAL
		next = uint64(1)
		err  error
	)
	if Exist(dir, opts) {
		var c *Contents
		w, c, err = Open(dir, 0, opts)
		if err == nil && len(c.Entries) > 0 {
			next = c.Entries[len(c.Entries)-1].Index + 1
		}
	} else {
		w, err = Create(dir, testMeta, opts)
	}
	if err != nil {
		fmt.Fprintf(os.Stdout, "error %v\n", err)
		os.Exit(3)
	}
	say := func(format string, args ...any) {
		// One write per line: lines up to PIPE_BUF are atomic.
		if _, err := os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n"); err != nil {
			os.Exit(4)
		}
	}
	fail := func(err error) {
		say("error %v", err)
		os.Exit(5)
	}
	say("ready %d", next)
	time.AfterFunc(20*time.Second, func() { os.Exit(6) }) // never outlive the parent for long
	for g := uint64(1); g <= crashHSWriter; g++ {
		id := round*100 + g
		go func() {
			for c := uint64(1); ; c++ {
				if err := w.Save(consensus.HardState{Term: round + 1, Vote: id, Commit: c}, nil); err != nil {
					fail(err)
				}
				say("h %d %d", id, c)
			}
		}()
	}
	rng := rand.New(rand.NewPCG(round, 99))
	for {
		hi := next + uint64(rng.IntN(4))
		if err := w.Save(consensus.HardState{}, mkEntries(next, hi, 1)); err != nil {
			fail(err)
		}
		say("e %d", hi)
		next = hi + 1
	}
}

// TestCrash kills a writing child process with SIGKILL at random moments
// (seeded), then checks that the log opens and holds every Save the child
// acknowledged, with nothing partial beyond.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dir := t.TempDir()
	seed := uint64(20261121)
	if s := os.Getenv("CAIRN_WAL_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (CAIRN_WAL_CRASH_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const rounds = 24
	deadline := time.Now().Add(25 * time.Second)
	acked := uint64(0)
	for round := uint64(1); round <= rounds; round++ {
		if time.Now().After(deadline) {
			t.Logf("stopping after %d rounds: time is up", round-1)
			break
		}
		// The kill lands anywhere from the child's start (during Open and
		// its torn-tail repair) to well into its saves.
		delay := time.Duration(rng.IntN(250)) * time.Millisecond
		lines := runCrashChild(t, dir, round, delay)
		ackedHS := map[uint64]uint64{}
		ready := false
		for _, l := range lines {
			f := strings.Fields(l)
			switch {
			case len(f) == 2 && f[0] == "ready":
				ready = true
				n, _ := strconv.ParseUint(f[1], 10, 64)
				if n < acked+1 {
					t.Fatalf("round %d: the child reopened at %d, after acknowledged %d", round, n, acked)
				}
			case len(f) == 2 && f[0] == "e":
				n, _ := strconv.ParseUint(f[1], 10, 64)
				acked = max(acked, n)
			case len(f) == 3 && f[0] == "h":
				id, _ := strconv.ParseUint(f[1], 10, 64)
				c, _ := strconv.ParseUint(f[2], 10, 64)
				ackedHS[id] = max(ackedHS[id], c)
			case len(f) > 0 && f[0] == "error":
				t.Fatalf("round %d: child: %s", round, l)
			default:
				t.Fatalf("round %d: child said %q", round, l)
			}
		}

		w, c, err := Open(dir, 0, Options{SegmentSize: crashSeg})
		if errors.Is(err, ErrNotExist) && acked == 0 && len(ackedHS) == 0 {
			// Killed before it had created the log (a slow start): nothing
			// was acknowledged, so nothing is owed.
			continue
		}
		if err != nil {
			t.Fatalf("round %d (killed after %v, ready=%v): Open: %v", round, delay, ready, err)
		}
		n := uint64(len(c.Entries))
		if n < acked {
			t.Fatalf("round %d: %d entries on disk, %d acknowledged", round, n, acked)
		}
		checkEntries(t, c.Entries, mkEntries(1, n, 1))
		// Beyond what was acknowledged: at most the one batch (up to 4
		// entries) in flight or not yet reported.
		if n > acked+4 {
			t.Fatalf("round %d: %d entries on disk, %d acknowledged: more than one batch in flight", round, n, acked)
		}
		mustClose(t, w)

		// Every acknowledged hard state is in the log, and each writer
		// has at most its one Save in flight beyond that.
		last := map[uint64]uint64{}
		for _, recs := range rawRecords(t, dir) {
			for _, r := range recs {
				if r.typ != recHardState {
					continue
				}
				h, err := decodeHardState(r.data)
				if err != nil {
					t.Fatal(err)
				}
				if h.Vote/100 == round {
					if h.Commit < last[h.Vote] {
						t.Fatalf("round %d: writer %d's hard states out of order", round, h.Vote)
					}
					last[h.Vote] = h.Commit
				}
			}
		}
		for id, c := range ackedHS {
			if last[id] < c {
				t.Fatalf("round %d: writer %d acknowledged commit %d, the log holds %d", round, id, c, last[id])
			}
		}
		for id, c := range last {
			if c > ackedHS[id]+1 {
				t.Fatalf("round %d: writer %d has commit %d on disk, acknowledged %d", round, id, c, ackedHS[id])
			}
		}
		t.Logf("round %d: killed after %v: %d entries (%d acknowledged), %d segments", round, delay, n, acked, len(segNames(t, dir)))
		acked = n // the next child continues from what is on disk
	}
	if acked == 0 {
		t.Fatal("no Save was ever acknowledged")
	}
}

// runCrashChild starts the helper, kills it with SIGKILL after delay and
// returns the lines it printed.
func runCrashChild(t *testing.T, dir string, round uint64, delay time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.FormatUint(round, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		lines []string
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	})
	time.Sleep(delay)
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child ended with %v, not by SIGKILL: %v", round, cmd.ProcessState, err)
	}
	return lines
}
