package compose

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
)

// The ways of reaching a container that work without an HTTP port on its network: a
// command run inside it (docker exec) and a file inside it read through the Engine API.
// The image is FROM scratch, so the commands are the test worker's own subcommands.
var inContainerProbes = []struct {
	name  string
	drain drain.Config
}{
	{"exec", drain.Config{
		Busy:   drain.Probe{Exec: []string{"/testworker", "busy", "http://127.0.0.1:8080/busy"}},
		Quiet:  &drain.Probe{Exec: []string{"/testworker", "post", "http://127.0.0.1:8080/quiet"}},
		Resume: &drain.Probe{Exec: []string{"/testworker", "post", "http://127.0.0.1:8080/resume"}},
	}},
	{"file", drain.Config{
		Busy:         drain.Probe{File: "/busy"},
		QuietSignal:  "SIGTSTP",
		ResumeSignal: "SIGCONT",
	}},
}

// TestComposeDrainInContainerProbes: busy.exec (with quiet and resume as exec calls) and
// busy.file against real job workers. 4 containers, 2 of them mid-job; scaling to 1
// drains the 2 idle ones at once and one busy one, which is told to go quiet, waited for,
// and stopped once its job ends; no job is cut short.
func TestComposeDrainInContainerProbes(t *testing.T) {
	eachEngine(t, func(t *testing.T, cc *testenv.ComposeCLI) {
		_, pg, project := startJobWorkers(t, cc)
		for _, p := range inContainerProbes {
			t.Run(p.name, func(t *testing.T) { testInContainerProbe(t, cc, pg, project, p.drain) })
		}
	})
}

func testInContainerProbe(t *testing.T, cc *testenv.ComposeCLI, pg *testenv.Postgres, project string, dc drain.Config) {
	e := cc.Engine()
	ctx := context.Background()
	dc.Timeout = configs.Duration(time.Minute)
	dc.Poll = configs.Duration(200 * time.Millisecond)
	cfg := jobsConfig(project, time.Minute)
	cfg.Drain = &dc
	tg := jobsTarget(t, e, cfg, t.TempDir())
	t.Cleanup(func() { tg.Close(context.Background()) })
	mustScale(t, tg, 4)
	c := mustClient(t, tg)
	rs, err := tg.replicas(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	// Every worker connected to Postgres and listening (the exec probe asks its HTTP
	// server; the file probe cannot tell a worker that has not started).
	waitUntil(t, "4 workers ready", 30*time.Second, func() bool {
		for _, r := range rs {
			if !strings.Contains(logsOf(t, e, r.id), "ready, busy endpoint") {
				return false
			}
			if _, err := tg.busy(ctx, c, cfg.Drain, r); err != nil {
				return false
			}
		}
		return true
	})

	const job = 5 * time.Second
	before := len(pg.JobRuns(t))
	pg.Exec(t, fmt.Sprintf("INSERT INTO tasks (duration_ms) SELECT %d FROM generate_series(1, 2)", job/time.Millisecond))
	waitUntil(t, "2 jobs taken", 10*time.Second, func() bool { return len(pg.JobRuns(t)) == before+2 })
	busyHosts := map[string]bool{}
	for _, r := range pg.JobRuns(t)[before:] {
		busyHosts[hostOf(r.Worker)] = true
	}
	// The probe sees what the workers hold.
	for _, r := range rs {
		b, err := tg.busy(ctx, c, cfg.Drain, r)
		if err != nil || b != busyHosts[r.id[:12]] {
			t.Errorf("%s: busy %v (%v), want %v", r.name, b, err, busyHosts[r.id[:12]])
		}
	}
	hostOfName := map[string]string{}
	for _, r := range rs {
		hostOfName[r.name] = r.id[:12]
	}

	start := time.Now()
	mustScale(t, tg, 1)
	ds := tg.Drains()
	if len(ds) != 3 {
		t.Fatalf("%d drains, want 3: %+v", len(ds), ds)
	}
	var busyDrained string
	for _, d := range ds {
		idle := !busyHosts[hostOfName[d.Replica]]
		if idle != strings.HasPrefix(d.Reason, "idle;") {
			t.Errorf("%s (idle: %v) drained because %q", d.Replica, idle, d.Reason)
		}
		if !idle {
			busyDrained = d.Replica
		}
	}
	if busyDrained == "" {
		t.Fatalf("no busy replica among the drained: %+v", ds)
	}
	waitUntil(t, "the busy one told to go quiet", 10*time.Second, func() bool {
		return strings.Contains(logsOf(t, e, hostOfName[busyDrained]), "quiet=true")
	})
	waitUntil(t, "every drain over", job+30*time.Second, func() bool {
		for _, d := range tg.Drains() {
			if !d.State.Over() {
				return false
			}
		}
		return true
	})
	// The kept busy replica's job may end a little after the drained one's; a job cut
	// short never ends.
	var jobEnd time.Time
	for _, r := range pg.JobsDone(t, before, 15*time.Second) {
		if r.Finished != nil && hostOf(r.Worker) == hostOfName[busyDrained] {
			jobEnd = *r.Finished
		}
	}
	for _, d := range tg.Drains() {
		if d.State != targets.DrainStopped {
			t.Errorf("%s: drain ended %q", d.Replica, d.State)
		}
		switch {
		case d.Replica == busyDrained:
			// Waited for: it ended after its job, and soon after.
			if jobEnd.IsZero() || d.Ended.Before(jobEnd) || d.Ended.Sub(jobEnd) > 10*time.Second {
				t.Errorf("busy %s: drain ended %s, its job at %s", d.Replica, d.Ended.Format(time.StampMilli), jobEnd.Format(time.StampMilli))
			}
		case d.Ended.Sub(start) > job/2:
			t.Errorf("idle %s took %s to drain", d.Replica, d.Ended.Sub(start))
		}
	}
	st, err := tg.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replicas != 1 {
		t.Errorf("%d replicas after the drains, want 1", st.Replicas)
	}
}
