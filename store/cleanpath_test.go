package store

import "testing"

// FuzzIsCleanPath: isCleanPath(p) holds exactly when p is not empty and
// CleanPath leaves it as it is, for a string and for its bytes.
func FuzzIsCleanPath(f *testing.F) {
	for _, s := range []string{"", "/", "//", "a", "/a", "/a/", "//a", "/a//b", "/.", "/..", "/a/.", "/a/..", "/./a", "/../a",
		"/...", "/.a", "/a.", "/..a/a..", "/a/b/c", "/x y/\x00/é", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		want := p != "" && CleanPath(p) == p
		if got := isCleanPath(p); got != want {
			t.Fatalf("isCleanPath(%q) = %v, CleanPath gives %q", p, got, CleanPath(p))
		}
		if got := isCleanPath([]byte(p)); got != want {
			t.Fatalf("isCleanPath([]byte(%q)) = %v, CleanPath gives %q", p, got, CleanPath(p))
		}
	})
}
