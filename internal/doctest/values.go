package doctest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Normaliser compares the values of an answer (as CompareJSON's value)
// with the documented ones where indexes, times and ttls vary between
// runs, following a page's convention:
//
//   - a number in one of the Indexes fields is an index: Check decides;
//   - ttl: a whole number of seconds between the documented one minus 5
//     and plus 1, and at least 1 (the answer may come later than the
//     documented one);
//   - expiration: any RFC 3339 UTC instant (ending in Z);
//   - a string for which Strings gives a pattern: the numbers the pattern
//     marks (see ReplaceNumbers) are indexes, Check decides, and the rest
//     of the text must be equal;
//   - everything else must be equal.
type Normaliser struct {
	Indexes []string
	Strings func(field string) *regexp.Regexp // nil: none
	Check   func(want, got uint64) error      // whether got is the server's index for the documented want
}

// Value compares documented w with answered g, held by field.
func (n Normaliser) Value(field string, w, g any) error {
	switch wv := w.(type) {
	case json.Number:
		gv, ok := g.(json.Number)
		if !ok {
			return fmt.Errorf("%v, documented %v", g, w)
		}
		switch {
		case slices.Contains(n.Indexes, field):
			wn, err1 := strconv.ParseUint(string(wv), 10, 64)
			gn, err2 := strconv.ParseUint(string(gv), 10, 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("%v, documented %v: not an index", g, w)
			}
			return n.Check(wn, gn)
		case field == "ttl":
			wn, err1 := strconv.ParseInt(string(wv), 10, 64)
			gn, err2 := strconv.ParseInt(string(gv), 10, 64)
			if err1 != nil || err2 != nil || gn < 1 || gn < wn-5 || gn > wn+1 {
				return fmt.Errorf("%v, documented %v (allowed: %d to %d, at least 1)", g, w, wn-5, wn+1)
			}
			return nil
		}
		if wv != gv {
			return fmt.Errorf("%v, documented %v", g, w)
		}
		return nil
	case string:
		gv, ok := g.(string)
		if !ok {
			return fmt.Errorf("%v, documented %q", g, w)
		}
		if field == "expiration" {
			if ts, err := time.Parse(time.RFC3339Nano, gv); err != nil || ts.Location() != time.UTC || !strings.HasSuffix(gv, "Z") {
				return fmt.Errorf("%q is not an RFC 3339 UTC instant", gv)
			}
			return nil
		}
		var re *regexp.Regexp
		if n.Strings != nil {
			re = n.Strings(field)
		}
		if re == nil {
			if wv != gv {
				return fmt.Errorf("%q, documented %q", gv, wv)
			}
			return nil
		}
		ws, wn := SplitNumbers(wv, re)
		gs, gn := SplitNumbers(gv, re)
		if ws != gs || len(wn) != len(gn) {
			return fmt.Errorf("%q, documented %q", gv, wv)
		}
		for i := range wn {
			if err := n.Check(wn[i], gn[i]); err != nil {
				return fmt.Errorf("%q, documented %q: %v", gv, wv, err)
			}
		}
		return nil
	default: // bool, null
		if w != g {
			return fmt.Errorf("%v, documented %v", g, w)
		}
		return nil
	}
}
