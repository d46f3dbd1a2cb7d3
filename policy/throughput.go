package policy

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// learn is how a policy estimates the per-replica throughput of the pool it scales, for
// the expression functions throughput(q) and drain(q, T) (configs.Throughput).
type learn struct {
	prior        float64
	window       time.Duration
	minIntervals int
	// arrivals is the name of the query counting arrived work, or "".
	arrivals string
}

// estimate is the throughput of one backlog query at one tick, with what the reason
// chain says about where it came from.
type estimate struct {
	perReplica float64 // completions per replica per second
	intervals  int     // measured intervals in the window
	prior      bool    // too few intervals: perReplica is the prior
	statistic  string  // "median" or "upper quartile"
	// age > 0: too few intervals, perReplica was measured that long ago
	age time.Duration
}

func (e estimate) String() string {
	if e.age > 0 {
		return fmt.Sprintf("%s/s/replica (measured %s ago; %d intervals now)", formatNum(round3(e.perReplica)), fmtDur(e.age), e.intervals)
	}
	if e.prior {
		return fmt.Sprintf("%s/s/replica (prior; %d intervals measured)", formatNum(round3(e.perReplica)), e.intervals)
	}
	return fmt.Sprintf("%s/s/replica (%s of %d intervals)", formatNum(round3(e.perReplica)), e.statistic, e.intervals)
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// intervalRates measures the pool's completions per replica per second in each interval
// between two consecutive samples of the backlog xs. Completions in an interval are the
// backlog's fall plus what arrived meanwhile (from the arrivals counter's samples, when
// the policy has one). An interval is measured only when it can say something true:
//
//   - the workers were busy all along: the backlog at both ends held at least as much
//     work as was completed in between (a backlog of 5 beside 300 completions means idle
//     workers, whose spare capacity nobody saw);
//   - replicas ran: the count seen at the interval's end, which is what the decision at
//     its start left running (a sample's count is read before its tick decides). After
//     a scale-up it includes replicas still starting, so the estimate errs low: towards
//     more replicas;
//   - without arrivals, the backlog fell: a fall is at most what was completed (work may
//     have arrived too), so each rate is a lower bound; a rise says nothing;
//   - with arrivals, the counter did not go back (a restart of whatever counts).
func intervalRates(xs, arrivals []Sample, haveArrivals bool) []float64 {
	var rates []float64
	for i := 1; i < len(xs); i++ {
		a, b := xs[i-1], xs[i]
		dt := b.T.Sub(a.T).Seconds()
		r := b.R
		if dt <= 0 || r <= 0 {
			continue
		}
		done := a.V - b.V
		if haveArrivals {
			from, ok1 := valueAt(arrivals, a.T)
			to, ok2 := valueAt(arrivals, b.T)
			if !ok1 || !ok2 || to < from {
				continue
			}
			done += to - from
		}
		if done <= 0 && !haveArrivals || a.V < done || b.V < done || b.V == 0 {
			continue
		}
		rates = append(rates, max(done, 0)/dt/float64(r))
	}
	return rates
}

// valueAt is the value of the sample taken at t (samples of all queries of one tick share
// the tick's time).
func valueAt(xs []Sample, t time.Time) (float64, bool) {
	i, ok := slices.BinarySearchFunc(xs, t, func(s Sample, t time.Time) int { return s.T.Compare(t) })
	if !ok {
		return 0, false
	}
	return xs[i].V, true
}

// quantile is the q-quantile of xs (linear between the nearest ranks).
func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// arrivalRate is the arrivals counter's rate over the last window (or the samples there
// are, at least two); a counter that went back (restarted) gives no rate. drain looks
// back as far as it looks ahead: over its time T, noise in the arrivals averages out
// as it will in the backlog.
func arrivalRate(xs []Sample, now time.Time, window time.Duration) (float64, bool) {
	if len(xs) < 2 {
		return 0, false
	}
	last := xs[len(xs)-1]
	i := len(xs) - 2
	for i > 0 && !xs[i].T.Before(now.Add(-window)) {
		i--
	}
	first := xs[i]
	dt := last.T.Sub(first.T).Seconds()
	if dt <= 0 || last.V < first.V {
		return 0, false
	}
	return (last.V - first.V) / dt, true
}

// errNoThroughput says the estimate has nothing to go on: too little history and no
// prior. Like a window not watched in full, it holds the tick without being a failure.
var errNoThroughput = fmt.Errorf("no throughput measured yet and no throughput.prior: %w", errWarmingUp)

// throughput estimates query q's pool throughput from the samples in the window ending
// at now: the median of the interval rates (robust to a noisy interval or a stuck
// worker). While fewer than minIntervals were measured — a fresh start, or a queue that
// stays empty so its workers' capacity cannot be seen — it is the last estimate measured
// (remembered in measured, the state's Throughput), and before any the prior.
func (l *learn) throughput(q string, samples map[string][]Sample, measured map[string]Sample, now time.Time) (estimate, error) {
	from := now.Add(-l.window)
	inWindow := func(xs []Sample) []Sample {
		i := len(xs)
		for i > 0 && !xs[i-1].T.Before(from) {
			i--
		}
		return xs[i:]
	}
	rates := intervalRates(inWindow(samples[q]), samples[l.arrivals], l.arrivals != "")
	if len(rates) >= l.minIntervals {
		// With arrivals every rate is a measurement: the median. Without, every rate is a
		// lower bound (work arrived too, unseen), loosest when arrivals nearly match the
		// pool's pace: the upper quartile is the tighter bound and still ignores a stray
		// interval.
		m := quantile(rates, 0.5)
		if l.arrivals == "" {
			m = quantile(rates, 0.75)
		}
		if m <= 0 {
			return estimate{}, fmt.Errorf("throughput(%s): the workers completed nothing in %d intervals over %s with work waiting (stuck?)", q, len(rates), fmtDur(l.window))
		}
		measured[q] = Sample{T: now, V: m}
		stat := "median"
		if l.arrivals == "" {
			stat = "upper quartile"
		}
		return estimate{perReplica: m, intervals: len(rates), statistic: stat}, nil
	}
	if last, ok := measured[q]; ok && last.V > 0 {
		return estimate{perReplica: last.V, intervals: len(rates), age: max(now.Sub(last.T), time.Second)}, nil
	}
	if l.prior > 0 {
		return estimate{perReplica: l.prior, intervals: len(rates), prior: true}, nil
	}
	return estimate{}, fmt.Errorf("throughput(%s): %d of %d intervals measured: %w", q, len(rates), l.minIntervals, errNoThroughput)
}

// learnFns binds throughput and drain to e's scope.
func (e *evalEnv) learnFns(p *Policy) {
	e.vars["throughput"] = throughputFn(func(q string) (float64, error) {
		est, err := p.learn.throughput(q, e.samples, e.throughput, e.now)
		if err != nil {
			return 0, err
		}
		e.note(fmt.Sprintf("throughput(%s)=%s over %s", q, est, fmtDur(p.learn.window)))
		return est.perReplica, nil
	})
	e.vars["drain"] = drainFn(func(q string, seconds float64) (float64, error) {
		backlog, ok := e.vars[q].(float64)
		if !ok {
			return 0, fmt.Errorf("drain(%s, %s): %s failed this tick", q, fmtDur(time.Duration(seconds*float64(time.Second))), q)
		}
		est, err := p.learn.throughput(q, e.samples, e.throughput, e.now)
		if err != nil {
			return 0, err
		}
		window := fmtDur(time.Duration(seconds * float64(time.Second)))
		arriving := ""
		inflow := 0.0
		if l := p.learn; l.arrivals != "" {
			if rate, ok := arrivalRate(e.samples[l.arrivals], e.now, time.Duration(seconds*float64(time.Second))); ok {
				inflow = rate
				arriving = fmt.Sprintf(" + %s/s arriving × %s", formatNum(round3(rate)), window)
			}
		}
		n := (backlog + inflow*seconds) / (est.perReplica * seconds)
		e.note(fmt.Sprintf("drain(%s, %s): throughput %s over %s; (%s%s) / (%s × %s) = %s", q, window, est, fmtDur(p.learn.window),
			formatNum(backlog), arriving, formatNum(round3(est.perReplica)), window, formatNum(round3(n))))
		return n, nil
	})
}

// throughputFn and drainFn are the learned functions' signatures after patching.
type (
	throughputFn = func(query string) (float64, error)
	drainFn      = func(query string, seconds float64) (float64, error)
)

var (
	throughputStub throughputFn = func(string) (float64, error) { return 0, nil }
	drainStub      drainFn      = func(string, float64) (float64, error) { return 0, nil }
)

// note adds a line to the tick's reason chain, once.
func (e *evalEnv) note(s string) {
	if !slices.Contains(e.notes, s) {
		e.notes = append(e.notes, s)
	}
}
