package process

import (
	"syscall"
	"time"
)

// supervise keeps replica r's child running, starting with c, until r is told to stop or
// the restart policy lets the child go.
func (t *target) supervise(r *replica, c *child) {
	defer t.wg.Done()
	defer close(r.done)
	defer t.forget(r)
	delay := t.timing.backoffMin
	for {
		if c != nil {
			began := time.Now()
			if stopped := t.watch(r, c); stopped {
				return
			}
			if time.Since(began) >= t.timing.stableAfter {
				delay = t.timing.backoffMin
			}
			ps := c.cmd.ProcessState
			if t.memberExited(r, c) {
				return
			}
			if t.isDraining(r) {
				// It was told to go quiet, and ended: its drain is over, and a restart
				// would bring back a replica that takes work.
				t.log.Info("process exited during its drain; not restarting it", "replica", r.index, "pid", c.pid, "status", exitStatus(ps))
				t.departed(r)
				return
			}
			if !restarts(t.restart, ps) {
				level := t.log.Warn
				if ps.Success() {
					level = t.log.Info
				}
				level("process exited; not restarting it", "replica", r.index, "pid", c.pid,
					"status", exitStatus(ps), "restart", t.restart)
				t.departed(r)
				return
			}
			t.log.Warn("process exited; restarting it", "replica", r.index, "pid", c.pid,
				"status", exitStatus(ps), "restart_in", delay.String())
		}
		if !r.sleep(delay) {
			return
		}
		if t.isDraining(r) {
			t.log.Info("replica chosen for a drain while waiting to restart; not restarting it", "replica", r.index)
			t.departed(r)
			return
		}
		next := min(delay*2, t.timing.backoffMax)
		var err error
		if c, err = t.start(r.index); err != nil {
			t.log.Error("cannot restart process", "replica", r.index, "err", err, "retry_in", next.String())
		}
		delay = next
	}
}

// watch waits for the child to exit or for r to be told to stop; it reports whether it
// stopped the child on request. Either way the child's process group and output are
// gone when it returns.
func (t *target) watch(r *replica, c *child) (stopped bool) {
	r.attach(c)
	defer r.pid.Store(0)
	select {
	case <-c.exited:
		r.running.Store(false)
		// The replica is dead; what it left in its group would only compete with the
		// restarted one.
		_ = c.signalGroup(syscall.SIGKILL)
	case <-r.stop:
		t.terminate(r, c)
		r.running.Store(false)
		stopped = true
	}
	c.drain(t.timing.drain)
	if stopped {
		// After the drain, so the child's last words come first.
		t.log.Info("process stopped", "replica", r.index, "pid", c.pid, "status", exitStatus(c.cmd.ProcessState))
	}
	return stopped
}

// terminate sends the stop signal to the child's group and waits stop_timeout for the
// whole group to exit, then SIGKILLs it. It returns once the child is reaped.
func (t *target) terminate(r *replica, c *child) {
	sig, timeout := t.stopSettings()
	t.log.Info("stopping process", "replica", r.index, "pid", c.pid, "signal", signalName(sig))
	if err := c.signalGroup(sig); err != nil {
		t.log.Warn("cannot signal process group", "replica", r.index, "pid", c.pid, "err", err)
	}
	if r.frozen.Load() {
		// After the stop signal, so the frozen group handles it as soon as it runs.
		_ = c.signalGroup(syscall.SIGCONT)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	if t.waitGone(c, deadline.C, r.kill) {
		return
	}
	t.log.Warn("process did not stop in time; killing it", "replica", r.index, "pid", c.pid, "stop_timeout", timeout.String())
	if err := c.signalGroup(syscall.SIGKILL); err != nil {
		t.log.Warn("cannot kill process group", "replica", r.index, "pid", c.pid, "err", err)
	}
	<-c.exited
}

// waitGone waits until the child has exited and nothing is left in its process group.
// It returns false if deadline or kill fires first.
func (t *target) waitGone(c *child, deadline <-chan time.Time, kill <-chan struct{}) bool {
	select {
	case <-c.exited:
	case <-deadline:
		return false
	case <-kill:
		return false
	}
	// Grandchildren are not our children: no exit notification, so poll the group.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for c.groupAlive() {
		select {
		case <-tick.C:
		case <-deadline:
			return false
		case <-kill:
			return false
		}
	}
	return true
}
