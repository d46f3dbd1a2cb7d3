package process

import (
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
)

// draineeChild is a worker whose busy state is a file the test creates and removes
// ($BUSY_DIR/busy.<replica>, the drain's `file:` probe). It reports the quiet and resume
// signals, and on SIGTERM whether it was still busy.
func draineeChild() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)
	n := os.Getenv(ReplicaEnv)
	busyFile := filepath.Join(os.Getenv("BUSY_DIR"), "busy."+n)
	fmt.Printf("drainee ready replica=%s\n", n)
	for sig := range sigs {
		switch sig {
		case syscall.SIGUSR1:
			fmt.Printf("quiet replica=%s\n", n)
		case syscall.SIGUSR2:
			fmt.Printf("resumed replica=%s\n", n)
		case syscall.SIGTERM:
			_, err := os.Stat(busyFile)
			fmt.Printf("got SIGTERM replica=%s busy=%v\n", n, err == nil)
			os.Exit(0)
		}
	}
}

// newDrainTarget supervises drainees with a file busy probe, SIGUSR1 to go quiet and
// SIGUSR2 to resume.
func newDrainTarget(t *testing.T, timeout time.Duration) (*target, *recorder, string) {
	t.Helper()
	dir := t.TempDir()
	tg, rec := newTestTarget(t, "drainee", map[string]string{"BUSY_DIR": dir}, func(c *Config) {
		c.Drain = &drain.Config{
			Busy:         drain.Probe{File: filepath.Join(dir, "busy.{replica}")},
			QuietSignal:  "SIGUSR1",
			ResumeSignal: "SIGUSR2",
			Timeout:      configs.Duration(timeout),
			Poll:         configs.Duration(50 * time.Millisecond),
		}
	}, testTiming)
	return tg, rec, dir
}

func setBusy(t *testing.T, dir string, replica int, busy bool) {
	t.Helper()
	f := filepath.Join(dir, fmt.Sprintf("busy.%d", replica))
	if busy {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
}

// drainStates returns the state of each replica's latest drain.
func drainStates(tg *target) map[string]targets.DrainState {
	out := map[string]targets.DrainState{}
	for _, d := range tg.Drains() {
		out[d.Replica] = d.State
	}
	return out
}

func waitDrainState(t *testing.T, tg *target, rec *recorder, replica string, want targets.DrainState, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for drainStates(tg)[replica] != want {
		if time.Now().After(deadline) {
			t.Fatalf("drain of replica %s: state %q, want %q, %s later\ndrains: %+v\nlog:\n%s", replica, drainStates(tg)[replica], want, timeout, tg.Drains(), rec.dump())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDrainIdleFirstAndWaitsForBusy: 4 replicas, 1 and 2 busy. Scaling to 2 returns at
// once and drains the idle 3 and 4 (stopped at once); scaling to 1 then drains the least
// recently started busy one, 1, which gets the quiet signal, is counted out of Replicas
// at once, and is stopped only when it is idle.
func TestDrainIdleFirstAndWaitsForBusy(t *testing.T) {
	tg, rec, dir := newDrainTarget(t, time.Minute)
	mustScale(t, tg, 4)
	rec.waitN(t, `drainee ready`, 4, 10*time.Second)
	setBusy(t, dir, 1, true)
	setBusy(t, dir, 2, true)

	if took := mustScale(t, tg, 2); took > 5*time.Second {
		t.Errorf("scale-down with a drain took %s; it must return once the replicas are told", took)
	}
	waitDrainState(t, tg, rec, "3", targets.DrainStopped, 5*time.Second)
	waitDrainState(t, tg, rec, "4", targets.DrainStopped, 5*time.Second)
	rec.waitN(t, `got SIGTERM replica=[34] busy=false`, 2, 10*time.Second)
	mustStatus(t, tg, targets.Status{Replicas: 2, Ready: 2})
	for _, d := range tg.Drains() {
		if !strings.HasPrefix(d.Reason, "idle;") {
			t.Errorf("replica %s drained because %q, want idle", d.Replica, d.Reason)
		}
	}

	mustScale(t, tg, 1)
	// Not counted as capacity from the scale on, though it still runs.
	mustStatus(t, tg, targets.Status{Replicas: 1, Ready: 1})
	rec.waitN(t, `quiet replica=1`, 1, 5*time.Second)
	waitDrainState(t, tg, rec, "1", targets.DrainWaiting, 5*time.Second)
	time.Sleep(300 * time.Millisecond) // several polls: still busy, still running
	if got := rec.matching(`got SIGTERM replica=1`); len(got) != 0 {
		t.Fatalf("busy replica 1 was stopped during its drain: %v", got[0].msg)
	}
	if d := tg.Drains()[len(tg.Drains())-1]; d.Replica != "1" || !strings.HasPrefix(d.Reason, "busy (not enough idle replicas); started ") {
		t.Errorf("last drain = %+v, want replica 1, chosen busy", d)
	}
	// A further scale-down never picks the draining replica again.
	mustScale(t, tg, 1)
	setBusy(t, dir, 1, false)
	waitDrainState(t, tg, rec, "1", targets.DrainStopped, 5*time.Second)
	rec.waitN(t, `got SIGTERM replica=1 busy=false`, 1, 10*time.Second)
	mustStatus(t, tg, targets.Status{Replicas: 1, Ready: 1})
	if got := tg.pids(); !slices.Equal(keys(got), []int{2}) {
		t.Errorf("replicas left: %v, want [2]", keys(got))
	}
}

// TestDrainTakenBack: demand rises while replicas drain; the draining ones are resumed
// and counted again, and no new process starts.
func TestDrainTakenBack(t *testing.T) {
	tg, rec, dir := newDrainTarget(t, time.Minute)
	mustScale(t, tg, 3)
	rec.waitN(t, `drainee ready`, 3, 10*time.Second)
	for i := 1; i <= 3; i++ {
		setBusy(t, dir, i, true)
	}
	mustScale(t, tg, 1)
	rec.waitN(t, `quiet replica=`, 2, 5*time.Second)
	// All busy: the least recently started go first, 1 and 2.
	waitDrainState(t, tg, rec, "1", targets.DrainWaiting, 5*time.Second)
	waitDrainState(t, tg, rec, "2", targets.DrainWaiting, 5*time.Second)
	mustStatus(t, tg, targets.Status{Replicas: 1, Ready: 1})

	mustScale(t, tg, 4)
	rec.waitN(t, `resumed replica=[12]`, 2, 5*time.Second)
	if got := drainStates(tg); got["1"] != targets.DrainTakenBack || got["2"] != targets.DrainTakenBack {
		t.Errorf("drain states after scale-up: %v", got)
	}
	// Two taken back, one new: replica 4, and nothing more.
	rec.waitN(t, `drainee ready`, 4, 10*time.Second)
	mustStatus(t, tg, targets.Status{Replicas: 4, Ready: 4})
	if n := len(rec.matching(`drainee ready`)); n != 4 {
		t.Errorf("%d processes started, want 4 (3, then 1 new)", n)
	}
	if got := keys(tg.pids()); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Errorf("replicas %v, want [1 2 3 4]", got)
	}
	// Taken back for good: idle now, they are not stopped.
	setBusy(t, dir, 1, false)
	time.Sleep(300 * time.Millisecond)
	if got := rec.matching(`got SIGTERM`); len(got) != 0 {
		t.Fatalf("a replica taken back was stopped: %s", got[0].msg)
	}
}

// TestDrainTimeout: a replica busy past the timeout is stopped anyway, and the log says
// its work was cut short.
func TestDrainTimeout(t *testing.T) {
	tg, rec, dir := newDrainTarget(t, 400*time.Millisecond)
	mustScale(t, tg, 2)
	rec.waitN(t, `drainee ready`, 2, 10*time.Second)
	setBusy(t, dir, 1, true)
	setBusy(t, dir, 2, true)
	mustScale(t, tg, 1)
	waitDrainState(t, tg, rec, "1", targets.DrainTimedOut, 5*time.Second)
	rec.waitN(t, `drain timed out while the replica is still busy; stopping it now cuts its work short`, 1, time.Second)
	rec.waitN(t, `got SIGTERM replica=1 busy=true`, 1, 10*time.Second)
	d := tg.Drains()[0]
	if took := d.Ended.Sub(d.Since); took < 400*time.Millisecond || took > 3*time.Second {
		t.Errorf("timed-out drain took %s, want about the 400ms timeout", took)
	}
}

// drainOneOfTwoBusy starts 2 busy replicas and scales to 1: replica 1 (started first)
// drains, waiting for its work.
func drainOneOfTwoBusy(t *testing.T, timeout time.Duration) (*target, *recorder) {
	t.Helper()
	tg, rec, dir := newDrainTarget(t, timeout)
	mustScale(t, tg, 2)
	rec.waitN(t, `drainee ready`, 2, 10*time.Second)
	setBusy(t, dir, 1, true)
	setBusy(t, dir, 2, true)
	mustScale(t, tg, 1)
	waitDrainState(t, tg, rec, "1", targets.DrainWaiting, 5*time.Second)
	return tg, rec
}

// TestDrainReplicaExitsOnItsOwn: a draining worker that exits by itself (many finish
// their job and leave when told to go quiet) is not restarted, and its drain is over.
func TestDrainReplicaExitsOnItsOwn(t *testing.T) {
	tg, rec := drainOneOfTwoBusy(t, time.Minute)
	pid := 0
	tg.mu.Lock()
	pid = int(tg.draining[1].pid.Load())
	tg.mu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDrainState(t, tg, rec, "1", targets.DrainGone, 5*time.Second)
	rec.waitN(t, `process exited during its drain; not restarting it`, 1, 5*time.Second)
	time.Sleep(200 * time.Millisecond) // past testTiming's restart backoff
	if n := len(rec.matching(`drainee ready`)); n != 2 {
		t.Errorf("%d replicas started, want 2 (the drained one must not come back)", n)
	}
	mustStatus(t, tg, targets.Status{Replicas: 1, Ready: 1})
}

// TestDrainCloseStopsDrainingReplicas: Close does not wait for drains; it stops
// draining replicas like the rest.
func TestDrainCloseStopsDrainingReplicas(t *testing.T) {
	tg, rec := drainOneOfTwoBusy(t, time.Hour)
	mustClose(t, tg, 5*time.Second)
	if n := len(rec.matching(`got SIGTERM replica=[12]`)); n != 2 {
		t.Errorf("%d replicas got SIGTERM at close, want 2\n%s", n, rec.dump())
	}
}

// TestDrainBlockUpdatesInPlace: a reload that adds a drain block keeps the running
// replicas, and the next scale-down drains.
func TestDrainBlockUpdatesInPlace(t *testing.T) {
	tg, rec := newTestTarget(t, "drainee", map[string]string{"BUSY_DIR": t.TempDir()}, nil, testTiming)
	mustScale(t, tg, 2)
	rec.waitN(t, `drainee ready`, 2, 10*time.Second)
	before := tg.pids()

	cfg := defaultConfig()
	cfg.Command = slices.Clone(tg.argv)
	cfg.StopTimeout = configs.Duration(5 * time.Second)
	cfg.Env = map[string]configs.Secret{childModeEnv: configs.NewSecret("drainee"), "BUSY_DIR": configs.NewSecret(strings.TrimPrefix(envOf(tg, "BUSY_DIR"), "BUSY_DIR="))}
	cfg.Drain = &drain.Config{Busy: drain.Probe{File: "/nonexistent/busy.{replica}"}, QuietSignal: "SIGUSR1"}
	apply, ok := tg.Update(cfg)
	if !ok {
		t.Fatal("a new drain block needs a new group")
	}
	apply()
	if got := tg.pids(); !maps.Equal(got, before) {
		t.Fatalf("replicas changed: %v → %v", before, got)
	}
	mustScale(t, tg, 1)
	// Both idle: the least recently started goes, 1.
	rec.waitN(t, `quiet replica=1`, 1, 5*time.Second)
	waitDrainState(t, tg, rec, "1", targets.DrainStopped, 5*time.Second)
}

func envOf(tg *target, name string) string {
	for _, kv := range tg.env {
		if strings.HasPrefix(kv, name+"=") {
			return kv
		}
	}
	return ""
}

// TestDrainExecProbe: the busy check is a command run with the replica's environment
// (exit 0 busy, 1 idle), here a shell test on the replica's own busy file.
func TestDrainExecProbe(t *testing.T) {
	dir := t.TempDir()
	tg, rec := newTestTarget(t, "drainee", map[string]string{"BUSY_DIR": dir}, func(c *Config) {
		c.Drain = &drain.Config{
			Busy:        drain.Probe{Exec: []string{"/bin/sh", "-c", `test -e "$BUSY_DIR/busy.$AUTOSCALER_REPLICA"`}},
			QuietSignal: "SIGUSR1",
			Poll:        configs.Duration(50 * time.Millisecond),
		}
	}, testTiming)
	mustScale(t, tg, 2)
	rec.waitN(t, `drainee ready`, 2, 10*time.Second)
	setBusy(t, dir, 1, true) // 1 started first, but is busy: 2 goes
	mustScale(t, tg, 1)
	waitDrainState(t, tg, rec, "2", targets.DrainStopped, 5*time.Second)
	if d := tg.Drains()[0]; !strings.HasPrefix(d.Reason, "idle;") {
		t.Errorf("replica 2 drained because %q", d.Reason)
	}
	setBusy(t, dir, 1, false)
	mustScale(t, tg, 0)
	waitDrainState(t, tg, rec, "1", targets.DrainStopped, 5*time.Second)
	mustStatus(t, tg, targets.Status{Replicas: 0, Ready: 0})
}
