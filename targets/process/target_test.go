package process

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/targets"
)

func TestScaleKeepsLowestIndexes(t *testing.T) {
	tg, rec := newTestTarget(t, "serve", nil, nil, testTiming)

	mustScale(t, tg, 1)
	rec.waitN(t, `^\[pol\.1\] leader ready replica=1 `, 1, 10*time.Second)
	mustStatus(t, tg, targets.Status{Replicas: 1, Ready: 1})

	mustScale(t, tg, 5)
	ready := rec.waitN(t, `^\[pol\.\d\] leader ready`, 5, 10*time.Second)
	got := readyIndexes(ready)
	slices.Sort(got)
	if want := []int{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Fatalf("children reported AUTOSCALER_REPLICA %v, want %v", got, want)
	}
	mustStatus(t, tg, targets.Status{Replicas: 5, Ready: 5})
	before := tg.pids()

	mustScale(t, tg, 1)
	if got := keys(tg.pids()); !slices.Equal(got, []int{1}) {
		t.Fatalf("after 5→1 the replicas are %v, want [1]", got)
	}
	if tg.pids()[1] != before[1] {
		t.Fatalf("replica 1 was restarted (pid %d → %d); scale-down must only stop the highest", before[1], tg.pids()[1])
	}
	// Scale returned, so the stopped children are already gone.
	waitGone(t, 0, before[2], before[3], before[4], before[5])
	for i := 2; i <= 5; i++ {
		rec.waitN(t, fmt.Sprintf(`^\[pol\.%d\] leader got SIGTERM$`, i), 1, time.Second)
	}
	mustStatus(t, tg, targets.Status{Replicas: 1, Ready: 1})

	mustScale(t, tg, 3)
	if got := keys(tg.pids()); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("after 1→3 the replicas are %v, want [1 2 3]", got)
	}
	rec.waitN(t, `^\[pol\.2\] leader ready replica=2 `, 2, 10*time.Second)
	rec.waitN(t, `^\[pol\.3\] leader ready replica=3 `, 2, 10*time.Second)
	mustStatus(t, tg, targets.Status{Replicas: 3, Ready: 3})
}

func TestStopSignal(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{"", "SIGTERM"}, // the default
		{"SIGUSR1", "SIGUSR1"},
		{"INT", "SIGINT"},
		{"sighup", "SIGHUP"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			tg, rec := newTestTarget(t, "serve", nil, func(c *Config) {
				if tc.config != "" {
					c.StopSignal = tc.config
				}
				c.StopTimeout = configs.Duration(20 * time.Second)
			}, testTiming)
			mustScale(t, tg, 1)
			rec.waitN(t, `leader ready`, 1, 10*time.Second)
			took := mustScale(t, tg, 0)
			rec.waitN(t, `^\[pol\.1\] leader got `+tc.want+`$`, 1, time.Second)
			if took > 10*time.Second {
				t.Errorf("stopping took %s: the child should have exited on %s at once", took, tc.want)
			}
			if n := len(rec.matching(`did not stop in time`)); n != 0 {
				t.Errorf("the child was killed although it stopped on %s", tc.want)
			}
			mustStatus(t, tg, targets.Status{})
		})
	}
}

func TestStopTimeoutKills(t *testing.T) {
	const stopTimeout = time.Second
	tg, rec := newTestTarget(t, "serve", map[string]string{"IGNORE_TERM": "1"}, func(c *Config) {
		c.StopTimeout = configs.Duration(stopTimeout)
	}, testTiming)
	mustScale(t, tg, 3)
	rec.waitN(t, `leader ready`, 3, 10*time.Second)
	pids := sortedPids(tg.pids())

	took := mustScale(t, tg, 0)
	// Stops run concurrently: three stubborn replicas take one stop_timeout, not three.
	if took < stopTimeout || took > 2*stopTimeout+stopTimeout/2 {
		t.Errorf("scale-down of 3 took %s, want about one stop_timeout (%s)", took, stopTimeout)
	}
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("child %d is still alive after Scale returned", pid)
		}
	}
	rec.waitN(t, `^process did not stop in time; killing it$`, 3, 0)
	if n := len(rec.matching(`got SIGTERM`)); n != 0 {
		t.Errorf("the child saw SIGTERM although it ignores it")
	}
}

func TestStopReachesGrandchildren(t *testing.T) {
	for _, tc := range []struct {
		name        string
		env         map[string]string
		stopTimeout time.Duration
	}{
		{"stop signal", map[string]string{"GRANDCHILD": "1"}, 3 * time.Second},
		{"SIGKILL", map[string]string{"GRANDCHILD": "1", "IGNORE_TERM": "1"}, 300 * time.Millisecond},
		// The grandchild becomes init's zombie (for good, under an init that does not reap):
		// that is not a process that still runs, and must not hold the stop up.
		{"parent does not wait", map[string]string{"GRANDCHILD": "1", "NO_WAIT": "1"}, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, rec := newTestTarget(t, "serve", tc.env, func(c *Config) {
				c.StopTimeout = configs.Duration(tc.stopTimeout)
			}, testTiming)
			mustScale(t, tg, 1)
			rec.waitN(t, `grandchild ready`, 1, 10*time.Second)
			var grandchild int
			g := rec.waitN(t, `^\[pol\.1\] grandchild pid=`, 1, 0)
			if _, err := fmt.Sscanf(g[0].msg, "[pol.1] grandchild pid=%d", &grandchild); err != nil {
				t.Fatal(err)
			}
			leader := tg.pids()[1]
			took := mustScale(t, tg, 0)
			waitGone(t, 2*time.Second, leader, grandchild)
			if tc.env["IGNORE_TERM"] == "" {
				rec.waitN(t, `^\[pol\.1\] grandchild got SIGTERM$`, 1, time.Second)
				// Well under stop_timeout, and not waiting for init to reap the orphan.
				if took >= time.Second {
					t.Errorf("stop took %s (stop_timeout %s) although the whole group exited on SIGTERM", took, tc.stopTimeout)
				}
			}
		})
	}
}

func TestRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy  string
		exit    map[string]string
		restart bool
	}{
		{RestartAlways, map[string]string{"EXIT_CODE": "0"}, true},
		{RestartAlways, map[string]string{"EXIT_CODE": "1"}, true},
		{RestartOnFailure, map[string]string{"EXIT_CODE": "0"}, false},
		{RestartOnFailure, map[string]string{"EXIT_CODE": "3"}, true},
		{RestartOnFailure, map[string]string{"EXIT_SIGNAL": "KILL"}, true},
		{RestartNever, map[string]string{"EXIT_CODE": "1"}, false},
		{RestartNever, map[string]string{"EXIT_CODE": "0"}, false},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.policy, tc.exit), func(t *testing.T) {
			tg, rec := newTestTarget(t, "exit", tc.exit, func(c *Config) { c.Restart = tc.policy }, testTiming)
			mustScale(t, tg, 2)
			if tc.restart {
				rec.waitN(t, `^\[pol\.1\] leader ready`, 3, 10*time.Second)
				rec.waitN(t, `^\[pol\.2\] leader ready`, 3, 10*time.Second)
				st, err := tg.Status(context.Background())
				if err != nil || st.Replicas != 2 {
					t.Fatalf("status = %+v, %v; want 2 supervised replicas", st, err)
				}
				return
			}
			rec.waitN(t, `^process exited; not restarting it$`, 2, 10*time.Second)
			// Twice the first backoff: a restart would have shown by now.
			time.Sleep(2 * testTiming.backoffMin)
			if n := len(rec.matching(`leader ready`)); n != 2 {
				t.Fatalf("%d starts, want 2 (no restarts); log:\n%s", n, rec.dump())
			}
			mustStatus(t, tg, targets.Status{})

			// The next Scale brings them back, at the freed indexes.
			mustScale(t, tg, 1)
			rec.waitN(t, `^\[pol\.1\] leader ready replica=1 `, 2, 10*time.Second)
		})
	}
}

func TestWatchReportsDepartures(t *testing.T) {
	tg, rec := newTestTarget(t, "exit", map[string]string{"EXIT_CODE": "0", "EXIT_AFTER": "200ms"}, func(c *Config) {
		c.Restart = RestartOnFailure
	}, testTiming)
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan targets.Status, 1)
	watching := make(chan error)
	go func() {
		watching <- tg.Watch(ctx, func() {
			st, _ := tg.Status(context.Background())
			changed <- st
		})
	}()
	for registered := false; !registered; time.Sleep(time.Millisecond) {
		tg.mu.Lock()
		registered = tg.changed != nil
		tg.mu.Unlock()
	}
	mustScale(t, tg, 1)
	rec.waitN(t, `leader ready`, 1, 10*time.Second)
	select {
	case st := <-changed:
		if st != (targets.Status{}) {
			t.Errorf("when told of the change, Status = %+v, want the replica gone", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported after the replica exited for good")
	}
	cancel()
	if err := <-watching; err != nil {
		t.Errorf("watch: %v", err)
	}
}

func TestRestartBackoff(t *testing.T) {
	tg, rec := newTestTarget(t, "exit", map[string]string{"EXIT_CODE": "1"}, nil, testTiming)
	mustScale(t, tg, 1)
	restarts := rec.waitN(t, `^process exited; restarting it$`, 6, 20*time.Second)
	starts := rec.waitN(t, `^process started$`, 6, 10*time.Second)

	want := []time.Duration{50, 100, 200, 400, 400} // ms: doubling, capped at backoffMax
	for i, w := range want {
		if got := restarts[i].attrs["restart_in"]; got != (w * time.Millisecond).String() {
			t.Errorf("restart %d: restart_in = %v, want %s", i+1, got, w*time.Millisecond)
		}
		// The child exits at once, so the gap between starts is at least the delay.
		if gap := starts[i+1].at.Sub(starts[i].at); gap < w*time.Millisecond {
			t.Errorf("start %d came %s after the previous one, before its backoff of %s", i+2, gap, w*time.Millisecond)
		}
	}
	st, err := tg.Status(context.Background())
	if err != nil || st.Replicas != 1 {
		t.Fatalf("status = %+v, %v; a crash-looping replica is still supervised", st, err)
	}

	// Stopping does not wait for the backoff.
	if took := mustScale(t, tg, 0); took > 2*time.Second {
		t.Errorf("scale-down of a crash-looping replica took %s", took)
	}
}

// TestRestartWhileProgramMissing: the program vanishes between restarts (a deploy
// replacing it); the replica keeps trying with backoff and comes back when it returns.
func TestRestartWhileProgramMissing(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	worker := t.TempDir() + "/worker"
	if err := os.Symlink(self, worker); err != nil {
		t.Fatal(err)
	}
	tg, rec := newTestTarget(t, "exit", map[string]string{"EXIT_CODE": "1", "EXIT_AFTER": "100ms"}, func(c *Config) {
		c.Command = []string{worker}
	}, testTiming)
	mustScale(t, tg, 1)
	rec.waitN(t, `leader ready`, 1, 10*time.Second)
	if err := os.Remove(worker); err != nil {
		t.Fatal(err)
	}
	failed := rec.waitN(t, `^cannot restart process$`, 2, 10*time.Second)
	if err := failed[0].attrs["err"].(error); !strings.Contains(err.Error(), "start replica 1: fork/exec "+worker+": no such file or directory") {
		t.Errorf("restart error = %v", err)
	}
	mustStatus(t, tg, targets.Status{Replicas: 1, Ready: 0})

	if err := os.Symlink(self, worker); err != nil {
		t.Fatal(err)
	}
	before := len(rec.matching(`leader ready`))
	rec.waitN(t, `leader ready replica=1 `, before+1, 10*time.Second)
}

func TestBackoffResetsAfterStableRun(t *testing.T) {
	tm := testTiming
	tm.stableAfter = 100 * time.Millisecond
	tg, rec := newTestTarget(t, "exit", map[string]string{"EXIT_CODE": "1", "EXIT_AFTER": "300ms"}, nil, tm)
	mustScale(t, tg, 1)
	for i, r := range rec.waitN(t, `^process exited; restarting it$`, 3, 20*time.Second) {
		if got := r.attrs["restart_in"]; got != tm.backoffMin.String() {
			t.Errorf("restart %d after a stable run: restart_in = %v, want %s", i+1, got, tm.backoffMin)
		}
	}
}

func TestOutputGoesToLogWithPrefix(t *testing.T) {
	tg, rec := newTestTarget(t, "serve", map[string]string{
		"SAY":     "hello|  indented|",
		"SAY_ERR": "something failed",
	}, nil, testTiming)
	mustScale(t, tg, 2)
	rec.waitN(t, `leader ready`, 2, 10*time.Second)
	for _, idx := range []int{1, 2} {
		for _, tc := range []struct{ msg, stream string }{
			{"hello", "stdout"},
			{"  indented", "stdout"},
			{"", "stdout"},
			{"something failed", "stderr"},
		} {
			msg := fmt.Sprintf("[pol.%d]", idx)
			if tc.msg != "" {
				msg += " " + tc.msg
			}
			got := rec.matching("^" + regexp.QuoteMeta(msg) + "$")
			if len(got) != 1 {
				t.Errorf("want one record %q, got %d; log:\n%s", msg, len(got), rec.dump())
				continue
			}
			if got[0].attrs["stream"] != tc.stream || got[0].attrs["replica"] != int64(idx) {
				t.Errorf("%q: attrs %v, want stream=%s replica=%d", msg, got[0].attrs, tc.stream, idx)
			}
		}
	}
}

func TestEnvAndDir(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, dir+"/worker"); err != nil {
		t.Fatal(err)
	}
	tg, rec := newTestTarget(t, "serve", map[string]string{"SAY": "token=${NOT_EXPANDED} x"}, func(c *Config) {
		c.Dir = dir
		c.Command = []string{"./worker"} // relative to dir
	}, testTiming)
	mustScale(t, tg, 1)
	r := rec.waitN(t, `leader ready`, 1, 10*time.Second)
	if !strings.HasSuffix(r[0].msg, " dir="+dir) {
		t.Errorf("child ran in the wrong directory: %q, want dir=%s", r[0].msg, dir)
	}
	// The child's env came from the config (no shell, so nothing is expanded).
	rec.waitN(t, `^\[pol\.1\] token=\$\{NOT_EXPANDED\} x$`, 1, time.Second)
}

func TestStartFailureIsScaleError(t *testing.T) {
	tg, _ := newTestTarget(t, "serve", nil, func(c *Config) {
		c.Command = []string{"/nonexistent/worker", "--flag"}
	}, testTiming)
	err := tg.Scale(context.Background(), 2, targets.Reason{})
	if err == nil {
		t.Fatal("Scale succeeded with a command that does not exist")
	}
	const want = "process /nonexistent/worker: start replica 1: fork/exec /nonexistent/worker: no such file or directory"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	mustStatus(t, tg, targets.Status{})
}

func TestCloseStopsEverything(t *testing.T) {
	baseline := runtime.NumGoroutine()
	self, _ := os.Executable()
	cfg := defaultConfig()
	cfg.Command = []string{self}
	cfg.Env = map[string]configs.Secret{childModeEnv: configs.NewSecret("serve")}
	rec := &recorder{}
	tg, err := newTarget(cfg, targets.Deps{Logger: slog.New(rec), Policy: "pol"}, testTiming)
	if err != nil {
		t.Fatal(err)
	}
	mustScale(t, tg, 3)
	rec.waitN(t, `leader ready`, 3, 10*time.Second)
	pids := sortedPids(tg.pids())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tg.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitGone(t, 0, pids...)
	rec.waitN(t, `got SIGTERM`, 3, 0)
	if _, err := tg.Status(ctx); err == nil {
		t.Error("Status after Close succeeded")
	}
	if err := tg.Scale(ctx, 1, targets.Reason{}); err == nil {
		t.Error("Scale after Close succeeded")
	}
	if err := tg.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// No goroutine of the target outlives Close (give the runtime a moment to retire them).
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCloseDeadlineKills(t *testing.T) {
	tg, rec := newTestTarget(t, "serve", map[string]string{"IGNORE_TERM": "1"}, func(c *Config) {
		c.StopTimeout = configs.Duration(time.Minute)
	}, testTiming)
	mustScale(t, tg, 2)
	rec.waitN(t, `leader ready`, 2, 10*time.Second)
	pids := sortedPids(tg.pids())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := tg.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "killed the remaining children") {
		t.Errorf("close = %v, want an error saying the children were killed", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %s with a 300ms deadline", took)
	}
	waitGone(t, 0, pids...)
}

// TestChildrenOutliveCallerThread: Pdeathsig fires when the forking *thread* exits. Scale
// is called here from a goroutine whose thread ends right after; the children must live.
func TestChildrenOutliveCallerThread(t *testing.T) {
	tg, rec := newTestTarget(t, "serve", nil, nil, testTiming)
	var err error
	tid := onDyingThread(t, func() { err = tg.Scale(context.Background(), 2, targets.Reason{}) })
	if err != nil {
		t.Fatal(err)
	}
	// Make sure the test did what it says: that thread is gone.
	if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid)); err == nil {
		t.Fatalf("thread %d that called Scale still exists", tid)
	}
	rec.waitN(t, `leader ready`, 2, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := len(rec.matching(`process exited`)); n != 0 {
		t.Fatalf("children died when the thread that called Scale ended; log:\n%s", rec.dump())
	}
	mustStatus(t, tg, targets.Status{Replicas: 2, Ready: 2})
}

// onDyingThread runs f on an OS thread that ends when f returns, and returns its id.
func onDyingThread(t *testing.T, f func()) int {
	release := make(chan struct{})
	defer close(release)
	for {
		tid := make(chan int)
		go func() {
			runtime.LockOSThread()
			if syscall.Gettid() == syscall.Getpid() {
				// The runtime never ends the main thread; park this goroutine on it
				// (so the next try lands elsewhere) and try again.
				tid <- 0
				<-release
				runtime.UnlockOSThread()
				return
			}
			f()
			// Returning while locked makes the runtime end this thread.
			tid <- syscall.Gettid()
		}()
		if id := <-tid; id != 0 {
			time.Sleep(100 * time.Millisecond) // let the runtime retire the thread
			return id
		}
	}
}
