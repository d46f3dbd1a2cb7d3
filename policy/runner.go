package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autoscalerd/autoscalerd/sources"
	"github.com/autoscalerd/autoscalerd/targets"
)

const (
	statusTimeout = 30 * time.Second
	scaleTimeout  = 5 * time.Minute
	maxBackoff    = 5 * time.Minute
	// saveEvery bounds how much window history a crash can lose; actions save at once.
	saveEvery = 2 * time.Minute
	// minWakeGap keeps a storm of target events from turning into a storm of evaluations.
	minWakeGap    = time.Second
	tickSlot      = 100 * time.Millisecond
	keepDecisions = 64
	// The status page charts one hour at this resolution.
	chartStep   = 15 * time.Second
	chartPoints = 240
)

// runner is one policy's loop. The loop goroutine owns st; everything the HTTP side reads
// is copied under mu.
type runner struct {
	e        *Engine
	p        *Policy
	target   targets.Target
	sources  []sources.Source
	timeouts []time.Duration
	log      *slog.Logger
	m        *policyMetrics
	sem      chan struct{}
	wake     chan struct{}
	cancel   context.CancelFunc
	done     chan struct{}

	st           State
	lastSave     time.Time
	dirty        bool // state changed since the last save
	backoff      int
	backoffUntil time.Time
	lastTick     time.Time
	reached      atomic.Bool
	paused       atomic.Bool

	mu        sync.Mutex
	current   int
	ready     int
	values    []Value
	last      *Decision
	lastErr   string
	decisions ring
	chart     chartRing
}

// chartRing holds the status page's last hour in columns (a few KB per policy).
type chartRing struct {
	start    int
	n        int
	t        [chartPoints]int64 // unix seconds
	desired  [chartPoints]int32
	replicas [chartPoints]int32
	values   [][chartPoints]float32 // per query
}

func (c *chartRing) add(t time.Time, desired, replicas int, values []Value) {
	if len(c.values) != len(values) {
		c.values = make([][chartPoints]float32, len(values))
	}
	// The newest point follows every tick until it is a full step after the one before
	// it; then the next tick starts a new point. The chart is always current and its
	// points stay about a step apart.
	var i int
	if c.n >= 2 && c.t[c.at(c.n-1)]-c.t[c.at(c.n-2)] < int64(chartStep/time.Second) {
		i = c.at(c.n - 1)
	} else {
		i = c.at(c.n)
		if c.n == chartPoints {
			c.start = (c.start + 1) % chartPoints
		} else {
			c.n++
		}
	}
	c.t[i], c.desired[i], c.replicas[i] = t.Unix(), int32(desired), int32(replicas)
	for q, v := range values {
		c.values[q][i] = float32(v.V)
		if v.Err != nil {
			c.values[q][i] = float32(math.NaN())
		}
	}
}

func (c *chartRing) at(k int) int { return (c.start + k) % chartPoints }

func (c *chartRing) points() []ChartPoint {
	out := make([]ChartPoint, c.n)
	for k := range c.n {
		i := (c.start + k) % chartPoints
		p := ChartPoint{Time: time.Unix(c.t[i], 0), Desired: int(c.desired[i]), Replicas: int(c.replicas[i]), Values: make([]float64, len(c.values))}
		for q := range c.values {
			p.Values[q] = float64(c.values[q][i])
		}
		out[k] = p
	}
	return out
}

// ring keeps the last keepDecisions decisions without copying on every tick.
type ring struct {
	buf   []Decision
	start int
}

// add appends d, or replaces the newest entry when both are holds at the same count with
// the same desired count, so a steady state does not push the interesting decisions out.
func (r *ring) add(d Decision) {
	if n := len(r.buf); n > 0 {
		last := &r.buf[(r.start+n-1)%n]
		// A hold that only differs in the values read replaces the previous one.
		if d.Action == Hold && last.Action == Hold && last.From == d.From && last.Desired == d.Desired && last.Err == d.Err {
			*last = d
			return
		}
	}
	if len(r.buf) < keepDecisions {
		r.buf = append(r.buf, d)
		return
	}
	r.buf[r.start] = d
	r.start = (r.start + 1) % len(r.buf)
}

// list returns the decisions oldest first.
func (r *ring) list() []Decision {
	out := make([]Decision, 0, len(r.buf))
	out = append(out, r.buf[r.start:]...)
	return append(out, r.buf[:r.start]...)
}

// ChartPoint is one sample of the status page's chart.
type ChartPoint struct {
	Time     time.Time
	Values   []float64 // per query; NaN when the query failed
	Desired  int
	Replicas int
}

// Status is a policy's state as the HTTP API and `autoscalerd status` show it.
type Status struct {
	Name         string              `json:"name"`
	Target       string              `json:"target"`
	Current      int                 `json:"current"`
	Ready        *int                `json:"ready,omitempty"`
	Desired      *int                `json:"desired"`
	Min          int                 `json:"min"`
	Max          int                 `json:"max"`
	Paused       bool                `json:"paused"`
	DryRun       bool                `json:"dry_run"`
	LastDecision *DecisionView       `json:"last_decision"`
	LastError    string              `json:"last_error"`
	Queries      map[string]*float64 `json:"queries"`
	QueryErrors  map[string]string   `json:"query_errors,omitempty"`
	Interval     string              `json:"interval"`
	// QueryOrder is the query names in configuration order.
	QueryOrder []string `json:"-"`
}

// DecisionView is a decision as JSON.
type DecisionView struct {
	Time    time.Time `json:"time"`
	From    int       `json:"from"`
	To      int       `json:"to"`
	Action  string    `json:"action"`
	Desired *int      `json:"desired"`
	Reason  string    `json:"reason"`
	DryRun  bool      `json:"dry_run,omitempty"`
}

// View converts a decision for JSON.
func (d Decision) View() DecisionView {
	v := DecisionView{Time: d.Time, From: d.From, To: d.To, Action: d.Action, Reason: d.Reason, DryRun: d.DryRun}
	if d.Desired >= 0 {
		n := d.Desired
		v.Desired = &n
	}
	return v
}

func (r *runner) restore() {
	if r.e.store == nil {
		return
	}
	st, err := r.e.store.Load(r.p.Name)
	switch {
	case err == nil:
		r.st = st
		r.paused.Store(st.Paused)
	case IsNotExist(err):
		r.log.Info("no saved state; starting cautious (no scale-down before a full cooldown.down of history)")
	default:
		r.log.Warn("saved state unusable; starting cautious (no scale-down before a full cooldown.down of history)", "err", err)
	}
}

// inherit takes over the state of the runner it replaces on reload.
func (r *runner) inherit(old *runner) {
	r.st = old.st
	r.st.env = nil // the expression may have changed
	r.lastSave = old.lastSave
	r.paused.Store(old.paused.Load())
	r.reached.Store(old.reached.Load())
	old.mu.Lock()
	r.current, r.ready, r.last, r.lastErr = old.current, old.ready, old.last, old.lastErr
	r.decisions = old.decisions
	if slices.Equal(old.p.Queries, r.p.Queries) {
		r.chart = old.chart
	}
	old.mu.Unlock()
}

func (r *runner) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

func (r *runner) closeSources() {
	for _, s := range r.sources {
		if err := sources.Close(s); err != nil {
			r.log.Warn("closing query source", "err", err)
		}
	}
	r.sources = nil
}

func (r *runner) loop(ctx, hard context.Context) {
	if h, ok := r.target.(targets.Historian); ok {
		r.adoptHistory(ctx, h)
	}
	if w, ok := r.target.(targets.Watcher); ok {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Watch(ctx, r.poke); err != nil && ctx.Err() == nil {
				r.log.Warn("watching the target for outside changes stopped; the tick still notices them", "err", err)
			}
		}()
		defer wg.Wait()
	}
	// Ticks fall on a grid of tickSlot, at the policy's interval from its first tick. The
	// first ticks of many policies are spread over the interval (at most 2 s), but policies
	// on the same slot wake together: a thousand policies cost a few dozen wake-ups a
	// second instead of a thousand, which is most of their cost on a small machine.
	spread := min(r.p.Interval, 2*time.Second)
	slots := max(int64(spread/tickSlot), 1)
	next := time.Now().Truncate(tickSlot).Add(time.Duration(rand.Int64N(slots)+1) * tickSlot)
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			r.save()
			return
		case <-timer.C:
		case <-r.wake:
			if since := time.Since(r.lastTick); since < minWakeGap {
				timer.Reset(minWakeGap - since)
				continue
			}
		}
		r.lastTick = time.Now()
		r.tick(ctx, hard)
		now := time.Now()
		for !next.After(now) {
			next = next.Add(r.p.Interval)
		}
		timer.Reset(time.Until(next))
	}
}

// poke asks for an early tick (a target event).
func (r *runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// adoptHistory makes the target's own record of its last scaling action count as ours
// when it is newer than the saved state (another daemon acted, or the state was lost).
func (r *runner) adoptHistory(ctx context.Context, h targets.Historian) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	last, ok, err := h.LastScaled(ctx)
	at, from, to := last.At, last.From, last.To
	if err != nil {
		r.log.Warn("reading the target's scaling history", "err", err)
		return
	}
	if !ok || !at.After(r.st.LastAction) || from == to {
		return
	}
	r.st.LastAction, r.st.LastDirection = at, Down
	if to > from {
		r.st.LastDirection, r.st.LastUp = Up, at
	}
	r.log.Info("adopted the target's last scaling event as the last action", "at", at, "from", from, "to", to)
}

func (r *runner) tick(ctx, hard context.Context) {
	start := time.Now()
	now := r.e.clock()
	if now.Before(r.backoffUntil) {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, statusTimeout)
	status, err := r.target.Status(sctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		r.targetFailed(now, fmt.Errorf("target status: %w", err))
		return
	}
	r.reached.Store(true)
	values := r.read(ctx)
	if ctx.Err() != nil {
		return
	}

	prev := r.st
	before := r.st.summary()
	r.st.Paused = r.paused.Load()
	var d Decision
	d, r.st = Decide(r.p, r.st, Inputs{Values: values, Current: status.Replicas}, now)
	lastErr := ""
	if d.Action != Hold && !r.p.DryRun {
		if err := r.scale(hard, d); err != nil {
			// Undo the action in the state: no cooldown starts for an action that did
			// not happen, and the count we expect is the one we saw.
			r.st.LastAction, r.st.LastDirection, r.st.LastUp = prev.LastAction, prev.LastDirection, prev.LastUp
			r.st.Expected = d.From
			if errors.Is(err, targets.ErrNoop) {
				d.Reason += fmt.Sprintf(" → target cannot act now (%v); retry next tick", err)
			} else {
				d.Reason += fmt.Sprintf(" → scale failed: %v", err)
				lastErr = err.Error()
				r.failBackoff(now)
				if r.m != nil {
					r.m.scaleErrors.Inc()
				}
			}
			d.To, d.Action = d.From, Hold
		}
	}
	if d.Action != Hold {
		r.backoff = 0
		if r.m != nil {
			if d.Action == Up {
				r.m.up.Inc()
			} else {
				r.m.down.Inc()
			}
		}
		r.log.Info("scaling", "from", d.From, "to", d.To, "dry_run", d.DryRun, "reason", d.Reason)
	} else if lastErr == "" {
		r.backoff = 0
	}
	if d.Err != "" && lastErr == "" {
		lastErr = "expression: " + d.Err
	}
	for i, v := range values {
		if v.Err != nil && lastErr == "" {
			lastErr = fmt.Sprintf("query %s: %v", r.p.Queries[i], v.Err)
		}
	}
	r.record(d, status, values, lastErr)
	// A real action or a pause is saved at once: a restart must never shorten the
	// cooldown it starts. Other changes (the windows' history, a dry-run action) are saved
	// at most every saveEvery; a tick that changed nothing worth keeping writes nothing.
	switch {
	case (d.Action != Hold && !r.p.DryRun) || prev.Paused != r.st.Paused:
		r.save()
	case r.dirty || r.st.summary() != before || len(r.st.Samples) > 0:
		r.dirty = true
		if time.Since(r.lastSave) > saveEvery {
			r.save()
		}
	}
	if r.m != nil {
		r.m.eval.Observe(time.Since(start).Seconds())
	}
}

func (r *runner) read(ctx context.Context) []Value {
	values := make([]Value, len(r.sources))
	readOne := func(i int) {
		v, err := sources.Read(ctx, r.sources[i], r.timeouts[i])
		values[i] = Value{V: v, Err: err}
		if r.m != nil {
			if err != nil {
				r.m.errors[i].Inc()
			} else {
				r.m.values[i].Set(v)
			}
		}
	}
	if len(r.sources) == 1 {
		readOne(0)
		return values
	}
	var wg sync.WaitGroup
	for i := range r.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readOne(i)
		}()
	}
	wg.Wait()
	return values
}

// scale performs the action under the engine-wide concurrency limit. It is bounded by its
// own timeout and by hard, not by the loop's context, so a shutdown lets it finish.
func (r *runner) scale(hard context.Context, d Decision) error {
	select {
	case r.sem <- struct{}{}:
	case <-hard.Done():
		return hard.Err()
	}
	defer func() { <-r.sem }()
	ctx, cancel := context.WithTimeout(hard, scaleTimeout)
	defer cancel()
	return r.target.Scale(ctx, d.To, targets.Reason{Policy: r.p.Name, Message: d.Reason})
}

func (r *runner) failBackoff(now time.Time) {
	r.backoff++
	wait := time.Duration(float64(r.p.Interval) * math.Pow(2, float64(min(r.backoff-1, 16))))
	wait = min(wait, maxBackoff)
	if r.backoff > 1 {
		r.backoffUntil = now.Add(wait - r.p.Interval/2)
	}
}

func (r *runner) targetFailed(now time.Time, err error) {
	r.failBackoff(now)
	if r.m != nil {
		r.m.scaleErrors.Inc()
	}
	r.log.Warn("target unreachable; holding", "err", err)
	r.mu.Lock()
	r.lastErr = err.Error()
	d := Decision{Time: now, From: r.current, To: r.current, Action: Hold, Raw: math.NaN(), Desired: -1,
		Reason: fmt.Sprintf("%v → hold (retry with backoff)", err), DryRun: r.p.DryRun}
	r.last = &d
	r.appendDecision(d)
	r.mu.Unlock()
}

func (r *runner) record(d Decision, status targets.Status, values []Value, lastErr string) {
	lo, hi := d.Min, d.Max
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current, r.ready = d.To, status.Ready
	if r.p.DryRun {
		r.current = status.Replicas
	}
	r.values, r.last, r.lastErr = values, &d, lastErr
	r.appendDecision(d)
	r.chart.add(d.Time, d.Desired, r.current, values)
	if r.m != nil {
		r.m.current.Set(float64(r.current))
		if d.Desired >= 0 {
			r.m.desired.Set(float64(d.Desired))
		}
		r.m.min.Set(float64(lo))
		r.m.max.Set(float64(hi))
	}
}

func (r *runner) appendDecision(d Decision) { r.decisions.add(d) }

func (r *runner) save() {
	if r.e.store == nil {
		return
	}
	r.st.Paused = r.paused.Load()
	if err := r.e.store.Save(r.p.Name, r.st); err != nil {
		r.log.Error("saving state", "err", err)
		return
	}
	r.lastSave, r.dirty = time.Now(), false
}

func (r *runner) setPaused(p bool) {
	r.paused.Store(p)
	r.log.Info("policy paused", "paused", p)
	r.poke()
}

func (r *runner) status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Status{
		Name:       r.p.Name,
		Target:     r.p.Config.Target.Key(),
		Current:    r.current,
		Min:        r.p.Min,
		Max:        r.p.Max,
		Paused:     r.paused.Load(),
		DryRun:     r.p.DryRun,
		LastError:  r.lastErr,
		Queries:    map[string]*float64{},
		QueryOrder: r.p.Queries,
		Interval:   fmtDur(r.p.Interval),
	}
	if r.ready >= 0 && r.last != nil {
		n := r.ready
		s.Ready = &n
	}
	if r.last != nil {
		v := r.last.View()
		s.LastDecision = &v
		s.Desired = v.Desired
		s.Min, s.Max = r.last.Min, r.last.Max
	}
	for i, q := range r.p.Queries {
		if i < len(r.values) {
			if r.values[i].Err == nil {
				f := r.values[i].V
				s.Queries[q] = &f
				continue
			}
			if s.QueryErrors == nil {
				s.QueryErrors = map[string]string{}
			}
			s.QueryErrors[q] = r.values[i].Err.Error()
		}
		s.Queries[q] = nil
	}
	return s
}

func (r *runner) recent() ([]Decision, []ChartPoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.decisions.list(), r.chart.points()
}
