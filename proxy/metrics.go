package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's cairn_proxy_* metrics, after etcd's
// etcd_proxy_*. Label values come from fixed sets: methods are folded
// into a few names, endpoints are the members' client URLs.
type metrics struct {
	requests  *prometheus.CounterVec
	handledV  *prometheus.CounterVec
	droppedV  *prometheus.CounterVec
	failures  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	refreshes *prometheus.CounterVec
	available prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_proxy_requests_total",
			Help: "Requests received by the proxy, by method."}, []string{"method"}),
		handledV: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_proxy_handled_total",
			Help: "Requests answered by the proxy, by method and status code (a member's or the proxy's own)."}, []string{"method", "code"}),
		droppedV: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_proxy_dropped_total",
			Help: "Requests no member answered, by method and reason (zero_endpoints, no_response, client_gone)."}, []string{"method", "reason"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_proxy_endpoint_failures_total",
			Help: "Requests a member failed (no connection, or no response), by the member's client URL."}, []string{"endpoint"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cairn_proxy_handling_duration_seconds",
			Help: "Time to answer a forwarded request (watches excluded), by method.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 13)},
			[]string{"method"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_proxy_refreshes_total",
			Help: "Member list refreshes, by result (ok, failed)."}, []string{"result"}),
		available: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_proxy_endpoints_available",
			Help: "Members' client URLs requests can go to now (known, and not left out after a failure)."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.handledV, m.droppedV, m.failures, m.durations, m.refreshes, m.available)
	}
	return m
}

func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}

func (m *metrics) request(method string) { m.requests.WithLabelValues(methodLabel(method)).Inc() }

func (m *metrics) handled(method string, code int) {
	if code == 0 {
		code = http.StatusOK
	}
	m.handledV.WithLabelValues(methodLabel(method), strconv.Itoa(code)).Inc()
}

func (m *metrics) dropped(method, reason string) {
	m.droppedV.WithLabelValues(methodLabel(method), reason).Inc()
}

func (m *metrics) failure(endpoint string) { m.failures.WithLabelValues(endpoint).Inc() }

func (m *metrics) duration(method string, d time.Duration) {
	m.durations.WithLabelValues(methodLabel(method)).Observe(d.Seconds())
}
