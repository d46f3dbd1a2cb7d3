package compose

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
)

// BenchmarkScaleUp20 compares scaling a compose service 1→20 through the target with
// `docker-compose up -d --scale worker=20` on the same project, in the same run:
//
//	go test ./targets/compose -run '^$' -bench ScaleUp20 -benchtime 1x
//
// It reports both wall times (s-target, s-compose) and their ratio (goal: ≤ 0.5).
func BenchmarkScaleUp20(b *testing.B) {
	c := testenv.Docker(b)
	img := testenv.WorkerImage(b, c)
	project := projectName("ascbench")
	dir := testenv.ComposeProject(b, project, fmt.Sprintf(`version: "2.4"
services:
  worker:
    image: %s
    stop_grace_period: 5s
`, img))
	tg, err := New(&Config{Project: project, Service: "worker", StopTimeout: -1}, targets.Deps{})
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
		testenv.Compose(b, dir, project, "up", "-d", "--scale", "worker=20")
		theirs += time.Since(start)
		if err := tg.Scale(ctx, 1, targets.Reason{}); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "s-target")
	b.ReportMetric(theirs.Seconds()/n, "s-compose")
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "ratio")
	b.Logf("1→20: target %.2fs, docker-compose up --scale %.2fs", ours.Seconds()/n, theirs.Seconds()/n)
}
