package policy

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
}

// Engine runs one loop per policy. Apply swaps configurations in place: a policy whose
// target is unchanged keeps its target (and any children it supervises) and its state.
type Engine struct {
	log     *slog.Logger
	metrics *Metrics
	store   *Store
	shared  *shared.Set
	clock   func() time.Time

	mu      sync.Mutex
	runners map[string]*runner
	order   []string
	sem     chan struct{}
	global  *configs.Config
	// run and hard are set while Run is running: loops run under run; scaling actions are
	// aborted only when hard ends (losing leadership), not on an ordinary stop.
	run, hard context.Context
	loops     sync.WaitGroup
}

// NewEngine returns an engine with no policies.
func NewEngine(o EngineOptions) *Engine {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Shared == nil {
		o.Shared = shared.NewSet()
	}
	return &Engine{log: o.Logger, metrics: o.Metrics, store: o.Store, shared: o.Shared, clock: o.Clock, runners: map[string]*runner{}, sem: make(chan struct{}, configs.DefaultScaleConcurrency)}
}

// Apply installs a configuration. It builds every new target and source first; if any
// fails, nothing changes and the error says why. Policies that are gone are stopped and
// their targets closed; policies whose target is unchanged keep it and their state.
func (e *Engine) Apply(ctx context.Context, cfg *configs.Config, ps []*Policy) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	type plan struct {
		p     *Policy
		reuse bool // keep the old target instance
		built *Built
	}
	plugins := PluginsFor(cfg, e.log, e.shared)
	plans := make([]*plan, 0, len(ps))
	var errs []error
	for _, p := range ps {
		pl := &plan{p: p}
		var keep targets.Target
		if old := e.runners[p.Name]; old != nil && old.p.Config.Target.Same(p.Config.Target) {
			pl.reuse, keep = true, old.target
		}
		b, err := Build(ctx, p.Config, keep, plugins)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pl.built = b
		plans = append(plans, pl)
	}
	if len(errs) > 0 {
		for _, pl := range plans {
			pl.built.closeSources()
			if !pl.reuse {
				closeTarget(ctx, pl.built.Target)
			}
		}
		return errors.Join(errs...)
	}
	newRunners := map[string]*runner{}
	for _, pl := range plans {
		newRunners[pl.p.Name] = e.newRunner(pl.p, pl.built)
	}

	// Stop the loops that change, hand over state, close what is no longer used.
	kept := map[targets.Target]bool{}
	for _, pl := range plans {
		if pl.reuse {
			kept[pl.built.Target] = true
		}
	}
	for name, old := range e.runners {
		old.stop()
		old.closeSources()
		nr, still := newRunners[name]
		if !kept[old.target] {
			closeTarget(ctx, old.target)
		}
		if still && old.p.Config.Target.Key() == nr.p.Config.Target.Key() {
			nr.inherit(old)
		} else if !still {
			e.metrics.forget(name)
		}
	}
	e.runners = newRunners
	e.order = e.order[:0]
	for _, p := range ps {
		e.order = append(e.order, p.Name)
	}
	e.global = cfg
	if cap(e.sem) != cfg.ScaleConcurrency && cfg.ScaleConcurrency > 0 {
		e.sem = make(chan struct{}, cfg.ScaleConcurrency)
	}
	for _, name := range e.order {
		r := e.runners[name]
		r.sem = e.sem
		if e.run != nil {
			e.startLocked(r)
		}
	}
	return nil
}

func (e *Engine) newRunner(p *Policy, b *Built) *runner {
	r := &runner{e: e, p: p, target: b.Target, sources: b.Sources, wake: make(chan struct{}, 1), log: e.log.With("policy", p.Name)}
	for _, q := range p.Config.Queries {
		r.timeouts = append(r.timeouts, q.Timeout.D())
	}
	if e.metrics != nil {
		r.m = e.metrics.forPolicy(p.Name, p.Queries)
	}
	r.restore()
	return r
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
	for _, r := range e.runners {
		r.stop()
	}
	e.run, e.hard = nil, nil
	e.mu.Unlock()
	e.loops.Wait()
}

func (e *Engine) startLocked(r *runner) {
	ctx, cancel := context.WithCancel(e.run)
	r.cancel = cancel
	r.done = make(chan struct{})
	e.loops.Add(1)
	go func() {
		defer e.loops.Done()
		defer close(r.done)
		r.loop(ctx, e.hard)
	}()
}

// Close stops everything and closes every target (process groups get their stop signal)
// and source. Call it after Run has returned.
func (e *Engine) Close(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.runners {
		r.stop()
		r.save()
		r.closeSources()
		closeTarget(ctx, r.target)
	}
	e.runners = map[string]*runner{}
	e.order = nil
}

func closeTarget(ctx context.Context, t targets.Target) {
	if c, ok := t.(targets.Closer); ok {
		_ = c.Close(ctx)
	}
}

// Statuses returns every policy's status, in configuration order.
func (e *Engine) Statuses() []Status {
	e.mu.Lock()
	rs := make([]*runner, 0, len(e.order))
	for _, name := range e.order {
		rs = append(rs, e.runners[name])
	}
	e.mu.Unlock()
	out := make([]Status, len(rs))
	for i, r := range rs {
		out[i] = r.status()
	}
	return out
}

// Detail returns one policy's status with its recent decisions and chart points.
func (e *Engine) Detail(name string) (Status, []Decision, []ChartPoint, bool) {
	e.mu.Lock()
	r := e.runners[name]
	e.mu.Unlock()
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
	e.mu.Lock()
	r := e.runners[name]
	e.mu.Unlock()
	if r == nil {
		return fmt.Errorf("%w: %q", ErrNoPolicy, name)
	}
	r.setPaused(paused)
	return nil
}

// Unreached lists the policies whose target has not answered yet (readiness).
func (e *Engine) Unreached() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for name, r := range e.runners {
		if !r.reached.Load() {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
