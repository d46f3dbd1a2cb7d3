package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
)

// timing holds the supervisor's clocks; tests shorten them.
type timing struct {
	// backoffMin is the first restart delay after a crash; it doubles up to backoffMax.
	backoffMin, backoffMax time.Duration
	// stableAfter is how long a child must run for its next crash to start the backoff
	// over: a worker that crashes once a day should not wait a minute to come back.
	stableAfter time.Duration
	// drain is how long a dead child's output may take to reach EOF; a grandchild that
	// left the process group could otherwise hold the pipe open forever.
	drain time.Duration
}

var defaultTiming = timing{backoffMin: time.Second, backoffMax: time.Minute, stableAfter: 30 * time.Second, drain: time.Second}

// target supervises the replicas of one policy.
//
// Status reports Replicas as the number of supervised replicas: running, or waiting for
// their restart backoff. A replica whose exit the restart policy does not restart
// (restart: never, or a clean exit with on-failure) is no longer supervised and no longer
// counted, so the policy sees the drop and decides whether to start a new one; its index
// is free again. Ready is the number of children running right now: Ready < Replicas
// means some replica is crash-looping. Replicas being drained (drain.go) are in neither:
// they are not capacity any more.
type target struct {
	// scaled is set by the first Scale: until then the group is as it started (Fresh).
	scaled      bool
	policy      string
	log         *slog.Logger
	argv        []string
	dir         string
	env         []string // added to the daemon's environment, in a stable order
	stopSig     syscall.Signal
	stopTimeout time.Duration
	restart     string
	timing      timing
	drain       *drain.Config // nil: scale-down stops at once
	book        drain.Book
	httpc       *http.Client
	// ctx ends at Close, ending the drains' waits.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	spawn   *spawner         // started on the first Scale, so building a target starts nothing
	live    map[int]*replica // supervised replicas by index
	leaving map[int]*replica // replicas being stopped; their indexes stay taken until gone
	// draining holds replicas chosen by a scale-down that wait to be idle; they are not
	// counted, and their indexes stay taken.
	draining map[int]*replica
	// pooled holds the warm pool's members (warm.go): not capacity, indexes taken.
	pooled  map[int]*replica
	pool    *pool // nil without a warm block
	closed  bool
	changed func()         // from Watch; nil when nobody watches
	wg      sync.WaitGroup // one per replica goroutine
}

var (
	_ targets.Closer   = (*target)(nil)
	_ targets.Watcher  = (*target)(nil)
	_ targets.Notifier = (*target)(nil)
	_ targets.Drainer  = (*target)(nil)
	_ targets.Pooler   = (*target)(nil)
)

func newTarget(cfg *Config, deps targets.Deps, tm timing) (*target, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("process: command is empty")
	}
	sig, err := parseSignal(cfg.StopSignal)
	if err != nil {
		return nil, fmt.Errorf("process: stop_signal: %w", err)
	}
	restart, err := parseRestart(cfg.Restart)
	if err != nil {
		return nil, fmt.Errorf("process: restart: %w", err)
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	env := cfg.environ()
	ctx, cancel := context.WithCancel(context.Background())
	return &target{
		drain:       cfg.Drain,
		httpc:       &http.Client{},
		ctx:         ctx,
		cancel:      cancel,
		draining:    map[int]*replica{},
		pooled:      map[int]*replica{},
		pool:        newPool(cfg.Warm, deps.MaxReplicas),
		policy:      deps.Policy,
		log:         log,
		argv:        slices.Clone(cfg.Command),
		dir:         cfg.Dir,
		env:         env,
		stopSig:     sig,
		stopTimeout: cfg.StopTimeout.D(),
		restart:     restart,
		timing:      tm,
		live:        map[int]*replica{},
		leaving:     map[int]*replica{},
	}, nil
}

// Update implements targets.Updater: a change of the stop signal, stop timeout or drain
// block applies to the running group (replicas stopped or drained from then on use it);
// any other change needs a new group.
func (t *target) Update(cfg any) (func(), bool) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, false
	}
	sig, err := parseSignal(c.StopSignal)
	if err != nil {
		return nil, false
	}
	restart, err := parseRestart(c.Restart)
	if err != nil {
		return nil, false
	}
	t.mu.Lock()
	// A pool may be resized in place, but not added or removed: its refill loop and
	// members belong to the group as built.
	same := slices.Equal(t.argv, c.Command) && t.dir == c.Dir && t.restart == restart && slices.Equal(t.env, c.environ()) &&
		(t.pool == nil) == (c.Warm == nil)
	t.mu.Unlock()
	if !same {
		return nil, false
	}
	timeout := c.StopTimeout.D()
	return func() {
		t.mu.Lock()
		// Drains under way keep the settings they started with.
		t.stopSig, t.stopTimeout, t.drain = sig, timeout, c.Drain
		if t.pool != nil {
			t.pool.cfg = c.Warm
		}
		t.mu.Unlock()
		t.kickPool() // the refill applies a new size
	}, true
}

// stopSettings returns the signal and timeout a replica is stopped with now.
func (t *target) stopSettings() (syscall.Signal, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopSig, t.stopTimeout
}

// Status implements targets.Target. It reads only the supervisor's own state.
// StatusInMemory implements targets.InMemory: Status reads the group's own state.
func (*target) StatusInMemory() {}

func (t *target) Status(context.Context) (targets.Status, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return targets.Status{}, t.errorf("status: %w", errClosed)
	}
	t.startPool()
	st := targets.Status{Replicas: len(t.live), Fresh: !t.scaled}
	for _, r := range t.live {
		if r.running.Load() {
			st.Ready++
		}
	}
	return st, nil
}

// Scale implements targets.Target. Scale-up starts the new children before it returns
// (so a command that cannot start is an error now, not a crash loop); scale-down returns
// when the stopped replicas' processes are gone, or when ctx ends, in which case the
// stops carry on in the background.
func (t *target) Scale(ctx context.Context, n int, _ targets.Reason) error {
	if n < 0 {
		return t.errorf("scale to %d: negative replica count", n)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return t.errorf("scale: %w", errClosed)
	}
	t.scaled = true
	t.startPool()
	// After every scale: the pool's Want and Keep follow the running count. Deferred
	// first, so it runs once t.mu is released; scale-up never waits for the refill.
	defer t.kickPool()
	if cur := len(t.live); n > cur {
		t.mu.Unlock()
		k := n - cur - t.takeBack(ctx, n-cur)
		k -= t.takeFromPool(ctx, k)
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.closed {
			return t.errorf("scale: %w", errClosed)
		}
		return t.scaleUp(ctx, k)
	}
	if t.drain != nil && n < len(t.live) {
		cfg := t.drain
		t.mu.Unlock()
		return t.startDrains(ctx, cfg, n)
	}
	stopping := t.pickHighest(len(t.live) - n)
	t.mu.Unlock()
	return t.await(ctx, stopping)
}

// scaleUp starts k replicas at the lowest free indexes. t.mu is held.
func (t *target) scaleUp(ctx context.Context, k int) error {
	t.ensureSpawner()
	for range k {
		if err := ctx.Err(); err != nil {
			return t.errorf("scale up: %w", err)
		}
		idx := t.freeIndex()
		c, err := t.start(idx)
		if err != nil {
			// The next replica would fail the same way; the policy retries next tick.
			return err
		}
		r := newReplica(idx)
		r.attach(c) // before Scale returns, so Status counts it as ready
		t.live[idx] = r
		t.wg.Add(1)
		go t.supervise(r, c)
	}
	return nil
}

// ensureSpawner starts the spawner on first use. t.mu is held.
func (t *target) ensureSpawner() {
	if t.spawn == nil {
		t.spawn = newSpawner()
	}
}

// freeIndex returns the lowest index not held by a supervised or stopping replica.
// t.mu is held.
func (t *target) freeIndex() int {
	for i := 1; ; i++ {
		if t.live[i] == nil && t.leaving[i] == nil && t.draining[i] == nil && t.pooled[i] == nil {
			return i
		}
	}
}

// pickHighest moves the k highest-indexed supervised replicas to leaving and tells them
// to stop. t.mu is held.
func (t *target) pickHighest(k int) []*replica {
	idxs := make([]int, 0, len(t.live))
	for i := range t.live {
		idxs = append(idxs, i)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(idxs)))
	out := make([]*replica, 0, k)
	for _, i := range idxs[:k] {
		r := t.live[i]
		delete(t.live, i)
		t.leaving[i] = r
		close(r.stop)
		out = append(out, r)
	}
	return out
}

// await waits until every replica in rs is gone, or ctx ends.
func (t *target) await(ctx context.Context, rs []*replica) error {
	for _, r := range rs {
		select {
		case <-r.done:
		case <-ctx.Done():
			return t.errorf("stop replica %d: %w (it is still being stopped)", r.index, ctx.Err())
		}
	}
	return nil
}

// forget drops a replica whose goroutine is ending, freeing its index.
func (t *target) forget(r *replica) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.live[r.index] == r {
		delete(t.live, r.index)
	}
	if t.leaving[r.index] == r {
		delete(t.leaving, r.index)
	}
	if t.draining[r.index] == r {
		delete(t.draining, r.index)
	}
	if t.pooled[r.index] == r {
		delete(t.pooled, r.index)
	}
}

// Watch implements targets.Watcher: it asks for an early evaluation when a replica leaves
// for good (its restart policy let it go), so the policy sees the lower count at once
// instead of an interval later.
func (t *target) Watch(ctx context.Context, changed func()) error {
	stop := t.Notify(changed)
	<-ctx.Done()
	stop()
	return nil
}

// Notify implements targets.Notifier: the same calls as Watch, without a goroutine blocked
// in it (the engine would need one per policy).
func (t *target) Notify(changed func()) (stop func()) {
	t.mu.Lock()
	t.changed = changed
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		t.changed = nil
		t.mu.Unlock()
	}
}

// departed drops a replica the restart policy let go and tells the watcher.
func (t *target) departed(r *replica) {
	t.forget(r)
	t.mu.Lock()
	changed := t.changed
	t.mu.Unlock()
	if changed != nil {
		changed()
	}
}

// Close implements targets.Closer: it stops every child (stop signal, stop_timeout,
// SIGKILL) and returns when all are gone and no goroutine of the target is left. If ctx
// ends first, the remaining children are SIGKILLed at once.
func (t *target) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.wg.Wait()
		return nil
	}
	t.closed = true
	t.cancel() // ends the drains' waits; their replicas are stopped here
	for i, r := range t.draining {
		delete(t.draining, i)
		t.leaving[i] = r
		close(r.stop)
	}
	for _, r := range t.pooled {
		t.unpool(r)
	}
	stopping := t.pickHighest(len(t.live))
	for _, r := range t.leaving {
		if !slices.Contains(stopping, r) {
			stopping = append(stopping, r)
		}
	}
	spawn := t.spawn
	t.mu.Unlock()

	if err := t.await(ctx, stopping); err != nil {
		for _, r := range stopping {
			r.killNow()
		}
		if !waitFor(&t.wg, killGrace) {
			// Only a process stuck in the kernel (a dead NFS mount) ignores SIGKILL; the
			// daemon must still be able to exit, so give up on it.
			return t.errorf("close: %w; killed the remaining children, but some have not exited %s later", ctx.Err(), killGrace)
		}
		spawn.stop() // non-nil: there were children to stop
		return t.errorf("close: %w; killed the remaining children", ctx.Err())
	}
	t.wg.Wait()
	if spawn != nil {
		spawn.stop()
	}
	return nil
}

// killGrace is how long Close waits for SIGKILLed children once its ctx has ended.
const killGrace = 5 * time.Second

// waitFor waits for wg at most d and reports whether it finished.
func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-done:
		return true
	case <-tm.C:
		return false
	}
}

// start forks the child for replica idx on the spawner's thread.
func (t *target) start(idx int) (*child, error) {
	c, err := startChild(t.spawn, t.argv, t.dir, t.childEnv(idx), t.log, t.prefix(idx), idx)
	if err != nil {
		return nil, t.errorf("start replica %d: %w", idx, err)
	}
	t.log.Info("process started", "replica", idx, "pid", c.pid)
	return c, nil
}

func (t *target) childEnv(idx int) []string {
	env := append(os.Environ(), t.env...)
	return append(env, ReplicaEnv+"="+strconv.Itoa(idx))
}

func (t *target) prefix(idx int) string { return fmt.Sprintf("[%s.%d]", t.policy, idx) }

// errorf prefixes errors with the program, which is what an operator recognises.
func (t *target) errorf(format string, args ...any) error {
	return fmt.Errorf("process %s: "+format, append([]any{t.argv[0]}, args...)...)
}
