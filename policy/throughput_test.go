package policy_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
)

// pool is a synthetic worker pool of known throughput: every replica completes k tasks a
// second while there is work, and arrive tasks a second arrive.
type pool struct {
	k, arrive float64
	backlog   float64
	arrived   float64 // the arrivals counter
	// initial is what is left of the backlog the pool started with, served first.
	initial float64
}

// run advances the pool by dt with replicas running.
func (p *pool) run(dt time.Duration, replicas int) {
	s := dt.Seconds()
	p.arrived += p.arrive * s
	p.backlog = max(0, p.backlog+p.arrive*s-p.k*float64(replicas)*s)
	p.initial = max(0, p.initial-p.k*float64(replicas)*s)
}

// TestDrainConvergesOnKnownThroughput drives drain(queued, 5m) against synthetic pools:
// the estimate must reach the pool's true per-replica throughput (from a wrong prior), the
// backlog found at the start must then be worked off within about the promised time, and
// under steady arrivals the pool must settle where a task waits no longer than promised.
func TestDrainConvergesOnKnownThroughput(t *testing.T) {
	for _, tc := range []struct {
		name     string
		arrivals bool
		arrive   float64
	}{
		{"backlog only, no arrivals", false, 0},
		{"backlog only, steady arrivals", false, 30},
		{"arrivals counter, steady arrivals", true, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			queries := []string{"queued"}
			arr := ""
			if tc.arrivals {
				queries = append(queries, "arrived")
				arr = ", arrivals: arrived"
			}
			p := compile(t, `
min: 1
max: 100
interval: 15s
cooldown: { up: 0s, down: 1m }
throughput: { prior: 0.5`+arr+` }
replicas: drain(queued, 5m)
`, queries...)
			w := &pool{k: 2, arrive: tc.arrive, backlog: 20000, initial: 20000}
			r := &rig{t: t, p: p, cur: 1}
			var last policy.Decision
			drainedBy := time.Duration(-1)
			for i := 0; i < 240; i++ { // an hour
				at := time.Duration(i) * 15 * time.Second
				vals := []float64{w.backlog}
				if tc.arrivals {
					vals = append(vals, w.arrived)
				}
				last = r.at(at, vals...)
				if i == 0 && !strings.Contains(last.Reason, "0.5/s/replica (prior; 0 intervals measured)") {
					t.Fatalf("first tick does not use the prior: %s", last.Reason)
				}
				if i == 10 && !strings.Contains(last.Reason, "throughput") {
					t.Fatalf("reason chain lacks the estimate: %s", last.Reason)
				}
				if i == 10 && (tc.arrivals || tc.arrive == 0) && !strings.Contains(last.Reason, "2/s/replica (") {
					t.Fatalf("after 10 ticks the estimate is not the pool's 2/s/replica: %s", last.Reason)
				}
				if w.initial == 0 && drainedBy < 0 {
					drainedBy = at
				}
				w.run(15*time.Second, r.cur)
			}
			// drain sizes the pool to start every waiting task within 5m, not to empty the
			// queue: under steady arrivals it settles where the backlog is at most 5
			// minutes of arrivals (Little's law: a task waits at most about 5m).
			if wait := w.backlog / tc.arrive; tc.arrive > 0 && wait > 5.5*60 {
				t.Fatalf("steady backlog %v is %.0fs of arrivals, want at most ~300s: %s", w.backlog, wait, last.Reason)
			}
			// Without arrivals the backlog is the initial tasks; with them drain knows
			// (from the counter) that the initial tasks are older than its history, and
			// starts them sooner; without the counter they are served as the backlog's
			// newest would be, within about 5m of the estimate settling.
			if drainedBy < 0 || drainedBy > 8*time.Minute {
				t.Fatalf("the 20000 tasks queued at the start were worked off after %v, want within ~5m of the estimate settling; last: %s", drainedBy, last.Reason)
			}
			// Steady state: the pool needs arrive/k replicas; drain asks for no more than
			// that and min.
			if want := max(1, int(math.Ceil(tc.arrive/2))); tc.arrivals && last.To > want+1 {
				t.Errorf("steady state %d replicas, want about %d: %s", last.To, want, last.Reason)
			}
		})
	}
}

// TestLearnedProperties checks, over random traces, that a policy on drain and throughput
// never scales down on a tick whose query failed (the backlog, or the arrivals counter
// drain reads the ages from), never goes below min or above max, and holds (never fails)
// while it has neither history nor a prior.
func TestLearnedProperties(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		lo := rng.IntN(3)
		hi := lo + 1 + rng.IntN(30)
		counter := rng.IntN(2) == 0
		var settings []string
		if rng.IntN(2) == 0 {
			settings = append(settings, fmt.Sprintf("prior: %g, min_intervals: %d", 0.1+rng.Float64()*3, 1+rng.IntN(4)))
		}
		queries := []string{"queued"}
		if counter {
			settings = append(settings, "arrivals: arrived")
			queries = append(queries, "arrived")
		}
		throughput := ""
		if len(settings) > 0 {
			throughput = "throughput: { " + strings.Join(settings, ", ") + " }"
		}
		hasPrior := strings.Contains(throughput, "prior")
		expr := pick(rng, "drain(queued, 5m)", "ceil(queued / (throughput(queued) * 120))", "max(drain(queued, 2m), current)")
		p := compile(t, fmt.Sprintf("min: %d\nmax: %d\ninterval: 10s\ncooldown: { up: 0s, down: 30s }\n%s\nreplicas: %s\n", lo, hi, throughput, expr), queries...)
		r := &rig{t: t, p: p, cur: lo + rng.IntN(hi-lo+1)}
		w := &pool{k: 0.2 + rng.Float64()*3, arrive: rng.Float64() * 20, backlog: rng.Float64() * 5000}
		for i := 0; i < 120; i++ {
			before := r.cur
			vals := []float64{w.backlog}
			if counter {
				vals = append(vals, w.arrived)
			}
			failed := rng.IntN(6) == 0
			if failed {
				vals[rng.IntN(len(vals))] = fail
			}
			d := r.at(time.Duration(i)*10*time.Second, vals...)
			switch {
			case failed && d.To < before:
				t.Fatalf("seed %d tick %d: scaled down %d→%d on a failed query: %s", seed, i, before, d.To, d.Reason)
			case d.To < lo || d.To > hi:
				t.Fatalf("seed %d tick %d: %d replicas outside [%d, %d]: %s", seed, i, d.To, lo, hi, d.Reason)
			case !hasPrior && !failed && d.Err != "":
				t.Fatalf("seed %d tick %d: without a prior the policy must hold while learning, not fail: %s", seed, i, d.Err)
			}
			w.run(10*time.Second, r.cur)
		}
	}
}

// fifo is a synthetic pool that serves its tasks first in, first out, second by second, so
// the longest any task waited is known.
type fifo struct {
	k       float64 // tasks per replica per second
	queue   []cohortAt
	backlog float64
	arrived float64
	worst   time.Duration
}

type cohortAt struct {
	t time.Duration
	n float64
}

// run advances the pool from at by dt with replicas running and arrive tasks a second.
func (f *fifo) run(at, dt time.Duration, replicas int, arrive float64) {
	for s := at; s < at+dt; s += time.Second {
		f.queue = append(f.queue, cohortAt{s, arrive})
		f.backlog += arrive
		f.arrived += arrive
		capacity := f.k * float64(replicas)
		for capacity > 0 && len(f.queue) > 0 {
			take := min(capacity, f.queue[0].n)
			f.queue[0].n -= take
			f.backlog -= take
			capacity -= take
			if f.queue[0].n <= 1e-9 {
				f.queue = f.queue[1:]
			}
		}
		if len(f.queue) > 0 {
			f.worst = max(f.worst, s+time.Second-f.queue[0].t)
		}
	}
	f.backlog = max(f.backlog, 0)
}

// drainPolicy is drain(queued, 5m) with an arrivals counter, between 1 and top replicas
// at the default cooldowns, from the given prior.
func drainPolicy(t *testing.T, top int, prior float64) *policy.Policy {
	t.Helper()
	return compile(t, fmt.Sprintf(`
min: 1
max: %d
interval: 15s
throughput: { prior: %g, arrivals: arrived }
replicas: drain(queued, 5m)
`, top, prior), "queued", "arrived")
}

// TestDrainPlansBesideTheKeptPool drives drain(queued, 5m) through a 10-minute burst with the
// default cooldowns: cooldown.down keeps a raised pool for 5 minutes whatever drain asks
// for, so drain must not ask for the peak again while the kept pool starts every waiting
// task in time (the reason chain says so), which lets the peak go within about a minute of
// the queue emptying rather than 5 minutes after — and every task still starts within 5m.
func TestDrainPlansBesideTheKeptPool(t *testing.T) {
	p := drainPolicy(t, 100, 2)
	w := &fifo{k: 2}
	r := &rig{t: t, p: p, cur: 1}
	peak, emptied, fell := 0, time.Duration(-1), time.Duration(-1)
	sawKept := ""
	for i := 0; i < 160; i++ { // 40 minutes
		at := time.Duration(i) * 15 * time.Second
		arrive := 6.0
		if at >= 5*time.Minute && at < 15*time.Minute {
			arrive = 60
		}
		d := r.at(at, math.Round(w.backlog), math.Floor(w.arrived))
		if at > 15*time.Minute && strings.Contains(d.Reason, "cooldown.down keeps") && strings.Contains(d.Reason, "none needed beside them = 0") && sawKept == "" {
			sawKept = d.Reason
		}
		peak = max(peak, r.cur)
		if at > 15*time.Minute && w.backlog < 1 && emptied < 0 {
			emptied = at
		}
		if emptied >= 0 && fell < 0 && r.cur <= 6 { // 6/s needs 3 replicas
			fell = at
		}
		w.run(at, 15*time.Second, r.cur, arrive)
	}
	if w.worst > 5*time.Minute {
		t.Fatalf("a task waited %v, more than the 5m promised", w.worst)
	}
	if sawKept == "" {
		t.Fatalf("after the burst no reason says the kept pool starts the waiting tasks: %v", r.st.Recs)
	}
	if peak < 25 || emptied < 0 || fell < 0 {
		t.Fatalf("peak %d, queue emptied at %v, pool back to ≤ 6 at %v: the burst did not play out", peak, emptied, fell)
	}
	// Asking for the peak until the queue is empty would keep it 5 minutes more.
	if idle := fell - emptied; idle > 2*time.Minute {
		t.Fatalf("the pool stayed above 6 replicas %v after the queue emptied (peak %d), want at most ~1m: cooldown.down counts from the last time drain needed the peak", idle, peak)
	}
	t.Logf("peak %d; queue emptied at %v, pool back to ≤ 6 at %v; worst wait %v; %s", peak, emptied, fell, w.worst, sawKept)
}

// TestDrainLetsAStepFromTheFloorWait checks drain at the floor, with numbers worked out by
// hand (2 tasks a second per replica, the prior; 45s of reaction reserve): a step of one
// replica is left to the next tick that may scale up when 1 replica until then and 2 after
// still start every waiting task within its planned time, and the reason chain says so;
// a step that would leave a task late is taken now.
func TestDrainLetsAStepFromTheFloorWait(t *testing.T) {
	p := drainPolicy(t, 10, 2)
	// counter is an arrivals history sampled every 15s from t0 up to (not including) at:
	// 0 until from, n from then on.
	counter := func(from, at time.Duration, n float64) map[string][]policy.Sample {
		var xs []policy.Sample
		for s := time.Duration(0); s < at; s += 15 * time.Second {
			v := 0.0
			if s >= from {
				v = n
			}
			xs = append(xs, policy.Sample{T: t0.Add(s), V: v, R: 1})
		}
		return map[string][]policy.Sample{"arrived": xs}
	}
	const at = 5 * time.Minute
	for _, tc := range []struct {
		name       string
		from       time.Duration // when the waiting tasks arrived
		n          float64       // how many
		lastAction time.Duration // how long ago, 0: none
		desired    int
		why        string
	}{
		// 560 just arrived: 560 / 4m = 2.333/s, 1.167 replicas. 1 for 15s and 2 for 3m45s
		// give 465 replica-seconds, the 280 needed (and 495 within 4m15s).
		{"a small backlog", at, 560, 0, 1,
			"560 waiting, all taken as arrived 15s ago (per arrived): 560 / 4m left = 2.333/s; / 2 = 1.167; " +
				"the step to 2 can wait 15s (the next tick that may scale up): 1 until then and 2 after start every waiting task in time = 1 → drain(queued, 5m)=1 → clamp[1,10]=1 → hold at 1"},
		// 140 arrived 3m30s ago have 1m30s left, 45s planned: 70 replica-seconds, 1.556
		// replicas. 1 for 15s and 2 for 30s give 75.
		{"old tasks, the next tick", 105 * time.Second, 140, 0, 1,
			"140 waiting, all taken as arrived 3m30s ago (per arrived): 140 / 45s left = 3.111/s; / 2 = 1.556; the step to 2 can wait 15s"},
		// The same, 10s after an action: cooldown.up lets the tick after next scale up, 30s
		// from now, and 1 for 30s and 2 for 15s give 60 of the 70.
		{"old tasks, cooldown.up left", 105 * time.Second, 140, 10 * time.Second, 2,
			"140 waiting, all taken as arrived 3m30s ago (per arrived): 140 / 45s left = 3.111/s; / 2 = 1.556 → drain(queued, 5m)=1.55556↑2 → clamp[1,10]=2 → cooldown.up: 20s left → hold"},
		// 50 arrived 5m ago are late: within the next interval, 25 replica-seconds, which 1
		// replica for 15s does not give.
		{"late tasks", 15 * time.Second, 50, 0, 2,
			"50 waiting, all taken as arrived 5m ago (per arrived): 50 / 15s left = 3.333/s; / 2 = 1.667 → drain(queued, 5m)=1.66667↑2 → clamp[1,10]=2 → cooldown.up ok → scale 1→2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rig{t: t, p: p, cur: 1}
			r.st.Samples = counter(tc.from, at, tc.n)
			if tc.lastAction > 0 {
				r.st.LastAction, r.st.LastDirection = t0.Add(at-tc.lastAction), policy.Down
			}
			d := r.at(at, tc.n, tc.n)
			if d.Desired != tc.desired || !strings.Contains(d.Reason, tc.why) {
				t.Fatalf("desired %d, want %d; reason:\n%s\nwant it to contain:\n%s", d.Desired, tc.desired, d.Reason, tc.why)
			}
			if tc.desired == 2 && strings.Contains(d.Reason, "can wait") {
				t.Fatalf("the step waits although a task would be late: %s", d.Reason)
			}
		})
	}
}

// TestDrainStepFromTheFloorWaitsInTime drives drain(queued, 5m) through an hour of arrivals
// above what the floor's one replica completes (the night of a daily cycle): the
// steps from 1 to 2 wait for later ticks (the reason chain says so), are taken, and every
// task still starts within 5m less the reaction reserve's margin.
func TestDrainStepFromTheFloorWaitsInTime(t *testing.T) {
	p := drainPolicy(t, 10, 4)
	w := &fifo{k: 2}
	r := &rig{t: t, p: p, cur: 1}
	waited, stepped := 0, 0
	for i := 0; i < 240; i++ { // an hour
		at := time.Duration(i) * 15 * time.Second
		d := r.at(at, math.Round(w.backlog), math.Floor(w.arrived))
		if strings.Contains(d.Reason, "the step to 2 can wait 15s (the next tick that may scale up): 1 until then and 2 after start every waiting task in time = 1") {
			waited++
		}
		if d.From == 1 && d.To == 2 {
			stepped++
		}
		arrive := 3.0
		if i%60 >= 40 { // a quiet spell every 15 minutes lets the pool fall back to 1
			arrive = 0.5
		}
		w.run(at, 15*time.Second, r.cur, arrive)
	}
	if waited == 0 || stepped == 0 {
		t.Fatalf("%d ticks let the step wait, %d took it: want both", waited, stepped)
	}
	if w.worst > 4*time.Minute+30*time.Second {
		t.Fatalf("a task waited %v: the steps that waited left it later than planned", w.worst)
	}
	t.Logf("%d ticks let the step wait, %d steps from 1 to 2; worst wait %v", waited, stepped, w.worst)
}
