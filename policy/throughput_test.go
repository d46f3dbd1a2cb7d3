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
