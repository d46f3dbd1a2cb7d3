package engine

import (
	"context"
	"github.com/autoscalerd/autoscalerd/policy"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/prometheus/client_golang/prometheus"

	_ "github.com/autoscalerd/autoscalerd/sources/file"
	_ "github.com/autoscalerd/autoscalerd/targets/process"
)

// TestReloadKeepsTargetWhenOnlyPositionsMove: a reload whose file only gained a comment
// line above the policy keeps the target instance (a process target would otherwise stop
// every worker and start them again); a changed target setting builds a new one.
func TestReloadKeepsTargetWhenOnlyPositionsMove(t *testing.T) {
	const yaml = `policies:
  - name: w
    target: { process: { command: [/bin/sleep, "3600"] } }
    max: 2
    dry_run: true
    queries:
      q: { file: { path: /dev/null } }
    replicas: q
`
	e := NewEngine(EngineOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(prometheus.NewRegistry())})
	apply := func(text string) *runner {
		t.Helper()
		cfg, err := configs.Parse("w.yaml", []byte(text), configs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ps, err := policy.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Apply(context.Background(), cfg, ps); err != nil {
			t.Fatal(err)
		}
		return e.runners["w"]
	}
	first := apply(yaml)
	moved := apply("# a comment moves every line down\n\n" + yaml)
	if moved.target != first.target {
		t.Error("a reload that only moved the policy built a new target")
	}
	changed := apply(strings.Replace(yaml, `"3600"`, `"7200"`, 1))
	if changed.target == moved.target {
		t.Error("a reload that changed the target's command kept the old target")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.runners {
		closeTarget(context.Background(), r.target)
		r.closeSources()
	}
}
