package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dbchat/dbchat/internal/tenant"
)

const requestIDKey = "request_id"

// observe assigns a request id, then logs and counts the request once it is
// done. Logs carry ids and timings, never keys, bodies or row data.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	rid := c.GetHeader("X-Request-Id")
	if rid == "" || len(rid) > 64 {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		rid = hex.EncodeToString(b)
	}
	c.Set(requestIDKey, rid)
	c.Header("X-Request-Id", rid)
	c.Next()

	s.logAndCount(c, rid, time.Since(start))
}

// logAndCount records a finished request: its counter, its latency and one
// access log line.
func (s *Server) logAndCount(c *gin.Context, rid string, elapsed time.Duration) {
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	s.metrics.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(status)).Inc()
	s.metrics.latency.WithLabelValues(c.Request.Method, route).Observe(elapsed.Seconds())

	attrs := []slog.Attr{
		slog.String("request_id", rid), slog.String("method", c.Request.Method), slog.String("route", route),
		slog.Int("status", status), slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
	}
	if id, ok := tenant.FromContext(c.Request.Context()); ok {
		attrs = append(attrs, slog.String("tenant_id", id.TenantID.String()), slog.String("user_id", id.UserID.String()))
	}
	s.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request", attrs...)
}

// metrics is the server's own Prometheus registry, so several servers (in
// tests) never collide.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	http     http.Handler
	handler  gin.HandlerFunc
}

func newMetrics(db *tenant.DB) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dbchat_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dbchat_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
	}
	m.registry.MustRegister(m.requests, m.latency, poolCollector{db: db},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.http = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	m.handler = func(c *gin.Context) { m.http.ServeHTTP(c.Writer, c.Request) }
	return m
}

var (
	poolTotal    = prometheus.NewDesc("dbchat_db_pool_connections", "Connections in the pool by state.", []string{"state"}, nil)
	poolAcquires = prometheus.NewDesc("dbchat_db_pool_acquires_total", "Connections acquired from the pool.", nil, nil)
	poolWaits    = prometheus.NewDesc("dbchat_db_pool_acquire_waits_total", "Acquires that had to wait for a connection.", nil, nil)
	poolWaitSecs = prometheus.NewDesc("dbchat_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", nil, nil)
)

// poolCollector reads pgxpool statistics at scrape time.
type poolCollector struct{ db *tenant.DB }

func (p poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolTotal
	ch <- poolAcquires
	ch <- poolWaits
	ch <- poolWaitSecs
}

func (p poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := p.db.Stat()
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(st.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(st.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(st.MaxConns()), "max")
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(st.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(st.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitSecs, prometheus.CounterValue, st.AcquireDuration().Seconds())
}
