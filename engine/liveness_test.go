package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/sources"
	"github.com/prometheus/client_golang/prometheus"

	_ "github.com/autoscalerd/autoscalerd/sources/file"
	_ "github.com/autoscalerd/autoscalerd/targets/process"
)

// ignoresCtx is a query kind whose reads block, ignoring their context, until the test
// releases them: what a source does on a hung NFS mount (the file source itself refuses
// FIFOs now, so the real FIFO no longer shows it). The seam is the Source interface; the
// engine around it is real.
type ignoresCtx struct {
	Name string `yaml:"name"`
}

var (
	blockMu  sync.Mutex
	blockers = map[string]chan struct{}{}
)

// blocker returns the channel whose closing releases the reads of name.
func blocker(name string) chan struct{} {
	blockMu.Lock()
	defer blockMu.Unlock()
	if blockers[name] == nil {
		blockers[name] = make(chan struct{})
	}
	return blockers[name]
}

type blockingSource struct{ release chan struct{} }

func (b blockingSource) Value(context.Context) (float64, error) {
	<-b.release
	return 1, nil
}

func init() {
	sources.Register("ignorectx", "", func() *ignoresCtx { return &ignoresCtx{} },
		func(c *ignoresCtx, _ sources.Deps) (sources.Source, error) {
			return blockingSource{release: blocker(c.Name)}, nil
		})
}

// rig runs a real engine on a configuration in a test, with its log captured.
type rig struct {
	t      *testing.T
	e      *Engine
	log    *plugintest.SyncBuffer
	ticks  tickLog
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

func newRig(t *testing.T, store *Store) *rig {
	t.Helper()
	log := &plugintest.SyncBuffer{}
	reg := prometheus.NewRegistry()
	r := &rig{t: t, log: log, reg: reg}
	r.e = NewEngine(EngineOptions{Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})), Metrics: NewMetrics(reg), Store: store, Observer: &r.ticks})
	return r
}

// tickLog is an Observer that keeps the ticks.
type tickLog struct {
	mu    sync.Mutex
	ticks []Tick
}

func (l *tickLog) Decided(t Tick) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ticks = append(l.ticks, t)
}

func (l *tickLog) Paused(Pause) {}

func (l *tickLog) all() []Tick {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Tick(nil), l.ticks...)
}

// apply loads text as a configuration file and applies it.
func (r *rig) apply(text string) {
	r.t.Helper()
	cfg, ps, err := policy.Parse("test.yaml", []byte(text), configs.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.e.Apply(context.Background(), cfg, ps); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) run() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		r.e.Run(ctx, context.WithoutCancel(ctx))
	}()
	r.t.Cleanup(r.stop)
}

// stop stops the engine and closes it; it fails the test if that takes over limit.
func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		r.t.Error("Run did not return within 15s of its context ending")
	}
	r.e.Close(context.Background())
}

// status returns a policy's status, failing if the engine takes longer than a second to
// answer (the HTTP side must never wait for a tick).
func (r *rig) status(name string) Status {
	r.t.Helper()
	ch := make(chan Status, 1)
	go func() {
		s, _, _, _ := r.e.Detail(name)
		ch <- s
	}()
	select {
	case s := <-ch:
		return s
	case <-time.After(time.Second):
		r.t.Fatalf("status of %s took over a second", name)
	}
	return Status{}
}

// waitFor polls cond until it holds or timeout passes.
func (r *rig) waitFor(what string, timeout time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: not within %s\nlog:\n%s", what, timeout, r.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBlockingSourceCannotFreezeTheEngine: a query whose reads block and ignore their
// context (a hung NFS mount) times out, the policy keeps ticking and says so, the other
// policy is unaffected, and status, reload and shutdown all answer at once.
func TestBlockingSourceCannotFreezeTheEngine(t *testing.T) {
	dir := t.TempDir()
	release := blocker(t.Name())
	t.Cleanup(func() { close(release) }) // the abandoned read ends with the test
	good := filepath.Join(dir, "good")
	writeFile(t, good, "2")
	cfg := fmt.Sprintf(`policies:
  - name: stuck
    target: { process: { command: [/bin/sleep, "3600"] } }
    max: 3
    interval: 1s
    dry_run: true
    queries:
      q: { ignorectx: { name: %s }, timeout: 500ms }
    replicas: q
  - name: fine
    target: { process: { command: [/bin/sleep, "3601"] } }
    max: 3
    interval: 1s
    dry_run: true
    queries:
      q: { file: { path: %s } }
    replicas: q
`, t.Name(), good)
	r := newRig(t, nil)
	r.apply(cfg)
	r.run()
	r.waitFor("the stuck policy reports its query timing out", 10*time.Second, func() bool {
		return strings.Contains(r.status("stuck").LastError, "timed out")
	})
	r.waitFor("the stuck policy keeps ticking (it reports the abandoned read)", 10*time.Second, func() bool {
		return strings.Contains(r.status("stuck").LastError, "previous read has not returned")
	})
	if s := r.status("fine"); s.LastDecision == nil || s.LastError != "" {
		t.Errorf("the other policy: %+v", s)
	}
	start := time.Now()
	r.apply(cfg + "# reloaded\n")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("reload took %s", d)
	}
	if !strings.Contains(r.log.String(), `query \"q\" failing`) {
		t.Errorf("the log does not say the query started failing:\n%s", r.log.String())
	}
}

// TestReloadDuringScaleDoesNotWait: while one policy's scale-down waits for a replica that
// ignores SIGTERM, a reload returns at once, the status answers, and another policy goes
// on ticking.
func TestReloadDuringScaleDoesNotWait(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q")
	writeFile(t, q, "1")
	other := filepath.Join(dir, "other")
	writeFile(t, other, "0")
	cfg := fmt.Sprintf(`policies:
  - name: slow
    target: { process: { command: [/bin/sh, -c, 'trap "" TERM; while :; do sleep 0.1; done'], stop_timeout: 6s } }
    min: 0
    max: 2
    interval: 1s
    cooldown: { up: 0s, down: 0s }
    queries:
      q: { file: { path: %s } }
    replicas: q
  - name: other
    target: { process: { command: [/bin/sleep, "3600"] } }
    max: 2
    interval: 1s
    dry_run: true
    queries:
      q: { file: { path: %s } }
    replicas: q
`, q, other)
	r := newRig(t, nil)
	r.apply(cfg)
	r.run()
	r.waitFor("slow scales to 1", 10*time.Second, func() bool { return r.status("slow").Current == 1 })
	writeFile(t, q, "0")
	r.waitFor("slow starts its scale-down", 10*time.Second, func() bool { return strings.Contains(r.log.String(), "stopping process") })
	start := time.Now()
	r.apply(cfg + "# reloaded\n")
	if d := time.Since(start); d > time.Second {
		t.Errorf("a reload during a scale-down took %s", d)
	}
	before := r.status("other").LastDecision.Time
	r.waitFor("the other policy ticks while slow's scale-down runs", 4*time.Second, func() bool {
		d := r.status("other").LastDecision
		return d != nil && d.Time.After(before)
	})
	if strings.Contains(r.log.String(), "process stopped") {
		t.Fatal("the scale-down ended before the checks: the test proves nothing")
	}
	r.waitFor("slow reaches 0 under the new configuration", 20*time.Second, func() bool { return r.status("slow").Current == 0 })
}

// TestWedgedTickStopsTheWatchdog: a tick that runs past everything its timeouts allow is
// reported, and nothing is while the loops make progress.
func TestWedgedTickStopsTheWatchdog(t *testing.T) {
	release := blocker(t.Name())
	t.Cleanup(func() { close(release) })
	r := newRig(t, nil)
	r.apply(fmt.Sprintf(`policies:
  - name: p
    target: { process: { command: [/bin/sleep, "3600"] } }
    max: 3
    interval: 1s
    dry_run: true
    queries:
      q: { ignorectx: { name: %s }, timeout: 3s }
    replicas: q
`, t.Name()))
	r.run()
	time.Sleep(300 * time.Millisecond)
	if w := r.e.Wedged(time.Now()); len(w) != 0 {
		t.Fatalf("wedged at start: %v", w)
	}
	// The engine enforces the read's timeout, so even this tick ends within its budget;
	// seen from a clock past the budget, a tick still running is wedged.
	rn := r.e.lookup("p")
	r.waitFor("a tick in progress", 5*time.Second, func() bool { return rn.busyUntil.Load() != 0 })
	if w := r.e.Wedged(time.Now().Add(rn.tickBudget() + time.Second)); len(w) != 1 || !strings.Contains(w[0], "p: tick running since") {
		t.Errorf("wedged = %v", w)
	}
	// A loop that stopped waking is wedged too.
	if w := r.e.Wedged(time.Unix(0, rn.beat.Load()).Add(4 * time.Second)); rn.busyUntil.Load() == 0 && (len(w) != 1 || !strings.Contains(w[0], "no tick since")) {
		t.Errorf("wedged = %v", w)
	}
}
