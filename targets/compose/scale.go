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
)

// Scale implements targets.Target. After it succeeds the service has exactly n running
// (or restarting, under its restart policy) containers and nothing else, except that at
// n == 0 one stopped container stays as the template to scale up from later.
//
// Up: stopped replicas are started first (lowest numbers; after an engine restart that
// is all of them), then a running, healthy replica is cloned for the rest. Down: the
// highest numbers are stopped (their own stop signal and grace period, or stop_timeout)
// and removed. Replicas are created, started and stopped concurrently.
func (t *Target) Scale(ctx context.Context, n int, why targets.Reason) error {
	if n < 0 {
		return t.errorf("cannot scale to %d replicas", n)
	}
	c, err := t.client(ctx)
	if err != nil {
		return err
	}
	rs, err := t.replicas(ctx, c)
	if err != nil {
		return err
	}
	// A restarting container is the engine's business (restart policy): it holds its
	// slot, so a crash-looping service is not cloned over and over while Status (running
	// containers only) reports it missing.
	t.recoverDrains(ctx, c, rs)
	t.startPool()
	defer t.kickPool()
	members, _, rest := t.splitPool(t.notDraining(rs))
	var live, stopped []replica
	for _, r := range rest {
		switch {
		case r.running() || r.state == container.StateRestarting:
			live = append(live, r)
		case r.startable():
			stopped = append(stopped, r)
		}
		// Paused, being removed, dead: left alone.
	}
	if len(rs) == 0 {
		if n == 0 {
			return nil
		}
		return t.errorf("no container to clone; create the service once with `docker compose up -d %s` (compose project %q)", t.cfg.Service, t.cfg.Project)
	}
	if n == len(live) && (len(stopped) == 0 || n == 0 && len(stopped) == 1 && len(members) == 0) {
		if restarting := countRestarting(live); restarting > 0 {
			// Status counted only the running ones; the rest come back by themselves.
			return t.errorf("%w: %d of %d replicas are being restarted by the engine (restart policy); not adding more", targets.ErrNoop, restarting, n)
		}
		return nil
	}
	if n > len(live) && t.takeBack(ctx, c, rs, n-len(live)) > 0 {
		return t.Scale(ctx, n, why) // the taken-back ones are capacity again
	}
	if n < len(live) && t.cfg.Drain != nil {
		return t.startDrains(ctx, c, live, n)
	}
	start := time.Now()
	var fromPool int
	if n > len(live) {
		fromPool, err = t.scaleUpWithPool(ctx, c, rs, live, stopped, members, n)
	} else {
		err = t.scaleDown(ctx, c, live, stopped, n, len(members), t.parkRoom(members, n))
	}
	if err != nil {
		return err
	}
	took := time.Since(start).Round(time.Millisecond)
	if fromPool > 0 {
		t.log.Info("scaled", "from", len(live), "to", n, "from_warm_pool", fromPool, "took", took, "policy", why.Policy)
		return nil
	}
	t.log.Info("scaled", "from", len(live), "to", n, "took", took, "policy", why.Policy)
	return nil
}

// scaleUpWithPool takes warm pool members first and, at the same time, starts or clones
// replicas for the rest. It returns how many came from the pool.
func (t *Target) scaleUpWithPool(ctx context.Context, c api, all, live, stopped, members []replica, n int) (int, error) {
	if t.pool == nil || len(members) == 0 {
		return 0, t.scaleUp(ctx, c, all, live, stopped, n)
	}
	taken := t.claimMembers(members, n-len(live))
	var (
		wg      sync.WaitGroup
		restErr error
	)
	if rest := n - len(live) - len(taken); rest > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The new replicas are cloned from live ones, or from a member when none runs.
			tmplFrom := live
			if len(tmplFrom) == 0 && len(stopped) == 0 {
				tmplFrom = taken
			}
			restErr = t.scaleUp(ctx, c, all, tmplFrom, stopped, len(tmplFrom)+rest)
		}()
	}
	err := t.handOut(ctx, c, taken)
	wg.Wait()
	if err := errors.Join(err, restErr); err != nil {
		return 0, t.errorf("scaling up to %d: %w", n, err)
	}
	return len(taken), nil
}

func countRestarting(rs []replica) int {
	n := 0
	for _, r := range rs {
		if r.state == container.StateRestarting {
			n++
		}
	}
	return n
}

func (t *Target) scaleUp(ctx context.Context, c api, all, live, stopped []replica, n int) error {
	tmpl, err := t.template(ctx, c, live, stopped)
	if err != nil {
		return err
	}
	need := n - len(live)
	restart := stopped[:min(need, len(stopped))]
	surplus := stopped[len(restart):]
	clones := need - len(restart)
	// A service that cannot have clones (fixed host port, container_name) may still have
	// its one stopped container started again (0→1).
	plan, err := t.planClone(ctx, c, tmpl, all)
	if err != nil && clones > 0 {
		return err
	}

	errs := t.parallelDo(ctx, len(restart)+clones+len(surplus), func(ctx context.Context, i int) error {
		switch {
		case i < len(restart):
			return t.startExisting(ctx, c, plan, restart[i])
		case i < len(restart)+clones:
			return t.cloneOne(ctx, c, plan)
		default:
			return t.remove(ctx, c, surplus[i-len(restart)-clones])
		}
	})
	if err := errors.Join(errs...); err != nil {
		return t.errorf("scaling up to %d: %w", n, err)
	}
	return nil
}

// scaleDown stops the highest-numbered replicas beyond n. park of them go into the warm
// pool (stopped, for a stopped pool without a drain block) instead of being removed;
// members is how many the pool holds.
func (t *Target) scaleDown(ctx context.Context, c api, live, stopped []replica, n, members, park int) error {
	// live is lowest number first: keep the first n, stop the rest.
	drop := live[n:]
	keepTemplate := n == 0 && len(stopped) == 0 && members == 0 && park == 0
	var jobs []func(context.Context) error
	for i, r := range drop {
		if i < park {
			jobs = append(jobs, func(ctx context.Context) error { return t.park(ctx, c, r) })
			continue
		}
		if keepTemplate && i == 0 {
			// The lowest-numbered replica stays, stopped, as the template to clone later.
			jobs = append(jobs, func(ctx context.Context) error { return t.stop(ctx, c, r) })
			continue
		}
		jobs = append(jobs, func(ctx context.Context) error { return t.stopAndRemove(ctx, c, r) })
	}
	for i, r := range stopped {
		if n == 0 && i == 0 {
			continue // already stopped: it is the template
		}
		jobs = append(jobs, func(ctx context.Context) error { return t.remove(ctx, c, r) })
	}
	errs := t.parallelDo(ctx, len(jobs), func(ctx context.Context, i int) error { return jobs[i](ctx) })
	if err := errors.Join(errs...); err != nil {
		return t.errorf("scaling down to %d: %w", n, err)
	}
	return nil
}

// parallelDo runs do(0..count-1) with at most t.parallel at once and returns the errors.
func (t *Target) parallelDo(ctx context.Context, count int, do func(context.Context, int) error) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, t.parallel)
	)
	for i := range count {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := do(ctx, i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// template picks the container to clone: a running healthy replica if there is one (its
// config is known to work), else any running one, else a stopped or restarting one.
func (t *Target) template(ctx context.Context, c api, live, stopped []replica) (container.InspectResponse, error) {
	var pick replica
	for _, r := range live {
		switch {
		case r.ready():
			pick = r
		case r.running() && !pick.running():
			pick = r
		}
		if pick.ready() {
			break
		}
	}
	switch {
	case pick.id != "":
	case len(stopped) > 0:
		pick = stopped[0]
	case len(live) > 0:
		pick = live[0]
	default:
		return container.InspectResponse{}, t.errorf("no running or stopped container to clone (all are paused or being removed)")
	}
	res, err := c.ContainerInspect(ctx, pick.id, client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, t.errorf("inspecting %s: %w", pick.name, err)
	}
	return res.Container, nil
}

// planClone checks that the service can be scaled at all and prepares cloning tmpl.
func (t *Target) planClone(ctx context.Context, c api, tmpl container.InspectResponse, all []replica) (*clonePlan, error) {
	p, err := newClonePlan(t.cfg.Project, t.cfg.Service, tmpl)
	if err != nil {
		return nil, t.errorf("%w", err)
	}
	// Same image ID as the template; by name when the name still points at it, so that
	// `docker ps` shows a name, else by ID (someone re-tagged or pulled meanwhile).
	p.image = tmpl.Image
	if ref := tmpl.Config.Image; ref != "" && ref != tmpl.Image {
		if img, err := c.ImageInspect(ctx, ref); err == nil && img.ID == tmpl.Image {
			p.image = ref
		}
	}
	for _, r := range all {
		p.next = max(p.next, r.number)
	}
	return p, nil
}

func (t *Target) startExisting(ctx context.Context, c api, p *clonePlan, r replica) error {
	if r.state == container.StateCreated && p != nil {
		// Created but never started: perhaps a clone interrupted (engine restart) before
		// all its networks were connected. Finish that first.
		res, err := c.ContainerInspect(ctx, r.id, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspecting %s: %w", r.name, err)
		}
		if err := t.connectMissing(ctx, c, p, res.Container); err != nil {
			return err
		}
	}
	if _, err := c.ContainerStart(ctx, r.id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting %s: %w", r.name, err)
	}
	t.log.Debug("started replica", "container", r.name)
	return nil
}

// cloneOne creates, connects and starts one clone, retrying with the next number when the
// name is taken. A clone that fails after it was created is removed again.
func (t *Target) cloneOne(ctx context.Context, c api, p *clonePlan) error {
	return t.createClone(ctx, c, p, nil, t.finishClone)
}

// createClone creates one clone and hands it to finish (connect, start; or what a warm
// pool member needs). claim, when given, is told the clone's name before it is created.
func (t *Target) createClone(ctx context.Context, c api, p *clonePlan, claim func(name string), finish func(ctx context.Context, c api, spec cloneSpec, id string) error) error {
	for attempt := 0; ; attempt++ {
		num := p.allocate()
		spec := p.spec(num)
		if claim != nil {
			claim(spec.name)
		}
		res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: spec.name, Config: spec.config, HostConfig: spec.host, NetworkingConfig: spec.networking,
		})
		if cerrdefs.IsConflict(err) && attempt < 20 {
			t.log.Debug("container name taken; trying the next number", "name", spec.name)
			continue
		}
		if err != nil {
			return fmt.Errorf("creating %s: %w", spec.name, err)
		}
		if err := finish(ctx, c, spec, res.ID); err != nil {
			// Best effort, and even when ctx is done: a half-made clone is an orphan.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if _, rerr := c.ContainerRemove(rctx, res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
				t.log.Warn("could not remove a failed clone", "container", spec.name, "err", rerr)
			}
			return err
		}
		t.log.Debug("cloned replica", "container", spec.name)
		return nil
	}
}

func (t *Target) finishClone(ctx context.Context, c api, spec cloneSpec, id string) error {
	if err := connectExtra(ctx, c, spec, id); err != nil {
		return err
	}
	if t.beforeStart != nil {
		t.beforeStart(spec.name)
	}
	if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting %s: %w", spec.name, err)
	}
	return nil
}

// connectExtra connects a new clone to the networks beyond the one given at create.
func connectExtra(ctx context.Context, c api, spec cloneSpec, id string) error {
	for _, ep := range spec.extraNetworks {
		if _, err := c.NetworkConnect(ctx, ep.network, client.NetworkConnectOptions{Container: id, EndpointConfig: ep.settings}); err != nil {
			return fmt.Errorf("connecting %s to network %s: %w", spec.name, ep.network, err)
		}
	}
	return nil
}

// connectMissing connects ctr to the template's networks it is not on yet.
func (t *Target) connectMissing(ctx context.Context, c api, p *clonePlan, ctr container.InspectResponse) error {
	name := trimSlash(ctr.Name)
	for _, ep := range p.endpoints(name) {
		if ctr.NetworkSettings != nil {
			if _, ok := ctr.NetworkSettings.Networks[ep.network]; ok {
				continue
			}
		}
		if _, err := c.NetworkConnect(ctx, ep.network, client.NetworkConnectOptions{Container: ctr.ID, EndpointConfig: ep.settings}); err != nil {
			return fmt.Errorf("connecting %s to network %s: %w", name, ep.network, err)
		}
	}
	return nil
}

func (t *Target) stopOptions() client.ContainerStopOptions {
	// No Signal: the engine uses the container's own stop signal (API 1.42+ could
	// override it; we never want to). No Timeout: its own grace period.
	var opts client.ContainerStopOptions
	if t.cfg.StopTimeout >= 0 {
		secs := int((t.cfg.StopTimeout.D() + time.Second - 1) / time.Second)
		opts.Timeout = &secs
	}
	return opts
}

func (t *Target) stop(ctx context.Context, c api, r replica) error {
	if _, err := c.ContainerStop(ctx, r.id, t.stopOptions()); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stopping %s: %w", r.name, err)
	}
	t.log.Debug("stopped replica", "container", r.name)
	return nil
}

func (t *Target) stopAndRemove(ctx context.Context, c api, r replica) error {
	if err := t.stop(ctx, c, r); err != nil {
		return err
	}
	return t.remove(ctx, c, r)
}

func (t *Target) remove(ctx context.Context, c api, r replica) error {
	_, err := c.ContainerRemove(ctx, r.id, client.ContainerRemoveOptions{RemoveVolumes: t.cfg.RemoveVolumes})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing %s: %w", r.name, err)
	}
	t.log.Debug("removed replica", "container", r.name)
	return nil
}
