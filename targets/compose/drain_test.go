package compose

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
)

// composeJobs is a service of job workers (testworker pgjobs) that reach the test's
// Postgres through a forwarder on the host. /busy exists inside a worker while it holds
// a job (for busy.file).
const composeJobs = `version: "2.4"
services:
  worker:
    image: %s
    command: [pgjobs]
    stop_grace_period: 5s
    environment:
      PG_DSN: %q
      BUSY_FILE: /busy
    extra_hosts: ["host.docker.internal:host-gateway"]
`

// hostOf is the container (its short ID, the hostname) of a pgjobs worker name.
func hostOf(worker string) string {
	host, _, _ := strings.Cut(worker, "/")
	return host
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startJobWorkers starts Postgres with the job tables, the forwarder and a compose
// project whose worker service runs testworker pgjobs (one replica).
func startJobWorkers(t *testing.T, cc *testenv.ComposeCLI) (*client.Client, *testenv.Postgres, string) {
	t.Helper()
	e := cc.Engine()
	c := e.Need(t)
	img := e.WorkerImage(t)
	pg := testenv.StartPostgres(t)
	testenv.PGJobsWorker(t, pg)
	// The containers come from a bridge; Postgres's pg_hba lets only loopback in, so a
	// forwarder on all of the host's addresses relays them.
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Forward(t, l, fmt.Sprintf("127.0.0.1:%d", pg.Port))
	port := l.Addr().(*net.TCPAddr).Port
	dsn := fmt.Sprintf("postgres://%s:%s@host.docker.internal:%d/%s?sslmode=disable", pg.User, pg.Password, port, pg.Database)
	project := projectName("ascdrain")
	cc.Project(t, project, fmt.Sprintf(composeJobs, img, dsn))

	return c, pg, project
}

// jobsConfig is the drain of the job workers: busy on :8080/busy, SIGTSTP and SIGCONT.
func jobsConfig(project string, timeout time.Duration) *Config {
	return &Config{Project: project, Service: "worker", StopTimeout: -1, RemoveVolumes: true, Drain: &drain.Config{
		Busy:         drain.Probe{HTTP: &drain.HTTP{Port: 8080, Path: "/busy"}},
		QuietSignal:  "SIGTSTP",
		ResumeSignal: "SIGCONT",
		Timeout:      configs.Duration(timeout),
		Poll:         configs.Duration(200 * time.Millisecond),
	}}
}

// jobsTarget builds a target as a daemon with state_dir does; the log goes to the test's.
func jobsTarget(t *testing.T, e *testenv.Engine, cfg *Config, stateDir string) *Target {
	t.Helper()
	tg, err := New(cfg, targets.Deps{Policy: "test", StateDir: stateDir, DockerHost: e.Host, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return tg.(*Target)
}

// TestComposeDrainJobWorkers: 6 containers working jobs from a Postgres task table, 4 of
// them mid-job; scaling to 2 drains the 2 idle ones at once and the 2 chosen busy ones
// when their jobs end: no job is cut short or run twice, and the drained containers are
// removed. Then a drain survives a daemon restart: the target is closed mid-drain and a
// new one (the same state_dir) finds the quiet container, drains it on and stops it once
// its job is done.
func TestComposeDrainJobWorkers(t *testing.T) { eachEngine(t, testDrainJobWorkers) }

func testDrainJobWorkers(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c, pg, project := startJobWorkers(t, cc)
	stateDir := t.TempDir()
	cfg := jobsConfig(project, time.Minute)
	build := func() *Target { return jobsTarget(t, e, cfg, stateDir) }
	tg := build()
	mustScale(t, tg, 6)
	ctx := context.Background()
	rs, err := tg.replicas(ctx, mustClient(t, tg))
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "6 busy endpoints", 20*time.Second, func() bool {
		for _, r := range rs {
			if _, err := tg.busy(ctx, mustClient(t, tg), cfg.Drain, r); err != nil {
				return false
			}
		}
		return true
	})

	const job = 5 * time.Second
	pg.Exec(t, fmt.Sprintf("INSERT INTO tasks (duration_ms) SELECT %d FROM generate_series(1, 4)", job/time.Millisecond))
	waitUntil(t, "4 jobs taken", 10*time.Second, func() bool { return len(pg.JobRuns(t)) == 4 })
	busyHosts := map[string]bool{}
	for _, r := range pg.JobRuns(t) {
		busyHosts[hostOf(r.Worker)] = true
	}
	nameOf := map[string]string{}
	for _, r := range rs {
		nameOf[r.name] = r.id[:12]
	}

	start := time.Now()
	mustScale(t, tg, 2) // checks Status: 2 replicas, the draining ones left out
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("scale-down with a drain took %s", took)
	}
	if ds := tg.Drains(); len(ds) != 4 {
		t.Fatalf("%d drains, want 4: %+v", len(ds), ds)
	}
	for _, d := range tg.Drains() {
		if idle := !busyHosts[nameOf[d.Replica]]; idle != strings.HasPrefix(d.Reason, "idle;") {
			t.Errorf("%s (idle: %v) drained because %q", d.Replica, idle, d.Reason)
		}
	}
	waitUntil(t, "every drain over", job+30*time.Second, func() bool {
		for _, d := range tg.Drains() {
			if !d.State.Over() {
				return false
			}
		}
		return true
	})
	for _, d := range tg.Drains() {
		if d.State != targets.DrainStopped {
			t.Errorf("%s: drain ended %q", d.Replica, d.State)
		}
		if !busyHosts[nameOf[d.Replica]] && d.Ended.Sub(start) > job/2 {
			t.Errorf("idle %s took %s to drain", d.Replica, d.Ended.Sub(start))
		}
	}
	// A drained replica's job ended before its drain did; a kept replica's job may end a
	// little later. A job cut short never ends.
	pg.JobsDone(t, 0, 15*time.Second)
	if got := serviceContainers(t, c, project, "worker"); len(got) != 2 {
		for _, g := range got {
			t.Logf("container %s %s", g.Name, g.State.Status)
		}
		t.Errorf("%d containers left, want 2 (drained ones removed)", len(got))
	}

	// Restart safety: a drain under way when the daemon goes.
	pg.Exec(t, fmt.Sprintf("INSERT INTO tasks (duration_ms) SELECT %d FROM generate_series(1, 2)", (8*time.Second)/time.Millisecond))
	waitUntil(t, "2 more jobs taken", 10*time.Second, func() bool { return len(pg.JobRuns(t)) == 6 })
	mustScale(t, tg, 1)
	if err := tg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(stateDir, "drains", "compose-"+project+"-worker.json")); err != nil {
		t.Fatalf("no drain record in state_dir: %v", err)
	}
	tg2 := build()
	t.Cleanup(func() { tg2.Close(context.Background()) })
	st, err := tg2.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replicas != 1 {
		t.Errorf("restarted: %d replicas, want 1 (the quiet one is still draining)", st.Replicas)
	}
	ds := tg2.Drains()
	if len(ds) != 1 || !strings.Contains(ds[0].Reason, "drain resumed after a daemon restart") {
		t.Fatalf("restarted: drains %+v, want the one left by the first run", ds)
	}
	waitUntil(t, "the resumed drain over", 20*time.Second, func() bool { return tg2.Drains()[0].State.Over() })
	if d := tg2.Drains()[0]; d.State != targets.DrainStopped {
		t.Errorf("resumed drain ended %q", d.State)
	}
	// The kept replica's job may still run; a cut job never ends.
	pg.JobsDone(t, 0, 15*time.Second)
	if got := serviceContainers(t, c, project, "worker"); len(got) != 1 {
		t.Errorf("%d containers left, want 1", len(got))
	}
}

// testWriter sends the target's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func mustClient(t *testing.T, tg *Target) api {
	t.Helper()
	c, err := tg.client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestComposeDrainTimeoutAndOrphan: a drain timeout shorter than the job stops the
// container anyway (its job is left unfinished, leased, for the queue to recover); and a
// container left quiet by a run whose configuration then loses its drain block is told
// to resume by the next run, so the pool is not left quiet.
func TestComposeDrainTimeoutAndOrphan(t *testing.T) { eachEngine(t, testDrainTimeoutAndOrphan) }

func testDrainTimeoutAndOrphan(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	c, pg, project := startJobWorkers(t, cc)
	ctx := context.Background()
	stateDir := t.TempDir()
	tg := jobsTarget(t, e, jobsConfig(project, 1500*time.Millisecond), stateDir)
	mustScale(t, tg, 3)
	waitUntil(t, "3 busy endpoints", 20*time.Second, func() bool {
		rs, err := tg.replicas(ctx, mustClient(t, tg))
		if err != nil || len(rs) != 3 {
			return false
		}
		for _, r := range rs {
			if _, err := tg.busy(ctx, mustClient(t, tg), tg.cfg.Drain, r); err != nil {
				return false
			}
		}
		return true
	})
	pg.Exec(t, "INSERT INTO tasks (duration_ms) SELECT 60000 FROM generate_series(1, 3)")
	waitUntil(t, "3 jobs taken", 10*time.Second, func() bool { return len(pg.JobRuns(t)) == 3 })

	rs, err := tg.replicas(ctx, mustClient(t, tg))
	if err != nil {
		t.Fatal(err)
	}
	mustScale(t, tg, 2)
	waitUntil(t, "the drain over", 15*time.Second, func() bool { return tg.Drains()[0].State.Over() })
	d := tg.Drains()[0]
	if d.State != targets.DrainTimedOut {
		t.Fatalf("drain ended %q, want timed out", d.State)
	}
	if took := d.Ended.Sub(d.Since); took < 1500*time.Millisecond || took > 10*time.Second {
		t.Errorf("timed-out drain took %s", took)
	}
	var drainedHost string
	for _, r := range rs {
		if r.name == d.Replica {
			drainedHost = r.id[:12]
		}
	}
	cut := 0
	for _, r := range pg.JobRuns(t) {
		if hostOf(r.Worker) == drainedHost && r.Finished == nil && r.Status == "running" {
			cut++
		}
	}
	if got := serviceContainers(t, c, project, "worker"); len(got) != 2 {
		t.Errorf("%d containers, want 2", len(got))
	}
	if err := tg.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// A drain under way when the daemon goes; the next run has no drain block.
	tg2 := jobsTarget(t, e, jobsConfig(project, time.Hour), stateDir)
	mustScale(t, tg2, 1)
	quiet := tg2.Drains()[0].Replica
	waitUntil(t, "the worker quiet", 10*time.Second, func() bool { return strings.Contains(logsOf(t, e, quiet), "quiet=true") })
	if err := tg2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	plain := jobsConfig(project, 0)
	plain.Drain = nil
	tg3 := jobsTarget(t, e, plain, stateDir)
	t.Cleanup(func() { tg3.Close(context.Background()) })
	st, err := tg3.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replicas != 2 {
		t.Errorf("without a drain block: %d replicas, want 2 (the quiet one resumed)", st.Replicas)
	}
	waitUntil(t, "the quiet worker resumed", 10*time.Second, func() bool { return strings.Contains(logsOf(t, e, quiet), "quiet=false") })
	if cut != 1 {
		t.Errorf("the timed-out replica left %d unfinished jobs, want its 1 job cut short", cut)
	}
}
