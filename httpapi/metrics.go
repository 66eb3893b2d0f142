package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpMetrics count keys requests as etcd does: by method (QGET for a
// quorum read), failures by method and status code; watches are not
// counted. Label values come from fixed sets.
type httpMetrics struct {
	received *prometheus.CounterVec
	failed   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_http_received_total",
			Help: "Keys API requests received, by method."}, []string{"method"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_http_failed_total",
			Help: "Keys API requests that failed, by method and status code."}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cairn_http_successful_duration_seconds",
			Help: "Duration of successful keys API requests, by method.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 13)},
			[]string{"method"}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.failed, m.duration)
	}
	return m
}

// methodLabel is the request's method label: one of a fixed set.
func methodLabel(r *http.Request, quorum bool) string {
	switch r.Method {
	case http.MethodGet:
		if quorum {
			return "QGET"
		}
		return "GET"
	case http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete:
		return r.Method
	}
	return "OTHER"
}

func (m *httpMetrics) observe(method string, status int, start time.Time) {
	m.received.WithLabelValues(method).Inc()
	if status >= 400 {
		m.failed.WithLabelValues(method, strconv.Itoa(status)).Inc()
		return
	}
	m.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

// metricsHandler serves the registry in Prometheus' text format.
func metricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
