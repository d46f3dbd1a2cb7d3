package compose

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
)

// TestDaemonDrivesCompose runs the real autoscalerd binary: an HTTP query (shaped like
// Hatchet's task stats) drives a compose service up, and back down once the down cooldown
// has passed, on each engine.
func TestDaemonDrivesCompose(t *testing.T) { eachEngine(t, testDaemonDrivesCompose) }

// daemonBinary builds cmd/autoscalerd once per test process, static like the example's
// image, so the two share the build cache.
func daemonBinary(t *testing.T) string {
	t.Helper()
	daemonBin.once.Do(func() {
		binary, err := testenv.BuildStatic(t, "./cmd/autoscalerd")
		if err != nil {
			daemonBin.err = err
			return
		}
		dir, err := os.MkdirTemp("", "autoscalerd-compose-test")
		if err != nil {
			daemonBin.err = err
			return
		}
		daemonBin.path = filepath.Join(dir, "autoscalerd")
		daemonBin.err = os.WriteFile(daemonBin.path, binary, 0o755)
	})
	if daemonBin.err != nil {
		t.Fatal(daemonBin.err)
	}
	return daemonBin.path
}

var daemonBin struct {
	once sync.Once
	path string
	err  error
}

func testDaemonDrivesCompose(t *testing.T, cc *testenv.ComposeCLI) {
	_, project, dir, tg := startProject(t, cc, "asce2e")
	var queued atomic.Int64
	const cooldownDown = 3 * time.Second
	startDaemon(t, cc, project, &queued, 4, "0s", cooldownDown.String())

	queued.Store(35) // ceil(35/10) = 4
	settled(t, tg, 4, 60*time.Second)
	checkReplicas(t, cc, dir, project, 4, 0)

	queued.Store(0)
	idle := time.Now()
	settled(t, tg, 1, 60*time.Second)
	if took := time.Since(idle); took < cooldownDown-200*time.Millisecond {
		t.Errorf("scaled down %s after demand fell, before the %s down cooldown", took, cooldownDown)
	}
	checkReplicas(t, cc, dir, project, 1, 0)
}

// startDaemon runs the real autoscalerd until the test ends, with one policy scaling the
// project's worker service to ceil(queued/10) (at least 1, at most max), read over HTTP
// from a stand-in for Hatchet's task stats. It returns the daemon's output so far.
func startDaemon(t *testing.T, cc *testenv.ComposeCLI, project string, queued *atomic.Int64, max int, cooldownUp, cooldownDown string) *plugintest.SyncBuffer {
	t.Helper()
	bin := daemonBinary(t)
	stats := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"process-order": {"queued": {"total": %d}, "running": {"total": 0}}}`, queued.Load())
	}))
	t.Cleanup(stats.Close)

	cfg := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`log: { level: debug, format: text }
docker: { host: "%s" }
policies:
  - name: workers
    target:
      compose: { project: %s, service: worker, remove_volumes: true }
    min: 1
    max: %d
    interval: 300ms
    cooldown: { up: %s, down: %s }
    queries:
      queued:
        http:
          url: %s/api/v1/tenants/t/task-stats
          value: process-order.queued.total
    replicas: ceil(queued / 10)
`, cc.Engine().Host, project, max, cooldownUp, cooldownDown, stats.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &plugintest.SyncBuffer{}
	d := exec.Command(bin, "run", "-c", cfg, "--listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), "--state-dir", t.TempDir())
	d.Stdout, d.Stderr = logs, logs
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	// Registered after the project's cleanup, so it runs first: the daemon stops before
	// compose removes the workers (it would replace them).
	t.Cleanup(func() {
		_ = d.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("daemon exit: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = d.Process.Kill()
			t.Error("daemon did not stop within 30s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("daemon output:\n%s", logs.String())
		}
	})
	return logs
}

// settled waits until the service has want running containers and no others: Status
// drops as soon as a replica stops, before the daemon has removed it.
func settled(t *testing.T, tg *Target, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		api, err := tg.client(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rs, err := tg.replicas(context.Background(), api)
		running := 0
		for _, r := range rs {
			if r.running() {
				running++
			}
		}
		if err == nil && running == want && len(rs) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not at %d replicas within %s (%d running of %d, %v)", want, within, running, len(rs), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
