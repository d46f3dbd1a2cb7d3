// Package reaper makes sure nothing a child of the daemon started outlives that child.
//
// Process groups are not enough: a command can leave its group with setsid (daemonising
// tools do), and the daemon's group kill then misses it; it used to live on, reparented to
// init, one per exec tick and one per scale-down. So the daemon becomes a child subreaper
// (Linux PR_SET_CHILD_SUBREAPER): whatever its descendants abandon is reparented to the
// daemon instead of init, where this package finds it.
//
// Every child is started through Start, which marks it with a unique owner token in its
// environment (inherited by what it starts, setsid or not) and registers its pid. Once the
// child is waited for, Release kills every orphan that carries its token. An orphan is a
// child of the daemon's that no Start registered: since every direct child is registered
// from fork to wait, an unregistered one can only be somebody's abandoned descendant. An
// orphan whose owner still runs is left alone (a worker may daemonise a helper while it
// lives); one without a readable token (it cleared its environment) or with the token of
// an owner already gone is killed. Orphans that exit by themselves are reaped, so they
// stay no zombies.
//
// Sweeps only act once Enable made the process a subreaper; without it abandoned
// processes go to init and there is nothing to find.
package reaper

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
)

// ownerEnv is the environment variable that carries the owner token.
const ownerEnv = "AUTOSCALERD_OWNER"

var (
	mu      sync.Mutex
	enabled bool
	direct  = map[int]bool{}   // registered direct children, from fork until waited for
	owners  = map[string]int{} // live owner tokens → their direct child's pid
	serial  atomic.Uint64
	prefix  = strconv.Itoa(os.Getpid()) + "-"
)

// Owner is one started child and the descendants it may leave behind.
type Owner struct {
	token string
	pid   int
	once  sync.Once
}

// Start starts cmd (cmd.Start) marked and registered as described in the package comment.
// Call Release once cmd.Wait has returned.
func Start(cmd *exec.Cmd) (*Owner, error) {
	token := prefix + strconv.FormatUint(serial.Add(1), 10)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env[:len(cmd.Env):len(cmd.Env)], ownerEnv+"="+token)
	// Held across the fork, so that no sweep sees the new child before it is registered.
	mu.Lock()
	defer mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	direct[pid], owners[token] = true, pid
	return &Owner{token: token, pid: pid}, nil
}

// Release ends the owner, after its child was waited for: it kills and reaps whatever the
// child left behind. It is safe to call more than once.
func (o *Owner) Release() {
	if o == nil {
		return
	}
	o.once.Do(func() {
		mu.Lock()
		defer mu.Unlock()
		delete(direct, o.pid)
		delete(owners, o.token)
		sweepLocked()
	})
}

// Enable makes the process a child subreaper and sweeps orphans whenever a child of the
// process exits (SIGCHLD), and every 2 seconds. stop ends that: one last sweep, and the process is no longer
// a subreaper. Call it from the daemon before it starts children.
func Enable() (stop func(), err error) {
	if err := setSubreaper(true); err != nil {
		return nil, err
	}
	mu.Lock()
	enabled = true
	mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watch(ctx)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			mu.Lock()
			defer mu.Unlock()
			sweepLocked()
			enabled = false
			_ = setSubreaper(false)
		})
	}, nil
}

// Sweep kills and reaps orphans now (Release and the SIGCHLD watch call it too).
func Sweep() {
	mu.Lock()
	defer mu.Unlock()
	sweepLocked()
}

// sweepLocked runs sweepOnce until a pass finds nothing to do: killing an orphan hands
// its own children to the daemon, to be found by the next pass. mu must be held.
func sweepLocked() {
	if !enabled {
		return
	}
	for range 100 { // bounded: a fork bomb must not hold the lock forever
		if !sweepOnce() {
			return
		}
	}
}
