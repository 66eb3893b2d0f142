package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// result is what a run measured.
type result struct {
	workload string
	clients  int
	watchers int // watch only
	requests int64
	errors   int64
	firstErr string
	elapsed  time.Duration
	lat      summary
	events   int64 // watch only: events delivered
	expected int64 // watch only: watchers × acknowledged writes
}

// summary describes a set of latencies.
type summary struct {
	n                                 int
	mean, p50, p90, p99, p999, maxLat time.Duration
}

// summarize sorts samples in place and computes their exact percentiles.
func summarize(samples []time.Duration) summary {
	slices.Sort(samples)
	s := summary{n: len(samples)}
	if len(samples) == 0 {
		return s
	}
	var sum float64
	for _, d := range samples {
		sum += float64(d)
	}
	s.mean = time.Duration(sum / float64(len(samples)))
	s.p50 = percentile(samples, 50)
	s.p90 = percentile(samples, 90)
	s.p99 = percentile(samples, 99)
	s.p999 = percentile(samples, 99.9)
	s.maxLat = samples[len(samples)-1]
	return s
}

// percentile is the nearest-rank p-th percentile of sorted: the smallest
// sample that at least p% of the samples do not exceed. 0 when empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// Rounded first so that 99.9% of 1000 is rank 999, not 1000 through
	// floating-point error.
	rank := int(math.Ceil(math.Round(p/100*float64(n)*1e6) / 1e6))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// throughput is requests per second over the run.
func (r *result) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// machineLine is the report as key=value pairs, one line.
func (r *result) machineLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "workload=%s clients=%d", r.workload, r.clients)
	if r.workload == workloadWatch {
		fmt.Fprintf(&b, " watchers=%d", r.watchers)
	}
	fmt.Fprintf(&b, " requests=%d errors=%d duration=%.2fs throughput=%.1f/s", r.requests, r.errors, r.elapsed.Seconds(), r.throughput())
	if r.workload == workloadWatch {
		fmt.Fprintf(&b, " events=%d expected=%d", r.events, r.expected)
	}
	fmt.Fprintf(&b, " mean=%s p50=%s p90=%s p99=%s p999=%s max=%s",
		ms(r.lat.mean), ms(r.lat.p50), ms(r.lat.p90), ms(r.lat.p99), ms(r.lat.p999), ms(r.lat.maxLat))
	return b.String()
}

// write prints the report: a line for people, the first error if any,
// then the machine-readable line.
func (r *result) write(out io.Writer) {
	l := r.lat
	if r.workload == workloadWatch {
		fmt.Fprintf(out, "watch: %d writes (%.1f/s), %d errors, %d of %d events delivered to %d watchers in %.2fs; delivery latency p50 %s, p90 %s, p99 %s, p99.9 %s, max %s\n",
			r.requests, r.throughput(), r.errors, r.events, r.expected, r.watchers, r.elapsed.Seconds(),
			ms(l.p50), ms(l.p90), ms(l.p99), ms(l.p999), ms(l.maxLat))
	} else {
		fmt.Fprintf(out, "%s: %d requests, %d errors, %d clients, %.2fs, %.1f requests/s; latency mean %s, p50 %s, p90 %s, p99 %s, p99.9 %s, max %s\n",
			r.workload, r.requests, r.errors, r.clients, r.elapsed.Seconds(), r.throughput(),
			ms(l.mean), ms(l.p50), ms(l.p90), ms(l.p99), ms(l.p999), ms(l.maxLat))
	}
	if r.firstErr != "" {
		fmt.Fprintf(out, "first error: %s\n", r.firstErr)
	}
	fmt.Fprintln(out, r.machineLine())
}
