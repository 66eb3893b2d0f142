package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/internal/simfs"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/wal"
)

func testConfig(dir string) MemberConfig {
	return MemberConfig{ID: 1, ClusterID: 9, DataDir: dir, HeartbeatInterval: 10 * time.Millisecond,
		FlushEntries: 10, FlushInterval: 20 * time.Millisecond, RequestTimeout: 5 * time.Second}
}

func startMember(t *testing.T, cfg MemberConfig) *Member {
	t.Helper()
	m, err := StartMember(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func set(t *testing.T, m *Member, p, v string) *store.Event {
	t.Helper()
	e, err := m.Do(context.Background(), &store.Request{Op: store.OpSet, Path: p, Value: v})
	if err != nil {
		t.Fatalf("set %s: %v", p, err)
	}
	return e
}

func get(t *testing.T, m *Member, p string) string {
	t.Helper()
	e, err := m.Get(context.Background(), p, false, false)
	if err != nil {
		t.Fatalf("get %s: %v", p, err)
	}
	return e.Node.Value
}

// Every acknowledged write survives a restart, and the store index and
// the event history continue where they were.
func TestMemberRestartKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SnapshotCount = 50
	m := startMember(t, cfg)
	for i := range 120 {
		set(t, m, fmt.Sprintf("/k%d", i%30), fmt.Sprint(i))
	}
	index := m.Store().Index()
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	m = startMember(t, cfg)
	defer m.Stop()
	if got := m.Store().Index(); got != index {
		t.Fatalf("store index %d after restart, want %d", got, index)
	}
	for i := 90; i < 120; i++ {
		if got := get(t, m, fmt.Sprintf("/k%d", i%30)); got != fmt.Sprint(i) {
			t.Fatalf("/k%d = %q after restart, want %d", i%30, got, i)
		}
	}
	// The history survives too: a watch from index 1 is answered from it.
	w, err := m.Watch("/k0", false, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := <-w.C; e.Index != 1 {
		t.Fatalf("history watch got index %d, want 1", e.Index)
	}
	e := set(t, m, "/after", "x")
	if e.Index != index+1 {
		t.Fatalf("next write got index %d, want %d", e.Index, index+1)
	}
}

// The leader proposes an expiry once a deadline passes; the key goes with
// an expire event.
func TestMemberExpiresKeys(t *testing.T) {
	m := startMember(t, testConfig(t.TempDir()))
	defer m.Stop()
	if _, err := m.Do(context.Background(), &store.Request{Op: store.OpSet, Path: "/t", Value: "v", HasTTL: true, TTL: 1}); err != nil {
		t.Fatal(err)
	}
	w, err := m.Watch("/t", false, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-w.C:
		if e.Action != store.ActionExpire {
			t.Fatalf("got %s, want expire", e.Action)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("key with ttl=1 not expired after 10 s")
	}
	if _, err := m.Get(context.Background(), "/t", false, false); !errors.Is(err, &store.Error{Code: store.EcodeKeyNotFound}) {
		t.Fatalf("get after expiry: %v", err)
	}
}

// Concurrent writers are all applied, each exactly once, and they share
// fsyncs (group commit): fewer WAL saves than writes.
func TestMemberConcurrentWriters(t *testing.T) {
	m := startMember(t, testConfig(t.TempDir()))
	defer m.Stop()
	const writers, each = 32, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := m.Do(context.Background(), &store.Request{Op: store.OpCreateInOrder, Path: "/q", Value: fmt.Sprint(w, "-", i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	e, err := m.Get(context.Background(), "/q", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Node.Nodes) != writers*each {
		t.Fatalf("%d items, want %d", len(e.Node.Nodes), writers*each)
	}
	seen := map[string]bool{}
	for _, n := range e.Node.Nodes {
		if seen[n.Value] {
			t.Fatalf("%s applied twice", n.Value)
		}
		seen[n.Value] = true
	}
}

// A request whose caller gives up at once gets one of the answers that
// say what happened, and each is true: applied (no error), outcome unknown
// (ErrTimeout), or not applied (ErrNotProposed, context.Canceled before it
// was even queued) — in which case it is never applied later.
func TestCancelledRequestAnswersTruthfully(t *testing.T) {
	m := startMember(t, testConfig(t.TempDir()))
	defer m.Stop()
	set(t, m, "/warm", "x") // a leader exists
	for i := range 50 {
		p := fmt.Sprintf("/x%d", i)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := m.Do(ctx, &store.Request{Op: store.OpSet, Path: p, Value: "y"})
		notApplied := errors.Is(err, ErrNotProposed) || errors.Is(err, context.Canceled)
		if err != nil && !notApplied && !errors.Is(err, ErrTimeout) {
			t.Fatalf("err %v", err)
		}
		if notApplied {
			// A later write is applied after anything proposed before it.
			set(t, m, "/barrier", fmt.Sprint(i))
			if _, gerr := m.Get(context.Background(), p, false, false); gerr == nil {
				t.Fatalf("%s was applied although the answer was %v", p, err)
			}
		}
	}
}

// Another member's WAL is refused.
func TestMemberRefusesForeignWAL(t *testing.T) {
	dir := t.TempDir()
	m := startMember(t, testConfig(dir))
	set(t, m, "/a", "1")
	m.Stop()
	cfg := testConfig(dir)
	cfg.ID = 2
	if _, err := StartMember(cfg); err == nil {
		t.Fatal("member 2 started on member 1's data directory")
	}
}

// failingFS fails every fsync after the first n.
type failingFS struct {
	wal.FS
	left *atomic.Int64
}

func (f failingFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return failingFile{File: file, left: f.left}, nil
}

type failingFile struct {
	wal.File
	left *atomic.Int64
}

func (f failingFile) Sync() error {
	if f.left.Add(-1) < 0 {
		return errors.New("injected fsync failure")
	}
	return f.File.Sync()
}

// A new cluster's member whose first start fails at a WAL write (a
// failing or full disk) leaves a data directory it starts from again as
// that member: its log holds its bootstrap entries, or there is no log.
// (The WAL used to be created first and the bootstrap entries written
// after: a failure between left a log without them, a member that knew
// no one and never led.)
func TestNewMemberWhoseFirstStartFailedStartsAgain(t *testing.T) {
	for _, okWrites := range []int64{0, 1, 2} {
		t.Run(fmt.Sprint(okWrites), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			left := &atomic.Int64{}
			left.Store(okWrites)
			cfg.WALFS = failingWriteFS{FS: wal.OS, left: left}
			if m, err := StartMember(cfg); err == nil {
				_ = m.Stop() // it fails later: the disk does
			}
			m := startMember(t, testConfig(dir))
			defer m.Stop()
			waitFor(t, "the member leads", func() bool { return m.lead.Load() == 1 })
			set(t, m, "/a", "1")
		})
	}
}

// A WAL whose creation failed at the directory fsync, and which the next
// start found and used, survives a power loss: opening a WAL makes its
// directory durable. (It used not to: the crash lost the segment's name,
// and the member had applied state but no WAL, and could not start.)
func TestWALCreatedWithoutDirSyncSurvivesACrash(t *testing.T) {
	sfs := simfs.New(1, simfs.Faults{})
	fs := &failFirstSyncDir{FS: sfs}
	cfg := testConfig(t.TempDir())
	cfg.WALFS, cfg.WALDir = fs, "/wal"
	if m, err := StartMember(cfg); err == nil {
		_ = m.Stop()
		t.Fatal("setup: the first start did not fail")
	}
	m := startMember(t, cfg)
	waitFor(t, "the member leads", func() bool { return m.lead.Load() == 1 })
	set(t, m, "/a", "1")
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	sfs.Crash()
	m = startMember(t, cfg)
	defer m.Stop()
	waitFor(t, "the member leads after the power loss", func() bool { return m.lead.Load() == 1 })
	if got := get(t, m, "/a"); got != "1" {
		t.Fatalf("/a after the power loss = %q", got)
	}
}

// failFirstSyncDir fails the first directory fsync.
type failFirstSyncDir struct {
	*simfs.FS
	failed atomic.Bool
}

func (f *failFirstSyncDir) SyncDir(dir string) error {
	if !f.failed.Swap(true) {
		return simfs.ErrInjected
	}
	return f.FS.SyncDir(dir)
}

// failingWriteFS fails every write after the first n; a failed write
// writes nothing.
type failingWriteFS struct {
	wal.FS
	left *atomic.Int64
}

func (f failingWriteFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return failingWriteFile{File: file, left: f.left}, nil
}

type failingWriteFile struct {
	wal.File
	left *atomic.Int64
}

func (f failingWriteFile) WriteAt(b []byte, off int64) (int, error) {
	if f.left.Add(-1) < 0 {
		return 0, errors.New("injected write failure")
	}
	return f.File.WriteAt(b, off)
}

// A failed WAL fsync stops the member: the write that needed it is not
// acknowledged, nothing after it is, and every write acknowledged before
// it is there after a restart.
func TestMemberStopsOnFsyncFailure(t *testing.T) {
	for _, okSyncs := range []int64{6, 9, 15} {
		t.Run(fmt.Sprint(okSyncs), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			left := &atomic.Int64{}
			left.Store(okSyncs)
			cfg.WALFS = failingFS{FS: wal.OS, left: left}
			m := startMember(t, cfg)
			var acked []string
			var failed error
			for i := range 50 {
				k := fmt.Sprintf("/k%d", i)
				if _, err := m.Do(context.Background(), &store.Request{Op: store.OpSet, Path: k, Value: "v"}); err != nil {
					failed = err
					break
				}
				acked = append(acked, k)
			}
			if failed == nil {
				t.Fatal("no write failed although fsyncs did")
			}
			select {
			case <-m.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("member still running after a failed fsync")
			}
			if !errors.Is(m.Err(), wal.ErrFailed) {
				t.Fatalf("member error %v, want wal.ErrFailed", m.Err())
			}
			if _, err := m.Do(context.Background(), &store.Request{Op: store.OpSet, Path: "/late", Value: "v"}); err == nil {
				t.Fatal("a write was acknowledged after the failure")
			}
			cfg.WALFS = nil
			r := startMember(t, cfg)
			defer r.Stop()
			for _, k := range acked {
				if got := get(t, r, k); got != "v" {
					t.Fatalf("acknowledged %s lost after the fsync failure (%q)", k, got)
				}
			}
		})
	}
}

// The member's Prometheus figures follow what it does.
func TestMemberMetrics(t *testing.T) {
	cfg := testConfig(t.TempDir())
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	m := startMember(t, cfg)
	defer m.Stop()
	set(t, m, "/a", "1")
	if _, err := m.Watch("/a", false, false, 0); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			switch {
			case mt.GetGauge() != nil:
				got[mf.GetName()] = mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				got[mf.GetName()] = mt.GetCounter().GetValue()
			case mt.GetHistogram() != nil:
				got[mf.GetName()] = float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	for name, min := range map[string]float64{
		"cairn_server_has_leader": 1, "cairn_server_is_leader": 1, "cairn_server_leader_changes_seen_total": 1,
		"cairn_server_proposals_committed_total": 3, "cairn_server_proposals_applied_total": 3,
		"cairn_disk_wal_fsync_duration_seconds": 1, "cairn_store_watchers": 1, "cairn_store_index": 1, "cairn_server_id": 1,
	} {
		if got[name] < min {
			t.Errorf("%s = %v, want at least %v", name, got[name], min)
		}
	}
}

// A request that times out says whether it reached Raft: without a leader
// it never did (not applied); with a leader that cannot reach a quorum it
// did, and its outcome is unknown.
func TestTimeoutsSayWhetherProposed(t *testing.T) {
	// One member of three running: no leader can be elected.
	cfg := testConfig(t.TempDir())
	cfg.Voters = []uint64{1, 2, 3}
	cfg.Peers = map[uint64]string{2: "http://127.0.0.1:1", 3: "http://127.0.0.1:1"}
	m := startMember(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := m.Do(ctx, &store.Request{Op: store.OpSet, Path: "/x", Value: "1"})
	cancel()
	if !errors.Is(err, ErrNotProposed) {
		t.Fatalf("without a leader: %v, want ErrNotProposed", err)
	}
	m.Stop()

	// A leader whose followers are gone: the write is proposed, then
	// cannot commit. A long election timeout keeps the leader in place.
	c := newTestClusterWith(t, 3, func(cfg *MemberConfig) { cfg.ElectionTicks = 200 })
	l := c.leader()
	c.set(l, "/warm", "x")
	for id := range c.members {
		if id != l {
			c.stop(id)
		}
	}
	last, _ := c.members[l].rs.LastIndex()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = c.members[l].Do(ctx, &store.Request{Op: store.OpSet, Path: "/x", Value: "1"})
	cancel()
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("leader without a quorum: %v, want ErrTimeout (outcome unknown)", err)
	}
	// The leader appended it, so the error names the index it was given:
	// the next in the leader's log (nothing else is proposed meanwhile).
	var te *TimeoutError
	if !errors.As(err, &te) || te.Index != last+1 {
		t.Fatalf("timeout %v: want the index %d it was proposed at", err, last+1)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("index %d", te.Index)) {
		t.Fatalf("timeout message %q does not name the index", err)
	}
}

// A WAL that ends before the applied state (a member that stopped after
// replacing its applied state with a leader's snapshot and before its WAL
// recorded it, or whose WAL lost an unsynced tail) is mended at start:
// the member records the applied state as a snapshot before it appends,
// so that the next start does not find an entry after a gap. (It used
// to append right after the old end, and the next start refused the WAL:
// "entry 28 follows 3"; simulator seeds 1839, 7115, 7598.)
func TestWALBehindAppliedStateIsRecorded(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	walDir := filepath.Join(dir, "member", "wal")
	m := startMember(t, cfg)
	waitFor(t, "the member leads", func() bool { return m.lead.Load() == 1 })
	set(t, m, "/a", "1")
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	old := t.TempDir()
	if err := os.CopyFS(old, os.DirFS(walDir)); err != nil {
		t.Fatal(err)
	}
	m = startMember(t, cfg)
	waitFor(t, "the member leads", func() bool { return m.lead.Load() == 1 })
	for i := range 30 {
		set(t, m, fmt.Sprintf("/b%d", i), fmt.Sprint(i))
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	// The WAL goes back to before the 30 writes; bbolt holds them.
	if err := os.RemoveAll(walDir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(walDir, os.DirFS(old)); err != nil {
		t.Fatal(err)
	}
	m = startMember(t, cfg)
	waitFor(t, "the member leads", func() bool { return m.lead.Load() == 1 })
	set(t, m, "/c", "after")
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	m, err := StartMember(cfg)
	if err != nil {
		t.Fatalf("second start after the WAL fell behind: %v", err)
	}
	defer m.Stop()
	waitFor(t, "the member leads", func() bool { return m.lead.Load() == 1 })
	for p, want := range map[string]string{"/a": "1", "/b29": "29", "/c": "after"} {
		if got := get(t, m, p); got != want {
			t.Fatalf("%s = %q, want %q", p, got, want)
		}
	}
}
