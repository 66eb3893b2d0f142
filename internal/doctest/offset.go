package doctest

import "fmt"

// Offset is the offset between a page's indexes and a server's, fixed by
// the first index the server answers (Check); a server's indexes are then
// the page's plus Off.
type Offset struct {
	Known bool
	Off   int64
}

// Check says whether got is the server's index for the page's want, or
// fixes the offset if it is the first.
func (o *Offset) Check(want, got uint64) error {
	if !o.Known {
		o.Known, o.Off = true, int64(got)-int64(want)
		return nil
	}
	if int64(got) != int64(want)+o.Off {
		return fmt.Errorf("index %d: expected %d (documented %d + offset %d)", got, int64(want)+o.Off, want, o.Off)
	}
	return nil
}

// Shift is the server's index for the page's n, which a command quotes.
func (o *Offset) Shift(n uint64) (uint64, error) {
	if !o.Known {
		return 0, fmt.Errorf("the command quotes index %d before any answer gave one", n)
	}
	v := int64(n) + o.Off
	if v < 0 {
		return 0, fmt.Errorf("index %d shifts to %d", n, v)
	}
	return uint64(v), nil
}
