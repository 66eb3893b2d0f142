package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Interval is the least time between two lines.
const Interval = 250 * time.Millisecond

// State is what a line shows.
type State struct {
	Step, Name string // "saving", "backup.db"
	// Done is the bytes counted in this step so far, Total its size (0:
	// unknown); Counting says the step counts bytes as they go through.
	Done, Total int64
	Counting    bool
	Keys        int // -1: not known yet
	Elapsed     time.Duration
}

// Format is the line for s: for a step that counts bytes, the bytes
// done (of the total, when known), the keys when known and the rate; for
// one that does not, its size and the keys, and "..." while it runs:
//
//	saving backup.db: 12.5 MiB of 40.0 MiB (31%), 8.1 MiB/s
//	checking backup.db: 40.0 MiB, 120000 keys ...
func Format(s State) string {
	var parts []string
	switch {
	case s.Counting && s.Total > 0:
		pct := min(100, s.Done*100/s.Total)
		parts = append(parts, fmt.Sprintf("%s of %s (%d%%)", Bytes(s.Done), Bytes(s.Total), pct))
	case s.Counting:
		parts = append(parts, Bytes(s.Done))
	case s.Total > 0:
		parts = append(parts, Bytes(s.Total))
	}
	if s.Keys >= 0 {
		parts = append(parts, fmt.Sprintf("%d keys", s.Keys))
	}
	if !s.Counting {
		return s.Step + " " + s.Name + ": " + strings.Join(parts, ", ") + " ..."
	}
	if s.Elapsed > 0 && s.Done > 0 {
		parts = append(parts, Rate(s.Done, s.Elapsed))
	}
	return s.Step + " " + s.Name + ": " + strings.Join(parts, ", ")
}

// FormatDone is the last line of an operation that moved n bytes in
// elapsed:
//
//	saved backup.db: 40.0 MiB, 120000 keys in 4.9s (8.1 MiB/s)
func FormatDone(step, name string, n int64, keys int, elapsed time.Duration) string {
	line := step + " " + name + ": " + Bytes(n)
	if keys >= 0 {
		line += fmt.Sprintf(", %d keys", keys)
	}
	return line + " in " + elapsed.Round(100*time.Millisecond).String() + " (" + Rate(n, elapsed) + ")"
}

// Rate is n bytes over d, per second ("-" for no time at all).
func Rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "- B/s"
	}
	return Bytes(int64(float64(n)/d.Seconds())) + "/s"
}

// Bytes is n in B, KiB, MiB or GiB, with one decimal above bytes.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, []string{"KiB", "MiB", "GiB", "TiB"}[i])
}

// Meter writes the progress of one operation on one terminal line. All
// of its methods may be called from several goroutines; on a Meter that
// is not on a terminal they only count.
type Meter struct {
	w    io.Writer
	on   bool
	name string
	now  func() time.Time

	mu        sync.Mutex
	step      string
	done      int64 // in this step
	total     int64
	counting  bool
	keys      int
	copied    int64     // over every step, for the last line
	start     time.Time // of the operation
	stepStart time.Time
	shown     time.Time // when the last line was written
	width     int       // of the line on screen; 0: no line open
}

// New is a Meter for the operation on name writing to w, which is a
// terminal when terminal is true (IsTerminal); otherwise it writes
// nothing. now is the clock (nil: time.Now).
func New(w io.Writer, terminal bool, name string, now func() time.Time) *Meter {
	if now == nil {
		now = time.Now
	}
	t := now()
	return &Meter{w: w, on: terminal, name: name, now: now, keys: -1, start: t, stepStart: t}
}

// Step begins a step that counts no bytes (a check), on total bytes (0:
// unknown), and shows it at once.
func (m *Meter) Step(step string, total int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.begin(step, total, false)
}

// Reader begins a step over the bytes read through the reader it
// returns, total of them (0: unknown), and shows it at once.
func (m *Meter) Reader(step string, total int64, r io.Reader) io.Reader {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.begin(step, total, true)
	return &reader{r: r, m: m}
}

func (m *Meter) begin(step string, total int64, counting bool) {
	m.step, m.total, m.done, m.counting, m.stepStart = step, total, 0, counting, m.now()
	m.show(true)
}

// Keys records the number of keys, shown from the next line on.
func (m *Meter) Keys(n int) {
	m.mu.Lock()
	m.keys = n
	m.mu.Unlock()
}

// add counts n bytes of the current step, and shows the line if
// Interval has passed since the last one.
func (m *Meter) add(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done += int64(n)
	m.copied += int64(n)
	m.show(false)
}

// Done shows the last line (FormatDone: the bytes counted over every
// step, the keys, the time and rate of the whole operation) and ends it.
func (m *Meter) Done(step string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.on {
		return
	}
	m.write(FormatDone(step, m.name, m.copied, m.keys, m.now().Sub(m.start)))
	m.end()
}

// End ends the line on screen, if one is open (after a failure, so that
// what follows starts on a line of its own). It may be called after Done.
func (m *Meter) End() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.end()
}

func (m *Meter) end() {
	if m.width > 0 {
		_, _ = io.WriteString(m.w, "\n")
		m.width = 0
	}
}

// show writes the current line if forced or if Interval has passed.
func (m *Meter) show(force bool) {
	if !m.on || m.step == "" {
		return
	}
	now := m.now()
	if !force && now.Sub(m.shown) < Interval {
		return
	}
	m.shown = now
	m.write(Format(State{Step: m.step, Name: m.name, Done: m.done, Total: m.total, Counting: m.counting,
		Keys: m.keys, Elapsed: now.Sub(m.stepStart)}))
}

// write puts line over the one on screen: a carriage return, the line,
// and blanks over what is left of a longer one.
func (m *Meter) write(line string) {
	pad := ""
	if n := len(line); n < m.width {
		pad = strings.Repeat(" ", m.width-n)
	}
	_, _ = io.WriteString(m.w, "\r"+line+pad)
	m.width = len(line)
}

type reader struct {
	r io.Reader
	m *Meter
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.m.add(n)
	}
	return n, err
}
