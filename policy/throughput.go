package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"
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
	// window > 0: the recent intervals are slower than the whole window's median, window
	window    float64
	intervals int    // measured intervals in the window
	prior     bool   // too few intervals: perReplica is the prior
	statistic string // "median", "upper quartile" or "median of the last n"
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
	if e.window > 0 {
		return fmt.Sprintf("%s/s/replica (%s of %d intervals, slower than their median %s)", formatNum(round3(e.perReplica)), e.statistic, e.intervals, formatNum(round3(e.window)))
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

// drainNeed is the completions per second that keep drain's promise: every task now
// waiting starts within T of its arrival, if the capacity holds. Tasks are served first
// in, first out, so a waiting task starts once the tasks ahead of it are done: the newest
// of the backlog, with all of T left, needs the whole backlog done within T; an older
// task needs the tasks ahead of it done within what is left of its T. Without the arrivals
// counter the ages are unknown and only the first holds: backlog / T, the capacity that
// empties the current backlog within T. With it, the counter's history says when each
// waiting task arrived: the backlog's oldest ahead tasks are the ones that arrived by the
// time the counter stood at (its value now − backlog + ahead).
//
// Work arriving from now on queues behind the backlog and does not delay it; the next
// ticks size for it. Ages are known to a tick: a task counted between two samples is
// taken as arrived at the earlier one.
//
// Each task's time is planned less a reserve for reaction (planned): what is left of its T
// less the reaction time, but never more than half of what is left, so the next decisions
// can make good what this one did not know without a task close to its T being asked to
// start at once. A task already past its T (or planned less than one interval) is to start
// within the next interval — the soonest a decision can act — so a late queue is caught
// up at once, up to max.
//
// bounds are all the constraints it weighed, the binding one among them: the oldest
// bounds[i].ahead tasks must all have started within bounds[i].left (the first is the whole
// backlog within planned(T)).
func drainNeed(backlog float64, counterName string, counter []Sample, now time.Time, T, reaction, interval time.Duration) (rate float64, why string, bounds []drainBound) {
	plan := planned(T, reaction)
	rate = backlog / plan.Seconds()
	why = fmt.Sprintf("%s waiting / %s", formatNum(backlog), fmtDur(plan))
	bounds = append(bounds, drainBound{ahead: backlog, left: plan})
	if backlog <= 0 || len(counter) == 0 || !counter[len(counter)-1].T.Equal(now) {
		return rate, why, bounds
	}
	cNow := counter[len(counter)-1].V
	// Walk back through the counter's samples: at sample j, ahead is the waiting tasks that
	// arrived by then, the oldest of the backlog. The last of them waits for the others;
	// it arrived after the sample before j, so it is at most that old — and,
	// conservatively, taken to be that old.
	for j := len(counter) - 1; j >= 0; j-- {
		ahead := backlog - (cNow - counter[j].V)
		if ahead <= 0 || counter[j].V > cNow {
			break // none of the waiting tasks is this old, or the counter restarted
		}
		older := counter[j].T
		if j > 0 {
			older = counter[j-1].T
		}
		age := now.Sub(older)
		left := max(planned(T-age, reaction), interval)
		bounds = append(bounds, drainBound{ahead: ahead, left: left})
		if r := ahead / left.Seconds(); r >= rate {
			rate = r
			if ahead == backlog {
				why = fmt.Sprintf("%s waiting, all taken as arrived %s ago (per %s): %s / %s left", formatNum(backlog), fmtDur(age), counterName, formatNum(backlog), fmtDur(left))
			} else {
				why = fmt.Sprintf("%s waiting, the oldest %s taken as arrived %s ago (per %s): max(%s / %s, %s / %s left)", formatNum(backlog), formatNum(ahead), fmtDur(age), counterName,
					formatNum(backlog), fmtDur(plan), formatNum(ahead), fmtDur(left))
			}
		}
	}
	return rate, why, bounds
}

// planned is the part of a task's remaining time left that drain plans to start it in:
// left less the reaction time, but at most half of left is held back, so that a task
// near its time is not asked to start at once while half of what it has left would do.
// Nothing is planned for a task already late.
func planned(left, reaction time.Duration) time.Duration {
	if left <= 0 {
		return 0
	}
	return left - min(reaction, left/2)
}

// reactionTime is how long a decision can be wrong before a later one makes it good:
// drain keeps that much of each task's time free (planned). A slowdown shows in the
// estimate (the median of the last minIntervals, when lower) once more than half of those
// intervals are slow — minIntervals/2 + 1 of them, the first begun under this decision —
// and the decision that sees it may act once cooldown.up has passed since the last action,
// at the latest the tick before: cooldown.up − interval later, rounded up to a tick.
func reactionTime(minIntervals int, interval, cooldownUp time.Duration) time.Duration {
	see := time.Duration(minIntervals/2+1) * interval
	act := time.Duration(0)
	if interval > 0 && cooldownUp > interval {
		act = (cooldownUp - interval + interval - 1) / interval * interval
	}
	return see + act
}

// drainBound says the oldest ahead waiting tasks must all have started within left.
type drainBound struct {
	ahead float64
	left  time.Duration
}

// keptReplicas is the capacity the engine keeps running whatever this tick asks for, from
// now on: kept[k] replicas from now+k×interval until the next tick, while the count is not
// zero (it never rises). cooldown.down keeps the pool at the highest count wanted within
// its window (a desired count recorded until end is wanted until end + down), and all of
// it within down of the last scale-up; it never keeps more than runs now (cur). A raised
// pool is held so whatever drain asks for, and a pool that keeps it busy is not idle.
// What this tick asks for is not in recs yet; the ticks to come can only keep more.
func keptReplicas(buf []float64, recs []Rec, lastUp time.Time, cur int, now time.Time, down, interval, horizon time.Duration) []float64 {
	kept := buf[:0]
	if down <= 0 || cur <= 0 || interval <= 0 {
		return kept
	}
	for k := time.Duration(0); k*interval < horizon; k++ {
		s := now.Add(k * interval)
		v := cur
		if !s.Before(lastUp.Add(down)) {
			v = 0
			for i, r := range recs {
				end := now // the last count on record is wanted at least until now
				if i+1 < len(recs) {
					end = recs[i+1].T
				}
				if end.Add(down).After(s) {
					v = max(v, min(r.V, cur))
				}
			}
		}
		if v <= 0 {
			break
		}
		kept = append(kept, float64(v))
	}
	return kept
}

// beside is the fewest replicas n that, with kept running beside them (max(kept[k], n) in
// interval k from now, n after the last), give the replica-seconds work within left: with
// nothing kept, work / left.
func beside(kept []float64, interval, left time.Duration, work float64) float64 {
	iv, L := interval.Seconds(), left.Seconds()
	K := min(len(kept), int(math.Ceil(L/iv))) // the kept intervals that are part of left
	span := func(k int) float64 { return min(L-float64(k)*iv, iv) }
	head := 0.0 // what the kept intervals before s do, for s = K
	for k := range K {
		head += kept[k] * span(k)
	}
	if head >= work {
		return 0
	}
	// kept never rises, so the intervals where n is more than kept are the last ones, from
	// some s on: try s from K down; n is right once it is no more than kept[s-1].
	tail := max(L-float64(K)*iv, 0) // the time n runs alone, for s = K
	for s := K; s >= 0; s-- {
		if s < K {
			head -= kept[s] * span(s)
			tail += span(s)
		}
		if tail <= 0 {
			continue
		}
		if n := (work - head) / tail; s == 0 || n <= kept[s-1] {
			return max(n, 0)
		}
	}
	return work / L // not reached: s = 0 answers
}

// keptString is the kept pool for the reason chain, up to within: "29 for 3m15s, 28 for 45s".
func keptString(kept []float64, interval, within time.Duration) string {
	var b strings.Builder
	for k := 0; k < len(kept) && time.Duration(k)*interval < within; {
		j := k
		for j < len(kept) && kept[j] == kept[k] && time.Duration(j)*interval < within {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		d := min(time.Duration(j-k)*interval, within-time.Duration(k)*interval)
		fmt.Fprintf(&b, "%s for %s", formatNum(kept[k]), fmtDur(d))
		k = j
	}
	return b.String()
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
		stat := "median"
		if l.arrivals == "" {
			stat = "upper quartile"
		}
		est := estimate{perReplica: m, intervals: len(rates), statistic: stat}
		// A pool that slows down (a heavier task mix) is seen in its latest intervals long
		// before it moves the window's median, and every tick it is overestimated tasks
		// wait longer: with arrivals, the median of the last min_intervals, when lower,
		// is the estimate. A speed-up waits for the median, as a scale-down waits for
		// its cooldown: erring slow costs replica-minutes, not the promise. Without
		// arrivals a low recent rate is a loose bound, not a slowdown.
		if recent := quantile(rates[len(rates)-l.minIntervals:], 0.5); l.arrivals != "" && recent > 0 && recent < m {
			est.window, est.perReplica = m, recent
			est.statistic = fmt.Sprintf("median of the last %d", l.minIntervals)
		}
		measured[q] = Sample{T: now, V: est.perReplica}
		return est, nil
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
		T := time.Duration(seconds * float64(time.Second))
		backlog, ok := e.vars[q].(float64)
		if !ok {
			return 0, fmt.Errorf("drain(%s, %s): %s failed this tick", q, fmtDur(T), q)
		}
		if T <= 0 {
			return 0, fmt.Errorf("drain(%s, %s): the time must be positive", q, fmtDur(T))
		}
		est, err := p.learn.throughput(q, e.samples, e.throughput, e.now)
		if err != nil {
			return 0, err
		}
		var counter []Sample
		if a := p.learn.arrivals; a != "" {
			// The ages come from the counter. Without this tick's value they are unknown and
			// drain sizes for the backlog alone, which may ask for fewer: the engine does not
			// scale down on a tick with a failed query, and a scale-up still can happen.
			if _, ok := e.vars[a].(float64); ok {
				counter = e.samples[a]
			} else {
				e.note(fmt.Sprintf("drain(%s, %s): %s failed, the ages of the waiting tasks are unknown", q, fmtDur(T), a))
			}
		}
		// The replicas asked for now are what the pool runs until a slowdown shows in the
		// estimate and a scale-up may act on it (reactionTime): the plan leaves that much of
		// each waiting task's time free — at most half of what the task has left — so the
		// next decisions can still make good what this one did not know.
		reaction := reactionTime(p.learn.minIntervals, p.Interval, p.CooldownUp)
		plan := planned(T, reaction)
		rate, why, bounds := drainNeed(backlog, p.learn.arrivals, counter, e.now, T, reaction, p.Interval)
		n := rate / est.perReplica
		note := fmt.Sprintf("drain(%s, %s): throughput %s over %s; planned within %s (%s less %s to see a slowdown and act, at most half of each task's time left); %s = %s/s; / %s = %s",
			q, fmtDur(T), est, fmtDur(p.learn.window), fmtDur(plan), fmtDur(T), fmtDur(reaction),
			why, formatNum(round3(rate)), formatNum(round3(est.perReplica)), formatNum(round3(n)))
		// cooldown.down keeps a raised pool running for a while whatever this tick asks for:
		// the waiting tasks it starts in time need nothing more, and asking for the
		// capacity again now would only keep it longer after the queue is empty. drain asks
		// for what is needed beside it, for the tasks it would leave late.
		cur, _ := e.vars[varCurrent].(float64)
		e.kept = keptReplicas(e.kept, e.recs, e.lastUp, int(cur), e.now, p.CooldownDown, p.Interval, plan)
		if len(e.kept) > 0 {
			m, bind := 0.0, drainBound{}
			for _, b := range bounds {
				if x := beside(e.kept, p.Interval, b.left, b.ahead/est.perReplica); x >= m {
					m, bind = x, b
				}
			}
			if m < n-1e-9 {
				note += fmt.Sprintf("; cooldown.down keeps %s", keptString(e.kept, p.Interval, plan))
				if m == 0 {
					note += ": they start every waiting task in time, none needed beside them = 0"
				} else {
					note += fmt.Sprintf(": beside them the oldest %s within %s need %s", formatNum(bind.ahead), fmtDur(bind.left), formatNum(round3(m)))
				}
				n = m
			}
		}
		// At the floor, a step of one replica that can wait for a later tick is left to it:
		// see stepCanWait for why that is right and why only there. Only with the waiting
		// tasks' ages (drainNeed read the counter: more bounds than the whole backlog's):
		// without them drain cannot tell that the old tasks can wait, and the estimate is a
		// lower bound (a replay of the slow hours then let tasks wait 7 minutes).
		floor, _ := e.vars[varMin].(float64)
		top, _ := e.vars[varMax].(float64)
		if c := int(cur); len(bounds) > 1 && c >= 1 && cur == floor && ceilCount(n) == c+1 && float64(c+1) <= top {
			wait := stepWait(e.now, e.lastAction, p.Interval, p.CooldownUp, p.StabilizationUp)
			if stepCanWait(cur, float64(c+1), wait, bounds, est.perReplica) {
				note += fmt.Sprintf("; the step to %d can wait %s (the next tick that may scale up): %d until then and %d after start every waiting task in time = %d",
					c+1, fmtDur(wait), c, c+1, c)
				n = cur
			}
		}
		e.note(note)
		return n, nil
	})
}

// stepWait is how long from now the first later tick that may scale up comes: the next
// tick, but not before cooldown.up has passed since the last action (rounded up to a
// tick); with stabilization.up, not before a demand recorded from the next tick on has
// been seen for that long — this tick records the count it asks for, so the window must
// begin after it. The result is whole ticks.
func stepWait(now, lastAction time.Time, interval, cooldownUp, stabilizationUp time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	ticks := func(d time.Duration) time.Duration { return (d + interval - 1) / interval * interval }
	wait := interval
	if !lastAction.IsZero() {
		wait = max(wait, ticks(lastAction.Add(cooldownUp).Sub(now)))
	}
	if stabilizationUp > 0 {
		wait = max(wait, interval+ticks(stabilizationUp))
	}
	return wait
}

// stepCanWait reports whether a step up from cur to step replicas can be taken wait from
// now (stepWait) rather than now with every waiting task still planned to start in time:
// whether, for every bound drain plans with (the oldest ahead tasks within left, the
// reaction reserve kept), cur replicas until then and step after give its ahead /
// perReplica replica-seconds within left. cooldown.down adds nothing to either: it never
// keeps more than runs now (keptReplicas), and step is more.
//
// Why waiting is right: a step up is held by cooldown.down for its whole length (the whole
// pool within down of the scale-up), whatever drain asks for meanwhile. Taken one wait
// later, the hold starts and ends one wait later: that saves (step − cur) replicas for the
// wait now and costs (step − after) for the wait at the end of the hold, where after is
// what the pool runs once the hold ends. From the floor after is never below cur, so the
// wait costs at most what it saves — if the step taken later is no bigger — and the held
// pool starts with more tasks waiting, so it idles less at the end of its hold (on the
// daily cycle the night's steps from 1 to 2 emptied the queue before their hold ended).
//
// Why drain asks for it only for one replica from the floor: from a higher count the pool
// after the hold can fall below cur, and the wait costs more than it saves; a step of
// several replicas is the start of a climb (a burst, a batch), whose later steps are
// bigger, so the whole peak is held longer (measured worse on the bursts and the
// batches). One replica from the floor leaves the later tick one replica's work over the
// wait more to do (15s of it against a plan of 4m15s with the defaults), and its step is
// rarely bigger; but that is not a guarantee: where arrivals outrun the floor (the climb
// back after a slow spell) it can be (docs/drain.md, measured).
func stepCanWait(cur, step float64, wait time.Duration, bounds []drainBound, perReplica float64) bool {
	if wait <= 0 || perReplica <= 0 {
		return false
	}
	for _, b := range bounds {
		done := cur*min(wait, b.left).Seconds() + step*max(b.left-wait, 0).Seconds()
		if done < b.ahead/perReplica-1e-9 {
			return false
		}
	}
	return true
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
