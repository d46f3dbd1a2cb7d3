package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/policy"
)

// processPolicy is a process-target policy on a file query, at a 1s interval.
func processPolicy(q, stopTimeout string) string {
	return fmt.Sprintf(`policies:
  - name: w
    target: { process: { command: [/bin/sleep, "3600"], stop_timeout: %s } }
    min: 1
    max: 5
    interval: 1s
    cooldown: { up: 30s, down: 5m }
    queries:
      q: { file: { path: %s } }
    replicas: q
`, stopTimeout, q)
}

// TestRestartRestoresProcessGroupAtOnce: a process group's replicas end with the daemon.
// After a restart the group starts empty; that is not a change made outside autoscalerd,
// and the count the policy had is restored on the first tick, not after cooldown.up.
func TestRestartRestoresProcessGroupAtOnce(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q")
	writeFile(t, q, "3")
	store, err := NewStore(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, store)
	r.apply(processPolicy(q, "2s"))
	r.run()
	r.waitFor("3 replicas", 10*time.Second, func() bool { return r.status("w").Current == 3 })
	r.stop()

	r = newRig(t, store)
	r.apply(processPolicy(q, "2s"))
	r.run()
	r.waitFor("the first tick after the restart", 10*time.Second, func() bool { return r.status("w").LastDecision != nil })
	s := r.status("w")
	if s.Current != 3 || !strings.Contains(s.LastDecision.Reason, "restore 3 at once") || strings.Contains(s.LastDecision.Reason, "adopting") {
		t.Fatalf("after the restart: current %d, reason %q", s.Current, s.LastDecision.Reason)
	}
}

// TestReloadOfStopSettingsKeepsReplicas: a reload that only changes stop_timeout keeps the
// running children (same pids) and the count.
func TestReloadOfStopSettingsKeepsReplicas(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q")
	writeFile(t, q, "2")
	r := newRig(t, nil)
	r.apply(processPolicy(q, "2s"))
	r.run()
	r.waitFor("2 replicas", 10*time.Second, func() bool { return r.status("w").Current == 2 })
	before := sleepers(t)
	r.apply(processPolicy(q, "7s"))
	time.Sleep(2500 * time.Millisecond) // two ticks under the new configuration
	if s := r.status("w"); s.Current != 2 || (s.LastDecision != nil && s.LastDecision.From != 2) {
		t.Errorf("after the reload: %+v", s)
	}
	if after := sleepers(t); after != before {
		t.Errorf("the children changed: %q, then %q", before, after)
	}
	if strings.Contains(r.log.String(), "stopping process") {
		t.Errorf("a replica was stopped:\n%s", r.log.String())
	}
}

// sleepers lists the pids of this test's `sleep 3600` children.
func sleepers(t *testing.T) string {
	t.Helper()
	out, _ := exec.Command("pgrep", "-f", "-P", fmt.Sprint(os.Getpid()), "^/bin/sleep 3600$").Output()
	return strings.TrimSpace(string(out))
}

// TestStateDirFull: when state_dir is full (then read-only) the policy keeps deciding, says so once (in the
// log, the status and a metric), and recovers when there is room again. Needs root for a
// small tmpfs.
func TestStateDirFull(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (to mount a small tmpfs as state_dir)", "run the tests as root, as CI does")
	}
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", stateDir).CombinedOutput(); err != nil {
		testenv.Missing(t, "mount -t tmpfs", fmt.Sprintf("%v: %s", err, out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", stateDir).Run() })
	store, err := NewStore(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	fill := filepath.Join(stateDir, "fill")
	_ = exec.Command("dd", "if=/dev/zero", "of="+fill, "bs=4k", "count=100").Run() // fills it, then fails
	q := filepath.Join(dir, "q")
	writeFile(t, q, "2")
	r := newRig(t, store)
	r.apply(strings.Replace(processPolicy(q, "2s"), "cooldown: { up: 30s, down: 5m }", "cooldown: { up: 0s, down: 0s }", 1))
	r.run()
	r.waitFor("the failed save shows in the status", 10*time.Second, func() bool { return strings.Contains(r.status("w").StateError, "no space left") })
	writeFile(t, q, "3")
	r.waitFor("deciding goes on", 10*time.Second, func() bool { return r.status("w").Current == 3 })
	if n := strings.Count(r.log.String(), "saving state failing"); n != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", n, r.log.String())
	}
	if n := policyValue(t, r.e.metrics, "autoscalerd_state_save_errors_total", "w"); n < 2 {
		t.Errorf("autoscalerd_state_save_errors_total = %v, want ≥ 2", n)
	}
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	writeFile(t, q, "4")
	r.waitFor("the save succeeds again", 10*time.Second, func() bool { return r.status("w").StateError == "" })
	if !strings.Contains(r.log.String(), "saving state recovered") {
		t.Errorf("the recovery is not logged:\n%s", r.log.String())
	}
	st, err := store.Load("w")
	if err != nil || st.Expected != 4 {
		t.Errorf("saved state after recovery: %+v, %v", st, err)
	}

	// The same when state_dir becomes read-only, and writable again.
	if out, err := exec.Command("mount", "-o", "remount,ro", stateDir).CombinedOutput(); err != nil {
		t.Fatalf("remount ro: %v: %s", err, out)
	}
	writeFile(t, q, "5")
	r.waitFor("the read-only state_dir shows in the status", 10*time.Second, func() bool { return strings.Contains(r.status("w").StateError, "read-only file system") })
	r.waitFor("deciding goes on", 10*time.Second, func() bool { return r.status("w").Current == 5 })
	if out, err := exec.Command("mount", "-o", "remount,rw", stateDir).CombinedOutput(); err != nil {
		t.Fatalf("remount rw: %v: %s", err, out)
	}
	writeFile(t, q, "3")
	r.waitFor("the save succeeds again", 10*time.Second, func() bool { return r.status("w").StateError == "" })
	if n := strings.Count(r.log.String(), "saving state failing"); n != 2 {
		t.Errorf("%d failure messages for two outages:\n%s", n, r.log.String())
	}
}

// TestDryRunLogsDecisionOnce: a dry run decides the same action every tick (the target never
// follows); it is logged at info when it changes, not every tick.
func TestDryRunLogsDecisionOnce(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q")
	writeFile(t, q, "4")
	r := newRig(t, nil)
	cfg := strings.Replace(processPolicy(q, "2s"), "    queries:", "    dry_run: true\n    queries:", 1)
	r.apply(strings.Replace(cfg, "cooldown: { up: 30s, down: 5m }", "cooldown: { up: 0s, down: 5m }", 1))
	r.run()
	r.waitFor("four ticks", 10*time.Second, func() bool {
		return strings.Count(r.log.String(), "would scale 0→4") >= 4
	})
	if n := strings.Count(r.log.String(), "level=INFO msg=\"scaling (dry run)\""); n != 1 {
		t.Errorf("the dry-run decision was logged %d times at info, want once:\n%s", n, r.log.String())
	}
	if !strings.Contains(r.log.String(), "level=DEBUG msg=\"scaling (dry run, unchanged)\"") {
		t.Errorf("the repeats are not at debug:\n%s", r.log.String())
	}
	// The observer (decision log, notifications) hears the first as news, the rest as repeats.
	var news, repeats int
	for _, tk := range r.ticks.all() {
		if tk.Decision.Action != policy.Hold {
			if tk.Repeat {
				repeats++
			} else {
				news++
			}
		}
	}
	if news != 1 || repeats < 3 {
		t.Errorf("%d dry-run ticks as news, %d as repeats; want 1 and ≥ 3", news, repeats)
	}
	_ = context.Background
	_ = policy.Hold
}
