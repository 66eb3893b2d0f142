package wal

import (
	"os"
	"time"
)

// SlowSync wraps fs so that every file sync first sleeps for delay: a
// failpoint for fault-injection tests (a disk that stalls), enabled in the
// cairn binary by CAIRN_FAILPOINT_WAL_FSYNC_DELAY. It only delays; every
// write is still made durable before it is acknowledged.
func SlowSync(fs FS, delay time.Duration) FS { return slowFS{FS: fs, delay: delay} }

type slowFS struct {
	FS
	delay time.Duration
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
	delay time.Duration
}

func (f slowFile) Sync() error {
	time.Sleep(f.delay)
	return f.File.Sync()
}
