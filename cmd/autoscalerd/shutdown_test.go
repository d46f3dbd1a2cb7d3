package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownHonoursStopTimeout: on SIGTERM a process target's replicas get their whole
// stop_timeout (here 40 s, past the 30 s the daemon used to cap shutdown at): a worker that
// takes 33 s to finish its job after SIGTERM exits by itself and is not killed.
func TestShutdownHonoursStopTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := filepath.Join(dir, "q")
	if err := os.WriteFile(q, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "finished")
	cfg := filepath.Join(dir, "autoscalerd.yaml")
	worker := fmt.Sprintf(`trap 'sleep 33; touch %s; exit 0' TERM; while :; do sleep 0.2; done`, marker)
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`policies:
  - name: slowstop
    target:
      process:
        command: [/bin/sh, -c, %q]
        stop_timeout: 40s
    min: 1
    max: 1
    interval: 1s
    queries:
      q: { file: { path: %s } }
    replicas: q
`, worker, q)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)
	d.waitFor("one replica", 10*time.Second, func() bool { return d.policy("slowstop").Current == 1 })
	time.Sleep(500 * time.Millisecond) // the shell has set its trap
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop within 60s")
	}
	took := time.Since(start)
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the worker did not finish its job (killed after %s?)\n%s", took.Round(time.Second), d.logText())
	}
	if strings.Contains(d.logText(), "did not stop in time") {
		t.Errorf("the worker was killed:\n%s", d.logText())
	}
}

// TestSIGHUPBurstIsOneReload: 100 SIGHUPs within a second are one reload (or two), not 100.
func TestSIGHUPBurstIsOneReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := filepath.Join(dir, "q")
	if err := os.WriteFile(q, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "autoscalerd.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`policies:
  - name: p
    target: { process: { command: [/bin/sleep, "3600"] } }
    max: 2
    dry_run: true
    queries:
      q: { file: { path: %s } }
    replicas: q
`, q)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)
	for range 100 {
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	if n := strings.Count(d.logText(), "configuration reloaded"); n < 1 || n > 2 {
		t.Errorf("%d reloads for a burst of 100 SIGHUPs, want 1 or 2\n%s", n, d.logText())
	}
	if got := d.policy("p"); got.Name != "p" {
		t.Errorf("policy after the burst: %+v", got)
	}
}
