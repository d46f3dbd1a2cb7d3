package compose

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
)

// TestDaemonDrivesCompose runs the real autoscalerd binary: an HTTP query (shaped like
// Hatchet's task stats) drives a docker-compose service up, and back down once the
// down cooldown has passed.
func TestDaemonDrivesCompose(t *testing.T) {
	c, project, dir, tg := startV1(t, "asce2e")

	// Built like the example's image (static), so the two share the build cache.
	binary, err := testenv.BuildStatic(t, "./cmd/autoscalerd")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "autoscalerd")
	if err := os.WriteFile(bin, binary, 0o755); err != nil {
		t.Fatal(err)
	}

	var queued atomic.Int64
	stats := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"process-order": {"queued": {"total": %d}, "running": {"total": 0}}}`, queued.Load())
	}))
	defer stats.Close()

	const cooldownDown = 3 * time.Second
	cfg := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`log: { level: debug, format: text }
policies:
  - name: workers
    target:
      compose: { project: %s, service: worker, remove_volumes: true }
    min: 1
    max: 4
    interval: 300ms
    cooldown: { up: 0s, down: %s }
    queries:
      queued:
        http:
          url: %s/api/v1/tenants/t/task-stats
          value: process-order.queued.total
    replicas: ceil(queued / 10)
`, project, cooldownDown, stats.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs plugintest.SyncBuffer
	d := exec.Command(bin, "run", "-c", cfg, "--listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), "--state-dir", t.TempDir())
	d.Stdout, d.Stderr = &logs, &logs
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	defer func() {
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
	}()

	// settled waits until the service has want running containers and no others: Status
	// drops as soon as a replica stops, before the daemon has removed it.
	settled := func(want int, within time.Duration) {
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

	queued.Store(35) // ceil(35/10) = 4
	settled(4, 60*time.Second)
	checkReplicas(t, c, dir, project, "_", 4, 0)

	queued.Store(0)
	idle := time.Now()
	settled(1, 60*time.Second)
	if took := time.Since(idle); took < cooldownDown-200*time.Millisecond {
		t.Errorf("scaled down %s after demand fell, before the %s down cooldown", took, cooldownDown)
	}
	checkReplicas(t, c, dir, project, "_", 1, 0)
}
