package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkTick is one tick of the policy scripts/bench-policies.sh runs by the thousand
// (a `file` query, a process target in dry run, metrics and state on), the whole of it:
// the target's status, the query (the file is unchanged, so its watch says the value read
// before is current: no read), the decision, the records. The script
// measures the daemon; this measures a tick without the machine's noise around it.
func BenchmarkTick(b *testing.B) {
	const n = 1
	dir := b.TempDir()
	depth := filepath.Join(dir, "depth")
	if err := os.WriteFile(depth, []byte("970\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	var y strings.Builder
	y.WriteString("defaults: { interval: 1s, dry_run: true, cooldown: { up: 5s, down: 5m } }\npolicies:\n")
	for i := range n {
		fmt.Fprintf(&y, `  - name: p%d
    target: { process: { command: ["/bin/true", "%d"] } }
    min: 1
    max: 50
    queries:
      depth: { file: { path: %s } }
    replicas: ceil(depth / 100)
`, i, i, depth)
	}
	cfg, err := configs.Parse("bench.yaml", []byte(y.String()), configs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ps, err := policy.Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	store, err := NewStore(filepath.Join(dir, "state"))
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(EngineOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})), Metrics: NewMetrics(prometheus.NewRegistry()), Store: store})
	ctx := context.Background()
	if err := e.Apply(ctx, cfg, ps); err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)
	rs := e.snapshot()
	for _, r := range rs { // past the warm-up: the steady state of a running daemon
		for range 3 {
			r.tick(ctx, ctx)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rs[i%len(rs)].tick(ctx, ctx)
	}
}
