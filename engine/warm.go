package engine

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/warm"
)

// poolMetrics are the series of targets with a warm pool.
type poolMetrics struct {
	handedOut *prometheus.CounterVec
	replaced  *prometheus.CounterVec
}

func newPoolMetrics(reg prometheus.Registerer) *poolMetrics {
	m := &poolMetrics{
		handedOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoscalerd_warm_pool_handed_out_total",
			Help: "Warm pool members scale-ups took (unpaused, continued or started) instead of starting new replicas.",
		}, []string{"policy"}),
		replaced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoscalerd_warm_pool_replaced_total",
			Help: "Warm pool members removed because the service changed under them (a new image or configuration); they are made again.",
		}, []string{"policy"}),
	}
	reg.MustRegister(m.handedOut, m.replaced)
	return m
}

func (m *poolMetrics) forget(name string) {
	for _, v := range []*prometheus.MetricVec{m.handedOut.MetricVec, m.replaced.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"policy": name})
	}
}

// policyPoolMetrics caches one policy's pool series, made only for a target with a pool;
// members and warming are kinds of autoscalerd_policy_replicas.
type policyPoolMetrics struct {
	members, warming, want prometheus.Gauge
	handedOut, replaced    prometheus.Counter
}

func (m *Metrics) poolForPolicy(name string) *policyPoolMetrics {
	return &policyPoolMetrics{
		members:   m.replicas.WithLabelValues(name, "warm"),
		warming:   m.replicas.WithLabelValues(name, "warming"),
		want:      m.replicas.WithLabelValues(name, "warm_wanted"),
		handedOut: m.pool.handedOut.WithLabelValues(name),
		replaced:  m.pool.replaced.WithLabelValues(name),
	}
}

// pooler returns the target's pool, or nil when it has none.
func pooler(t targets.Target) targets.Pooler {
	if p, ok := t.(targets.Pooler); ok && p.Pool().State != "" {
		return p
	}
	return nil
}

// notePool reads the target's warm pool after the tick's action: it adds to d's reason
// how many replicas a scale-up took from the pool, and keeps the pool for the status and
// metrics.
func (r *runner) notePool(d policy.Decision) policy.Decision {
	if r.pool == nil {
		return d
	}
	if d.Max > 0 {
		r.pool.SetMax(d.Max)
	}
	info := r.pool.Pool()
	if n := info.HandedOut - r.poolSeen.HandedOut; d.Action == policy.Up && n > 0 && info.HandedOut >= r.poolSeen.HandedOut {
		d.Reason += fmt.Sprintf(" → %d from the warm pool (%s), %d new", n, info.State, max(d.To-d.From-int(n), 0))
	}
	if pm := r.m; pm != nil && pm.pool != nil {
		pm.pool.members.Set(float64(info.Members))
		pm.pool.warming.Set(float64(info.Warming))
		pm.pool.want.Set(float64(info.Want))
		if info.HandedOut > r.poolSeen.HandedOut {
			pm.pool.handedOut.Add(float64(info.HandedOut - r.poolSeen.HandedOut))
		}
		if info.Replaced > r.poolSeen.Replaced {
			pm.pool.replaced.Add(float64(info.Replaced - r.poolSeen.Replaced))
		}
	}
	r.mu.Lock()
	r.poolSeen = info
	r.mu.Unlock()
	return d
}

// poolView is the status's pool. r.mu is held.
func (r *runner) poolView() *warm.Info {
	if r.pool == nil || r.poolSeen.State == "" {
		return nil
	}
	v := r.poolSeen
	return &v
}
