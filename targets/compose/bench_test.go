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

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
)

// BenchmarkScaleUp20 compares scaling a compose service 1→20 through the target with
// `<compose> up -d --scale worker=20` on the same project, in the same run, on each engine
// (Debian's 20.10, Engine 29) and with each compose CLI (docker-compose 1.29, Compose v5):
//
//	go test ./targets/compose -run '^$' -bench ScaleUp20 -benchtime 2x
//
// It reports both wall times (s-target, s-compose) and their ratio (goal: ≤ 0.5).
func BenchmarkScaleUp20(b *testing.B) {
	for _, e := range testenv.Engines(b) {
		for _, cc := range e.Composes {
			b.Run(e.Name+"/"+cc.Name, func(b *testing.B) {
				cc.NeedCompose(b)
				benchScaleUp20(b, cc)
			})
		}
	}
}

func benchScaleUp20(b *testing.B, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	img := e.WorkerImage(b)
	project := projectName("ascbench")
	dir := cc.Project(b, project, fmt.Sprintf(`services:
  worker:
    image: %s
    stop_grace_period: 5s
`, img))
	tg, err := New(&Config{Project: project, Service: "worker", StopTimeout: -1}, targets.Deps{DockerHost: e.Host})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var ours, theirs time.Duration
	for b.Loop() {
		start := time.Now()
		if err := tg.Scale(ctx, 20, targets.Reason{}); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		if err := tg.Scale(ctx, 1, targets.Reason{}); err != nil {
			b.Fatal(err)
		}

		start = time.Now()
		cc.Run(b, dir, project, "up", "-d", "--scale", "worker=20")
		theirs += time.Since(start)
		if err := tg.Scale(ctx, 1, targets.Reason{}); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "s-target")
	b.ReportMetric(theirs.Seconds()/n, "s-compose")
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "ratio")
	b.Logf("%s, 1→20: target %.2fs, %s up -d --scale worker=20 %.2fs", e.Name, ours.Seconds()/n, cc.Name, theirs.Seconds()/n)
}

// BenchmarkReaction measures the whole daemon's reaction time at a 1 s interval: from the
// served queue depth changing to the new replicas running (1→3), through the real binary,
// an http query and the Docker engine:
//
//	go test ./targets/compose -run '^$' -bench Reaction -benchtime 5x
//
// It reports the mean and the worst reaction (goal: ≤ 3 s).
func BenchmarkReaction(b *testing.B) {
	c := testenv.Docker(b)
	img := testenv.WorkerImage(b, c)
	project := projectName("ascreact")
	testenv.ComposeProject(b, project, fmt.Sprintf(`version: "2.4"
services:
  worker:
    image: %s
    stop_grace_period: 2s
`, img))
	built, err := New(&Config{Project: project, Service: "worker", StopTimeout: -1}, targets.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	tg := built.(*Target)
	binary, err := testenv.BuildStatic(b, "./cmd/autoscalerd")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "autoscalerd")
	if err := os.WriteFile(bin, binary, 0o755); err != nil {
		b.Fatal(err)
	}
	var depth atomic.Int64
	depth.Store(1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"depth": %d}`, depth.Load())
	}))
	defer srv.Close()
	cfg := filepath.Join(dir, "autoscalerd.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, `policies:
  - name: react
    target: { compose: { project: %s, service: worker, stop_timeout: 1s } }
    min: 1
    max: 3
    interval: 1s
    cooldown: { up: 0s, down: 0s }
    queries:
      depth: { http: { url: %s, value: depth } }
    replicas: depth
`, project, srv.URL), 0o644)
	d := exec.Command(bin, "run", "-c", cfg, "--listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b)), "--state-dir", b.TempDir())
	if err := d.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { d.Process.Signal(syscall.SIGTERM); d.Wait() }()

	running := func() int {
		api, err := tg.client(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		rs, err := tg.replicas(context.Background(), api)
		if err != nil {
			return -1
		}
		n := 0
		for _, r := range rs {
			if r.running() {
				n++
			}
		}
		return n
	}
	waitRunning := func(n int) time.Duration {
		start := time.Now()
		for running() != n {
			if time.Since(start) > time.Minute {
				b.Fatalf("not %d running within a minute", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitRunning(1)
	var total, worst time.Duration
	for b.Loop() {
		depth.Store(3)
		took := waitRunning(3)
		total += took
		worst = max(worst, took)
		b.StopTimer()
		depth.Store(1)
		waitRunning(1)
		time.Sleep(1500 * time.Millisecond) // let the removals finish
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s-reaction")
	b.ReportMetric(worst.Seconds(), "s-worst")
	b.Logf("reaction 1→3 at a 1s interval: mean %.2fs, worst %.2fs", total.Seconds()/float64(b.N), worst.Seconds())
}
