package config

import (
	"strings"
	"testing"
	"time"
)

// The test-only switches come from their variables alone: no warning
// that they are unknown, no flag, no YAML key, nothing in --help; a
// malformed failpoint stops the start.
func TestFaultsOnlyFromTheEnvironment(t *testing.T) {
	c, warn, err := Load(nil, []string{"CAIRN_UNSAFE_LOCAL_READS=1", "CAIRN_UNSAFE_LOCK_GRANT=1",
		"CAIRN_UNSAFE_SKIP_PROPOSAL_CHECK=1", "CAIRN_FAILPOINT_WAL_FSYNC_DELAY=20ms", "CAIRN_FAILPOINT_WAL_FSYNC_DELAY_FILE=/x"})
	if err != nil || len(warn) != 0 {
		t.Fatalf("Load: %v, warnings %q", err, warn)
	}
	want := Faults{UnsafeLocalReads: true, UnsafeLockGrant: true, UnsafeSkipProposalCheck: true,
		WALFsyncDelay: 20 * time.Millisecond, WALFsyncDelayFile: "/x"}
	if c.Faults != want || len(c.Faults.Warnings()) != 5 {
		t.Fatalf("faults %+v (warnings %q), want %+v", c.Faults, c.Faults.Warnings(), want)
	}
	if c, _, _ := Load(nil, nil); c.Faults != (Faults{}) || len(c.Faults.Warnings()) != 0 {
		t.Fatalf("faults without variables: %+v", c.Faults)
	}
	if _, _, err := Load([]string{"--unsafe-local-reads"}, nil); err == nil {
		t.Fatal("a fault was settable as a flag")
	}
	if _, _, err := Load([]string{"--config-file", writeFile(t, "unsafe-local-reads: true\n")}, nil); err == nil {
		t.Fatal("a fault was settable in the YAML file")
	}
	if _, _, err := Load(nil, []string{"CAIRN_FAILPOINT_WAL_FSYNC_DELAY=soon"}); err == nil || !strings.Contains(err.Error(), "CAIRN_FAILPOINT_WAL_FSYNC_DELAY") {
		t.Fatalf("a malformed failpoint: %v", err)
	}
	var help strings.Builder
	Usage(&help)
	if strings.Contains(strings.ToLower(help.String()), "unsafe") || strings.Contains(help.String(), "FAILPOINT") {
		t.Fatal("--help mentions a test-only switch")
	}
}
