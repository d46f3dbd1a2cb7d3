package compose

import (
	"context"
	"fmt"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/engine"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/targets"

	_ "github.com/autoscalerd/autoscalerd/sources/file"
)

// runEngine runs a real engine on text until the returned stop is called.
func runEngine(t *testing.T, text, stateDir string, log *plugintest.SyncBuffer) (e *engine.Engine, stop func()) {
	t.Helper()
	return runEngineWith(t, text, stateDir, log, prometheus.NewRegistry())
}

// runEngineWith is runEngine with the engine's metrics in reg.
func runEngineWith(t *testing.T, text, stateDir string, log *plugintest.SyncBuffer, reg prometheus.Registerer) (e *engine.Engine, stop func()) {
	t.Helper()
	store, err := engine.NewStore(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	e = engine.NewEngine(engine.EngineOptions{Logger: slog.New(slog.NewTextHandler(log, nil)), Metrics: engine.NewMetrics(reg), Store: store})
	cfg, ps, err := policy.Parse("test.yaml", []byte(text), configs.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(context.Background(), cfg, ps); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx, context.WithoutCancel(ctx))
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		e.Close(context.Background())
	}
	t.Cleanup(stop)
	return e, stop
}

func policyStatus(e *engine.Engine) engine.Status {
	s, _, _, _ := e.Detail("jobs")
	return s
}

// TestComposeDrainThroughTheEngine: the engine scales compose job workers 4→1 while 2
// are mid-job; the decision's current is 1 at once and the reason names the drained
// containers. The daemon is then stopped mid-drain and a new one started on the same
// state_dir: it finds the quiet container, drains it on, and the job is not cut.
func TestComposeDrainThroughTheEngine(t *testing.T) { eachEngine(t, testDrainThroughTheEngine) }

func testDrainThroughTheEngine(t *testing.T, cc *testenv.ComposeCLI) {
	_, pg, project := startJobWorkers(t, cc)
	stateDir := t.TempDir()
	q := filepath.Join(t.TempDir(), "want")
	if err := os.WriteFile(q, []byte("4"), 0o644); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`state_dir: %s
docker: { host: "%s" }
policies:
  - name: jobs
    target:
      compose:
        project: %s
        service: worker
        remove_volumes: true
        drain:
          busy: { http: { port: 8080, path: /busy } }
          quiet_signal: SIGTSTP
          resume_signal: SIGCONT
          timeout: 1m
          poll: 200ms
    min: 0
    max: 6
    interval: 300ms
    cooldown: { up: 0s, down: 0s }
    step: { down: 10 }
    queries:
      want: { file: { path: %s } }
    replicas: want
`, stateDir, cc.Engine().Host, project, q)
	var log plugintest.SyncBuffer
	e, stop := runEngine(t, text, stateDir, &log)
	waitUntil(t, "4 replicas", 30*time.Second, func() bool { return policyStatus(e).Current == 4 })
	time.Sleep(2 * time.Second) // the workers connect and listen
	pg.Exec(t, "INSERT INTO tasks (duration_ms) SELECT 7000 FROM generate_series(1, 2)")
	waitUntil(t, "2 jobs taken", 15*time.Second, func() bool { return len(pg.JobRuns(t)) == 2 })

	if err := os.WriteFile(q, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "3 drains", 10*time.Second, func() bool { return len(policyStatus(e).Draining) == 3 })
	st := policyStatus(e)
	if st.Current != 1 {
		t.Errorf("current = %d during the drain, want 1", st.Current)
	}
	if d := st.LastDecision; d == nil || !strings.Contains(d.Reason, "→ draining replica "+project+cc.Sep+"worker"+cc.Sep) {
		t.Errorf("reason does not name the drained containers: %+v", d)
	}
	waitUntil(t, "the idle one stopped", 10*time.Second, func() bool {
		for _, d := range policyStatus(e).Draining {
			if d.State == targets.DrainStopped {
				return true
			}
		}
		return false
	})
	// Stop the daemon with one busy replica still draining.
	var waiting string
	for _, d := range policyStatus(e).Draining {
		if d.State == targets.DrainWaiting || d.State == targets.DrainQuiet {
			waiting = d.Replica
		}
	}
	if waiting == "" {
		t.Fatalf("no busy replica draining: %+v", policyStatus(e).Draining)
	}
	stop()

	var log2 plugintest.SyncBuffer
	e2, _ := runEngine(t, text, stateDir, &log2)
	waitUntil(t, "the drain resumed", 15*time.Second, func() bool {
		for _, d := range policyStatus(e2).Draining {
			if d.Replica == waiting && strings.Contains(d.Reason, "drain resumed after a daemon restart") {
				return true
			}
		}
		return false
	})
	if c := policyStatus(e2).Current; c != 1 {
		t.Errorf("restarted: current = %d, want 1 (the quiet container is not capacity)", c)
	}
	waitUntil(t, "the resumed drain over", 20*time.Second, func() bool {
		for _, d := range policyStatus(e2).Draining {
			if d.Replica == waiting {
				return d.State.Over()
			}
		}
		return false
	})
	waitUntil(t, "both jobs done", 15*time.Second, func() bool {
		for _, r := range pg.JobRuns(t) {
			if r.Finished == nil {
				return false
			}
		}
		return true
	})
	if got := policyStatus(e2).Current; got != 1 {
		t.Errorf("after the drains: current = %d, want 1", got)
	}
}
