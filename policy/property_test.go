package policy_test

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
)

var (
	propSeed   = flag.Uint64("seed", 0, "base seed of TestDecideProperties (0: from the clock)")
	propTraces = flag.Int("traces", 3000, "random traces in TestDecideProperties")
)

// randPolicy is a random but valid policy, with the numbers the invariants need.
type randPolicy struct {
	yaml             string
	min, max         int
	cooldownUp       time.Duration
	cooldownDown     time.Duration
	stabilizationUp  time.Duration
	stepUp, stepDown randStep
	fallback         int // -1: on_error hold
	threshold        int
	activation       bool
	interval         time.Duration
}

// randStep is a step limit: none (n == 0), a count, or an integer percentage.
type randStep struct {
	n       int
	percent bool
}

func (s randStep) yaml() string {
	if s.percent {
		return fmt.Sprintf("%q", fmt.Sprintf("%d%%", s.n))
	}
	return fmt.Sprint(s.n)
}

// limit is how far one action may move from cur, computed exactly in integers: -1 is
// unlimited; a percentage is rounded up and never less than one.
func (s randStep) limit(cur int) int {
	switch {
	case s.n == 0:
		return -1
	case !s.percent:
		return s.n
	}
	return max((cur*s.n+99)/100, 1)
}

var randExprs = []string{
	"ceil(a / 10)",
	"max(ceil((a ?? 0) / 10), ceil(b / 5))",
	`"a > 150 ? current + 1 : (a < 50 ? current - 1 : current)"`,
	"ceil(avg_over(a, 1m) / 10)",
	"ceil(max_over(b, 2m) / 5)",
	`"min_over(a, 1m) > 200 ? current + 2 : current"`,
	"a / b",
	"ceil(rate(a, 1m))",
}

func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

func genPolicy(rng *rand.Rand) randPolicy {
	var rp randPolicy
	rp.min = rng.IntN(4)
	rp.max = max(rp.min, 1) + rng.IntN(25)
	rp.interval = pick(rng, 5*time.Second, 10*time.Second, 15*time.Second, 30*time.Second)
	rp.cooldownUp = pick(rng, 0, 10*time.Second, 30*time.Second, time.Minute, 2*time.Minute)
	rp.cooldownDown = pick(rng, 0, 30*time.Second, time.Minute, 5*time.Minute)
	rp.fallback = -1
	var b strings.Builder
	fmt.Fprintf(&b, "min: %d\nmax: %d\ninterval: %s\nreplicas: %s\n", rp.min, rp.max, rp.interval, pick(rng, randExprs...))
	fmt.Fprintf(&b, "cooldown: { up: %s, down: %s }\n", rp.cooldownUp, rp.cooldownDown)
	if rng.IntN(3) == 0 {
		rp.stabilizationUp = pick(rng, 20*time.Second, time.Minute)
		fmt.Fprintf(&b, "stabilization: { up: %s }\n", rp.stabilizationUp)
	}
	randomStep := func() randStep {
		switch rng.IntN(3) {
		case 0:
			return randStep{}
		case 1:
			return randStep{n: 1 + rng.IntN(5)}
		}
		return randStep{n: pick(rng, 10, 33, 50, 100, 200), percent: true}
	}
	rp.stepUp, rp.stepDown = randomStep(), randomStep()
	var steps []string
	if rp.stepUp.n > 0 {
		steps = append(steps, "up: "+rp.stepUp.yaml())
	}
	if rp.stepDown.n > 0 {
		steps = append(steps, "down: "+rp.stepDown.yaml())
	}
	if len(steps) > 0 {
		fmt.Fprintf(&b, "step: { %s }\n", strings.Join(steps, ", "))
	}
	if rng.IntN(3) == 0 {
		rp.fallback = rp.min + rng.IntN(rp.max-rp.min+1)
		rp.threshold = 1 + rng.IntN(3)
		fmt.Fprintf(&b, "on_error: { replicas: %d }\nfailure_threshold: %d\n", rp.fallback, rp.threshold)
	}
	if rp.min == 0 && rng.IntN(2) == 0 {
		rp.activation = true
		fmt.Fprintf(&b, "activation: %s\n", pick(rng, "a > 0", "(a ?? 0) + (b ?? 0) > 0", "max_over(a, 30s) > 0"))
	}
	if n := rng.IntN(3); n > 0 {
		b.WriteString("schedule:\n")
		for range n {
			sched := pick(rng,
				[2]string{"*/10 * * * *", "4m"},
				[2]string{"0 */7 * * * *", "90s"},
				[2]string{"@hourly", "20m"},
				[2]string{"15 * * * MON-FRI", "10m"})
			cron, dur := sched[0], sched[1]
			fmt.Fprintf(&b, "  - { cron: %q, duration: %s, timezone: %s", cron, dur, pick(rng, "UTC", "Europe/Berlin", "Asia/Kolkata"))
			hi := rp.max
			setMax := rng.IntN(2) == 0
			setMin := !setMax || rng.IntN(3) > 0
			if setMax {
				hi = 1 + rng.IntN(rp.max+10)
				if !setMin {
					hi = max(hi, rp.min) // a lone max under the policy's min is a config error
				}
				fmt.Fprintf(&b, ", max: %d", hi)
			}
			if setMin {
				fmt.Fprintf(&b, ", min: %d", rng.IntN(hi+1))
			}
			b.WriteString(" }\n")
		}
	}
	if rng.IntN(10) == 0 {
		b.WriteString("dry_run: true\n")
	}
	rp.yaml = b.String()
	return rp
}

// seenChecks maps what the summary counts to the text in a reason that shows it.
var seenChecks = [][2]string{
	{"cooldown.up", "cooldown.up:"}, {"cooldown.down", "cooldown.down:"}, {"step.up", "step.up"}, {"step.down", "step.down"},
	{"stabilization.up", "stabilization.up"}, {"fallback", "fallback"}, {"adopting", "adopting"}, {"activation", "activation:"},
	{"partial data", "partial data"}, {"paused", "paused"}, {"dry run", "dry run"}, {"schedule", "schedule"},
	{"warming up", "not fully watched"}, {"not a finite number", "not a finite number"},
}

// modelTick is what the model remembers of one tick.
type modelTick struct {
	at     time.Time
	wanted int // the desired count, or the current count when the tick had no trustworthy one
}

// TestDecideProperties replays thousands of random traces of random policies and checks
// the invariants of SPEC §3 against a model kept by the test itself.
func TestDecideProperties(t *testing.T) {
	base := *propSeed
	if base == 0 {
		base = uint64(time.Now().UnixNano())
	}
	n := *propTraces
	if testing.Short() {
		n /= 10
	}
	seen := map[string]int{}
	for i := range n {
		seed := base + uint64(i)
		if msg := checkTrace(t, seed, seen); msg != "" {
			t.Fatalf("seed %d (reproduce: go test ./policy -run TestDecideProperties -seed %d -traces 1):\n%s", seed, seed, msg)
		}
	}
	t.Logf("base seed %d, %d traces: %v", base, n, seen)
	// The invariants only mean something if the traces reach every rule.
	if n >= 1000 {
		for _, what := range []string{"up", "down", "cooldown.up", "cooldown.down", "step.up", "step.down", "stabilization.up", "fallback", "adopting", "activation", "partial data", "paused", "dry run", "schedule", "warming up", "not a finite number"} {
			if seen[what] == 0 {
				t.Errorf("no trace exercised %q (base seed %d)", what, base)
			}
		}
	}
}

// checkTrace runs one random trace and returns a description of the first broken
// invariant, or "".
func checkTrace(t *testing.T, seed uint64, seen map[string]int) string {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rp := genPolicy(rng)
	p := compile(t, rp.yaml, "a", "b")
	maxGap := 3*rp.interval + 30*time.Second

	var (
		st       policy.State
		cur      = rng.IntN(rp.max + 3)
		expected = -1 // what the policy expects the target to have; -1 before the first tick
		now      = t0.Add(time.Duration(rng.IntN(7*24*3600)) * time.Second)
		a, b     = float64(rng.IntN(300)), float64(rng.IntN(60))
		failA    bool
		failB    bool
		paused   bool
		failures int
		last     time.Time // the last action, ours or adopted
		lastUp   time.Time
		history  []modelTick
		log      strings.Builder
	)
	ticks := 150 + rng.IntN(250)
	for i := range ticks {
		// Random walk of the inputs, with bursts of failures and sometimes a drop to 0.
		a = max(0, a+float64(rng.IntN(81)-40))
		b = max(0, b+float64(rng.IntN(21)-10))
		if rng.IntN(20) == 0 {
			a, b = 0, 0
		}
		// Failures come in bursts: start 1 tick in 20, end 1 in 4.
		failA = rng.IntN(20) == 0 || failA && rng.IntN(4) > 0
		failB = rng.IntN(25) == 0 || failB && rng.IntN(4) > 0
		paused = rng.IntN(100) == 0 || paused && rng.IntN(10) > 0
		outside := false
		if expected >= 0 && rng.IntN(50) == 0 {
			if c := rng.IntN(rp.max + 5); c != expected {
				cur, outside = c, true
			}
		}
		vals := []float64{a, b}
		if failA {
			vals[0] = fail
		}
		if failB {
			vals[1] = fail
		}
		st.Paused = paused
		from := cur
		var d policy.Decision
		d, st = policy.Decide(p, st, inputs(cur, vals), now)
		st.Commit(d)
		fmt.Fprintf(&log, "t=%s a=%v b=%v cur=%d → %d [%d,%d] desired %d: %s\n",
			now.Sub(t0), vals[0], vals[1], from, d.To, d.Min, d.Max, d.Desired, d.Reason)
		bad := func(format string, args ...any) string {
			return fmt.Sprintf("policy:\n%s\nbroken at tick %d: %s\ntrace:\n%s", rp.yaml, i, fmt.Sprintf(format, args...), tail(log.String(), 25))
		}

		for _, c := range seenChecks {
			if strings.Contains(d.Reason, c[1]) {
				seen[c[0]]++
			}
		}
		if d.Action != policy.Hold {
			seen[d.Action.String()]++
		}

		queryFailed := failA || failB
		warming := strings.Contains(d.Reason, "expression: ") && strings.Contains(d.Reason, "not fully watched")
		if queryFailed || (d.Err != "" && !warming) {
			failures++
		} else if !warming {
			failures = 0
		}
		fallback := rp.fallback >= 0 && failures >= rp.threshold && (queryFailed || d.Err != "")

		// Bounds, precisely: a decision never scales up past the effective max nor down past
		// the effective min, and a count inside [min, max] stays inside. A count outside
		// the range (an outside change, the count found at start, or a range moved by a
		// schedule) is brought in by the normal rules, because SPEC §3 clamps the desired
		// count before cooldown and step: it may be held only by a cooldown,
		// stabilization.up, missing data, a pause or the adopting tick, and a step limit
		// may bring it in over several actions.
		outOfRange := from < d.Min || from > d.Max
		if outOfRange && d.To == from && !containsAny(d.Reason, "cooldown.up:", "cooldown.down:", "stabilization.up:",
			"partial data", "paused", "adopting", "no desired count") {
			return bad("held at %d outside [%d,%d] without a reason that may hold it", from, d.Min, d.Max)
		}
		switch {
		case d.From != from:
			return bad("From %d, want the observed %d", d.From, from)
		case d.Desired >= 0 && (d.Desired < d.Min || d.Desired > d.Max):
			return bad("desired %d outside [%d,%d]", d.Desired, d.Min, d.Max)
		case d.To > from && d.To > d.Max:
			return bad("scaled up past max")
		case d.To < from && d.To < d.Min:
			return bad("scaled down past min")
		case from >= d.Min && from <= d.Max && (d.To < d.Min || d.To > d.Max):
			return bad("left the range [%d,%d]", d.Min, d.Max)
		}
		// Action and direction agree with the counts.
		switch {
		case d.To > from && d.Action != policy.Up, d.To < from && d.Action != policy.Down, d.To == from && d.Action != policy.Hold:
			return bad("action %s for %d→%d", d.Action, from, d.To)
		case d.Action != policy.Hold && !strings.HasSuffix(d.Reason, fmt.Sprintf("scale %d→%d", from, d.To)):
			return bad("the reason does not end with the action")
		case paused && d.Action != policy.Hold:
			return bad("acted while paused")
		case outside && d.Action != policy.Hold:
			return bad("acted on the tick that adopted an outside change")
		}
		// Cooldowns.
		bypass := rp.activation && from == 0 && d.Action == policy.Up
		if d.Action == policy.Up && !bypass && !last.IsZero() && now.Sub(last) < rp.cooldownUp {
			return bad("scale-up %s after the last action (cooldown.up %s)", now.Sub(last), rp.cooldownUp)
		}
		if d.Action == policy.Down && !lastUp.IsZero() && now.Sub(lastUp) < rp.cooldownDown {
			return bad("scale-down %s after the last scale-up (cooldown.down %s)", now.Sub(lastUp), rp.cooldownDown)
		}
		// Steps.
		step := rp.stepUp
		if d.To < from {
			step = rp.stepDown
		}
		if lim := step.limit(from); lim >= 0 && abs(d.To-from) > lim {
			return bad("moved %d, step limit %d", abs(d.To-from), lim)
		}
		// Errors: partial data never removes replicas, unless the fallback is in force.
		if d.Action == policy.Down && queryFailed && !fallback {
			return bad("scaled down on a tick whose query failed (failures %d)", failures)
		}

		// The model's history of what the policy wanted.
		wanted := d.Desired
		if wanted < 0 || (queryFailed && !fallback && wanted < from) {
			wanted = from
		}
		if n := len(history); n > 0 && now.Sub(history[n-1].at) > maxGap {
			history = history[:0]
		}
		history = append(history, modelTick{at: now, wanted: wanted})
		// Scale-down stabilisation: the whole cooldown.down window wanted at most the new count.
		if d.Action == policy.Down && rp.cooldownDown > 0 {
			if msg := windowHolds(history, now, rp.cooldownDown, func(w int) bool { return w <= d.To }); msg != "" {
				return bad("scale-down to %d: %s", d.To, msg)
			}
		}
		if d.Action == policy.Up && rp.stabilizationUp > 0 && !bypass {
			if msg := windowHolds(history, now, rp.stabilizationUp, func(w int) bool { return w >= d.To }); msg != "" {
				return bad("scale-up to %d: %s", d.To, msg)
			}
		}

		// What the state remembers.
		wantExpected := d.To
		if p.DryRun {
			wantExpected = from
		}
		if !st.Known || st.Expected != wantExpected {
			return bad("state expects %d (known %v), want %d", st.Expected, st.Known, wantExpected)
		}

		if outside {
			last = now
			if from > expected {
				lastUp = now
			}
		}
		if d.Action != policy.Hold {
			last = now
			if d.Action == policy.Up {
				lastUp = now
			}
		}
		expected = wantExpected
		if !p.DryRun {
			cur = d.To
		}
		now = now.Add(rp.interval)
		if rng.IntN(60) == 0 {
			now = now.Add(time.Duration(1+rng.IntN(10)) * time.Minute) // the daemon was down
		}
	}
	return ""
}

// windowHolds checks that the model history reaches back over (now-w, now] and that every
// tick in it, and the one before it (whose wish lasted into the window), satisfies ok.
func windowHolds(h []modelTick, now time.Time, w time.Duration, ok func(int) bool) string {
	from := now.Add(-w)
	if len(h) == 0 || h[0].at.After(from) {
		return fmt.Sprintf("history covers only %s of %s", now.Sub(h[0].at), w)
	}
	for i := len(h) - 1; i >= 0; i-- {
		if !ok(h[i].wanted) {
			return fmt.Sprintf("wanted %d at %s, within the window", h[i].wanted, h[i].at.Sub(t0))
		}
		if !h[i].at.After(from) {
			break
		}
	}
	return ""
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func abs(n int) int { return int(math.Abs(float64(n))) }

func tail(s string, lines int) string {
	xs := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(xs) > lines {
		xs = xs[len(xs)-lines:]
	}
	return strings.Join(xs, "\n")
}
