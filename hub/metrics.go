package hub

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/hub/db"
)

// metrics counts requests per route and status for GET /metrics, in
// Prometheus's text format. Only route patterns are labels, never paths,
// so a scan of random URLs cannot grow the label set.
type metrics struct {
	mu       sync.Mutex
	requests map[metricKey]*metricValue
}

type metricKey struct {
	route string
	code  int
}

type metricValue struct {
	count   uint64
	seconds float64
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := metricKey{route, code}
	v := m.requests[k]
	if v == nil {
		v = &metricValue{}
		m.requests[k] = v
	}
	v.count++
	v.seconds += d.Seconds()
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (s *Server) metricsHandler(m *metrics) func(w http.ResponseWriter, r *http.Request, _ *db.User) error {
	return func(w http.ResponseWriter, r *http.Request, _ *db.User) error {
		m.mu.Lock()
		keys := make([]metricKey, 0, len(m.requests))
		for k := range m.requests {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if keys[i].route != keys[j].route {
				return keys[i].route < keys[j].route
			}
			return keys[i].code < keys[j].code
		})
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "# HELP berth_hub_requests_total API requests by route and status.")
		fmt.Fprintln(w, "# TYPE berth_hub_requests_total counter")
		for _, k := range keys {
			fmt.Fprintf(w, "berth_hub_requests_total{route=%s,code=\"%d\"} %d\n", strconv.Quote(k.route), k.code, m.requests[k].count)
		}
		fmt.Fprintln(w, "# HELP berth_hub_request_seconds_total Time spent answering API requests, by route and status.")
		fmt.Fprintln(w, "# TYPE berth_hub_request_seconds_total counter")
		for _, k := range keys {
			fmt.Fprintf(w, "berth_hub_request_seconds_total{route=%s,code=\"%d\"} %g\n", strconv.Quote(k.route), k.code, m.requests[k].seconds)
		}
		m.mu.Unlock()
		return nil
	}
}
