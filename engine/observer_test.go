package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// recorder is an Observer that hands what it hears to the test.
type recorder struct {
	ticks  chan Tick
	pauses chan Pause
}

func (r *recorder) Decided(t Tick) {
	select {
	case r.ticks <- t:
	default: // the test reads what it needs; the engine must not wait for it
	}
}

func (r *recorder) Paused(p Pause) { r.pauses <- p }

// TestObserver runs a real process target with a file query: the observer hears each
// committed scale-up, the tick that enters on_error's fallback when the file goes and
// the one that leaves it when it is back, and pauses (which also set
// autoscalerd_policy_paused).
func TestObserver(t *testing.T) {
	dir := t.TempDir()
	depth := filepath.Join(dir, "depth")
	os.WriteFile(depth, []byte("3"), 0o644)
	yaml := fmt.Sprintf(`policies:
  - name: w
    target: { process: { command: [/bin/sleep, "3600.125"], stop_timeout: 1s } }
    min: 1
    max: 4
    interval: 100ms
    cooldown: { up: 0s, down: 0s }
    on_error: { replicas: 2 }
    failure_threshold: 2
    queries:
      q: { file: { path: %q } }
    replicas: q
`, depth)
	cfg, err := configs.Parse("w.yaml", []byte(yaml), configs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := policy.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rec := &recorder{ticks: make(chan Tick, 1000), pauses: make(chan Pause, 10)}
	m := NewMetrics(reg)
	e := NewEngine(EngineOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m, Observer: rec})
	if err := e.Apply(context.Background(), cfg, ps); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx, ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		e.Close(cctx)
	})
	until := func(what string, ok func(Tick) bool) Tick {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case tk := <-rec.ticks:
				if ok(tk) {
					return tk
				}
			case <-deadline:
				t.Fatalf("no tick: %s", what)
			}
		}
	}
	up := until("the scale-up to 3", func(tk Tick) bool { return tk.Decision.Action == policy.Up })
	if up.Decision.To != 3 || up.Attempted != 3 || up.ScaleErr != nil || len(up.Values) != 1 || up.Values[0].V != 3 {
		t.Errorf("scale-up tick: %+v", up)
	}
	os.Remove(depth)
	entered := until("entering the fallback", func(tk Tick) bool { return tk.Fallback && !tk.WasFallback })
	if entered.Values[0].Err == nil || entered.Decision.To != 2 {
		t.Errorf("fallback tick: %+v", entered)
	}
	os.WriteFile(depth, []byte("4"), 0o644)
	left := until("leaving the fallback", func(tk Tick) bool { return !tk.Fallback && tk.WasFallback })
	if left.Values[0].Err != nil {
		t.Errorf("leaving tick: %+v", left)
	}

	if err := e.SetPaused("w", true); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPaused("w", true); err != nil { // no change: no second event
		t.Fatal(err)
	}
	p := <-rec.pauses
	if !p.Paused || p.Policy != "w" {
		t.Errorf("pause: %+v", p)
	}
	if v := policyValue(t, m, "autoscalerd_policy_paused", "w"); v != 1 {
		t.Errorf("autoscalerd_policy_paused = %v", v)
	}
	e.SetPaused("w", false)
	if p := <-rec.pauses; p.Paused {
		t.Errorf("resume: %+v", p)
	}
	select {
	case p := <-rec.pauses:
		t.Errorf("an extra pause event: %+v", p)
	default:
	}
	if v := policyValue(t, m, "autoscalerd_policy_paused", "w"); v != 0 {
		t.Errorf("autoscalerd_policy_paused = %v after resume", v)
	}
}

// policyValue is the sample of metric for policy as a scrape sees it; the collector is
// gathered by a pedantic registry, which also checks its samples against their Desc.
func policyValue(t *testing.T, m *Metrics, metric, policy string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister((*policyCollector)(m))
	if v, ok := plugintest.Metric(t, reg, metric, map[string]string{"policy": policy}); ok {
		return v
	}
	t.Fatalf("no %s sample for policy %q", metric, policy)
	return 0
}
