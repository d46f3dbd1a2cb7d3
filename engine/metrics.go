package engine

import (
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus series (SPEC §5).
type Metrics struct {
	replicas     *prometheus.GaugeVec
	queryValue   *prometheus.GaugeVec
	queryErrors  *prometheus.CounterVec
	scaleActions *prometheus.CounterVec
	scaleErrors  *prometheus.CounterVec
	paused       *prometheus.GaugeVec
	saveErrors   *prometheus.CounterVec
	evalDuration prometheus.Histogram
	drain        *drainMetrics
	pool         *poolMetrics
}

// NewMetrics registers the engine's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		replicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autoscalerd_policy_replicas",
			Help: "Replica counts of each policy: current (observed), ready (up and serving, where the target can tell), desired (last decision), min and max (in force now), draining (chosen by a scale-down, waiting to be idle; not in current), warm, warming and warm_wanted (the warm pool's members ready to hand out, being made, and what it is kept at; not in current).",
		}, []string{"policy", "kind"}),
		queryValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autoscalerd_query_value",
			Help: "Last value read by each query.",
		}, []string{"policy", "query"}),
		queryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoscalerd_query_errors_total",
			Help: "Failed query reads (errors, time-outs, no data, invalid values).",
		}, []string{"policy", "query"}),
		scaleActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoscalerd_scale_actions_total",
			Help: "Scaling actions taken (or, in dry-run, decided), by direction.",
		}, []string{"policy", "direction"}),
		scaleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoscalerd_scale_errors_total",
			Help: "Failed target calls (status or scale).",
		}, []string{"policy"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autoscalerd_policy_paused",
			Help: "1 while a policy is paused over the API (it decides but does not scale), else 0.",
		}, []string{"policy"}),
		saveErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoscalerd_state_save_errors_total",
			Help: "Failed saves of a policy's state to state_dir (disk full, read-only); the policy keeps deciding.",
		}, []string{"policy"}),
		evalDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "autoscalerd_evaluation_duration_seconds",
			Help:    "Time of one policy evaluation: target status, queries, decision and any scaling action.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .5, 1, 5, 30, 120},
		}),
	}
	m.drain = newDrainMetrics(reg)
	m.pool = newPoolMetrics(reg)
	reg.MustRegister(m.replicas, m.queryValue, m.queryErrors, m.scaleActions, m.scaleErrors, m.saveErrors, m.paused, m.evalDuration)
	return m
}

// policyMetrics caches one policy's series so a tick does no label hashing.
type policyMetrics struct {
	current, desired, min, max prometheus.Gauge
	ready                      prometheus.Gauge
	values                     []prometheus.Gauge
	errors                     []prometheus.Counter
	up, down                   prometheus.Counter
	scaleErrors                prometheus.Counter
	paused                     prometheus.Gauge
	saveErrors                 prometheus.Counter
	eval                       prometheus.Observer
	drain                      *policyDrainMetrics
	pool                       *policyPoolMetrics // nil: the target has no warm pool
}

func (m *Metrics) forPolicy(name string, queries []string) *policyMetrics {
	pm := &policyMetrics{
		current:     m.replicas.WithLabelValues(name, "current"),
		desired:     m.replicas.WithLabelValues(name, "desired"),
		min:         m.replicas.WithLabelValues(name, "min"),
		max:         m.replicas.WithLabelValues(name, "max"),
		ready:       m.replicas.WithLabelValues(name, "ready"),
		up:          m.scaleActions.WithLabelValues(name, policy.Up.String()),
		down:        m.scaleActions.WithLabelValues(name, policy.Down.String()),
		scaleErrors: m.scaleErrors.WithLabelValues(name),
		paused:      m.paused.WithLabelValues(name),
		saveErrors:  m.saveErrors.WithLabelValues(name),
		eval:        m.evalDuration,
		drain:       m.drainForPolicy(name),
	}
	for _, q := range queries {
		pm.values = append(pm.values, m.queryValue.WithLabelValues(name, q))
		pm.errors = append(pm.errors, m.queryErrors.WithLabelValues(name, q))
	}
	return pm
}

// forget drops a removed policy's series.
func (m *Metrics) forget(name string) {
	m.drain.forget(name)
	m.pool.forget(name)
	for _, v := range []*prometheus.MetricVec{m.replicas.MetricVec, m.queryValue.MetricVec, m.queryErrors.MetricVec, m.scaleActions.MetricVec, m.scaleErrors.MetricVec, m.saveErrors.MetricVec, m.paused.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"policy": name})
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
