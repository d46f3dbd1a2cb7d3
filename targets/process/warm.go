package process

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
	"github.com/autoscalerd/autoscalerd/targets/warm"
)

// The warm pool (a `warm:` block): members are supervised replicas, each with its own
// index, goroutine and AUTOSCALER_REPLICA, kept in target.pooled instead of live, so
// Status never counts them and freeIndex skips their indexes. A member is started, then,
// with a drain block, settled (answers its busy probe, told to go quiet, idle), then its
// whole process group is SIGSTOPped: from then on it is frozen and may be handed out.
// Without a drain block nothing says when a member is ready, so it is frozen as soon as
// it is started and finishes its start-up once handed out.

// pool is the target's warm pool; its fields are guarded by target.mu.
type pool struct {
	cfg         *warm.Config
	maxReplicas int // the policy's max; 0 is no bound
	kick        chan struct{}
	started     bool
	handedOut   uint64
	parked      uint64
	lastErr     string
	failing     bool // a failure was logged and no success came since: log once a spell
}

var _ targets.Pooler = (*target)(nil)

func newPool(cfg *warm.Config, maxReplicas int) *pool {
	if cfg == nil {
		return nil
	}
	return &pool{cfg: cfg, maxReplicas: maxReplicas, kick: make(chan struct{}, 1)}
}

// SetMax implements targets.Pooler.
func (t *target) SetMax(n int) {
	t.mu.Lock()
	changed := t.pool != nil && t.pool.maxReplicas != n
	if changed {
		t.pool.maxReplicas = n
	}
	t.mu.Unlock()
	if changed {
		t.kickPool()
	}
}

// Pool implements targets.Pooler.
func (t *target) Pool() warm.Info {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pool
	if p == nil {
		return warm.Info{}
	}
	info := warm.Info{State: warm.Paused, Size: p.cfg.Size, Want: p.cfg.Want(len(t.live), p.maxReplicas),
		HandedOut: p.handedOut, Parked: p.parked, LastError: p.lastErr}
	for _, r := range t.pooled {
		if r.frozen.Load() {
			info.Members++
		} else {
			info.Warming++
		}
	}
	return info
}

// startPool starts the refill loop once. t.mu is held.
func (t *target) startPool() {
	if t.pool == nil || t.pool.started || t.closed {
		return
	}
	t.pool.started = true
	t.wg.Add(1)
	go t.refillLoop(t.pool.kick)
}

// kickPool asks for a refill now; a refill already asked for is enough.
func (t *target) kickPool() {
	t.mu.Lock()
	p := t.pool
	t.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// refillLoop keeps the pool at its size until Close.
func (t *target) refillLoop(kick <-chan struct{}) {
	defer t.wg.Done()
	tick := time.NewTicker(warm.RefillEvery)
	defer tick.Stop()
	for {
		t.refill()
		select {
		case <-t.ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		}
	}
}

// refill removes members beyond Keep (highest indexes first) and starts members up to
// Want, one per hold of t.mu so that a scale-up never waits behind a whole refill.
func (t *target) refill() {
	t.mu.Lock()
	if p := t.pool; p != nil && !t.closed {
		extra := len(t.pooled) - p.cfg.Keep(len(t.live), p.maxReplicas)
		for _, r := range t.poolOrder(true) {
			if extra <= 0 {
				break
			}
			t.unpool(r)
			extra--
		}
	}
	t.mu.Unlock()
	for {
		t.mu.Lock()
		p := t.pool
		if p == nil || t.closed || len(t.pooled) >= p.cfg.Want(len(t.live), p.maxReplicas) {
			t.mu.Unlock()
			return
		}
		t.ensureSpawner()
		idx := t.freeIndex()
		c, err := t.start(idx)
		if err != nil {
			t.poolFailed(err)
			t.mu.Unlock()
			return // the next tick tries again
		}
		r := newReplica(idx)
		r.attach(c)
		t.pooled[idx] = r
		t.wg.Add(2)
		go t.supervise(r, c)
		go t.warmUp(r, t.drain)
		t.mu.Unlock()
	}
}

// warmUp settles a new member (with a drain block) and freezes it.
func (t *target) warmUp(r *replica, cfg *drain.Config) {
	defer t.wg.Done()
	if cfg != nil {
		ctx, cancel := context.WithTimeout(t.ctx, warm.ReadyLimit)
		// A member stopped or dead meanwhile has nothing left to settle.
		go func() {
			select {
			case <-r.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := drain.Settle(ctx, cfg, t.reach(r.index))
		cancel()
		if err != nil {
			t.mu.Lock()
			defer t.mu.Unlock()
			if t.pooled[r.index] == r && !t.closed {
				t.poolFailed(err)
				t.unpool(r)
			}
			return
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Under t.mu: a member taken out meanwhile (Close, refill) must not be frozen after
	// its stop, and none is handed out before it is frozen.
	if t.pooled[r.index] != r || t.closed {
		return
	}
	if err := syscall.Kill(-int(r.pid.Load()), syscall.SIGSTOP); err != nil {
		t.poolFailed(err)
		t.unpool(r)
		return
	}
	r.frozen.Store(true)
	if t.pool.failing {
		t.log.Info("warm pool member ready again", "replica", r.index)
	}
	t.pool.lastErr, t.pool.failing = "", false
}

// poolFailed keeps err for the status and logs it once per failing spell. t.mu is held.
func (t *target) poolFailed(err error) {
	t.pool.lastErr = err.Error()
	if !t.pool.failing {
		t.pool.failing = true
		t.log.Warn("cannot make a warm pool member", "err", err)
	}
}

// unpool moves member r to leaving and tells it to stop (terminate continues a frozen
// one). t.mu is held.
func (t *target) unpool(r *replica) {
	delete(t.pooled, r.index)
	t.leaving[r.index] = r
	close(r.stop)
}

// poolOrder lists the frozen members (all members with all) by index, lowest first, or
// highest first with all: hand-out takes the lowest, shrinking drops the highest.
func (t *target) poolOrder(all bool) []*replica {
	out := make([]*replica, 0, len(t.pooled))
	for _, r := range t.pooled {
		if all || r.frozen.Load() {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *replica) int { return a.index - b.index })
	if all {
		slices.Reverse(out)
	}
	return out
}

// takeFromPool hands out up to k frozen members, lowest index first: SIGCONT, into live,
// then the drain's resume where the drain block quiets replicas (they were settled
// quiet). It returns how many it took.
func (t *target) takeFromPool(ctx context.Context, k int) int {
	t.mu.Lock()
	if t.pool == nil || t.closed {
		t.mu.Unlock()
		return 0
	}
	var taken []*replica
	for _, r := range t.poolOrder(false) {
		if len(taken) == k {
			break
		}
		// Continued under t.mu, with the move to live, so that a stop never finds a
		// live replica frozen.
		if err := syscall.Kill(-int(r.pid.Load()), syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.log.Warn("cannot continue a warm pool member; leaving it", "replica", r.index, "err", err)
			continue
		}
		r.frozen.Store(false)
		delete(t.pooled, r.index)
		t.live[r.index] = r
		taken = append(taken, r)
	}
	t.pool.handedOut += uint64(len(taken))
	cfg := t.drain
	t.mu.Unlock()
	if len(taken) > 0 {
		t.log.Info("handed out warm pool members", "count", len(taken), "first", taken[0].index)
	}
	if cfg == nil || (cfg.QuietSignal == "" && cfg.Quiet == nil) || len(taken) == 0 {
		return len(taken)
	}
	done := make(chan struct{}, len(taken))
	for _, r := range taken {
		go func() {
			defer func() { done <- struct{}{} }()
			if err := t.quiet(ctx, cfg, r, true); err != nil {
				// It runs and is counted; the busy probe and the next drain still see it.
				t.log.Warn("cannot resume a warm pool member handed out", "replica", r.index, "err", err)
			}
		}()
	}
	for range taken {
		<-done
	}
	return len(taken)
}

// park freezes replica r, whose drain ended idle, into the pool instead of stopping it,
// when reuse_on_scale_in is set and the pool has room. It reports whether it did. t.mu
// is held.
func (t *target) park(r *replica) bool {
	p := t.pool
	if p == nil || !p.cfg.ReuseOnScaleIn || len(t.pooled) >= p.cfg.Keep(len(t.live), p.maxReplicas) || r.pid.Load() == 0 {
		return false
	}
	if err := syscall.Kill(-int(r.pid.Load()), syscall.SIGSTOP); err != nil {
		return false
	}
	delete(t.draining, r.index)
	r.run = nil
	r.frozen.Store(true)
	t.pooled[r.index] = r
	p.parked++
	t.log.Info("replica is idle; parked it in the warm pool", "replica", r.index)
	return true
}

// memberExited drops r if it is a pool member whose child exited, and reports whether
// it did. A member is not capacity: restarting it would make a running replica nobody
// counts. The refill's next round (not a kick: a member that keeps crashing is retried
// at its pace) makes a new one.
func (t *target) memberExited(r *replica, c *child) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pooled[r.index] != r {
		return false
	}
	delete(t.pooled, r.index)
	t.poolFailed(fmt.Errorf("member %d (pid %d) exited: %s", r.index, c.pid, exitStatus(c.cmd.ProcessState)))
	return true
}
