package httpapi

import (
	"net/http"
	"strconv"
	"sync/atomic"
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
	// The children of received and duration by method, made at their
	// first use as WithLabelValues makes them, then kept, so that a
	// request hashes and looks up no label values.
	receivedBy [len(methodLabels)]atomic.Pointer[prometheus.Counter]
	durationBy [len(methodLabels)]atomic.Pointer[prometheus.Observer]
}

// methodLabels are the values of the method label, by methodLabel.
var methodLabels = [...]string{"GET", "QGET", "HEAD", "PUT", "POST", "DELETE", "OTHER"}

// The method labels' indexes in methodLabels.
const (
	labelGET = iota
	labelQGET
	labelHEAD
	labelPUT
	labelPOST
	labelDELETE
	labelOTHER
)

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

// methodLabel is the request's method label, as its index in
// methodLabels.
func methodLabel(r *http.Request, quorum bool) int {
	switch r.Method {
	case http.MethodGet:
		if quorum {
			return labelQGET
		}
		return labelGET
	case http.MethodHead:
		return labelHEAD
	case http.MethodPut:
		return labelPUT
	case http.MethodPost:
		return labelPOST
	case http.MethodDelete:
		return labelDELETE
	}
	return labelOTHER
}

// observe counts a request of method (methodLabel), and its duration
// from start if it succeeded.
func (m *httpMetrics) observe(method int, status int, start time.Time) {
	label := methodLabels[method]
	c := m.receivedBy[method].Load()
	if c == nil {
		c = new(prometheus.Counter)
		*c = m.received.WithLabelValues(label)
		m.receivedBy[method].Store(c)
	}
	(*c).Inc()
	if status >= 400 {
		m.failed.WithLabelValues(label, strconv.Itoa(status)).Inc()
		return
	}
	o := m.durationBy[method].Load()
	if o == nil {
		o = new(prometheus.Observer)
		*o = m.duration.WithLabelValues(label)
		m.durationBy[method].Store(o)
	}
	(*o).Observe(time.Since(start).Seconds())
}

// metricsHandler serves the registry in Prometheus' text format.
func metricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
