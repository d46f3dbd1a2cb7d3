package process

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/reaper"
)

// replica is one supervised slot: an index and the goroutine that keeps a child running
// in it.
type replica struct {
	index   int
	stop    chan struct{} // closed to stop gracefully
	kill    chan struct{} // closed to skip the rest of stop_timeout
	killMu  sync.Once
	done    chan struct{} // closed when the goroutine has ended and its children are gone
	running atomic.Bool
	pid     atomic.Int64 // of the current child, for tests; 0 when none
	// started is when the current child started (unix ns): a drain takes the least
	// recently started replica first.
	started atomic.Int64
	// frozen is set while the replica is a SIGSTOPped warm pool member: its stop must
	// continue it, or the stop signal stays pending until stop_timeout's SIGKILL.
	frozen atomic.Bool
	// run is the replica's drain while it is in target.draining; guarded by target.mu.
	run *drainRun
}

func newReplica(idx int) *replica {
	return &replica{index: idx, stop: make(chan struct{}), kill: make(chan struct{}), done: make(chan struct{})}
}

// attach records c as the replica's running child.
func (r *replica) attach(c *child) {
	r.pid.Store(int64(c.pid))
	r.started.Store(c.began.UnixNano())
	r.running.Store(true)
}

func (r *replica) killNow() { r.killMu.Do(func() { close(r.kill) }) }

// sleep waits d, or until the replica is told to stop (then it returns false).
func (r *replica) sleep(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-r.stop:
		return false
	}
}

// child is one started process: the leader of its own process group.
type child struct {
	cmd    *exec.Cmd
	pid    int
	began  time.Time
	exited chan struct{} // closed once the process is reaped; cmd.ProcessState is set
	pipes  []*os.File    // read ends of stdout and stderr
	output sync.WaitGroup
}

// startChild forks argv through the spawner. Output goes through pipes the target reads
// itself (not cmd.Stdout = some writer) so that Wait returns when the child exits, even
// if a grandchild still holds the pipe.
func startChild(sp *spawner, argv []string, dir string, env []string, log *slog.Logger, prefix string, idx int) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = sysProcAttr()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	var owner *reaper.Owner
	err = sp.do(func() (err error) { owner, err = reaper.Start(cmd); return err })
	// The child has its own copies; ours must go or the readers never see EOF.
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	c := &child{cmd: cmd, pid: cmd.Process.Pid, began: time.Now(), exited: make(chan struct{}), pipes: []*os.File{outR, errR}}
	c.output.Add(2)
	go func() { defer c.output.Done(); logOutput(log, outR, prefix, idx, "stdout") }()
	go func() { defer c.output.Done(); logOutput(log, errR, prefix, idx, "stderr") }()
	go func() {
		// The error is in ProcessState, read after exited is closed.
		_ = cmd.Wait()
		// Descendants that left the process group (setsid) were handed to the daemon
		// when the child died: they go now, so nothing outlives its replica.
		owner.Release()
		close(c.exited)
	}()
	return c, nil
}

// signalGroup sends sig to the child's whole process group, so what the child started
// goes too. A group that is already gone is not an error.
func (c *child) signalGroup(sig syscall.Signal) error {
	err := syscall.Kill(-c.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// groupAlive reports whether any process of the child's group still runs.
func (c *child) groupAlive() bool { return groupRunning(c.pid) }

// drain waits for the child's output to reach EOF, at most d, then closes the pipes.
func (c *child) drain(d time.Duration) {
	eof := make(chan struct{})
	go func() { c.output.Wait(); close(eof) }()
	select {
	case <-eof:
	case <-time.After(d):
		// Someone outside the group still holds the pipe; stop reading it.
		for _, p := range c.pipes {
			_ = p.SetReadDeadline(time.Now())
		}
		<-eof
	}
	for _, p := range c.pipes {
		p.Close()
	}
}

// exitStatus describes how a child ended, for logs.
func exitStatus(ps *os.ProcessState) string {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by " + signalName(ws.Signal())
	}
	return fmt.Sprintf("exit code %d", ps.ExitCode())
}

// restarts reports whether the restart policy restarts a child that ended with ps.
func restarts(policy string, ps *os.ProcessState) bool {
	switch policy {
	case RestartAlways:
		return true
	case RestartOnFailure:
		return !ps.Success()
	}
	return false
}
