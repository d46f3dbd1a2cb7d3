package main_test

import (
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestNothingOutlivesItsChild runs the daemon with an exec query and a process worker that
// both start a process outside their process group (setsid): the query's is killed after
// every tick instead of piling up (one per tick), and the worker's goes with the daemon.
func TestNothingOutlivesItsChild(t *testing.T) {
	testenv.LookPath(t, "setsid", "apt-get install util-linux")
	// $((n)) keeps the marks out of the shells' own command lines.
	const queryMark, workerMark = "sleep 3600.94", "sleep 3600.95"
	cfg := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	os.WriteFile(cfg, []byte(`
policies:
  - name: orphans
    target: { process: { command: [sh, -c, "setsid sleep 3600.9$((5)) & wait"], stop_timeout: 2s } }
    max: 1
    interval: 100ms
    queries:
      one: { exec: { command: [sh, -c, "setsid sleep 3600.9$((4)) & echo 1"] } }
    replicas: one
`), 0o644)
	d := startDaemon(t, cfg)
	d.waitFor("the worker's escaped process", 10*time.Second, func() bool { return liveChildren(-1, workerMark) == 1 })
	time.Sleep(2 * time.Second) // some 20 ticks
	if n := liveChildren(-1, queryMark); n > 1 {
		t.Errorf("%d processes the exec query left behind still run; at most the current tick's may", n)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop")
	}
	d.waitFor("nothing left", 5*time.Second, func() bool {
		return liveChildren(-1, queryMark) == 0 && liveChildren(-1, workerMark) == 0
	})
}
