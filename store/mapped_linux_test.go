package store

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// mappedRSS is the resident size, in KiB, of this process's mappings of
// the file at path, from /proc/self/smaps.
func mappedRSS(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[5] == path
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			kb, _ := strconv.Atoi(fields[1])
			total += kb
		}
	}
	return total
}

// waitDropped waits (up to three times dropDelay) for the mapped pages of
// the file to leave resident memory and returns what is left, in KiB.
func waitDropped(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(3 * dropDelay)
	for {
		kb := mappedRSS(t, path)
		if kb <= 512 || time.Now().After(deadline) {
			return kb
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The pages of the applied-state file that bbolt maps leave the member's
// resident memory once the store is loaded, and a second after batches
// are written; a read transaction brings them back only while it needs
// them.
func TestMappedPagesDroppedAfterLoadAndWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenFile(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", 1024)
	for i := range 8000 { // about 9 MiB in the file
		if _, err := s.Apply(uint64(i+1), &Request{Op: OpSet, Path: fmt.Sprintf("/k/%05d", i), Value: value, Time: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if kb := waitDropped(t, path); kb > 512 {
		t.Errorf("a while after a batch of 8,000 keys was written, %d KiB of the file are resident in the mapping", kb)
	}
	// Reading every key through the mapping makes its pages resident:
	// the measure sees them.
	if err := s.disk.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(k, v []byte) error { return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if kb := mappedRSS(t, path); kb < 4096 {
		t.Fatalf("after reading every key, only %d KiB of the file are resident: the measure does not see the mapping", kb)
	}
	if _, err := s.Apply(8001, &Request{Op: OpSet, Path: "/k/last", Value: value, Time: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if kb := waitDropped(t, path); kb > 512 {
		t.Errorf("a while after the next batch, %d KiB of the file are resident in the mapping", kb)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Loading reads every key; the pages go once the tree is built.
	s, err = OpenFile(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if kb := mappedRSS(t, path); kb > 512 {
		t.Errorf("after loading 8,001 keys, %d KiB of the file are resident in the mapping", kb)
	}
	if ev, err := s.Get("/k/07999", false); err != nil || ev.Node.Value != value {
		t.Fatalf("after load: %v", err)
	}
}
