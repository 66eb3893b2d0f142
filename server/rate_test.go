package server

import (
	"math"
	"sync"
	"testing"
	"time"
)

func TestRateWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	near := func(got, want float64) bool { return math.Abs(got-want) <= want*1e-9 }
	var w rateWindow
	if m, b := w.rate(t0); m != 0 || b != 0 {
		t.Fatalf("empty: %v %v", m, b)
	}
	w.add(t0, 100)
	if m, b := w.rate(t0); m != 0 || b != 0 {
		t.Fatalf("one sample: %v %v", m, b)
	}
	w.add(t0, 100) // the same instant: no span to divide by
	if m, b := w.rate(t0); m != 0 || b != 0 {
		t.Fatalf("one instant: %v %v", m, b)
	}

	// 100 messages a second of 1000 bytes.
	w = rateWindow{}
	at := t0
	for range 50 {
		w.add(at, 1000)
		at = at.Add(10 * time.Millisecond)
	}
	last := at.Add(-10 * time.Millisecond)
	if m, b := w.rate(last); !near(m, 100) || !near(b, 100000) {
		t.Fatalf("steady: %v msg/s %v B/s, want 100 and 100000", m, b)
	}
	if m, b := w.rate(last.Add(rateMaxAge)); !near(m, 100) || !near(b, 100000) {
		t.Fatalf("a second later: %v %v", m, b)
	}
	if m, b := w.rate(last.Add(rateMaxAge + time.Millisecond)); m != 0 || b != 0 {
		t.Fatalf("after the traffic stopped: %v %v", m, b)
	}

	// Only the latest rateSamples count: 100 slow ones, then 200 at
	// 1000 a second of 10 bytes.
	w = rateWindow{}
	at = t0
	for range 100 {
		w.add(at, 5)
		at = at.Add(100 * time.Millisecond)
	}
	for range rateSamples {
		w.add(at, 10)
		at = at.Add(time.Millisecond)
	}
	last = at.Add(-time.Millisecond)
	if m, b := w.rate(last); !near(m, 1000) || !near(b, 10000) {
		t.Fatalf("window: %v msg/s %v B/s, want 1000 and 10000", m, b)
	}

	// A pause longer than rateMaxAge starts a new window: the rate after
	// it is that of the new traffic, not diluted by the pause.
	at = last.Add(5 * time.Second)
	for range 3 {
		w.add(at, 1)
		at = at.Add(500 * time.Millisecond)
	}
	if m, b := w.rate(at.Add(-500 * time.Millisecond)); !near(m, 2) || !near(b, 2) {
		t.Fatalf("after a pause: %v %v, want 2 and 2", m, b)
	}
}

// The run loop adds, transport goroutines add, readers read.
func TestRateWindowConcurrent(t *testing.T) {
	var w rateWindow
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				w.add(time.Now(), 10)
				w.rate(time.Now())
			}
		})
	}
	wg.Wait()
	if w.n != rateSamples || w.bytes != 10*rateSamples {
		t.Fatalf("kept %d samples, %d bytes", w.n, w.bytes)
	}
}
