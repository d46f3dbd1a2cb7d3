package engine

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus series (SPEC §5).
//
// The per-policy series are not client_golang vectors: a vector's series costs about
// 500 bytes (label pairs, hashes, a creation timestamp per counter), 13 or more a policy,
// 7.7 KB; 10,000 policies kept 77 MB of them. Here a policy's series are plain atomic
// numbers that its ticks update, and the collector turns them into samples when /metrics
// is scraped. A policy's numbers live as long as the policy does, across reloads (its
// counters continue), and go with forget, as a vector's series did.
type Metrics struct {
	evalDuration prometheus.Histogram

	mu       sync.Mutex
	policies map[string]*policySeries
}

var (
	replicasDesc = prometheus.NewDesc("autoscalerd_policy_replicas",
		"Replica counts of each policy: current (observed), ready (up and serving, where the target can tell), desired (last decision), min and max (in force now), draining (chosen by a scale-down, waiting to be idle; not in current), warm, warming and warm_wanted (the warm pool's members ready to hand out, being made, and what it is kept at; not in current).",
		[]string{"policy", "kind"}, nil)
	queryValueDesc = prometheus.NewDesc("autoscalerd_query_value",
		"Last value read by each query.", []string{"policy", "query"}, nil)
	queryErrorsDesc = prometheus.NewDesc("autoscalerd_query_errors_total",
		"Failed query reads (errors, time-outs, no data, invalid values).", []string{"policy", "query"}, nil)
	scaleActionsDesc = prometheus.NewDesc("autoscalerd_scale_actions_total",
		"Scaling actions taken (or, in dry-run, decided), by direction.", []string{"policy", "direction"}, nil)
	scaleErrorsDesc = prometheus.NewDesc("autoscalerd_scale_errors_total",
		"Failed target calls (status or scale).", []string{"policy"}, nil)
	pausedDesc = prometheus.NewDesc("autoscalerd_policy_paused",
		"1 while a policy is paused over the API (it decides but does not scale), else 0.", []string{"policy"}, nil)
	saveErrorsDesc = prometheus.NewDesc("autoscalerd_state_save_errors_total",
		"Failed saves of a policy's state to state_dir (disk full, read-only); the policy keeps deciding.", []string{"policy"}, nil)
)

// NewMetrics registers the engine's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		evalDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "autoscalerd_evaluation_duration_seconds",
			Help:    "Time of one policy evaluation: target status, queries, decision and any scaling action.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .5, 1, 5, 30, 120},
		}),
		policies: map[string]*policySeries{},
	}
	reg.MustRegister(m.evalDuration, (*policyCollector)(m))
	return m
}

// gauge and counter are one series' number; the ticks write them, scrapes read them.
type gauge struct{ bits atomic.Uint64 }

func (g *gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }
func (g *gauge) get() float64  { return math.Float64frombits(g.bits.Load()) }

type counter struct{ n atomic.Uint64 }

func (c *counter) Inc()         { c.n.Add(1) }
func (c *counter) Add(n uint64) { c.n.Add(n) }
func (c *counter) get() float64 { return float64(c.n.Load()) }

// policySeries is one policy's series.
type policySeries struct {
	name                       string
	current, desired, min, max gauge
	ready                      gauge
	// byQuery holds the series of each query the policy has had: a reload that removes a
	// query leaves its series, as a vector did.
	byQuery     map[string]*querySeries
	up, down    counter
	scaleErrors counter
	paused      gauge
	saveErrors  counter
	eval        prometheus.Observer
	drain       policyDrainMetrics
	// pool is nil while the target has no warm pool; set by a reload, so atomic.
	pool atomic.Pointer[policyPoolMetrics]
}

type querySeries struct {
	value  gauge
	errors counter
}

// policyMetrics is what a runner updates: its policy's series, and those of its queries in
// query order (a runner replaced on reload keeps its own while it finishes).
type policyMetrics struct {
	*policySeries
	values []*gauge
	errors []*counter
}

// forPolicy returns the series of the policy name, made on first use; a reloaded policy
// continues the series it had.
func (m *Metrics) forPolicy(name string, queries []string) *policyMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.policies[name]
	if ps == nil {
		ps = &policySeries{name: name, eval: m.evalDuration, byQuery: map[string]*querySeries{}}
		m.policies[name] = ps
	}
	pm := &policyMetrics{policySeries: ps, values: make([]*gauge, len(queries)), errors: make([]*counter, len(queries))}
	for i, q := range queries {
		s := ps.byQuery[q]
		if s == nil {
			s = &querySeries{}
			ps.byQuery[q] = s
		}
		pm.values[i], pm.errors[i] = &s.value, &s.errors
	}
	return pm
}

// forget drops a removed policy's series.
func (m *Metrics) forget(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.policies, name)
}

// policyCollector makes the per-policy samples at scrape time.
type policyCollector Metrics

func (c *policyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{replicasDesc, queryValueDesc, queryErrorsDesc, scaleActionsDesc, scaleErrorsDesc, pausedDesc, saveErrorsDesc, drainSecondsDesc, drainsTimedOutDesc, drainsCalledOffDesc, poolHandedOutDesc, poolReplacedDesc} {
		ch <- d
	}
}

func (c *policyCollector) Collect(ch chan<- prometheus.Metric) {
	type queryAt struct {
		name string
		*querySeries
	}
	type policyAt struct {
		*policySeries
		queries []queryAt
	}
	c.mu.Lock()
	all := make([]policyAt, 0, len(c.policies))
	for _, ps := range c.policies {
		p := policyAt{policySeries: ps}
		for q, s := range ps.byQuery {
			p.queries = append(p.queries, queryAt{q, s})
		}
		all = append(all, p)
	}
	c.mu.Unlock()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	n := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	// The registry sorts the samples; the order here does not matter.
	for _, p := range all {
		name := p.name
		g(replicasDesc, p.current.get(), name, "current")
		g(replicasDesc, p.desired.get(), name, "desired")
		g(replicasDesc, p.min.get(), name, "min")
		g(replicasDesc, p.max.get(), name, "max")
		g(replicasDesc, p.ready.get(), name, "ready")
		g(replicasDesc, p.drain.draining.get(), name, "draining")
		n(scaleActionsDesc, p.up.get(), name, policy.Up.String())
		n(scaleActionsDesc, p.down.get(), name, policy.Down.String())
		n(scaleErrorsDesc, p.scaleErrors.get(), name)
		g(pausedDesc, p.paused.get(), name)
		n(saveErrorsDesc, p.saveErrors.get(), name)
		for _, q := range p.queries {
			g(queryValueDesc, q.value.get(), name, q.name)
			n(queryErrorsDesc, q.errors.get(), name, q.name)
		}
		p.drain.collect(ch, name)
		if pool := p.pool.Load(); pool != nil {
			pool.collect(ch, name)
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
