package config

import (
	"fmt"
	"strings"
	"time"
)

// Faults are test-only switches: deliberate bugs and failpoints that the
// fault-injection tests (e2e/chaos*, e2e/poison_test.go) switch on to
// prove their checkers catch what they look for. Never in production.
//
// They are read from CAIRN_UNSAFE_* and CAIRN_FAILPOINT_* environment
// variables by Load and nowhere else: no flag, no YAML key, nothing in
// --help. Load neither warns about these variables as unknown nor ignores
// a malformed one; the caller logs Warnings once at start.
type Faults struct {
	// UnsafeLocalReads (CAIRN_UNSAFE_LOCAL_READS=1): linearizable reads
	// skip ReadIndex and may be stale.
	UnsafeLocalReads bool
	// UnsafeLockGrant (CAIRN_UNSAFE_LOCK_GRANT=1): lock waiters are
	// granted without waiting to reach the head of the line.
	UnsafeLockGrant bool
	// UnsafeSkipProposalCheck (CAIRN_UNSAFE_SKIP_PROPOSAL_CHECK=1): a
	// leader appends proposals that apply cannot take.
	UnsafeSkipProposalCheck bool
	// WALFsyncDelay (CAIRN_FAILPOINT_WAL_FSYNC_DELAY, a duration) delays
	// every WAL fsync; WALFsyncDelayFile (CAIRN_FAILPOINT_WAL_FSYNC_DELAY_FILE)
	// delays them by the duration written in that file, read at each sync.
	WALFsyncDelay     time.Duration
	WALFsyncDelayFile string
}

// faultVars are the variables Faults is read from, each with how it is set.
var faultVars = map[string]func(f *Faults, v string) error{
	"CAIRN_UNSAFE_LOCAL_READS":         func(f *Faults, v string) error { f.UnsafeLocalReads = v == "1"; return nil },
	"CAIRN_UNSAFE_LOCK_GRANT":          func(f *Faults, v string) error { f.UnsafeLockGrant = v == "1"; return nil },
	"CAIRN_UNSAFE_SKIP_PROPOSAL_CHECK": func(f *Faults, v string) error { f.UnsafeSkipProposalCheck = v == "1"; return nil },
	"CAIRN_FAILPOINT_WAL_FSYNC_DELAY": func(f *Faults, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration", v)
		}
		f.WALFsyncDelay = d
		return nil
	},
	"CAIRN_FAILPOINT_WAL_FSYNC_DELAY_FILE": func(f *Faults, v string) error { f.WALFsyncDelayFile = v; return nil },
}

// isFaultVar tells whether an environment variable is one of Faults'.
func isFaultVar(k string) bool {
	_, ok := faultVars[k]
	return ok
}

// Warnings says, one line each, which faults are on.
func (f Faults) Warnings() []string {
	var out []string
	if f.UnsafeLocalReads {
		out = append(out, "CAIRN_UNSAFE_LOCAL_READS=1: linearizable reads skip ReadIndex and may be stale (a test-only bug)")
	}
	if f.UnsafeLockGrant {
		out = append(out, "CAIRN_UNSAFE_LOCK_GRANT=1: lock waiters are granted without waiting for the head (a test-only bug)")
	}
	if f.UnsafeSkipProposalCheck {
		out = append(out, "CAIRN_UNSAFE_SKIP_PROPOSAL_CHECK=1: the leader appends proposals apply cannot take (a test-only bug)")
	}
	if f.WALFsyncDelay > 0 {
		out = append(out, fmt.Sprintf("CAIRN_FAILPOINT_WAL_FSYNC_DELAY=%s: every WAL fsync is delayed (a test failpoint)", f.WALFsyncDelay))
	}
	if f.WALFsyncDelayFile != "" {
		out = append(out, "CAIRN_FAILPOINT_WAL_FSYNC_DELAY_FILE="+f.WALFsyncDelayFile+": WAL fsyncs are delayed by the duration in this file (a test failpoint)")
	}
	return out
}

// loadFaults reads Faults from the environment (os.Environ's form).
func loadFaults(env []string) (Faults, error) {
	var f Faults
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if set, known := faultVars[k]; ok && known {
			if err := set(&f, v); err != nil {
				return Faults{}, fmt.Errorf("environment variable %s: %w", k, err)
			}
		}
	}
	return f, nil
}
