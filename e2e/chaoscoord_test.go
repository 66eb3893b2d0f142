package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// Locks and queues in the fault mix: the workloads and checkers of
// coord_test.go, driven through the members the clients know
// (/v2/members), while the schedule injects faults.
//
//   - Lockers cycle on one lock: acquire (waiting), a write of
//     chLockDir/register fenced with the token, release, and a write
//     fenced with the released token that must be refused. coCheckLocks
//     checks mutual exclusion (tokens unique; holders whose release
//     answered 200 have disjoint real-time intervals, in token order; no
//     holder's fenced write refused while its key stood) and fencing (the
//     register's history in token order; stale tokens refused).
//   - Producers enqueue; blocking dequeuers and reservers (which
//     acknowledge, or drop the item as if they crashed) consume; after the
//     run the queue is drained. coCheckQueue checks that every
//     acknowledged item was delivered once (but for items handed to
//     dequeuers whose answer was lost, at most one per such dequeue), that
//     nothing was delivered twice or came from nowhere, and FIFO order.
//
// Both are compared with the key history the cluster itself keeps, read
// after the run from the event history of a member.

// chLockDir holds the lock workload's register; chQueueName is the queue.
const (
	chLockDir   = "/chaos-lock"
	chLockName  = "chaos"
	chQueueName = "chaos"
)

// chCoord runs the lock and queue workloads of a chaos run.
type chCoord struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	lock   *coLockRun
	queue  *coQueueRun
	// what was started
	lockers, producers, dequeuers, reservers int
}

// chCoordCheck is what the lock and queue checks found.
type chCoordCheck struct {
	lock         coLockReport
	queue        coQueueReport
	lockChecked  bool
	queueChecked bool
	// violations of each workload: the lock's coverage findings are not
	// counted (they say the run exercised too little, not that Cairn is
	// wrong; chRun fails the test for them).
	lockViolations, queueViolations int
	coverage                        []coViolation
}

// chStartCoord starts the lockers and the queue's clients against the
// members members returns; their requests (and finish's) carry the
// credentials ctx carries.
func chStartCoord(t *testing.T, ctx context.Context, lockers, producers int, members func() []*chMember) *chCoord {
	urls := func() []string {
		ms := members()
		out := make([]string, 0, len(ms))
		for _, m := range ms {
			out = append(out, m.client)
		}
		return out
	}
	ctx, cancel := context.WithCancel(ctx)
	k := &chCoord{t: t, ctx: ctx, cancel: cancel, lockers: lockers, producers: producers}
	if producers > 0 {
		k.dequeuers, k.reservers = producers, 1
	}
	k.lock = &coLockRun{t: t, urls: urls, lock: chLockName, register: chLockDir + "/register", acq5xx: map[string]int{}}
	k.queue = &coQueueRun{t: t, urls: urls, queue: chQueueName, acked: map[string]uint64{}, enqUnknown: map[string]bool{},
		enqRefused: map[string]bool{}, ackUnknown: map[string]bool{}}
	for id := range lockers {
		k.lock.wg.Add(1)
		go k.lock.client(ctx, id)
	}
	for p := range k.producers {
		k.queue.wgP.Add(1)
		go k.queue.producer(ctx, p)
	}
	for d := range k.dequeuers {
		k.queue.wgC.Add(1)
		go k.queue.dequeuer(ctx, d)
	}
	for r := range k.reservers {
		k.queue.wgC.Add(1)
		go k.queue.reserver(ctx, r)
	}
	return k
}

// stop ends every client at once (the test is over).
func (k *chCoord) stop() {
	k.lock.stop.Store(true)
	k.queue.stopP.Store(true)
	k.queue.stopC.Store(true)
	k.cancel()
	k.lock.wg.Wait()
	k.queue.wgP.Wait()
	k.queue.wgC.Wait()
}

// finish lets the lockers end their cycles and the queue drain (on the
// healed cluster), marks the end of both histories, reads them from c
// and checks the runs. Errors are what kept a check from being made.
func (k *chCoord) finish(c *chCluster, within time.Duration) (chCoordCheck, []error) {
	var out chCoordCheck
	var errs []error
	hc := coClient(15 * time.Second)
	defer hc.CloseIdleConnections()

	if k.lockers > 0 {
		k.lock.stop.Store(true)
		stopped := make(chan struct{})
		go func() { k.lock.wg.Wait(); close(stopped) }()
		select {
		case <-stopped:
			end, err := chMark(k.ctx, hc, k.lock.urls(), k.lock.register, "end")
			var events []coResp
			if err == nil {
				events, err = chHistoryUntil(c, chLockDir, end, within)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("the lock run cannot be checked: %w", err))
				break
			}
			out.lock, out.lockChecked = coCheckLocks(k.lock, events), true
			for _, v := range out.lock.violations {
				if v.kind == coCoverage {
					out.coverage = append(out.coverage, v)
				} else {
					out.lockViolations++
				}
			}
		case <-time.After(within):
			errs = append(errs, fmt.Errorf("the lockers did not finish their cycles within %v", within))
		}
	}

	if k.producers > 0 {
		end, err := coFinishQueue(k.ctx, k.queue, within)
		var items, waiters []coResp
		dir := "/_cairn/queues/" + chQueueName
		if err == nil {
			items, err = chHistoryUntil(c, dir, end+1, within)
		}
		if err == nil {
			waiters, err = chHistoryUntil(c, dir+"/_waiters", end+1, within)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("the queue run cannot be checked: %w", err))
		} else {
			out.queue, out.queueChecked = coCheckQueue(k.queue, items, waiters, end), true
			out.queueViolations = len(out.queue.violations)
		}
	}
	return out, errs
}

// chMark writes value to key through one of urls and returns the index
// of the write.
func chMark(ctx context.Context, hc *http.Client, urls []string, key, value string) (uint64, error) {
	m := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, _ := coRetry(ctx, hc, urls, &m, http.MethodPut, "/v2/keys"+key, url.Values{"value": {value}}, len(urls))
		if (res.code == http.StatusOK || res.code == http.StatusCreated) && res.r.Node != nil {
			return res.r.Node.ModifiedIndex, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("writing %s: %s", key, res)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// chHistoryUntil reads every change under dir (recursive; as full
// events, with their previous nodes) from the event history of a member
// that answers, from index 1 to the first change at or after until,
// which must come.
func chHistoryUntil(c *chCluster, dir string, until uint64, within time.Duration) ([]coResp, error) {
	return chFromAny(c, within, func(m *chMember, deadline time.Time) ([]coResp, error) {
		return chHistoryFrom(c.asUser(), m, dir, until, deadline)
	})
}

func chHistoryFrom(ctx context.Context, m *chMember, dir string, until uint64, deadline time.Time) ([]coResp, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	var events []coResp
	for next := uint64(1); ; {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("reading the event history of %s: still at index %d of %d", dir, next, until)
		}
		q := url.Values{"wait": {"true"}, "recursive": {"true"}, "waitIndex": {strconv.FormatUint(next, 10)}}
		resp, err := chGet(ctx, hc, chDirURL(m, dir)+"?"+q.Encode())
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		var ev coResp
		if err := json.Unmarshal(body, &ev); err != nil || resp.StatusCode != http.StatusOK || ev.Node == nil || ev.Node.ModifiedIndex < next {
			if ev.ErrorCode == 401 {
				return nil, fmt.Errorf("waitIndex %d: %w: %s", next, errChCleared, ev.Cause)
			}
			return nil, fmt.Errorf("waitIndex %d: %d %.300s", next, resp.StatusCode, body)
		}
		events = append(events, ev)
		if ev.Node.ModifiedIndex >= until {
			return events, nil
		}
		next = ev.Node.ModifiedIndex + 1
	}
}

// summary is the part of the run's summary line about locks and queues.
func (k *chCoord) summary(x chCoordCheck) string {
	lk, qu := "unchecked", "unchecked"
	if x.lockChecked {
		lk = "ok"
		if x.lockViolations > 0 {
			lk = fmt.Sprintf("BAD(%d)", x.lockViolations)
		}
	}
	if x.queueChecked {
		qu = "ok"
		if x.queueViolations > 0 {
			qu = fmt.Sprintf("BAD(%d)", x.queueViolations)
		}
	}
	k.lock.mu.Lock()
	grants := len(k.lock.grants)
	k.lock.mu.Unlock()
	acked, delivered := k.queue.counts()
	return fmt.Sprintf("grants=%d %s items=%d/%d %s", grants, lk, delivered, acked, qu)
}

// evidence is what a run with a violation keeps of the lock and queue
// runs (as text: the runs' records are not JSON types).
func (k *chCoord) evidence(x chCoordCheck) map[string]any {
	k.lock.mu.Lock()
	var grants []string
	for _, g := range k.lock.grants {
		grants = append(grants, fmt.Sprintf("%+v", *g))
	}
	k.lock.mu.Unlock()
	var lv []string
	for _, v := range x.lock.violations {
		lv = append(lv, v.String())
	}
	k.queue.mu.Lock()
	defer k.queue.mu.Unlock()
	return map[string]any{
		"locks.json": map[string]any{"grants": grants, "violations": lv, "summary": x.lock.summary},
		"queue.json": map[string]any{"acked": k.queue.acked, "dequeued": fmt.Sprintf("%+v", k.queue.dequeued),
			"reserved": fmt.Sprintf("%+v", k.queue.ackedRes), "violations": x.queue.violations, "summary": x.queue.summary},
	}
}
