package policy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/expr-lang/expr/vm"
)

// Action is what a decision does to the target's count.
type Action uint8

// The actions. Hold is the zero value: a decision that leaves the count as it is.
const (
	Hold Action = iota
	Up
	Down
)

// String names the action as the API, logs and metrics show it.
func (a Action) String() string {
	switch a {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "hold"
}

// MarshalText writes the action's name (state files and JSON).
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads an action's name; "" is Hold, for state files that had none.
func (a *Action) UnmarshalText(b []byte) error {
	switch string(b) {
	case "up":
		*a = Up
	case "down":
		*a = Down
	case "hold", "":
		*a = Hold
	default:
		return fmt.Errorf("unknown action %q", b)
	}
	return nil
}

// Value is one query's result for a tick: a number, or the error that replaced it.
type Value struct {
	V   float64
	Err error
}

// Inputs is what one tick observed.
type Inputs struct {
	// Values holds one entry per query, in the order of Policy.Queries.
	Values []Value
	// Current is the target's replica count.
	Current int
	// Fresh says the target started from nothing with the daemon (targets.Status.Fresh):
	// a count below the one last set is no outside change, and restoring it skips
	// cooldown.up.
	Fresh bool
}

// Decision is the outcome of one tick, with the reason chain that explains it.
type Decision struct {
	Time time.Time
	// From is the count observed; To the count after this decision (From when holding).
	From, To int
	Action   Action
	// Raw is the expression's value (NaN when it could not be evaluated).
	Raw float64
	// Desired is the clamped count the policy asked for, -1 when there was none.
	Desired  int
	Min, Max int
	Reason   string
	// Err is the evaluation error, if the expression could not be evaluated.
	Err    string
	DryRun bool
	// Restore marks a scale-up that brings a fresh target back to the count the policy had
	// before the daemon restarted (Inputs.Fresh): it starts no cooldown.
	Restore bool
}

// Decide runs the decision pipeline of SPEC §3 for one tick. It consumes st (the caller
// must use the returned state from then on) and performs no I/O.
//
// Decide proposes; it does not act. The state it returns is the state after a tick that
// held: the history and failure count are updated, but a proposed scaling action is not
// recorded. Whoever carries the action out calls Commit once the target has done it, so an
// action that failed starts no cooldown and leaves nothing to undo.
func Decide(p *Policy, st State, in Inputs, now time.Time) (Decision, State) {
	d := Decision{Time: now, From: in.Current, To: in.Current, Action: Hold, Raw: math.NaN(), Desired: -1, DryRun: p.DryRun}
	var why chain
	cur := in.Current

	// A longer pause between ticks (or between a query's samples) breaks the history: the
	// daemon was not watching, so it cannot claim anything held all along.
	maxGap := p.maxGap()
	failed := 0
	for i, v := range in.Values {
		if v.Err != nil {
			failed++
			why.addf("%s failed: %v", p.Queries[i], v.Err)
			continue
		}
		why.add(p.Queries[i], "=", formatNum(v.V))
		if p.windows[i] > 0 {
			st.addSample(p.Queries[i], now, v.V, cur, p.windows[i], maxGap)
		}
	}
	partial := failed > 0

	restoring := in.Fresh && st.Known && cur < st.Expected
	if restoring {
		why.addf("the target started afresh at %d (its replicas end with the daemon; %d before)", cur, st.Expected)
	}
	adopted := st.Known && cur != st.Expected && !restoring
	if adopted {
		why.addf("observed %d replicas, expected %d: adopting the change made outside autoscalerd", cur, st.Expected)
		dir := Up
		if cur < st.Expected {
			dir = Down
		}
		st.LastAction, st.LastDirection = now, dir
		if dir == Up {
			st.LastUp = now
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	env := p.evalEnv(&st, now)
	lo, hi := p.bounds(now, &why, env.spans)
	d.Min, d.Max = lo, hi

	desired := -1
	raw, err := env.replicas(p, in, cur, lo, hi)
	for _, n := range env.notes {
		why.add(n)
	}
	if err == nil {
		d.Raw = raw
		n := ceilCount(raw)
		var b strings.Builder
		p.replicas.render(&b, in.Values)
		b.WriteString("=")
		b.WriteString(formatNum(raw))
		if float64(n) != raw {
			fmt.Fprintf(&b, "↑%d", n)
		}
		why.add(b.String())
		desired = clamp(n, lo, hi)
		why.add("clamp[", itoa(lo), ",", itoa(hi), "]=", itoa(desired))
	} else {
		if partial && strings.Contains(err.Error(), "<nil>") {
			err = missingQueryErr(p, in, err)
		}
		why.addf("expression: %v", err)
	}
	// A window not yet watched in full is not an outage: it is no error for the status
	// page, and it neither counts towards failure_threshold nor resets the count.
	warming := err != nil && errors.Is(err, errWarmingUp)
	if err != nil && !warming {
		d.Err = err.Error()
	}

	failedTick := partial || (err != nil && !warming)
	switch {
	case failedTick:
		st.Failures++
	case !warming:
		st.Failures = 0
	}
	fallback := false
	if failedTick && p.Fallback != nil && st.Failures >= p.FailureThreshold {
		fb := clamp(*p.Fallback, lo, hi)
		fallback = true
		why.addf("on_error: %d failed ticks ≥ %d → fallback %d", st.Failures, p.FailureThreshold, fb)
		desired = max(desired, fb)
	}

	bypassUp := false
	if p.activation != nil && desired >= 0 {
		active, aerr := env.activation(p, in, cur, lo, hi)
		switch {
		case aerr != nil && !fallback:
			why.addf("activation: %v", aerr)
			desired = -1
		case aerr != nil:
		case active:
			if desired < 1 {
				desired = clamp(1, 1, max(hi, 1))
			}
			bypassUp = cur == 0
			why.addf("active → %d", desired)
		default:
			// Inactive means "no work", not "below the floor": a schedule's min still holds.
			desired = lo
			why.addf("inactive → %d", lo)
		}
	}
	d.Desired = desired

	// The stabilisation history. A tick with missing data or no desired count records the
	// current count, so it can never argue for a scale-down later.
	rec := desired
	if rec < 0 || (partial && !fallback && rec < cur) {
		rec = cur
	}
	st.addRec(now, rec, p.historyWindow(), maxGap)
	st.LastTick = now

	switch {
	case adopted:
		why.add("hold this tick")
	case desired < 0:
		why.add("no desired count → hold at ", itoa(cur))
	case desired == cur:
		why.add("hold at ", itoa(cur))
	case desired > cur && restoring:
		// Not a decision to add capacity but what the policy ran before the daemon
		// restarted: no cooldown.up, and it starts none (Commit).
		d.To = min(desired, max(lo, st.Expected))
		d.Restore = true
		why.addf("restore %d at once (no cooldown.up)", d.To)
	case desired > cur:
		d.To = p.scaleUp(&st, &why, cur, desired, now, bypassUp)
	default:
		if partial && !fallback {
			why.add("a query failed: never scale down on partial data → hold")
		} else {
			d.To = p.scaleDown(&st, &why, cur, now)
		}
	}

	if d.To != cur && st.Paused {
		why.addf("paused (would scale %d→%d) → hold", cur, d.To)
		d.To = cur
	}
	switch {
	case d.To > cur:
		d.Action = Up
	case d.To < cur:
		d.Action = Down
	}
	if d.Action != Hold {
		if p.DryRun {
			why.add("dry run: would scale ", itoa(cur), "→", itoa(d.To))
		} else {
			why.add("scale ", itoa(cur), "→", itoa(d.To))
		}
	}
	st.Known = true
	st.Expected = cur
	d.Reason = why.String()
	return d, st
}

// Commit records in st that d's action was carried out (or, in dry-run, that it would
// have been): the cooldowns count from it and the target is expected at d.To. A hold
// changes nothing.
func (st *State) Commit(d Decision) {
	if d.Action == Hold {
		return
	}
	if d.Restore {
		if !d.DryRun {
			st.Expected = d.To
		}
		return
	}
	st.LastAction, st.LastDirection = d.Time, d.Action
	if d.Action == Up {
		st.LastUp = d.Time
	}
	if !d.DryRun {
		st.Expected = d.To // in dry-run the target is never touched
	}
}

func (p *Policy) scaleUp(st *State, why *chain, cur, desired int, now time.Time, bypass bool) int {
	target := desired
	if p.StabilizationUp > 0 && !bypass {
		if !st.recsCover(now, p.StabilizationUp) {
			above := st.recsFor(now, func(v int) bool { return v > cur })
			why.addf("stabilization.up: demand seen for %s of %s → hold", fmtDur(above), fmtDur(p.StabilizationUp))
			return cur
		}
		lo, _ := st.recsRange(now, p.StabilizationUp)
		if lo <= cur {
			why.addf("stabilization.up: lowest desired in %s is %d → hold", fmtDur(p.StabilizationUp), lo)
			return cur
		}
		target = lo
		why.addf("stabilization.up: lowest in %s=%d", fmtDur(p.StabilizationUp), lo)
	}
	switch {
	case bypass:
		why.add("activation: 0→1 skips cooldown.up")
	case !st.LastAction.IsZero() && now.Sub(st.LastAction) < p.CooldownUp:
		why.addf("cooldown.up: %s left → hold", fmtDur(p.CooldownUp-now.Sub(st.LastAction)))
		return cur
	default:
		why.add("cooldown.up ok")
	}
	if lim := p.StepUp.Limit(cur); lim >= 0 && target > cur+lim {
		target = cur + lim
		why.addf("step.up %s → %d", p.StepUp, target)
	}
	return target
}

func (p *Policy) scaleDown(st *State, why *chain, cur int, now time.Time) int {
	if !st.LastUp.IsZero() && now.Sub(st.LastUp) < p.CooldownDown {
		why.addf("cooldown.down: %s left since the last scale-up → hold", fmtDur(p.CooldownDown-now.Sub(st.LastUp)))
		return cur
	}
	target := 0
	if w := p.CooldownDown; w > 0 {
		if !st.recsCover(now, w) {
			below := st.recsFor(now, func(v int) bool { return v < cur })
			why.addf("cooldown.down: below %d for %s of %s → hold", cur, fmtDur(below), fmtDur(w))
			return cur
		}
		_, hi := st.recsRange(now, w)
		if hi >= cur {
			why.add("cooldown.down: wanted ", itoa(hi), " within the last ", fmtDur(w), " → hold")
			return cur
		}
		target = hi
		why.add("cooldown.down ok: highest in ", fmtDur(w), "=", itoa(hi))
	} else {
		_, target = st.recsRange(now, 0)
	}
	if lim := p.StepDown.Limit(cur); lim >= 0 && target < cur-lim {
		target = cur - lim
		why.addf("step.down %s → %d", p.StepDown, target)
	}
	return target
}

// bounds returns min and max at now, raised or changed by active schedules. Several active
// schedules: the highest floor and the highest ceiling win (more capacity is the safe side).
// spans[i] remembers schedule i's answer while it is known to hold: the cron is the most
// expensive part of a tick, and its answer changes twice per window.
func (p *Policy) bounds(now time.Time, why *chain, spans []span) (lo, hi int) {
	lo, hi = p.Min, p.Max
	schedMax := -1
	for i := range p.Schedules {
		s := &p.Schedules[i]
		sp := &spans[i]
		if now.Before(sp.from) || !now.Before(sp.until) {
			sp.active, sp.until = s.ActiveUntil(now)
			sp.from = now
		}
		if !sp.active {
			continue
		}
		if s.Min != nil && *s.Min > lo {
			lo = *s.Min
		}
		if s.Max != nil && *s.Max > schedMax {
			schedMax = *s.Max
		}
		why.addf("schedule %q active", s.Cron)
	}
	if schedMax >= 0 {
		hi = schedMax
	}
	return lo, max(hi, lo)
}

// span is a schedule's answer (active or not) for the times in [from, until).
type span struct {
	from, until time.Time
	active      bool
}

func clamp(n, lo, hi int) int { return min(max(n, lo), hi) }

// ceilCount rounds an expression value up to a replica count, forgiving float noise
// (3.0000000001 is 3) and treating negative values as zero.
func ceilCount(raw float64) int {
	if raw <= 0 {
		return 0
	}
	if raw > 1e9 {
		return 1e9
	}
	return int(math.Ceil(raw - 1e-9))
}

func fmtDur(d time.Duration) string {
	if d >= time.Second {
		d = d.Round(time.Second)
	}
	return configs.FormatDuration(d)
}

// chain builds the human-readable reason: "queued=350 → ceil(350 / 100)=4 → ...".
type chain struct{ b strings.Builder }

// add adds a link made of parts. The links every tick builds are added this way rather
// than with addf: reasons are built on every tick of every policy, and fmt's boxing of
// each argument was a tenth of a tick.
func (c *chain) add(parts ...string) {
	c.next()
	for _, s := range parts {
		c.b.WriteString(s)
	}
}

var itoa = strconv.Itoa

// addf formats straight into the chain.
func (c *chain) addf(format string, args ...any) {
	c.next()
	fmt.Fprintf(&c.b, format, args...)
}

func (c *chain) next() {
	if c.b.Len() == 0 {
		c.b.Grow(160) // most chains fit: one allocation rather than five
		return
	}
	c.b.WriteString(" → ")
}

func (c *chain) String() string { return c.b.String() }

// evalEnv is the expression's scope, reused across ticks, with the schedules' spans.
type evalEnv struct {
	spans   []span
	vars    map[string]any
	samples map[string][]Sample
	now     time.Time
	vm      vm.VM
	// throughput is the tick's State.Throughput, which the learned functions update (a
	// map, not the State: a pointer to the caller's State would make every State escape
	// to the heap, an allocation per tick of every policy).
	throughput map[string]Sample
	// notes are what the learned functions say about their estimates this tick, for the
	// reason chain.
	notes []string
	// recs and lastUp are the tick's State.Recs and State.LastUp: what cooldown.down will
	// keep running whatever this tick asks for (drain plans beside it).
	recs   []Rec
	lastUp time.Time
	kept   []float64 // drain's scratch for keptReplicas
	// lastAction is the tick's State.LastAction: cooldown.up counts from it, so it says
	// when a later tick may take a step up that drain lets wait (stepWait).
	lastAction time.Time
	// bound is what bind last stored in vars: the queries' values in order, then current,
	// min and max. A value that has not changed since is not stored again (a map write
	// hashes the name and boxes the number: most of binding, and most ticks change none).
	bound []boundValue
}

// boundValue is one variable as bind last stored it; ok false for a failed query (nil).
type boundValue struct {
	bits    uint64
	ok, set bool
}

// evalEnv returns the policy's scratch scope, bound to st and now. The caller holds p.mu.
func (p *Policy) evalEnv(st *State, now time.Time) *evalEnv {
	if p.env == nil {
		p.env = newEvalEnv(p)
	}
	if p.learn != nil && st.Throughput == nil {
		st.Throughput = map[string]Sample{}
	}
	p.env.samples, p.env.now, p.env.notes, p.env.throughput = st.Samples, now, p.env.notes[:0], st.Throughput
	p.env.recs, p.env.lastUp, p.env.lastAction = st.Recs, st.LastUp, st.LastAction
	return p.env
}

var errNoSamples = errors.New("no samples in the window yet")

// errWarmingUp says a window function was asked about a window the policy has not watched
// in full yet (a fresh start, or a gap in the query's history). "min_over(cpu, 5m) > 70"
// must not be true after ten seconds of high CPU. It holds the tick but is not a failure.
var errWarmingUp = errors.New("window not fully watched yet")

func newEvalEnv(p *Policy) *evalEnv {
	e := &evalEnv{vars: make(map[string]any, len(p.Queries)+8), spans: make([]span, len(p.Schedules)), bound: make([]boundValue, len(p.Queries)+3)}
	// window returns the samples of a query in (now-secs, now]. The history must reach
	// back to the window's start: the sample just before it is kept for that (addSample).
	window := func(fn, name string, secs float64) ([]Sample, error) {
		xs := e.samples[name]
		from := e.now.Add(-time.Duration(secs * float64(time.Second)))
		i := len(xs)
		for i > 0 && xs[i-1].T.After(from) {
			i--
		}
		if i == 0 {
			watched := time.Duration(0)
			if len(xs) > 0 {
				watched = e.now.Sub(xs[0].T)
			}
			return nil, fmt.Errorf("%s(%s, %s): %w (%s of it)", fn, name, fmtDur(e.now.Sub(from)), errWarmingUp, fmtDur(watched))
		}
		return xs[i:], nil
	}
	for _, f := range functions {
		if f.window == nil {
			continue
		}
		e.vars[f.name] = windowFn(func(q string, secs float64) (float64, error) {
			xs, err := window(f.name, q, secs)
			if err != nil {
				return 0, err
			}
			if len(xs) == 0 {
				return 0, fmt.Errorf("%s(%s): %w", f.name, q, errNoSamples)
			}
			return f.window(q, xs)
		})
	}
	e.learnFns(p)
	return e
}

func (e *evalEnv) bind(p *Policy, in Inputs, cur, lo, hi int) {
	for i, name := range p.Queries {
		v := in.Values[i]
		e.store(i, name, v.V, v.Err == nil)
	}
	n := len(p.Queries)
	e.store(n, varCurrent, float64(cur), true)
	e.store(n+1, varMin, float64(lo), true)
	e.store(n+2, varMax, float64(hi), true)
}

// store sets vars[name] to v (nil when !ok) unless bind stored just that last time.
func (e *evalEnv) store(i int, name string, v float64, ok bool) {
	b := boundValue{ok: ok, set: true}
	if ok {
		b.bits = math.Float64bits(v)
	}
	if e.bound[i] == b {
		return
	}
	e.bound[i] = b
	if ok {
		e.vars[name] = v
	} else {
		e.vars[name] = nil
	}
}

func (e *evalEnv) replicas(p *Policy, in Inputs, cur, lo, hi int) (float64, error) {
	e.bind(p, in, cur, lo, hi)
	out, err := e.vm.Run(p.replicas.prog, e.vars)
	if err != nil {
		return 0, shortExprErr(err)
	}
	f, ok := out.(float64)
	switch {
	case !ok:
		return 0, fmt.Errorf("result %v is not a number", out)
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, fmt.Errorf("result %v is not a finite number", f)
	}
	return f, nil
}

func (e *evalEnv) activation(p *Policy, in Inputs, cur, lo, hi int) (bool, error) {
	e.bind(p, in, cur, lo, hi)
	out, err := e.vm.Run(p.activation.prog, e.vars)
	if err != nil {
		return false, shortExprErr(err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("result %v is not true or false", out)
	}
	return b, nil
}

// missingQueryErr explains an expression that could not be evaluated because a query it
// uses failed (expr-lang says "invalid operation: <nil> / int"): which query, and how to
// decide without it.
func missingQueryErr(p *Policy, in Inputs, err error) error {
	var names []string
	for i, v := range in.Values {
		if v.Err != nil {
			names = append(names, p.Queries[i])
		}
	}
	it := "it"
	if len(names) > 1 {
		it = "them"
	}
	return &exprError{err: err, msg: fmt.Sprintf("no value without %s, which failed this tick; to decide without %s, give a default: %s ?? 0",
		strings.Join(names, " and "), it, names[0])}
}

// shortExprErr keeps the first line of expr's runtime errors (the rest is a source snippet)
// and the error chain, so Decide can tell a warming-up window from a failure.
func shortExprErr(err error) error {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	msg = strings.ReplaceAll(msg, varMin, "min")
	msg = strings.ReplaceAll(msg, varMax, "max")
	return &exprError{msg: msg, err: err}
}

type exprError struct {
	msg string
	err error
}

func (e *exprError) Error() string { return e.msg }
func (e *exprError) Unwrap() error { return e.err }
