package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/targets"
)

// EngineOptions are the engine's collaborators.
type EngineOptions struct {
	Logger  *slog.Logger
	Metrics *Metrics
	Store   *Store
	Shared  *shared.Set
	// Clock returns the time decisions are made at; time.Now when nil.
	Clock func() time.Time
	// Observer, if set, hears of every tick and pause (the decision log, notifications).
	Observer Observer
}

// Engine runs one loop per policy. Apply swaps configurations in place: a policy whose
// target is unchanged keeps its target (and any children it supervises) and its state.
//
// The engine's lock guards only its maps; it is never held across I/O, so a reload, a
// status request or a pause never waits for a tick, a query or a scaling action.
type Engine struct {
	log          *slog.Logger
	metrics      *Metrics
	store        *Store
	shared       *shared.Set
	clock        func() time.Time
	obs          Observer
	ticks, reads *workers // run the ticks, and the reads the ticks wait for
	alarms       *alarms  // start the ticks, on ticks

	applyMu sync.Mutex // one Apply at a time

	mu      sync.Mutex
	runners map[string]*runner
	order   []string
	sem     chan struct{}
	// run and hard are set while Run is running: loops run under run; scaling actions are
	// aborted only when hard ends (losing leadership), not on an ordinary stop.
	run, hard context.Context
	loops     sync.WaitGroup
	// handovers are the retirements of replaced runners still in progress.
	handovers sync.WaitGroup
}

// NewEngine returns an engine with no policies.
func NewEngine(o EngineOptions) *Engine {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Shared == nil {
		o.Shared = shared.NewSet()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{log: o.Logger, metrics: o.Metrics, store: o.Store, shared: o.Shared, clock: o.Clock, obs: o.Observer, ticks: newWorkers(tickWorkers), reads: newWorkers(readWorkers), runners: map[string]*runner{}, sem: make(chan struct{}, configs.DefaultScaleConcurrency)}
	e.alarms = newAlarms(e.ticks)
	return e
}

// Apply installs a configuration. It builds every new target and source first; if any
// fails, nothing changes and the error says why. Policies that are gone are stopped and
// their targets closed; policies whose target is unchanged keep it and their state.
//
// Apply returns once the new runners are installed. A replaced runner is retired in the
// background: its successor starts when it has finished its current tick (which may be
// a scaling action) and handed over its state.
func (e *Engine) Apply(ctx context.Context, cfg *configs.Config, ps []*policy.Policy) error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.mu.Lock()
	old := make(map[string]*runner, len(e.runners))
	for name, r := range e.runners {
		old[name] = r
	}
	e.mu.Unlock()

	next, err := e.build(cfg, ps, old)
	if err != nil {
		return err
	}

	e.mu.Lock()
	e.runners = next
	e.order = e.order[:0]
	for _, p := range ps {
		e.order = append(e.order, p.Name)
	}
	if cfg.ScaleConcurrency > 0 && cap(e.sem) != cfg.ScaleConcurrency {
		e.sem = make(chan struct{}, cfg.ScaleConcurrency)
	}
	keep := decisionsKept(len(next))
	for _, name := range e.order {
		r := next[name]
		r.sem = e.sem
		r.mu.Lock()
		r.decisions.keep = keep
		r.mu.Unlock()
		if e.run != nil {
			e.startLocked(r)
		}
	}
	e.mu.Unlock()

	for name, o := range old {
		e.retire(o, next[name])
	}
	return nil
}

// build makes the runners of a new configuration: a policy whose target is unchanged
// reuses the old runner's target instance. On error everything new is closed.
func (e *Engine) build(cfg *configs.Config, ps []*policy.Policy, old map[string]*runner) (map[string]*runner, error) {
	next := make(map[string]*runner, len(ps))
	byKey := make(map[string]*runner, len(old))
	for _, r := range old {
		byKey[r.p.Config.Target.Key()] = r
	}
	var errs []error
	var updates []func()
	for _, p := range ps {
		o := BuildOptions{Logger: e.log.With("policy", p.Name), Shared: e.shared}
		prev := old[p.Name]
		switch {
		case prev == nil || prev.p.Config.Target.Key() != p.Config.Target.Key():
		case prev.p.Config.Target.Same(p.Config.Target):
			o.Target = prev.target
		default:
			if u, ok := prev.target.(targets.Updater); ok {
				if apply, ok := u.Update(p.Config.Target.Config); ok {
					o.Target = prev.target
					updates = append(updates, apply)
				}
			}
		}
		b, err := Build(cfg, p.Config, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next[p.Name] = e.newRunner(p, b, byKey[p.Config.Target.Key()])
	}
	if len(errs) == 0 {
		for _, apply := range updates {
			apply()
		}
		return next, nil
	}
	kept := map[targets.Target]bool{}
	for _, r := range old {
		kept[r.target] = true
	}
	for _, r := range next {
		r.closeSources()
		if !kept[r.target] {
			closeTarget(context.Background(), r.target)
		}
	}
	return nil, errors.Join(errs...)
}

// newRunner makes a policy's runner. prev is the old runner that drove the same target,
// if any: the new one waits for it to stop, and continues its state when it is the same
// policy.
func (e *Engine) newRunner(p *policy.Policy, b *Built, prev *runner) *runner {
	r := &runner{p: p, store: e.store, clock: e.clock, obs: e.obs, work: e.ticks, alarms: e.alarms, target: b.Target, sources: b.Sources,
		handedOver: make(chan struct{}), log: e.log.With("policy", p.Name)}
	for i, q := range p.Config.Queries {
		r.readers = append(r.readers, &reader{src: b.Sources[i], timeout: q.Timeout.D(), work: e.reads})
		r.queryHealth = append(r.queryHealth, health{what: fmt.Sprintf("query %q", q.Name)})
	}
	r.computeBudget()
	r.targetHealth = health{what: "target " + p.Config.Target.Key()}
	r.saveHealth = health{what: "saving state"}
	r.beat.Store(time.Now().UnixNano())
	r.pool = pooler(b.Target)
	if e.metrics != nil {
		r.m = e.metrics.forPolicy(p.Name, p.Queries)
		if r.pool != nil {
			e.metrics.poolForPolicy(p.Name) // r.m shares the policy's series, the pool's too
		}
		defer func() { r.m.paused.Set(boolGauge(r.paused.Load())) }() // once restored or inherited
	}
	switch {
	case prev != nil && prev.p.Name == p.Name:
		r.successorOf, r.inherits = prev, true
		r.showAs(prev) // until the handover, the status shows what the old runner knew
	case prev != nil:
		r.successorOf = prev
		r.restore()
	default:
		r.restore()
		close(r.handedOver)
	}
	return r
}

// retire stops a replaced runner in the background, hands its state to its successor
// (if the successor continues it) and closes what the new configuration no longer uses.
func (e *Engine) retire(old, successor *runner) {
	e.handovers.Add(1)
	go func() {
		defer e.handovers.Done()
		old.stop()
		old.closeSources()
		if successor == nil || successor.target != old.target {
			ctx, cancel := context.WithTimeout(context.Background(), scaleTimeout)
			closeTarget(ctx, old.target)
			cancel()
		}
		if successor == nil && e.metrics != nil {
			e.metrics.forget(old.p.Name)
		}
		for _, r := range e.successorsOf(old) {
			if r.inherits {
				r.inherit(old)
			}
			close(r.handedOver)
		}
	}()
}

// successorsOf lists the current runners waiting for old to stop.
func (e *Engine) successorsOf(old *runner) []*runner {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*runner
	for _, r := range e.runners {
		if r.successorOf == old {
			out = append(out, r)
		}
	}
	return out
}

// Run starts every policy's loop and blocks until ctx ends, then waits for the loops to
// finish their current tick. A scaling action in flight is allowed to complete unless
// hard ends first (leadership lost).
func (e *Engine) Run(ctx, hard context.Context) {
	e.mu.Lock()
	e.run, e.hard = ctx, hard
	for _, name := range e.order {
		e.startLocked(e.runners[name])
	}
	e.mu.Unlock()
	<-ctx.Done()
	e.mu.Lock()
	rs := make([]*runner, 0, len(e.runners))
	for _, r := range e.runners {
		rs = append(rs, r)
	}
	e.run, e.hard = nil, nil
	e.mu.Unlock()
	for _, r := range rs {
		r.stop()
	}
	e.loops.Wait()
}

func (e *Engine) startLocked(r *runner) {
	ctx, cancel := context.WithCancel(e.run)
	hard := e.hard
	r.mu.Lock()
	r.cancel = cancel
	r.done = make(chan struct{})
	done := r.done
	r.mu.Unlock()
	e.loops.Add(1)
	// The start (waiting for the predecessor, the target's history) has a goroutine; once
	// the first tick is armed it ends, and the ticks run from the runner's timer.
	started := make(chan struct{})
	var stopWatch func() // set when the loop began
	go func() {
		defer close(started)
		select {
		case <-r.handedOver:
		case <-ctx.Done():
			return
		}
		stopWatch = r.begin(ctx, hard)
	}()
	context.AfterFunc(ctx, func() {
		defer e.loops.Done()
		defer close(done)
		<-started
		if stopWatch != nil {
			r.end(stopWatch)
		}
	})
}

// Close stops everything and closes every target (process groups get their stop signal)
// and source. Call it after Run has returned.
func (e *Engine) Close(ctx context.Context) {
	e.handovers.Wait()
	defer e.alarms.stop()
	defer e.ticks.stop()
	defer e.reads.stop()
	e.mu.Lock()
	rs := e.runners
	e.runners = map[string]*runner{}
	e.order = nil
	e.mu.Unlock()
	for _, r := range rs {
		r.stop()
		r.saveClean()
		r.closeSources()
		closeTarget(ctx, r.target)
	}
}

// snapshot returns the runners in configuration order.
func (e *Engine) snapshot() []*runner {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs := make([]*runner, 0, len(e.order))
	for _, name := range e.order {
		rs = append(rs, e.runners[name])
	}
	return rs
}

func (e *Engine) lookup(name string) *runner {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runners[name]
}

// Statuses returns every policy's status, in configuration order.
func (e *Engine) Statuses() []Status {
	rs := e.snapshot()
	out := make([]Status, len(rs))
	for i, r := range rs {
		out[i] = r.status()
	}
	return out
}

// Detail returns one policy's status with its recent decisions and chart points.
func (e *Engine) Detail(name string) (Status, []policy.Decision, []ChartPoint, bool) {
	r := e.lookup(name)
	if r == nil {
		return Status{}, nil, nil, false
	}
	ds, cs := r.recent()
	return r.status(), ds, cs, true
}

// ErrNoPolicy is returned for a policy name that is not configured.
var ErrNoPolicy = errors.New("no such policy")

// SetPaused pauses or resumes a policy. A paused policy keeps reading its queries and
// recording decisions, but never scales. The flag is persisted.
func (e *Engine) SetPaused(name string, paused bool) error {
	r := e.lookup(name)
	if r == nil {
		return fmt.Errorf("%w: %q", ErrNoPolicy, name)
	}
	r.setPaused(paused)
	return nil
}

// Unready lists, for readiness, the policies whose target has never answered, or has
// failed readyAfterFailures ticks in a row (status or scale), each with why.
func (e *Engine) Unready() []string {
	var out []string
	for _, r := range e.snapshot() {
		switch n := r.targetFailures.Load(); {
		case !r.reached.Load():
			out = append(out, r.p.Name+": target not reached yet")
		case n >= readyAfterFailures:
			out = append(out, fmt.Sprintf("%s: target failed %d ticks in a row", r.p.Name, n))
		}
	}
	sort.Strings(out)
	return out
}

// Wedged lists the policies whose loop shows no progress at now: a tick running past
// everything its timeouts allow, or a loop that has not woken for three intervals. The
// systemd watchdog is pinged only while there are none.
func (e *Engine) Wedged(now time.Time) []string {
	e.mu.Lock()
	running := e.run != nil
	e.mu.Unlock()
	if !running {
		return nil
	}
	var out []string
	for _, r := range e.snapshot() {
		select {
		case <-r.handedOver:
		default:
			continue // waiting for its predecessor, which is checked on its own
		}
		busy, beat := r.busyUntil.Load(), r.beat.Load()
		switch {
		case busy != 0 && now.UnixNano() > busy:
			out = append(out, fmt.Sprintf("%s: tick running since %s", r.p.Name, time.Unix(0, busy).Add(-r.tickBudget()).Format(time.RFC3339)))
		case busy == 0 && now.Sub(time.Unix(0, beat)) > 3*r.p.Interval+10*time.Second:
			out = append(out, fmt.Sprintf("%s: no tick since %s", r.p.Name, time.Unix(0, beat).Format(time.RFC3339)))
		}
	}
	return out
}
