package httpapi_test

import (
	"fmt"
	"strings"
)

// Headers compared by value (after normalisation) and by presence only:
// cluster ids and raft positions are naturally different numbers.
// X-Etcd-Index is compared relative to the start index.
var (
	presenceHeaders = []string{"X-Etcd-Cluster-Id", "X-Raft-Index", "X-Raft-Term"}
	valueHeaders    = []string{"Content-Type", "Allow", "Location", "X-Content-Type-Options",
		"Access-Control-Allow-Headers", "Access-Control-Allow-Methods", "Access-Control-Allow-Origin"}
)

// respView renders a response in comparable form, one line per compared item.
func respView(w wireResponse, nz normaliser, body []bodyValue) string {
	var b strings.Builder
	if w.err != nil && w.status == 0 {
		if w.timedOut {
			return "no response within the deadline\n"
		}
		return fmt.Sprintf("no response: %v\n", w.err)
	}
	fmt.Fprintf(&b, "status %d\n", w.status)
	for _, h := range valueHeaders {
		if v, ok := w.header[h]; ok {
			fmt.Fprintf(&b, "%s: %s\n", h, nz.inOrder(strings.Join(v, ", ")))
		}
	}
	if v, ok := w.header["X-Etcd-Index"]; ok {
		fmt.Fprintf(&b, "X-Etcd-Index: %s (relative)\n", nz.relIndex(strings.Join(v, ", ")))
	}
	for _, h := range presenceHeaders {
		if _, ok := w.header[h]; ok {
			fmt.Fprintf(&b, "%s: (present)\n", h)
		}
	}
	fmt.Fprintf(&b, "body %q\n", renderBody(body))
	// Other read errors are not shown: a server that refuses a request
	// line closes the connection at once, and the reset may overtake the
	// end of the body. A truncated body shows in the body itself.
	if w.timedOut {
		b.WriteString("(body still open at the deadline)\n")
	}
	return b.String()
}

// compareResponses normalises both responses and returns their views;
// they agree when the views are equal.
func compareResponses(e, c wireResponse, ebase, cbase uint64, sorted bool) (ev, cv string) {
	en := normaliser{base: ebase, sorted: sorted}
	cn := normaliser{base: cbase, sorted: sorted}
	eb, cb := en.parseBody(e.body), cn.parseBody(c.body)
	for i := range min(len(eb), len(cb)) {
		alignTTL(eb[i].json, cb[i].json)
	}
	return respView(e, en, eb), respView(c, cn, cb)
}

// rawView shows a response as it came, for reports.
func rawView(w wireResponse) string {
	if w.status == 0 {
		return respView(w, normaliser{}, nil)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d", w.status)
	for _, h := range append(append(append([]string{}, valueHeaders...), "X-Etcd-Index"), presenceHeaders...) {
		if v, ok := w.header[h]; ok {
			fmt.Fprintf(&b, " %s: %s;", h, strings.Join(v, ", "))
		}
	}
	body := string(w.body)
	if len(body) > 600 {
		body = body[:600] + fmt.Sprintf("...(%d bytes)", len(w.body))
	}
	fmt.Fprintf(&b, "\n      %q", body)
	return b.String()
}
