// Package policy is autoscalerd's pure core: a policy compiled from its configuration
// (the replicas and activation expressions, bounds, cooldowns, steps, schedules), the
// decision pipeline of SPEC §3 (Decide) and the State a policy remembers between ticks.
//
// Decide is a pure function of (policy, state, inputs, now): it does no I/O and reads no
// clock, so the engine, `simulate` and the property tests share it. It proposes; the caller
// carries out the action and commits it with State.Commit only once it happened.
// policy imports only configs and expr-lang.
package policy

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
)

// Policy is a compiled policy: everything Decide needs, checked once at load time.
type Policy struct {
	Name   string
	Config *configs.Policy
	// Queries are the query names in file order; inputs are indexed the same way.
	Queries []string

	Min, Max         int
	Interval         time.Duration
	CooldownUp       time.Duration
	CooldownDown     time.Duration
	StabilizationUp  time.Duration
	StepUp, StepDown configs.Step
	Schedules        []configs.Schedule
	// Fallback is on_error's replicas (nil: hold).
	Fallback         *int
	FailureThreshold int
	DryRun           bool

	replicas   *program
	activation *program
	// mu guards env, the expression's scratch scope (with the schedules' cached answers),
	// reused across ticks so a tick allocates little. It is never persisted.
	mu  sync.Mutex
	env *evalEnv
	// windows[i] is how much sample history query i needs for window functions.
	windows []time.Duration
	// learn is the throughput estimate's settings, for throughput() and drain().
	learn *learn
}

// Load reads a configuration file and compiles its policies, each expression once:
// expression mistakes are reported together with the file's other mistakes.
func Load(path string, opts configs.Options) (*configs.Config, []*Policy, error) {
	c := compiler{done: map[*configs.Policy]*Policy{}}
	opts.Compile = c.check
	cfg, err := configs.Load(path, opts)
	if err != nil {
		return nil, nil, err
	}
	return c.policies(cfg)
}

// Parse is Load for a configuration already in memory; name is the file name errors show.
func Parse(name string, data []byte, opts configs.Options) (*configs.Config, []*Policy, error) {
	c := compiler{done: map[*configs.Policy]*Policy{}}
	opts.Compile = c.check
	cfg, err := configs.Parse(name, data, opts)
	if err != nil {
		return nil, nil, err
	}
	return c.policies(cfg)
}

// Compile compiles every policy of a configuration loaded without compiling, reporting
// all errors together.
func Compile(cfg *configs.Config) ([]*Policy, error) {
	_, ps, err := (&compiler{done: map[*configs.Policy]*Policy{}}).policies(cfg)
	return ps, err
}

// compiler compiles policies while configs loads them (as configs.Options.Compile) and
// keeps the results, so a load compiles each expression once.
type compiler struct {
	done map[*configs.Policy]*Policy
}

func (c *compiler) check(pc *configs.Policy) configs.Errors {
	p, errs := CompilePolicy(pc)
	if p != nil {
		c.done[pc] = p
	}
	return errs
}

// policies returns cfg's compiled policies in file order, compiling those the load did
// not.
func (c *compiler) policies(cfg *configs.Config) (*configs.Config, []*Policy, error) {
	var errs configs.Errors
	out := make([]*Policy, 0, len(cfg.Policies))
	for _, pc := range cfg.Policies {
		p := c.done[pc]
		if p == nil {
			var perrs configs.Errors
			p, perrs = CompilePolicy(pc)
			errs = append(errs, perrs...)
		}
		if p != nil {
			out = append(out, p)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, nil, err
	}
	return cfg, out, nil
}

// CompilePolicy compiles one policy's expressions and settles its settings.
func CompilePolicy(pc *configs.Policy) (*Policy, configs.Errors) {
	p := &Policy{
		Name:             pc.Name,
		Config:           pc,
		Min:              pc.Min,
		Max:              pc.Max,
		Interval:         pc.Interval.D(),
		CooldownUp:       pc.Cooldown.Up.D(),
		CooldownDown:     pc.Cooldown.Down.D(),
		StabilizationUp:  pc.Stabilization.Up.D(),
		StepUp:           pc.Step.Up,
		StepDown:         pc.Step.Down,
		Schedules:        pc.Schedule,
		Fallback:         pc.OnError.Replicas,
		FailureThreshold: pc.FailureThreshold,
		DryRun:           pc.DryRun,
	}
	for _, q := range pc.Queries {
		p.Queries = append(p.Queries, q.Name)
	}
	errs := checkQueryNames(pc)
	if len(errs) > 0 {
		return nil, errs
	}
	p.learn = &learn{prior: pc.Throughput.Prior, window: pc.Throughput.Window.D(), minIntervals: pc.Throughput.MinIntervals, arrivals: pc.Throughput.Arrivals}
	if p.learn.window == 0 {
		p.learn.window = configs.DefaultThroughputWindow
	}
	if p.learn.minIntervals == 0 {
		p.learn.minIntervals = 3
	}
	prog, windows, e := compileExpr(pc.Replicas, configs.JoinPath(pc.Path, "replicas"), p.Queries, false, p.learn.window)
	errs = append(errs, e...)
	p.replicas = prog
	p.windows = make([]time.Duration, len(p.Queries))
	merge := func(w map[string]time.Duration) {
		for i, q := range p.Queries {
			p.windows[i] = max(p.windows[i], w[q])
		}
	}
	merge(windows)
	if pc.Activation.IsSet() {
		act, w, e := compileExpr(pc.Activation, configs.JoinPath(pc.Path, "activation"), p.Queries, true, p.learn.window)
		errs = append(errs, e...)
		p.activation = act
		merge(w)
	}
	// The arrivals counter is read beside the backlog over the same history.
	if a := p.learn.arrivals; a != "" {
		// drain reads the ages of waiting tasks from it, as far back as its time.
		merge(map[string]time.Duration{a: max(p.learn.window, slices.Max(append(p.windows, 0)))})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// String names the policy for logs.
func (p *Policy) String() string { return fmt.Sprintf("policy %q", p.Name) }

// historyWindow is how long the recommendation history must reach back.
func (p *Policy) historyWindow() time.Duration { return max(p.CooldownDown, p.StabilizationUp) }

// maxGap is the longest pause between ticks that keeps the history continuous.
func (p *Policy) maxGap() time.Duration { return 3*p.Interval + 30*time.Second }
