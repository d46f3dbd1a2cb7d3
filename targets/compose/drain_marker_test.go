package compose

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
)

// TestComposeDrainMarker: a drain is found from the container itself, by a daemon that
// does not have the state_dir of the one that started it (a new HA leader on another
// host, a daemon restarted without its state_dir).
//
//   - A drains a busy container and stops; B, with an empty state_dir, finds the quiet
//     container from its marker, leaves it out of the capacity, drains it on and stops
//     it once its job is done.
//   - C, without a state_dir, drains a busy container and stops: the marker keeps it,
//     so C leaves it quiet for the next daemon; D, without a drain block, tells it to
//     resume; E, with the drain block again, finds nothing to drain (the marker says
//     resumed).
func TestComposeDrainMarker(t *testing.T) { eachEngine(t, testDrainMarker) }

func testDrainMarker(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c, pg, project := startJobWorkers(t, cc)
	ctx := context.Background()
	cfg := jobsConfig(project, time.Minute)
	build := func(stateDir string, withDrain bool) *Target {
		cf := *cfg
		if !withDrain {
			cf.Drain = nil
		}
		tg := jobsTarget(t, e, &cf, stateDir)
		t.Cleanup(func() { tg.Close(context.Background()) })
		return tg
	}
	// drainOneBusy scales tg from n to n-1 while every replica holds a job of length job,
	// and returns the drained container once it is quiet.
	drainOneBusy := func(tg *Target, n int, job time.Duration) replica {
		t.Helper()
		mustScale(t, tg, n)
		var rs []replica
		waitUntil(t, fmt.Sprintf("%d busy endpoints", n), 30*time.Second, func() bool {
			var err error
			if rs, err = tg.replicas(ctx, mustClient(t, tg)); err != nil || len(rs) != n {
				return false
			}
			for _, r := range rs {
				if _, err := tg.busy(ctx, mustClient(t, tg), cfg.Drain, r); err != nil {
					return false
				}
			}
			return true
		})
		before := len(pg.JobRuns(t))
		pg.Exec(t, fmt.Sprintf("INSERT INTO tasks (duration_ms) SELECT %d FROM generate_series(1, %d)", job/time.Millisecond, n))
		waitUntil(t, fmt.Sprintf("%d jobs taken", n), 15*time.Second, func() bool { return len(pg.JobRuns(t)) == before+n })
		mustScale(t, tg, n-1)
		ds := tg.Drains()
		if len(ds) == 0 {
			t.Fatal("no drain")
		}
		d := ds[len(ds)-1]
		for _, r := range rs {
			if r.name == d.Replica {
				waitUntil(t, "the drained worker quiet", 10*time.Second, func() bool { return strings.Contains(logsOf(t, e, r.id), "quiet=true") })
				m, ok, err := readMarker(ctx, mustClient(t, tg), r.id)
				if err != nil || !ok || m.Resumed || m.Started == "" {
					t.Fatalf("%s: marker %+v (found: %v, %v)", r.name, m, ok, err)
				}
				return r
			}
		}
		t.Fatalf("drained %q is none of %v", d.Replica, rs)
		return replica{}
	}

	// A, and B on another host (an empty state_dir).
	a := build(t.TempDir(), true)
	quiet := drainOneBusy(a, 3, 8*time.Second)
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b := build(t.TempDir(), true)
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replicas != 2 {
		t.Errorf("B: %d replicas, want 2 (the quiet one is not capacity)", st.Replicas)
	}
	ds := b.Drains()
	if len(ds) != 1 || ds[0].Replica != quiet.name || !strings.Contains(ds[0].Reason, "drain resumed after a daemon restart") {
		t.Fatalf("B: drains %+v, want the one A started, on %s", ds, quiet.name)
	}
	waitUntil(t, "B's drain over", 30*time.Second, func() bool { return b.Drains()[0].State.Over() })
	if d := b.Drains()[0]; d.State != targets.DrainStopped {
		t.Errorf("B: drain ended %q", d.State)
	}
	waitUntil(t, "every job done", 15*time.Second, func() bool {
		for _, r := range pg.JobRuns(t) {
			if r.Status != "done" || r.Finished == nil {
				return false
			}
		}
		return true
	})
	if got := serviceContainers(t, c, project, "worker"); len(got) != 2 {
		t.Errorf("after B: %d containers, want 2", len(got))
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// C, D and E: no state_dir anywhere.
	cd := build("", true)
	quiet = drainOneBusy(cd, 3, time.Minute)
	if err := cd.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logsOf(t, e, quiet.id), "quiet=false") {
		t.Errorf("C resumed %s on stop; the marker was to keep it for the next daemon", quiet.name)
	}
	d := build("", false)
	st, err = d.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replicas != 3 {
		t.Errorf("D (no drain block): %d replicas, want 3 (the quiet one resumed)", st.Replicas)
	}
	waitUntil(t, "D resumed the quiet worker", 10*time.Second, func() bool { return strings.Contains(logsOf(t, e, quiet.id), "quiet=false") })
	waitUntil(t, "the marker says resumed", 10*time.Second, func() bool {
		m, ok, err := readMarker(ctx, mustClient(t, d), quiet.id)
		return err == nil && ok && m.Resumed
	})
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := build("", true)
	st, err = e2.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replicas != 3 || len(e2.Drains()) != 0 {
		t.Errorf("E: %d replicas, drains %+v; want 3 and none (the marker says resumed)", st.Replicas, e2.Drains())
	}
}

// TestComposeDrainStaleMarker: the service's last container, drained to 0, stays stopped
// as the template with its marker; started again by a scale-up it is a new worker process,
// not quiet, and a daemon that looks at it then does not drain it.
func TestComposeDrainStaleMarker(t *testing.T) { eachEngine(t, testDrainStaleMarker) }

func testDrainStaleMarker(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c, _, project := startJobWorkers(t, cc)
	ctx := context.Background()
	cfg := jobsConfig(project, time.Minute)
	a := jobsTarget(t, e, cfg, t.TempDir())
	t.Cleanup(func() { a.Close(context.Background()) })
	rs, err := a.replicas(ctx, mustClient(t, a))
	if err != nil || len(rs) != 1 {
		t.Fatalf("replicas %v, %v; want the one compose started", rs, err)
	}
	waitUntil(t, "the worker ready", 30*time.Second, func() bool {
		_, err := a.busy(ctx, mustClient(t, a), cfg.Drain, rs[0])
		return err == nil
	})
	mustScale(t, a, 0)
	waitUntil(t, "the drain over", 20*time.Second, func() bool { return a.Drains()[0].State.Over() })
	if got := serviceContainers(t, c, project, "worker"); len(got) != 1 || got[0].State.Running {
		t.Fatalf("after the drain to 0: %d containers, want the template, stopped", len(got))
	}
	if _, ok, err := readMarker(ctx, mustClient(t, a), rs[0].id); !ok || err != nil {
		t.Fatalf("the stopped template has no marker (%v); the test would prove nothing", err)
	}
	mustScale(t, a, 1)
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b := jobsTarget(t, e, cfg, t.TempDir())
	t.Cleanup(func() { b.Close(context.Background()) })
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replicas != 1 || len(b.Drains()) != 0 {
		t.Errorf("B: %d replicas, drains %+v; want 1 and none (the container was started again since its drain)", st.Replicas, b.Drains())
	}
}
