package engine

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

	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/sources"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/warm"
)

const (
	statusTimeout = 30 * time.Second
	scaleTimeout  = 5 * time.Minute
	maxBackoff    = 5 * time.Minute
	// saveEvery bounds how much window history a crash can lose; actions save at once.
	saveEvery = 2 * time.Minute
	// minWakeGap keeps a storm of target events from turning into a storm of evaluations.
	minWakeGap = time.Second
	tickSlot   = 100 * time.Millisecond
	// Each policy keeps its last keepDecisions decisions in memory (the status page, the
	// API), fewer when there are so many policies that all of them would hold more than
	// decisionBudget: down to minKeepDecisions each. Every decision that changed or failed
	// to change something is in the decision log as well, however many are kept here.
	keepDecisions    = 64
	minKeepDecisions = 16
	decisionBudget   = 160_000
	// The status page charts one hour in at most this many points (chart.go).
	chartPoints = 150
)

// runner is one policy's loop. The running tick owns st (one tick at a time, see sched);
// everything the HTTP side reads is copied under mu.
type runner struct {
	p       *policy.Policy
	store   *Store
	clock   func() time.Time
	obs     Observer
	work    *workers
	alarms  *alarms // the engine's: when the ticks run
	target  targets.Target
	sources []sources.Source
	readers []*reader
	log     *slog.Logger
	m       *policyMetrics
	pool    targets.Pooler
	sem     chan struct{}
	sched   sched
	// successorOf is the runner of the previous configuration that drove this target; the
	// loop starts once it has stopped (handedOver closed), continuing its state when
	// inherits is set (the same policy).
	successorOf *runner
	inherits    bool
	handedOver  chan struct{}

	st           policy.State
	lastSave     time.Time
	dirty        bool // state changed since the last save
	backoff      int
	backoffUntil time.Time
	reached      atomic.Bool
	paused       atomic.Bool
	// targetHealth, queryHealth and saveHealth are owned by the loop goroutine; the
	// counts the HTTP side reads are mirrored in targetFailures and saveErr.
	targetHealth   health
	queryHealth    []health
	saveHealth     health
	targetFailures atomic.Int32
	// lastDryRun is the last dry-run action logged, so a dry run logs a decision when it
	// changes rather than on every tick.
	lastDryRun [2]int
	// dryRunRepeat says this tick's dry-run action is the one of the tick before.
	dryRunRepeat bool
	// budget is tickBudget, set once by newRunner (the readers do not change).
	budget time.Duration
	// drainsSeen holds the ended drains already counted in the metrics; timedOut the
	// drains that timed out since the last tick, for the observer.
	drainsSeen map[uint64]bool
	timedOut   []targets.DrainInfo
	// beat is when the loop last showed progress (unix nanoseconds); busyUntil, while a
	// tick runs, is when it must be over by (0 between ticks). The watchdog reads both.
	beat, busyUntil atomic.Int64

	mu        sync.Mutex
	cancel    context.CancelFunc // of the running loop, nil when stopped
	done      chan struct{}
	current   int
	ready     int
	values    []policy.Value
	last      *policy.Decision
	lastErr   string
	saveErr   string
	decisions ring
	chart     chartRing
	drains    []targets.DrainInfo
	// poolSeen is the warm pool at the last tick (pool: the target's, nil without one).
	poolSeen warm.Info
}

func (r *runner) restore() {
	if r.store == nil {
		return
	}
	st, err := r.store.Load(r.p.Name)
	switch {
	case err == nil:
		for _, note := range st.Restored(r.clock()) {
			r.log.Warn("saved state: " + note)
		}
		r.st = st
		r.paused.Store(st.Paused)
	case IsNotExist(err):
		r.log.Info("no saved state; starting cautious (no scale-down before a full cooldown.down of history)")
	default:
		r.log.Warn("saved state unusable; starting cautious (no scale-down before a full cooldown.down of history)", "err", err)
	}
}

// inherit takes over the state of the runner it replaces on reload, once that runner has
// stopped.
func (r *runner) inherit(old *runner) {
	r.st = old.st
	r.lastSave = old.lastSave
	r.showAs(old)
}

// showAs copies what the status shows from old, the runner this one replaces.
func (r *runner) showAs(old *runner) {
	r.paused.Store(old.paused.Load())
	r.reached.Store(old.reached.Load())
	old.mu.Lock()
	defer old.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current, r.ready, r.last, r.lastErr = old.current, old.ready, old.last, old.lastErr
	r.decisions = old.decisions.clone()
	if r.target == old.target {
		r.poolSeen = old.poolSeen // the same pool: its counters go on
	}
	if slices.Equal(old.p.Queries, r.p.Queries) {
		r.chart = old.chart.clone()
	}
}

// stop ends the loop and waits for its current tick to finish.
func (r *runner) stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel = nil
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (r *runner) closeSources() {
	for _, s := range r.sources {
		if err := sources.Close(s); err != nil {
			r.log.Warn("closing query source", "err", err)
		}
	}
	r.sources = nil
}

// The loop has no goroutine of its own between ticks: an alarm (alarms.go, one timer for
// every policy) hands each tick to the engine's workers. sched decides when the next
// tick runs; the running tick owns st.
type sched struct {
	mu        sync.Mutex
	ctx, hard context.Context
	alarm     *alarm // nil until the first tick is armed
	// due is when the alarm is set for: a tick that starts before it (re-armed for later
	// while it was on its way to a worker) does nothing.
	due      time.Time
	next     time.Time // the next tick on the grid
	lastTick time.Time
	ticking  bool
	woken    bool // a poke to act on once the running tick (or the start) is over
	stopped  bool
	ticks    sync.WaitGroup // the running tick
}

// begin starts the loop under ctx: it takes over the target's history, starts listening
// for target events and arms the first tick, then returns. stopWatch ends the listening
// (after ctx has ended).
func (r *runner) begin(ctx, hard context.Context) (stopWatch func()) {
	if h, ok := r.target.(targets.Historian); ok {
		r.busyUntil.Store(time.Now().Add(statusTimeout + time.Minute).UnixNano())
		r.adoptHistory(ctx, h)
		r.busyUntil.Store(0)
		r.beat.Store(time.Now().UnixNano())
	}
	stopWatch = r.watch(ctx)
	// Ticks fall on a grid of tickSlot, at the policy's interval from its first tick. The
	// first ticks of many policies are spread over the interval (at most 2 s), but policies
	// on the same slot wake together: a thousand policies cost a few dozen wake-ups a
	// second instead of a thousand, which is most of their cost on a small machine.
	spread := min(r.p.Interval, 2*time.Second)
	slots := max(int64(spread/tickSlot), 1)
	next := time.Now().Truncate(tickSlot).Add(time.Duration(rand.Int64N(slots)+1) * tickSlot)
	s := &r.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx, s.hard, s.stopped, s.next = ctx, hard, false, next
	at := next
	if s.woken { // poked before the loop ran
		s.woken, at = false, s.wakeAt(time.Now())
	}
	s.armLocked(r, at)
	return stopWatch
}

// watch listens for the target's outside changes. A Notifier calls back without a
// goroutine of ours; a Watcher's Watch blocks, so it gets one, which ends with ctx.
func (r *runner) watch(ctx context.Context) (stop func()) {
	if n, ok := r.target.(targets.Notifier); ok {
		return n.Notify(r.poke)
	}
	w, ok := r.target.(targets.Watcher)
	if !ok {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Watch(ctx, r.poke); err != nil && ctx.Err() == nil {
			r.log.Warn("watching the target for outside changes stopped; the tick still notices them", "err", err)
		}
	}()
	return func() { <-done }
}

// end stops the loop once its context has ended: no tick starts any more, the running one
// finishes, and the state is saved as of a clean stop.
func (r *runner) end(stopWatch func()) {
	s := &r.sched
	s.mu.Lock()
	s.stopped = true
	if s.alarm != nil {
		r.alarms.cancel(s.alarm)
	}
	s.mu.Unlock()
	s.ticks.Wait()
	stopWatch()
	r.saveClean()
}

// armLocked (re)sets the alarm for at.
func (s *sched) armLocked(r *runner, at time.Time) {
	s.due = time.Now().Add(time.Until(at)) // the monotonic clock's at: the alarm goes off at due or later
	if s.alarm == nil {
		s.alarm = newAlarm(r.fire)
	}
	r.alarms.set(s.alarm, s.due)
}

// wakeAt is when a poke at now runs its tick: at once, or minWakeGap after the last tick.
func (s *sched) wakeAt(now time.Time) time.Time {
	if since := now.Sub(s.lastTick); since < minWakeGap {
		return s.lastTick.Add(minWakeGap)
	}
	return now
}

// fire runs one tick, then arms the next one.
func (r *runner) fire() {
	s := &r.sched
	s.mu.Lock()
	now := time.Now()
	if s.stopped || s.ticking || now.Before(s.due) {
		s.mu.Unlock()
		return // stopped, or a timer that was re-armed after it had fired
	}
	s.ticking, s.lastTick = true, now
	s.ticks.Add(1)
	ctx, hard := s.ctx, s.hard
	s.mu.Unlock()
	defer s.ticks.Done()

	r.busyUntil.Store(now.Add(r.tickBudget()).UnixNano())
	r.tick(ctx, hard)
	now = time.Now()
	r.busyUntil.Store(0)
	r.beat.Store(now.UnixNano())

	s.mu.Lock()
	defer s.mu.Unlock()
	s.ticking = false
	for !s.next.After(now) {
		s.next = s.next.Add(r.p.Interval)
	}
	at := s.next
	if s.woken { // poked during the tick
		s.woken, at = false, s.wakeAt(now)
	}
	if !s.stopped {
		s.armLocked(r, at)
	}
}

// poke asks for an early tick (a target event, a pause): at once, or minWakeGap after the
// last one, which keeps a storm of target events from becoming a storm of evaluations.
func (r *runner) poke() {
	s := &r.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ticking || s.stopped || s.alarm == nil {
		s.woken = true
		return
	}
	s.armLocked(r, s.wakeAt(time.Now()))
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
	r.st.LastAction, r.st.LastDirection = at, policy.Down
	if to > from {
		r.st.LastDirection, r.st.LastUp = policy.Up, at
	}
	r.log.Info("adopted the target's last scaling event as the last action", "at", at, "from", from, "to", to)
}

// targetStatus asks the target for its status, within statusTimeout unless it answers from
// memory.
func (r *runner) targetStatus(ctx context.Context) (targets.Status, error) {
	if _, ok := r.target.(targets.InMemory); ok {
		return r.target.Status(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	return r.target.Status(ctx)
}

func (r *runner) tick(ctx, hard context.Context) {
	start := time.Now()
	now := r.clock()
	if now.Before(r.backoffUntil) {
		return
	}
	status, err := r.targetStatus(ctx)
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
	r.noteQueries(now, values)

	before := r.st.Summary()
	wasFallback := inFallback(r.p, r.st)
	wasPaused := r.st.Paused
	r.st.Paused = r.paused.Load()
	var d policy.Decision
	d, r.st = policy.Decide(r.p, r.st, policy.Inputs{Values: values, Current: status.Replicas, Fresh: status.Fresh}, now)
	proposed := d.To
	d, scaleErr := r.act(hard, d)
	d = r.noteDrains(d, start)
	d = r.notePool(d)
	if scaleErr != nil {
		r.targetHealth.fail(r.log, now, fmt.Errorf("scale %d→%d: %w", d.From, d.To, scaleErr))
	} else {
		r.targetHealth.ok(r.log, now)
	}
	r.targetFailures.Store(int32(r.targetHealth.failures))
	lastErr := r.explain(d, values, scaleErr)
	r.record(d, status, values, lastErr)
	r.persist(d, wasPaused, before)
	if r.obs != nil {
		repeat := d.Action != policy.Hold && r.dryRunRepeat
		r.obs.Decided(Tick{Policy: r.p, Decision: d, Values: values, ScaleErr: scaleErr, Attempted: proposed, Fallback: inFallback(r.p, r.st), WasFallback: wasFallback, Repeat: repeat, DrainsTimedOut: r.timedOut})
		r.timedOut = nil
	}
	if r.m != nil {
		r.m.eval.Observe(time.Since(start).Seconds())
	}
}

// act carries out d's action and commits it to the state once the target has done it. A
// dry-run action is committed without touching the target. When the target fails, the
// state stays as Decide left it, that of a tick that held, and the decision becomes a
// hold whose reason says what failed. The error is that of a real failure, nil for a
// target that could not act for a reason that passes (targets.ErrNoop).
func (r *runner) act(hard context.Context, d policy.Decision) (policy.Decision, error) {
	if d.Action == policy.Hold {
		r.dryRunRepeat = false
		r.backoff = 0
		r.log.Debug("holding", "at", d.From, "reason", d.Reason)
		return d, nil
	}
	if !r.p.DryRun {
		if err := r.scale(hard, d); err != nil {
			d.To, d.Action = d.From, policy.Hold
			if errors.Is(err, targets.ErrNoop) {
				d.Reason += fmt.Sprintf(" → target cannot act now (%v); retry next tick", err)
				r.backoff = 0
				return d, nil
			}
			d.Reason += fmt.Sprintf(" → scale failed: %v", err)
			r.failBackoff(d.Time)
			if r.m != nil {
				r.m.scaleErrors.Inc()
			}
			return d, err
		}
	}
	r.st.Commit(d)
	r.backoff = 0
	if r.m != nil {
		if d.Action == policy.Up {
			r.m.up.Inc()
		} else {
			r.m.down.Inc()
		}
	}
	r.dryRunRepeat = false
	switch {
	case !d.DryRun:
		r.log.Info("scaling", "from", d.From, "to", d.To, "reason", d.Reason)
	case r.lastDryRun != [2]int{d.From, d.To}:
		// The target never follows a dry run, so the same decision comes back every
		// tick: log it when it changes.
		r.lastDryRun = [2]int{d.From, d.To}
		r.log.Info("scaling (dry run)", "from", d.From, "to", d.To, "dry_run", true, "reason", d.Reason)
	default:
		r.dryRunRepeat = true
		r.log.Debug("scaling (dry run, unchanged)", "from", d.From, "to", d.To, "reason", d.Reason)
	}
	return d, nil
}

// noteQueries logs the queries that started failing or recovered this tick.
func (r *runner) noteQueries(now time.Time, values []policy.Value) {
	for i, v := range values {
		h := &r.queryHealth[i]
		if v.Err != nil {
			h.fail(r.log, now, v.Err)
		} else {
			h.ok(r.log, now)
		}
	}
}

// tickBudget bounds how long a healthy tick can take: the target's status, the slowest
// query and a scaling action, each within its own timeout. A tick running longer is
// wedged (the watchdog stops pinging).
func (r *runner) tickBudget() time.Duration { return r.budget }

// computeBudget sets budget from the readers' timeouts; newRunner calls it once.
func (r *runner) computeBudget() {
	var slowest time.Duration
	for _, rd := range r.readers {
		slowest = max(slowest, rd.timeout)
	}
	r.budget = statusTimeout + slowest + readGrace + scaleTimeout + time.Minute
}

// explain is the policy's last error as the status shows it: the failed scale, else the
// first failed query (the root cause of most expression errors), else the expression's
// error.
func (r *runner) explain(d policy.Decision, values []policy.Value, scaleErr error) string {
	if scaleErr != nil {
		return scaleErr.Error()
	}
	for i, v := range values {
		if v.Err != nil {
			return fmt.Sprintf("query %s: %v", r.p.Queries[i], v.Err)
		}
	}
	if d.Err != "" {
		return "expression: " + d.Err
	}
	return ""
}

// persist saves the state when the tick changed what a restart must not lose. A real
// action or a pause is saved at once: a restart must never shorten the cooldown it
// starts. Other changes (the windows' history, a dry-run action) are saved at most every
// saveEvery; a tick that changed nothing worth keeping writes nothing.
func (r *runner) persist(d policy.Decision, wasPaused bool, before policy.Summary) {
	switch {
	case (d.Action != policy.Hold && !r.p.DryRun) || wasPaused != r.st.Paused:
		r.save(true)
	case r.dirty || r.st.Summary() != before || len(r.st.Samples) > 0:
		r.dirty = true
		if time.Since(r.lastSave) > saveEvery {
			r.save(false)
		}
	}
}

func (r *runner) read(ctx context.Context) []policy.Value {
	values := make([]policy.Value, len(r.readers))
	readOne := func(i int) {
		v, err := r.readers[i].read(ctx)
		values[i] = policy.Value{V: v, Err: err}
		if r.m != nil {
			if err != nil {
				r.m.errors[i].Inc()
			} else {
				r.m.values[i].Set(v)
			}
		}
	}
	if len(r.readers) == 1 {
		readOne(0)
		return values
	}
	var wg sync.WaitGroup
	for i := range r.readers[1:] {
		wg.Add(1)
		go func() { // not a tick worker: it waits for the read workers
			defer wg.Done()
			readOne(i + 1)
		}()
	}
	readOne(0)
	wg.Wait()
	return values
}

// scale performs the action under the engine-wide concurrency limit. It is bounded by its
// own timeout and by hard, not by the loop's context, so a shutdown lets it finish.
func (r *runner) scale(hard context.Context, d policy.Decision) error {
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
	r.targetHealth.fail(r.log, now, err)
	r.targetFailures.Store(int32(r.targetHealth.failures))
	r.mu.Lock()
	r.lastErr = err.Error()
	d := policy.Decision{Time: now, From: r.current, To: r.current, Action: policy.Hold, Raw: math.NaN(), Desired: -1,
		Reason: fmt.Sprintf("%v → hold (retry with backoff)", err), DryRun: r.p.DryRun}
	r.last = &d
	r.appendDecision(d)
	r.mu.Unlock()
	if r.obs != nil {
		fb := inFallback(r.p, r.st)
		r.obs.Decided(Tick{Policy: r.p, Decision: d, TargetErr: err, Attempted: d.To, Fallback: fb, WasFallback: fb})
	}
}

func (r *runner) record(d policy.Decision, status targets.Status, values []policy.Value, lastErr string) {
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
		if r.ready >= 0 {
			r.m.ready.Set(float64(r.ready))
		}
	}
}

func (r *runner) appendDecision(d policy.Decision) { r.decisions.add(d) }

// save writes the state. A failure is said once (and its recovery), shown in the status
// and counted; deciding goes on, and the next save tries again.
func (r *runner) save(durable bool) {
	if r.store == nil {
		return
	}
	r.st.Paused = r.paused.Load()
	now := time.Now()
	if err := r.store.Save(r.p.Name, r.st, durable); err != nil {
		r.saveHealth.fail(r.log, now, err)
		r.mu.Lock()
		r.saveErr = err.Error()
		r.mu.Unlock()
		if r.m != nil {
			r.m.saveErrors.Inc()
		}
		return
	}
	if r.saveHealth.failing {
		r.saveHealth.ok(r.log, now)
		r.mu.Lock()
		r.saveErr = ""
		r.mu.Unlock()
	}
	r.lastSave, r.dirty = now, false
}

// saveClean saves the state as of a clean stop: everything up to now is in it.
func (r *runner) saveClean() {
	r.st.Clean = true
	r.save(true)
	r.st.Clean = false
}

func (r *runner) setPaused(p bool) {
	if r.paused.Swap(p) == p {
		return // no change: nothing to tell
	}
	r.log.Info("policy paused", "paused", p)
	if r.m != nil {
		r.m.paused.Set(boolGauge(p))
	}
	if r.obs != nil {
		r.mu.Lock()
		current := r.current
		r.mu.Unlock()
		r.obs.Paused(Pause{Policy: r.p.Name, Paused: p, Current: current, Time: r.clock()})
	}
	r.poke()
}
