package engine

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/warm"
)

var (
	poolHandedOutDesc = prometheus.NewDesc("autoscalerd_warm_pool_handed_out_total",
		"Warm pool members scale-ups took (unpaused, continued or started) instead of starting new replicas.", []string{"policy"}, nil)
	poolReplacedDesc = prometheus.NewDesc("autoscalerd_warm_pool_replaced_total",
		"Warm pool members removed because the service changed under them (a new image or configuration); they are made again.", []string{"policy"}, nil)
)

// policyPoolMetrics are one policy's pool series, made only for a target with a pool;
// members, warming and want are kinds of autoscalerd_policy_replicas.
type policyPoolMetrics struct {
	members, warming, want gauge
	handedOut, replaced    counter
}

// poolForPolicy returns the pool series of the policy name, made on first use.
func (m *Metrics) poolForPolicy(name string) *policyPoolMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.policies[name]
	ps.pool.CompareAndSwap(nil, &policyPoolMetrics{})
	return ps.pool.Load()
}

func (p *policyPoolMetrics) collect(ch chan<- prometheus.Metric, name string) {
	ch <- prometheus.MustNewConstMetric(replicasDesc, prometheus.GaugeValue, p.members.get(), name, "warm")
	ch <- prometheus.MustNewConstMetric(replicasDesc, prometheus.GaugeValue, p.warming.get(), name, "warming")
	ch <- prometheus.MustNewConstMetric(replicasDesc, prometheus.GaugeValue, p.want.get(), name, "warm_wanted")
	ch <- prometheus.MustNewConstMetric(poolHandedOutDesc, prometheus.CounterValue, p.handedOut.get(), name)
	ch <- prometheus.MustNewConstMetric(poolReplacedDesc, prometheus.CounterValue, p.replaced.get(), name)
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
	if pm := r.m; pm != nil && pm.pool.Load() != nil {
		pool := pm.pool.Load()
		pool.members.Set(float64(info.Members))
		pool.warming.Set(float64(info.Warming))
		pool.want.Set(float64(info.Want))
		if info.HandedOut > r.poolSeen.HandedOut {
			pool.handedOut.Add(uint64(info.HandedOut - r.poolSeen.HandedOut))
		}
		if info.Replaced > r.poolSeen.Replaced {
			pool.replaced.Add(uint64(info.Replaced - r.poolSeen.Replaced))
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
