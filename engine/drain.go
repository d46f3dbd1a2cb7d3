package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/prometheus/client_golang/prometheus"
)

// DrainView is one replica's drain as /v1/policies shows it.
type DrainView struct {
	targets.DrainInfo
	// Seconds is how long the drain has run, or ran.
	Seconds float64 `json:"seconds"`
}

// drainMetrics are the series of targets that drain replicas before stopping them.
type drainMetrics struct {
	seconds   *prometheus.HistogramVec
	timedOut  *prometheus.CounterVec
	calledOff *prometheus.CounterVec
}

func newDrainMetrics(reg prometheus.Registerer) *drainMetrics {
	m := &drainMetrics{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "autoscalerd_drain_duration_seconds",
			Help:    "How long ended drains took, from quiet to the stop (or to being taken back).",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200},
		}, []string{"policy"}),
		timedOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoscalerd_drains_timed_out_total",
			Help: "Drains that reached their timeout with the replica still busy; the replica was stopped anyway, cutting its work short.",
		}, []string{"policy"}),
		calledOff: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoscalerd_drains_called_off_total",
			Help: "Drains called off because demand rose: the replica was taken back instead of starting a new one.",
		}, []string{"policy"}),
	}
	reg.MustRegister(m.seconds, m.timedOut, m.calledOff)
	return m
}

// policyDrainMetrics caches one policy's drain series; draining is a kind of
// autoscalerd_policy_replicas.
type policyDrainMetrics struct {
	draining  prometheus.Gauge
	seconds   prometheus.Observer
	timedOut  prometheus.Counter
	calledOff prometheus.Counter
}

func (m *Metrics) drainForPolicy(name string) *policyDrainMetrics {
	return &policyDrainMetrics{
		draining:  m.replicas.WithLabelValues(name, "draining"),
		seconds:   m.drain.seconds.WithLabelValues(name),
		timedOut:  m.drain.timedOut.WithLabelValues(name),
		calledOff: m.drain.calledOff.WithLabelValues(name),
	}
}

func (m *drainMetrics) forget(name string) {
	for _, v := range []*prometheus.MetricVec{m.seconds.MetricVec, m.timedOut.MetricVec, m.calledOff.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"policy": name})
	}
}

// noteDrains reads the target's drains after the tick's action: it adds to d's reason
// which replicas a scale-down drains (and why each) or a scale-up took back, counts the
// drains that ended since the last tick, and keeps the list for the status. tickStart
// is when the tick began: drains the action started or called off are the newer ones.
func (r *runner) noteDrains(d policy.Decision, tickStart time.Time) policy.Decision {
	dr, ok := r.target.(targets.Drainer)
	if !ok {
		return d
	}
	ds := dr.Drains()
	var started, back []string
	inProgress := 0
	seen := make(map[uint64]bool, len(ds))
	for _, x := range ds {
		if !x.State.Over() {
			inProgress++
		}
		if d.Action == policy.Down && !x.Since.Before(tickStart) {
			started = append(started, fmt.Sprintf("%s (%s)", x.Replica, x.Reason))
		}
		if d.Action == policy.Up && x.State == targets.DrainTakenBack && !x.Ended.Before(tickStart) {
			back = append(back, x.Replica)
		}
		if !x.State.Over() {
			continue
		}
		seen[x.ID] = true
		if r.drainsSeen[x.ID] {
			continue
		}
		if x.State == targets.DrainTimedOut {
			r.timedOut = append(r.timedOut, x)
		}
		if r.m == nil {
			continue
		}
		r.m.drain.seconds.Observe(x.Ended.Sub(x.Since).Seconds())
		switch x.State {
		case targets.DrainTimedOut:
			r.m.drain.timedOut.Inc()
		case targets.DrainTakenBack:
			r.m.drain.calledOff.Inc()
		}
	}
	r.drainsSeen = seen
	if r.m != nil {
		r.m.drain.draining.Set(float64(inProgress))
	}
	if len(started) > 0 {
		d.Reason += " → draining replica " + strings.Join(started, ", ") + "; each stops once idle"
	}
	if len(back) > 0 {
		d.Reason += " → took back draining replica " + strings.Join(back, ", ") + " instead of starting new ones"
	}
	r.mu.Lock()
	r.drains = ds
	r.mu.Unlock()
	return d
}

// drainViews is the status's list of drains. r.mu is held.
func (r *runner) drainViews(now time.Time) []DrainView {
	if len(r.drains) == 0 {
		return nil
	}
	out := make([]DrainView, len(r.drains))
	for i, x := range r.drains {
		end := now
		if !x.Ended.IsZero() {
			end = x.Ended
		}
		out[i] = DrainView{DrainInfo: x, Seconds: end.Sub(x.Since).Round(time.Second).Seconds()}
	}
	return out
}
