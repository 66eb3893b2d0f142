package main

import "testing"

// A quiet member with garbage or free pages worth returning returns them;
// a busy one, or one with little to return, leaves the runtime alone.
func TestShouldTrim(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name                           string
		allocated, live, objects, free uint64
		want                           bool
	}{
		{"quiet, 60 MiB live, 55 MiB garbage", 100 << 10, 60 * mib, 115 * mib, 0, true},
		{"quiet, just collected, 40 MiB of free pages kept", 0, 60 * mib, 61 * mib, 40 * mib, true},
		{"busy", 30 * mib, 60 * mib, 115 * mib, 40 * mib, false},
		{"quiet, garbage and free pages under a quarter of live", 0, 60 * mib, 65 * mib, 5 * mib, false},
		{"quiet, small heap, under the floor", 0, 4 * mib, 8 * mib, 3 * mib, false},
		{"quiet, all returned", 0, 60 * mib, 60 * mib, 0, false},
		{"quiet, objects below live (swept since)", 0, 60 * mib, 50 * mib, 0, false},
	} {
		if got := shouldTrim(c.allocated, c.live, c.objects, c.free); got != c.want {
			t.Errorf("%s: shouldTrim = %v, want %v", c.name, got, c.want)
		}
	}
}
