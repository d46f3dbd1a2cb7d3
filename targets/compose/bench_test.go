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

	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/warm"
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
	project, dir := benchProject(b, cc, "ascbench")
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
// It reports the mean and the worst reaction (goal: ≤ 3 s). BenchmarkWarmReaction does
// the same with a warm pool of 2 (goal: ≤ 1.2 s).
func BenchmarkReaction(b *testing.B) { benchReaction(b, "") }

// BenchmarkWarmReaction is BenchmarkReaction with `warm: {size: 2}` on the target:
//
//	go test ./targets/compose -run '^$' -bench WarmReaction -benchtime 5x
func BenchmarkWarmReaction(b *testing.B) { benchReaction(b, ", warm: { size: 2 }") }

func benchReaction(b *testing.B, warmYAML string) {
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
    target: { compose: { project: %s, service: worker, stop_timeout: 1s%s } }
    min: 1
    max: 3
    interval: 1s
    cooldown: { up: 0s, down: 0s }
    queries:
      depth: { http: { url: %s, value: depth } }
    replicas: depth
`, project, warmYAML, srv.URL), 0o644)
	d := exec.Command(bin, "run", "-c", cfg, "--listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b)), "--state-dir", b.TempDir())
	if err := d.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { d.Process.Signal(syscall.SIGTERM); d.Wait() }()

	count := func(in func(replica) bool) int {
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
			if in(r) {
				n++
			}
		}
		return n
	}
	running := func() int { return count(replica.running) }
	poolFull := func() bool {
		return warmYAML == "" || count(func(r replica) bool { return r.state == "paused" }) >= 2
	}
	waitRunning := func(n int) time.Duration {
		start := time.Now()
		for running() != n || n == 1 && !poolFull() {
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

// BenchmarkWarmScaleUp20 compares, in one run per engine and compose CLI, scaling a
// compose service 1→20 with a warm pool of 19 paused members, through the target without
// a pool, and with `<compose> up -d --scale worker=20`:
//
//	go test ./targets/compose -run '^$' -bench WarmScaleUp20 -benchtime 2x
//
// It reports the three wall times and the pool's ratio to compose (goal: ≤ 0.1).
func BenchmarkWarmScaleUp20(b *testing.B) {
	for _, e := range testenv.Engines(b) {
		cc := e.UsualCompose()
		b.Run(e.Name+"/"+cc.Name, func(b *testing.B) {
			cc.NeedCompose(b)
			benchWarmScaleUp20(b, cc)
		})
	}
}

// benchProject brings up a one-service project of the test worker for a benchmark.
func benchProject(b *testing.B, cc *testenv.ComposeCLI, prefix string) (project, dir string) {
	project = projectName(prefix)
	dir = cc.Project(b, project, fmt.Sprintf(`services:
  worker:
    image: %s
    stop_grace_period: 5s
`, cc.Engine().WorkerImage(b)))
	return project, dir
}

func benchWarmScaleUp20(b *testing.B, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	project, dir := benchProject(b, cc, "ascwbench")
	build := func(w *warm.Config) *Target {
		tg, err := New(&Config{Project: project, Service: "worker", StopTimeout: -1, Warm: w}, targets.Deps{DockerHost: e.Host, MaxReplicas: 20})
		if err != nil {
			b.Fatal(err)
		}
		return tg.(*Target)
	}
	ctx := context.Background()
	plain := build(nil)
	defer plain.Close(ctx)
	scale := func(tg *Target, n int) time.Duration {
		start := time.Now()
		if err := tg.Scale(ctx, n, targets.Reason{}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var pooled, noPool, theirs time.Duration
	for b.Loop() {
		b.StopTimer()
		scale(plain, 1)
		tg := build(&warm.Config{Size: 19})
		if _, err := tg.Status(ctx); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Minute)
		for info := tg.Pool(); info.Members < 19 || info.Warming > 0; info = tg.Pool() {
			if time.Now().After(deadline) {
				b.Fatalf("the pool did not fill: %+v", info)
			}
			tg.kickPool()
			time.Sleep(100 * time.Millisecond)
		}
		b.StartTimer()
		pooled += scale(tg, 20)
		b.StopTimer()
		tg.Close(ctx)
		scale(plain, 1)
		removePaused(b, plain) // the closed pool's members: without a pool they are not replicas
		b.StartTimer()

		noPool += scale(plain, 20)
		b.StopTimer()
		scale(plain, 1)
		b.StartTimer()

		start := time.Now()
		cc.Run(b, dir, project, "up", "-d", "--scale", "worker=20")
		theirs += time.Since(start)
		b.StopTimer()
		scale(plain, 1)
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(pooled.Seconds()/n, "s-pool")
	b.ReportMetric(noPool.Seconds()/n, "s-target")
	b.ReportMetric(theirs.Seconds()/n, "s-compose")
	b.ReportMetric(pooled.Seconds()/theirs.Seconds(), "ratio")
	b.Logf("%s, 1→20: pool of 19 %.3fs, target without a pool %.2fs, %s up -d --scale worker=20 %.2fs", e.Name, pooled.Seconds()/n, noPool.Seconds()/n, cc.Name, theirs.Seconds()/n)
}

// removePaused removes the service's paused containers (a closed pool's members).
func removePaused(b *testing.B, tg *Target) {
	ctx := context.Background()
	c, err := tg.client(ctx)
	if err != nil {
		b.Fatal(err)
	}
	rs, err := tg.replicas(ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range rs {
		if r.state == "paused" {
			if _, err := c.ContainerRemove(ctx, r.id, client.ContainerRemoveOptions{Force: true}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
