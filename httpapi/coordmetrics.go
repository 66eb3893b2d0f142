package httpapi

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/store"
)

// coordCollector reports the locks and queues held in the local store,
// read at scrape time (serializable: this member's view). The figures are
// totals over every lock and queue: a label per name would be unbounded.
type coordCollector struct {
	be                                 Backend
	held, waiters, items, reserved, bl *prometheus.Desc
}

func newCoordCollector(be Backend) *coordCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &coordCollector{be: be,
		held:     d("cairn_locks_held", "Locks that have a holder."),
		waiters:  d("cairn_lock_waiters", "Callers queued behind lock holders."),
		items:    d("cairn_queue_items", "Items in all queues (reserved ones included)."),
		reserved: d("cairn_queue_reserved_items", "Queue items reserved by a consumer and not yet acknowledged."),
		bl:       d("cairn_queue_blocked_dequeuers", "Dequeuers waiting on an empty queue."),
	}
}

func (c *coordCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.held, c.waiters, c.items, c.reserved, c.bl} {
		ch <- d
	}
}

func (c *coordCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var held, waiters, items, reserved, blocked float64
	if e, err := c.be.Get(ctx, store.LocksDir, true, true); err == nil {
		for _, lock := range e.Node.Nodes {
			n := float64(len(lock.Nodes))
			if n > 0 {
				held++
				waiters += n - 1
			}
		}
	}
	if e, err := c.be.Get(ctx, store.QueuesDir, true, true); err == nil {
		for _, q := range e.Node.Nodes {
			for _, it := range q.Nodes {
				if !it.Dir {
					items++
					if it.Expiration != 0 {
						reserved++
					}
				}
			}
			// Hidden children (the waiters) are left out of listings;
			// read them directly.
			if w, err := c.be.Get(ctx, store.WaitersDir(q.Key), false, true); err == nil && strings.HasSuffix(w.Node.Key, "_waiters") {
				blocked += float64(len(w.Node.Nodes))
			}
		}
	}
	for _, m := range []struct {
		d *prometheus.Desc
		v float64
	}{{c.held, held}, {c.waiters, waiters}, {c.items, items}, {c.reserved, reserved}, {c.bl, blocked}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, m.v)
	}
}
