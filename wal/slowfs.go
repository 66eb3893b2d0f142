package wal

import (
	"os"
	"strings"
	"time"
)

// SlowSync wraps fs so that every file sync first sleeps for delay: a
// failpoint for fault-injection tests (a disk that stalls), enabled in the
// cairn binary by CAIRN_FAILPOINT_WAL_FSYNC_DELAY. It only delays; every
// write is still made durable before it is acknowledged.
func SlowSync(fs FS, delay time.Duration) FS {
	return slowFS{FS: fs, delay: func() time.Duration { return delay }}
}

// SlowSyncFromFile is SlowSync with the delay read, at every sync, from a
// file holding a Go duration ("250ms"); a missing or empty file means no
// delay. A test turns the stall on and off at runtime by writing the file
// (CAIRN_FAILPOINT_WAL_FSYNC_DELAY_FILE in the cairn binary).
func SlowSyncFromFile(fs FS, path string) FS {
	return slowFS{FS: fs, delay: func() time.Duration {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		d, err := time.ParseDuration(strings.TrimSpace(string(b)))
		if err != nil {
			return 0
		}
		return d
	}}
}

type slowFS struct {
	FS
	delay func() time.Duration
}

func (s slowFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := s.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return slowFile{File: f, delay: s.delay}, nil
}

type slowFile struct {
	File
	delay func() time.Duration
}

func (f slowFile) Sync() error {
	if d := f.delay(); d > 0 {
		time.Sleep(d)
	}
	return f.File.Sync()
}
