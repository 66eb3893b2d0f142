package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// The lock and queue workloads use Cairn's server-side locks and queues
// (/v2/locks, /v2/queues; docs/api.md §14-§18), which etcd does not have.

// coordName is the name of lock or queue i: the prefix made a valid name
// (its path separators become '-'), then the kind and the number, e.g.
// "bench-lock-0".
func (r *runner) coordName(kind string, i int) string {
	var b strings.Builder
	for _, c := range strings.Trim(r.cfg.prefix, "/") {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	base := strings.TrimLeft(b.String(), "._-")
	if base == "" {
		base = "bench"
	}
	return fmt.Sprintf("%s-%s-%d", base, kind, i)
}

// lockOp is client c's request of the lock workload: one acquire and
// release cycle of its lock (client c uses lock c mod --locks), waiting
// in line when the lock is held.
func (r *runner) lockOp(ctx context.Context, c int) func() error {
	lock := r.endpoint(c) + "/v2/locks/" + r.coordName("lock", c%r.cfg.locks)
	owner := fmt.Sprintf("value=bench-client-%d", c)
	return func() error {
		b, err := do(ctx, r.client, http.MethodPost, lock+"?ttl=10&wait=true", owner, true)
		if err != nil {
			return err
		}
		var a struct {
			Token uint64 `json:"token"`
		}
		if err := json.Unmarshal(b, &a); err != nil || a.Token == 0 {
			return fmt.Errorf("POST %s: the answer %q has no token", lock, b)
		}
		_, err = do(ctx, r.client, http.MethodDelete, fmt.Sprintf("%s?token=%d", lock, a.Token), "", false)
		return err
	}
}

// queueOp is client c's request of the queue workload: one enqueue of a
// --value-size item to its queue (client c uses queue c mod --queues),
// then one dequeue from it. A client dequeues only after its own enqueue,
// so the queue is never empty when it does.
func (r *runner) queueOp(ctx context.Context, c int) func() error {
	q := r.endpoint(c) + "/v2/queues/" + r.coordName("queue", c%r.cfg.queues)
	return func() error {
		if _, err := do(ctx, r.client, http.MethodPost, q, r.body, false); err != nil {
			return err
		}
		_, err := do(ctx, r.client, http.MethodDelete, q, "", false)
		return err
	}
}
