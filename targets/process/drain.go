package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
)

// drainRun is one drain of one replica.
type drainRun struct {
	id   uint64
	cfg  *drain.Config
	back chan struct{} // closed when a scale-up takes the replica back
}

// Drains implements targets.Drainer.
func (t *target) Drains() []targets.DrainInfo { return t.book.List() }

func (t *target) isDraining(r *replica) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.draining[r.index] == r
}

// startDrains chooses len(live)-n replicas (idle first, then least recently started, then
// highest index), tells them to go quiet and leaves them draining in the background. It
// returns once they are told: the policy sees n replicas at once, and a drain is not a
// scale call that blocks the policy's loop.
func (t *target) startDrains(ctx context.Context, cfg *drain.Config, n int) error {
	t.mu.Lock()
	cands := make([]drain.Candidate, 0, len(t.live))
	for i, r := range t.live {
		cands = append(cands, drain.Candidate{Name: strconv.Itoa(i), Number: i, Started: time.Unix(0, r.started.Load())})
	}
	t.mu.Unlock()

	drain.ProbeAll(ctx, cands, func(ctx context.Context, c drain.Candidate) (bool, error) {
		return t.busy(ctx, cfg, c.Number)
	})
	if err := ctx.Err(); err != nil {
		return t.errorf("scale down: checking which replicas are busy: %w", err)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.errorf("scale: %w", errClosed)
	}
	// Replicas may have left while they were asked (a crash that is not restarted).
	cands = slices.DeleteFunc(cands, func(c drain.Candidate) bool { return t.live[c.Number] == nil })
	chosen, reasons := drain.Pick(cands, len(t.live)-n, time.Now())
	for i, c := range chosen {
		r := t.live[c.Number]
		delete(t.live, c.Number)
		t.draining[c.Number] = r
		r.run = &drainRun{id: t.book.Start(c.Name, reasons[i], time.Now()), cfg: cfg, back: make(chan struct{})}
		t.log.Info("draining replica", "replica", c.Number, "reason", reasons[i], "timeout", cfg.TimeoutOrDefault().String())
		t.wg.Add(1)
		go t.runDrain(r, r.run)
	}
	return nil
}

// runDrain tells r to go quiet and waits until it is idle (or the timeout), then stops it
// as a scale-down does. It ends early when r is taken back or goes away.
func (t *target) runDrain(r *replica, run *drainRun) {
	defer t.wg.Done()
	if err := t.quiet(t.ctx, run.cfg, r, false); err != nil {
		// The busy probe still decides; a replica that keeps taking work ends in the
		// timeout.
		t.log.Warn("cannot tell the replica to go quiet; draining it anyway", "replica", r.index, "err", err)
	}
	out := drain.Wait(t.ctx, func(ctx context.Context) (bool, error) { return t.busy(ctx, run.cfg, r.index) },
		run.cfg.PollOrDefault(), run.cfg.TimeoutOrDefault(), r.done, run.back,
		func() { t.book.Set(run.id, targets.DrainWaiting, time.Now()) })
	switch out.State {
	case targets.DrainStopped, targets.DrainTimedOut:
		t.mu.Lock()
		mine := t.draining[r.index] == r && r.run == run
		parked := mine && out.State == targets.DrainStopped && t.park(r)
		if mine && !parked {
			delete(t.draining, r.index)
			t.leaving[r.index] = r
			close(r.stop)
		}
		t.mu.Unlock()
		if !mine {
			// Taken back, or stopped by Close, at the same moment.
			return
		}
		if out.State == targets.DrainTimedOut {
			args := []any{"replica", r.index, "timeout", run.cfg.TimeoutOrDefault().String()}
			if out.LastErr != nil {
				args = append(args, "busy_check_err", out.LastErr)
			}
			t.log.Warn("drain timed out while the replica is still busy; stopping it now cuts its work short", args...)
		} else if !parked {
			t.log.Info("replica is idle; stopping it", "replica", r.index)
		}
		if !parked {
			<-r.done // the drain's time includes the stop
		}
	case targets.DrainTakenBack:
		// takeBack did the rest.
	case targets.DrainGone:
		if t.ctx.Err() != nil {
			return // closing: Close stops it
		}
	}
	t.book.Set(run.id, out.State, time.Now())
	t.mu.Lock()
	changed := t.changed
	t.mu.Unlock()
	if changed != nil {
		changed() // the engine shows the drain's end and counts it
	}
}

// takeBack turns up to k draining replicas back into capacity (resume), lowest index first,
// and returns how many it took. Without a way to resume, it takes none: a quiet replica
// would not take work.
func (t *target) takeBack(ctx context.Context, k int) int {
	t.mu.Lock()
	var cands []*replica
	for _, r := range t.draining {
		if r.run != nil && (r.run.cfg.ResumeSignal != "" || r.run.cfg.Resume != nil || (r.run.cfg.QuietSignal == "" && r.run.cfg.Quiet == nil)) {
			cands = append(cands, r)
		}
	}
	t.mu.Unlock()
	// Lowest index first: the same order a scale-up fills.
	slices.SortFunc(cands, func(a, b *replica) int { return a.index - b.index })
	taken := 0
	for _, r := range cands {
		if taken == k {
			break
		}
		t.mu.Lock()
		run := r.run
		still := t.draining[r.index] == r
		t.mu.Unlock()
		if !still {
			continue
		}
		if err := t.quiet(ctx, run.cfg, r, true); err != nil {
			t.log.Warn("cannot take a draining replica back (resume failed); it goes on draining and a new replica is started instead", "replica", r.index, "err", err)
			continue
		}
		t.mu.Lock()
		if t.draining[r.index] == r && r.run == run {
			delete(t.draining, r.index)
			t.live[r.index] = r
			r.run = nil
			close(run.back)
			taken++
			t.log.Info("took a draining replica back", "replica", r.index)
			t.book.Set(run.id, targets.DrainTakenBack, time.Now())
		}
		t.mu.Unlock()
	}
	return taken
}

// reach is how the drain reaches replica idx: its port on loopback, commands with its
// environment, signals to its process group, files with {replica} in their name.
func (t *target) reach(idx int) drain.Reach {
	return drain.Reach{
		Client: t.httpc,
		URL: func(_ context.Context, h *drain.HTTP) (string, error) {
			return t.replicaURL(h, idx), nil
		},
		Run: func(ctx context.Context, argv []string) (int, error) { return t.runFor(ctx, argv, idx) },
		Signal: func(_ context.Context, sig syscall.Signal) error {
			t.mu.Lock()
			r := t.draining[idx]
			if r == nil {
				r = t.live[idx]
			}
			if r == nil {
				r = t.pooled[idx] // a member being settled
			}
			t.mu.Unlock()
			if r == nil || r.pid.Load() == 0 {
				return nil // between a crash and its restart: nothing runs to be told
			}
			if err := syscall.Kill(-int(r.pid.Load()), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				return err
			}
			return nil
		},
		File: func(_ context.Context, path string) (bool, error) {
			path = strings.ReplaceAll(path, "{replica}", strconv.Itoa(idx))
			if !filepath.IsAbs(path) && t.dir != "" {
				path = filepath.Join(t.dir, path)
			}
			_, err := os.Stat(path)
			switch {
			case err == nil:
				return true, nil
			case errors.Is(err, os.ErrNotExist):
				return false, nil
			}
			return false, err
		},
	}
}

// busy asks replica idx whether it is working.
func (t *target) busy(ctx context.Context, cfg *drain.Config, idx int) (bool, error) {
	return t.reach(idx).Busy(ctx, cfg.Busy)
}

// quiet tells replica r to take no new work (or, with resume, to take work again).
func (t *target) quiet(ctx context.Context, cfg *drain.Config, r *replica, resume bool) error {
	if resume {
		return t.reach(r.index).Tell(ctx, cfg.ResumeSignal, cfg.Resume)
	}
	return t.reach(r.index).Tell(ctx, cfg.QuietSignal, cfg.Quiet)
}

func (t *target) replicaURL(h *drain.HTTP, idx int) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", h.BasePort+idx, h.Path)
}

// runFor runs argv for replica idx (its environment, AUTOSCALER_REPLICA included) and
// returns its exit code; err is set when it did not run to an exit.
func (t *target) runFor(ctx context.Context, argv []string, idx int) (int, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = t.dir, t.childEnv(idx)
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("%s: %w", argv[0], err)
	}
	return 0, nil
}
