package compose

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
	"github.com/autoscalerd/autoscalerd/targets/warm"
)

// The warm pool. Its members are containers of the service like any other: clones of a
// running replica with the service's compose labels, so that a member handed out is an
// ordinary replica to `docker compose ps`, `logs` and `down`. What makes a container a
// member is its state, which a restarted daemon reads back from the engine with nothing
// recorded: paused (state: paused) or created/exited (state: stopped). Neither is
// running, so Status never counts a member as capacity, and a member's image and
// config-hash must be those of the running replicas, or it is replaced, never handed out.
//
// Members are made in the background, each in its own goroutine: create, start, wait for
// the healthcheck, then with a drain block answer the busy probe, go quiet and report
// idle (drain.Settle), then pause. Until it is paused a member is "in flight": Status and
// Scale leave it out. A scale-up claims members in flight too, so the refill never removes
// one that is being handed out.

// pool is the compose target's warm pool.
type pool struct {
	cfg       *warm.Config
	policyMax int
	kick      chan struct{}

	mu       sync.Mutex
	inFlight map[string]bool // container names being made, handed out, parked or removed
	// settled counts the ends of in-flight work (a member made, handed out, parked or
	// removed): a refill whose listing of the containers is older than such an end would
	// count that container nowhere, and make one member too many.
	settled uint64
	info    warm.Info
	failing bool
	started bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newPool(cfg *warm.Config, policyMax int) *pool {
	if cfg == nil {
		return nil
	}
	p := &pool{cfg: cfg, policyMax: policyMax, kick: make(chan struct{}, 1), inFlight: map[string]bool{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.info = warm.Info{State: cfg.StateOrDefault(), Size: cfg.Size}
	return p
}

var _ targets.Pooler = (*Target)(nil)

// SetMax implements targets.Pooler.
func (t *Target) SetMax(n int) {
	if t.pool == nil {
		return
	}
	t.pool.mu.Lock()
	changed := t.pool.policyMax != n
	t.pool.policyMax = n
	t.pool.mu.Unlock()
	if changed {
		t.kickPool()
	}
}

// Pool implements targets.Pooler.
func (t *Target) Pool() warm.Info {
	if t.pool == nil {
		return warm.Info{}
	}
	t.pool.mu.Lock()
	defer t.pool.mu.Unlock()
	return t.pool.info
}

// isMember reports whether r is in the state pool members wait in.
func (p *pool) isMember(r replica) bool {
	if p.cfg.StateOrDefault() == warm.Stopped {
		return r.startable()
	}
	return r.state == container.StatePaused
}

// splitPool sorts the service's containers into fresh members, stale members (built
// from another image or configuration than the running replicas) and the rest, leaving
// out those in flight. Without a pool all are the rest.
func (t *Target) splitPool(rs []replica) (members, stale, rest []replica) {
	p := t.pool
	if p == nil {
		return nil, nil, rs
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.splitLocked(rs)
}

func (p *pool) splitLocked(rs []replica) (members, stale, rest []replica) {
	var ref *replica
	for i, r := range rs {
		if p.inFlight[r.name] || !r.running() {
			continue
		}
		if ref == nil || r.ready() && !ref.ready() {
			ref = &rs[i]
		}
	}
	running := 0
	for _, r := range rs {
		switch {
		case p.inFlight[r.name]:
		case p.isMember(r) && ref != nil && (r.image != ref.image || r.hash != ref.hash):
			stale = append(stale, r)
		case p.isMember(r):
			members = append(members, r)
		default:
			if r.running() || r.state == container.StateRestarting {
				running++
			}
			rest = append(rest, r)
		}
	}
	p.info.Members = len(members)
	p.info.Want = p.cfg.Want(running, p.policyMax)
	return members, stale, rest
}

// claim marks names in flight; release undoes it.
func (p *pool) claim(names ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range names {
		p.inFlight[n] = true
	}
}

func (p *pool) release(names ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked(names...)
}

func (p *pool) releaseLocked(names ...string) {
	for _, n := range names {
		delete(p.inFlight, n)
	}
	p.settled++
}

// startPool starts the refill loop, once; Close ends it.
func (t *Target) startPool() {
	p := t.pool
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.ctx.Err() != nil {
		return
	}
	p.started = true
	p.wg.Add(1)
	go t.refillLoop()
}

// kickPool asks for a refill now (after a scale, on a Docker event).
func (t *Target) kickPool() {
	if t.pool == nil {
		return
	}
	select {
	case t.pool.kick <- struct{}{}:
	default:
	}
}

func (t *Target) closePool() {
	if t.pool == nil {
		return
	}
	t.pool.cancel()
	t.pool.wg.Wait()
}

func (t *Target) refillLoop() {
	p := t.pool
	defer p.wg.Done()
	tick := time.NewTicker(warm.RefillEvery)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
		err := t.refill(ctx)
		cancel()
		if err != nil && p.ctx.Err() == nil {
			t.poolFailed(err)
		}
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
		case <-tick.C:
		}
	}
}

// poolFailed records a failure to keep the pool; the log says so once, not per round.
func (t *Target) poolFailed(err error) {
	p := t.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	p.info.LastError = err.Error()
	if !p.failing {
		p.failing = true
		t.log.Warn("cannot keep the warm pool full; scale-ups start new replicas instead", "err", err)
	}
}

func (t *Target) poolWorked() {
	p := t.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	p.info.LastError = ""
	if p.failing {
		p.failing = false
		t.log.Info("the warm pool is being kept full again")
	}
}

// refill removes stale members and members beyond what the pool may keep, and starts
// making the members it lacks. It returns once the making has started.
func (t *Target) refill(ctx context.Context) error {
	p := t.pool
	c, err := t.client(ctx)
	if err != nil {
		return err
	}
	var all []replica
	for attempt := 1; ; attempt++ {
		p.mu.Lock()
		settled := p.settled
		p.mu.Unlock()
		if all, err = t.replicas(ctx, c); err != nil {
			return err
		}
		p.mu.Lock()
		if p.settled == settled {
			break // p.mu stays locked: the listing is current
		}
		p.mu.Unlock()
		if attempt == 3 {
			return nil // busy: the next round (a kick or RefillEvery) counts again
		}
	}
	rs := t.notDraining(all)
	members, stale, rest := p.splitLocked(rs)
	running := 0
	for _, r := range rest {
		if r.running() || r.state == container.StateRestarting {
			running++
		}
	}
	keep := p.cfg.Keep(running, p.policyMax)
	drop := stale
	if len(members) > keep {
		// Members are lowest number first: the highest go.
		drop = append(drop, members[keep:]...)
		members = members[:keep]
	}
	need := p.info.Want - len(members) - p.info.Warming
	for _, r := range drop {
		p.inFlight[r.name] = true
	}
	p.mu.Unlock()

	var errs []error
	if len(drop) > 0 {
		errs = t.parallelDo(ctx, len(drop), func(ctx context.Context, i int) error {
			r := drop[i]
			defer p.release(r.name)
			if _, err := c.ContainerRemove(ctx, r.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: t.cfg.RemoveVolumes}); err != nil && !cerrdefs.IsNotFound(err) {
				return fmt.Errorf("removing pool member %s: %w", r.name, err)
			}
			if i < len(stale) {
				t.log.Info("removed a warm pool member built from an older image or configuration", "container", r.name)
				p.mu.Lock()
				p.info.Replaced++
				p.mu.Unlock()
			} else {
				t.log.Debug("removed a pool member beyond what the pool keeps", "container", r.name)
			}
			return nil
		})
	}
	if need > 0 {
		if err := t.makeMembers(ctx, c, all, rest, members, need); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return t.errorf("warm pool: %w", err)
	}
	if need <= 0 {
		t.poolWorked()
	}
	return nil
}

// makeMembers starts making k members in the background, cloned from a running replica.
func (t *Target) makeMembers(ctx context.Context, c api, all, rest, members []replica, k int) error {
	var live, stopped []replica
	for _, r := range rest {
		switch {
		case r.running():
			live = append(live, r)
		case r.startable():
			stopped = append(stopped, r)
		}
	}
	if len(live) == 0 && len(stopped) == 0 {
		// Only members left (or nothing): clone a member, it has the service's config.
		stopped = members
	}
	if len(live) == 0 && len(stopped) == 0 {
		return nil // nothing to clone from; Scale says so when it is asked for replicas
	}
	tmpl, err := t.template(ctx, c, live, stopped)
	if err != nil {
		return err
	}
	plan, err := t.planClone(ctx, c, tmpl, all)
	if err != nil {
		return err
	}
	p := t.pool
	p.mu.Lock()
	p.info.Warming += k
	p.mu.Unlock()
	sem := make(chan struct{}, t.parallel)
	for range k {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			select {
			case sem <- struct{}{}:
			case <-p.ctx.Done():
			}
			defer func() { <-sem }()
			var name string
			err := p.ctx.Err()
			if err == nil {
				mctx, cancel := context.WithTimeout(p.ctx, warm.ReadyLimit)
				err = t.createClone(mctx, c, plan, func(n string) {
					p.release(name)
					name = n
					p.claim(n)
				}, t.finishMember)
				cancel()
			}
			p.mu.Lock()
			p.info.Warming--
			p.releaseLocked(name) // both at once: a refill never sees one without the other
			p.mu.Unlock()
			switch {
			case err == nil:
				t.poolWorked()
				t.log.Debug("warm pool member ready", "container", name)
			case p.ctx.Err() == nil:
				t.poolFailed(fmt.Errorf("making member %s: %w", name, err))
			}
		}()
	}
	return nil
}

// finishMember brings a new clone into the pool's state: connected and, for a paused
// pool, started, ready, settled and paused.
func (t *Target) finishMember(ctx context.Context, c api, spec cloneSpec, id string) error {
	if err := connectExtra(ctx, c, spec, id); err != nil {
		return err
	}
	if t.pool.cfg.StateOrDefault() == warm.Stopped {
		return nil
	}
	if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting %s: %w", spec.name, err)
	}
	if err := t.waitHealthy(ctx, c, spec, id); err != nil {
		return err
	}
	if cfg := t.cfg.Drain; cfg != nil {
		if err := drain.Settle(ctx, cfg, t.reach(c, replica{id: id, name: spec.name})); err != nil {
			return fmt.Errorf("%s: %w", spec.name, err)
		}
	}
	if _, err := c.ContainerPause(ctx, id, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("pausing %s: %w", spec.name, err)
	}
	return nil
}

// waitHealthy waits until a member with a healthcheck reports healthy, so that it is
// frozen warm, not halfway through its start-up. A member without one is paused once it
// runs (and, with a drain block, once it answers its busy probe).
func (t *Target) waitHealthy(ctx context.Context, c api, spec cloneSpec, id string) error {
	hc := spec.config.Healthcheck
	if hc == nil || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return nil
	}
	for {
		res, err := c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspecting %s: %w", spec.name, err)
		}
		st := res.Container.State
		switch {
		case st == nil:
		case !st.Running:
			return fmt.Errorf("%s exited while it started (exit code %d)", spec.name, st.ExitCode)
		case st.Health != nil && st.Health.Status == container.Healthy:
			return nil
		case st.Health != nil && st.Health.Status == container.Unhealthy:
			return fmt.Errorf("%s is unhealthy", spec.name)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to be healthy: %w", spec.name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// claimMembers takes up to k fresh members out of the pool for a scale-up; the caller
// hands them out and releases them.
func (t *Target) claimMembers(members []replica, k int) []replica {
	k = min(k, len(members))
	if k == 0 {
		return nil
	}
	taken := members[:k]
	names := make([]string, k)
	for i, r := range taken {
		names[i] = r.name
	}
	t.pool.claim(names...)
	return taken
}

// handOut makes claimed members capacity: unpaused and resumed (a paused pool with a
// drain block made them quiet), or started (a stopped pool).
func (t *Target) handOut(ctx context.Context, c api, ms []replica) error {
	defer func() {
		for _, r := range ms {
			t.pool.release(r.name)
		}
	}()
	var mu sync.Mutex
	done := 0
	errs := t.parallelDo(ctx, len(ms), func(ctx context.Context, i int) error {
		r := ms[i]
		if t.pool.cfg.StateOrDefault() == warm.Stopped {
			if err := t.startExisting(ctx, c, nil, r); err != nil {
				return err
			}
		} else {
			if _, err := c.ContainerUnpause(ctx, r.id, client.ContainerUnpauseOptions{}); err != nil {
				return fmt.Errorf("unpausing pool member %s: %w", r.name, err)
			}
			if cfg := t.cfg.Drain; cfg != nil && (cfg.QuietSignal != "" || cfg.Quiet != nil) {
				if err := t.signalOrCall(ctx, c, r, cfg.ResumeSignal, cfg.Resume); err != nil {
					return fmt.Errorf("resuming pool member: %w", err)
				}
			}
		}
		mu.Lock()
		done++
		mu.Unlock()
		return nil
	})
	t.pool.mu.Lock()
	t.pool.info.HandedOut += uint64(done)
	t.pool.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("handing out %d of %d warm pool members failed: %w", len(errs), len(ms), errors.Join(errs...))
	}
	return nil
}

// parkRoom is how many replicas a scale-down to n may park in the pool.
func (t *Target) parkRoom(members []replica, n int) int {
	if t.pool == nil || !t.pool.cfg.ReuseOnScaleIn {
		return 0
	}
	return max(t.pool.cfg.Keep(n, t.pool.policyMax)-len(members), 0)
}

// park puts replica r, which a scale-down removes, into the pool instead: paused (it
// has drained: it is idle, and quiet if the drain block quiets) or stopped.
func (t *Target) park(ctx context.Context, c api, r replica) error {
	t.pool.claim(r.name)
	defer t.pool.release(r.name)
	// A drained container carries the drain's marker; in the pool it is a member, no
	// longer a drain a restarted daemon should take up (a member handed out is resumed).
	if m, ok, err := readMarker(ctx, c, r.id); err == nil && ok && !m.Resumed {
		m.Resumed = true
		if err := writeMarker(ctx, c, r.id, m); err != nil {
			return fmt.Errorf("clearing the drain marker of %s: %w", r.name, err)
		}
	}
	if t.pool.cfg.StateOrDefault() == warm.Stopped {
		if err := t.stop(ctx, c, r); err != nil {
			return err
		}
	} else if _, err := c.ContainerPause(ctx, r.id, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("pausing %s: %w", r.name, err)
	}
	t.pool.mu.Lock()
	t.pool.info.Parked++
	t.pool.mu.Unlock()
	t.log.Info("parked the replica in the warm pool instead of removing it", "container", r.name, "state", string(t.pool.cfg.StateOrDefault()))
	return nil
}

// parkDrained parks a drained replica if the pool has room, and reports whether it did.
// Only a replica that reported idle is parked: one whose drain timed out is stopped.
func (t *Target) parkDrained(ctx context.Context, c api, r replica) bool {
	if t.pool == nil || !t.pool.cfg.ReuseOnScaleIn {
		return false
	}
	all, err := t.replicas(ctx, c)
	if err != nil {
		return false
	}
	members, _, rest := t.splitPool(t.notDraining(all))
	running := 0
	for _, x := range rest {
		if x.running() && x.id != r.id {
			running++
		}
	}
	if t.parkRoom(members, running) == 0 {
		return false
	}
	if err := t.park(ctx, c, r); err != nil {
		t.log.Warn("cannot park a drained replica in the warm pool; stopping it", "container", r.name, "err", err)
		return false
	}
	t.kickPool()
	return true
}
