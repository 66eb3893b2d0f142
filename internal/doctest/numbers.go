package doctest

import (
	"regexp"
	"strconv"
	"strings"
)

// ReplaceNumbers replaces the numbers re marks in s, its submatches or,
// for a match without any, the whole match, by what f returns for each
// (given its digits). The first error of f is returned with the result.
func ReplaceNumbers(s string, re *regexp.Regexp, f func(digits string) (string, error)) (string, error) {
	var b strings.Builder
	var err error
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
		var groups [][2]int
		for g := 1; 2*g+1 < len(m); g++ {
			if m[2*g] >= 0 {
				groups = append(groups, [2]int{m[2*g], m[2*g+1]})
			}
		}
		if len(groups) == 0 { // no groups: the whole match
			groups = [][2]int{{m[0], m[1]}}
		}
		for _, gr := range groups {
			b.WriteString(s[last:gr[0]])
			r, e := f(s[gr[0]:gr[1]])
			if e != nil && err == nil {
				err = e
			}
			b.WriteString(r)
			last = gr[1]
		}
	}
	b.WriteString(s[last:])
	return b.String(), err
}

// SplitNumbers returns s with the numbers re marks (as for ReplaceNumbers)
// replaced by "#", and the numbers in order (0 for one that does not fit
// a uint64).
func SplitNumbers(s string, re *regexp.Regexp) (string, []uint64) {
	var nums []uint64
	out, _ := ReplaceNumbers(s, re, func(digits string) (string, error) {
		n, _ := strconv.ParseUint(digits, 10, 64)
		nums = append(nums, n)
		return "#", nil
	})
	return out, nums
}
