package progress

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		s    State
		want string
	}{
		{State{Step: "saving", Name: "b.db", Done: 13107200, Total: 41943040, Counting: true, Keys: -1, Elapsed: 2 * time.Second},
			"saving b.db: 12.5 MiB of 40.0 MiB (31%), 6.2 MiB/s"},
		{State{Step: "saving", Name: "b.db", Done: 1536, Counting: true, Keys: -1, Elapsed: time.Second},
			"saving b.db: 1.5 KiB, 1.5 KiB/s"},
		{State{Step: "restoring", Name: "b.db", Done: 100, Total: 100, Counting: true, Keys: 7, Elapsed: 0},
			"restoring b.db: 100 B of 100 B (100%), 7 keys"},
		{State{Step: "checking", Name: "b.db", Total: 3 << 30, Keys: 120000},
			"checking b.db: 3.0 GiB, 120000 keys ..."},
		{State{Step: "checking", Name: "b.db", Keys: -1}, "checking b.db:  ..."},
	} {
		if got := Format(tc.s); got != tc.want {
			t.Errorf("Format(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
	if got, want := FormatDone("saved", "b.db", 40<<20, 120000, 4900*time.Millisecond), "saved b.db: 40.0 MiB, 120000 keys in 4.9s (8.2 MiB/s)"; got != want {
		t.Errorf("FormatDone = %q, want %q", got, want)
	}
	if got, want := FormatDone("saved", "b.db", 10, -1, time.Second), "saved b.db: 10 B in 1s (10 B/s)"; got != want {
		t.Errorf("FormatDone = %q, want %q", got, want)
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 40: "5.0 TiB", 1 << 50: "1024.0 TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// clock is a fake clock that the test moves.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func lines(out string) []string      { return strings.Split(out, "\r")[1:] }
func last(out string) string         { l := lines(out); return l[len(l)-1] }
func newClock() *clock               { return &clock{t: time.Unix(1000, 0)} }
func meter(w io.Writer, on bool) (*Meter, *clock) {
	c := newClock()
	return New(w, on, "b.db", c.now), c
}

// On a terminal: one line, rewritten in place (a carriage return before
// each version, blanks over the rest of a longer one), no more often than
// Interval while bytes flow, at once at each new step, ended by Done with
// a newline.
func TestMeterOnTerminal(t *testing.T) {
	var out bytes.Buffer
	m, c := meter(&out, true)
	r := m.Reader("saving", 4000, strings.NewReader(strings.Repeat("x", 4000)))
	buf := make([]byte, 100)
	for {
		c.add(10 * time.Millisecond) // 40 reads over 400 ms
		if _, err := r.Read(buf); err == io.EOF {
			break
		}
	}
	got := lines(out.String())
	// The step's first line, then one each 250 ms: at 250 ms; the reads
	// end at 400 ms, before the next.
	if len(got) != 2 {
		t.Fatalf("%d lines while reading, want 2: %q", len(got), got)
	}
	if !strings.HasPrefix(got[0], "saving b.db: 0 B of 3.9 KiB (0%)") || !strings.HasPrefix(got[1], "saving b.db: 2.4 KiB of 3.9 KiB (62%), ") {
		t.Fatalf("lines %q", got)
	}
	m.Step("checking", 4000)
	m.Keys(12)
	c.add(time.Second)
	m.Done("saved")
	s := out.String()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("the output does not end with its one newline: %q", s)
	}
	if want := "saved b.db: 3.9 KiB, 12 keys in 1.4s (2.8 KiB/s)"; strings.TrimRight(last(s), " \n") != want {
		t.Fatalf("last line %q, want %q", last(s), want)
	}
	// A shorter line blanks out the rest of the longer one before it.
	all := lines(s)
	for i := 1; i < len(all); i++ {
		if n, before := len(strings.TrimRight(all[i], "\n")), len(strings.TrimRight(all[i-1], " ")); n < before {
			t.Fatalf("line %q (%d) shorter than the one it replaces (%d): not padded", all[i], n, before)
		}
	}
	m.End() // after Done: nothing more
	if out.String() != s {
		t.Fatalf("End after Done wrote %q", strings.TrimPrefix(out.String(), s))
	}
}

// A failure leaves the line open; End closes it so that the error starts
// on a line of its own, and does nothing when no line was written.
func TestMeterEndAfterFailure(t *testing.T) {
	var out bytes.Buffer
	m, _ := meter(&out, true)
	m.End()
	if out.Len() != 0 {
		t.Fatalf("End with no line wrote %q", out.String())
	}
	_, _ = io.ReadAll(m.Reader("saving", 0, strings.NewReader("0123456789")))
	m.End()
	if s := out.String(); !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("output %q", s)
	}
}

// Not a terminal: nothing at all, whatever happens; the bytes still go
// through the reader unchanged.
func TestMeterQuietOffTerminal(t *testing.T) {
	var out bytes.Buffer
	m, c := meter(&out, false)
	b, err := io.ReadAll(m.Reader("saving", 10, strings.NewReader("0123456789")))
	if err != nil || string(b) != "0123456789" {
		t.Fatalf("read %q %v", b, err)
	}
	c.add(time.Hour)
	m.add(5)
	m.Keys(3)
	m.Step("checking", 10)
	m.Done("saved")
	m.End()
	if out.Len() != 0 {
		t.Fatalf("wrote %q off a terminal", out.String())
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, g := range []*os.File{f, r, w} {
		if IsTerminal(g) {
			t.Errorf("%s is taken for a terminal", g.Name())
		}
	}
	// A pseudo-terminal's master side has terminal attributes.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skip("no /dev/ptmx:", err)
	}
	defer ptmx.Close()
	if !IsTerminal(ptmx) {
		t.Error("/dev/ptmx is not taken for a terminal")
	}
}
