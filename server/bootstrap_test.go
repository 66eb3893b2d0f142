package server

import (
	"cmp"
	"slices"
	"testing"
)

// A member's ID depends on its peer URL and the token only, and the
// cluster's on the set of its first members: every member of a new
// cluster derives the same IDs, whatever the order of --initial-cluster.
func TestIdentities(t *testing.T) {
	a := map[string]string{"a": "http://127.0.0.1:1", "b": "http://127.0.0.1:2", "c": "http://127.0.0.1:3"}
	idA, cid, list := Identities(a, a["a"], "tok")
	idB, cidB, listB := Identities(a, a["b"], "tok")
	if idA == idB || cid != cidB || !slices.EqualFunc(list, listB, func(x, y MemberInfo) bool { return x.ID == y.ID }) {
		t.Fatalf("members disagree: %x/%x %x/%x", idA, idB, cid, cidB)
	}
	if !slices.IsSortedFunc(list, func(x, y MemberInfo) int { return cmp.Compare(x.ID, y.ID) }) {
		t.Fatalf("the initial list is not sorted by ID: %v", list)
	}
	if _, other, _ := Identities(a, a["a"], "other-token"); other == cid {
		t.Fatal("another token gave the same cluster ID")
	}
	if MemberIDOf([]string{a["a"]}, "tok") != idA {
		t.Fatal("MemberIDOf and Identities disagree")
	}
}
