package httpapi

import (
	"path"
	"testing"

	"github.com/cairnkv/cairn/store"
)

// Every path of up to 7 bytes made of '/', '.' and 'a': cleanURLPath and
// keyPath, which skip the cleaning of a path that is clean already, give
// what path.Clean gives.
func TestCleanPathsAsPathClean(t *testing.T) {
	paths := []string{""}
	for n := 1; n <= 7; n++ {
		for _, p := range paths {
			if len(p) == n-1 {
				for _, c := range "/.a" {
					paths = append(paths, p+string(c))
				}
			}
		}
	}
	clean := 0
	for _, p := range paths {
		want := "/"
		if p != "" {
			want = path.Clean("/" + p)
			if p[len(p)-1] == '/' && want != "/" {
				want += "/"
			}
		}
		if got := cleanURLPath(p); got != want {
			t.Errorf("cleanURLPath(%q) = %q, want %q", p, got, want)
		}
		if isCleanURLPath(p) != (p == want) {
			t.Errorf("isCleanURLPath(%q) = %v, but path.Clean gives %q", p, isCleanURLPath(p), want)
		}
		if p == want {
			clean++
		}
		if got, want := keyPath(keysPrefix+p), store.CleanPath(p); got != want {
			t.Errorf("keyPath(%q) = %q, want %q", keysPrefix+p, got, want)
		}
	}
	if clean < 50 {
		t.Fatalf("only %d of %d paths were clean: the fast path is barely tested", clean, len(paths))
	}
}

func TestCleanPathsDoNotCopyACleanPath(t *testing.T) {
	for _, p := range []string{"/v2/keys/a/b", "/v2/keys/dir/", "/v2/keys"} {
		if n := testing.AllocsPerRun(100, func() { _ = cleanURLPath(p); _ = keyPath(p) }); n != 0 {
			t.Errorf("%q: %v allocations", p, n)
		}
	}
}
