package engine

import (
	"fmt"
	"sort"
	"strings"
	"sync"
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

var (
	drainSecondsDesc = prometheus.NewDesc("autoscalerd_drain_duration_seconds",
		"How long ended drains took, from quiet to the stop (or to being taken back).", []string{"policy"}, nil)
	drainsTimedOutDesc = prometheus.NewDesc("autoscalerd_drains_timed_out_total",
		"Drains that reached their timeout with the replica still busy; the replica was stopped anyway, cutting its work short.", []string{"policy"}, nil)
	drainsCalledOffDesc = prometheus.NewDesc("autoscalerd_drains_called_off_total",
		"Drains called off because demand rose: the replica was taken back instead of starting a new one.", []string{"policy"}, nil)
	drainBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}
)

// policyDrainMetrics are one policy's drain series (targets that drain replicas before
// stopping them); draining is a kind of autoscalerd_policy_replicas.
type policyDrainMetrics struct {
	draining            gauge
	timedOut, calledOff counter
	seconds             drainHistogram
}

// drainHistogram is the drain durations; its buckets are made by the first drain that
// ends, most policies never drain.
type drainHistogram struct {
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; nil before the first observation
	count  uint64
	sum    float64
}

func (h *drainHistogram) Observe(v float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = make([]uint64, len(drainBuckets))
	}
	if i := sort.SearchFloat64s(drainBuckets, v); i < len(drainBuckets) {
		h.counts[i]++ // the first bucket whose upper bound is ≥ v
	}
	h.count++
	h.sum += v
}

func (d *policyDrainMetrics) collect(ch chan<- prometheus.Metric, name string) {
	d.seconds.mu.Lock()
	buckets := make(map[float64]uint64, len(drainBuckets))
	var cum uint64
	for i, b := range drainBuckets {
		if d.seconds.counts != nil {
			cum += d.seconds.counts[i]
		}
		buckets[b] = cum
	}
	count, sum := d.seconds.count, d.seconds.sum
	d.seconds.mu.Unlock()
	ch <- prometheus.MustNewConstHistogram(drainSecondsDesc, count, sum, buckets, name)
	ch <- prometheus.MustNewConstMetric(drainsTimedOutDesc, prometheus.CounterValue, d.timedOut.get(), name)
	ch <- prometheus.MustNewConstMetric(drainsCalledOffDesc, prometheus.CounterValue, d.calledOff.get(), name)
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
