package engine

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/targets"
)

// replicaOf is the AUTOSCALER_REPLICA in a pgjobs worker name (host/replica:pid).
func replicaOf(worker string) string {
	_, rest, _ := strings.Cut(worker, "/")
	n, _, _ := strings.Cut(rest, ":")
	return n
}

// replicaBusy asks a worker's own busy endpoint, as the drain does.
func replicaBusy(base, replica int) (bool, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/busy", base+replica))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var b [64]byte
	n, _ := resp.Body.Read(b[:])
	return strings.Contains(string(b[:n]), "true"), nil
}

// counterValue reads a policy's series from the rig's registry (0 when absent).
func (r *rig) metricValue(name string, labels map[string]string) float64 {
	r.t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// TestDrainPostgresJobWorkers scales real job workers (testworker pgjobs, leasing jobs
// from a Postgres task table with FOR UPDATE SKIP LOCKED) from 6 to 2 through the engine
// while 4 of them are mid-job: the 2 idle ones go first, at once; 2 busy ones are told to
// go quiet and stopped when their jobs end. No job is cut short or run twice. With a
// drain timeout shorter than the jobs, the 2 drained busy workers are stopped at the
// timeout, their jobs are cut, and the daemon and the worker log it as such.
func TestDrainPostgresJobWorkers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		job     time.Duration
	}{
		{"jobs finish", time.Minute, 4 * time.Second},
		{"timeout shorter than the jobs", 1500 * time.Millisecond, 8 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) { testDrainPostgres(t, tc.timeout, tc.job) })
	}
}

// startJobsRig runs an engine whose policy scales pgjobs workers (process target, drain
// on their busy endpoints, SIGTSTP/SIGCONT) to the count in a file, and waits for 6.
func startJobsRig(t *testing.T, timeout time.Duration) (r *rig, pg *testenv.Postgres, base int, q string) {
	t.Helper()
	pg = testenv.StartPostgres(t)
	worker := testenv.PGJobsWorker(t, pg)
	base = testenv.FreePortRange(t, 6)
	q = filepath.Join(t.TempDir(), "want")
	writeFile(t, q, "6")

	r = newRig(t, nil)
	r.apply(fmt.Sprintf(`policies:
  - name: jobs
    target:
      process:
        command: [%s, pgjobs]
        env: { PG_DSN: %q, BUSY_BASE_PORT: "%d" }
        stop_timeout: 5s
        drain:
          busy: { http: { base_port: %d, path: /busy } }
          quiet_signal: SIGTSTP
          resume_signal: SIGCONT
          timeout: %s
          poll: 200ms
    min: 0
    max: 6
    interval: 300ms
    cooldown: { up: 0s, down: 0s }
    step: { down: 10 }
    queries:
      want: { file: { path: %s } }
    replicas: want
`, worker, pg.DSN(), base, base, timeout, q))
	r.run()
	r.waitFor("6 workers ready", 20*time.Second, func() bool {
		if r.status("jobs").Current != 6 {
			return false
		}
		for i := 1; i <= 6; i++ {
			if _, err := replicaBusy(base, i); err != nil {
				return false
			}
		}
		return true
	})
	return r, pg, base, q
}

func testDrainPostgres(t *testing.T, timeout, job time.Duration) {
	r, pg, _, q := startJobsRig(t, timeout)
	jobMs := strconv.Itoa(int(job / time.Millisecond))
	pg.Exec(t, "INSERT INTO tasks (duration_ms) VALUES ("+jobMs+"), ("+jobMs+"), ("+jobMs+"), ("+jobMs+")")
	r.waitFor("4 jobs taken by 4 workers", 10*time.Second, func() bool { return len(pg.JobRuns(t)) == 4 })
	// The workers without a job, from the job table (a busy probe could catch an idle
	// worker in the middle of a claim that finds nothing, and rightly say busy).
	idle := map[string]bool{"1": true, "2": true, "3": true, "4": true, "5": true, "6": true}
	for _, jr := range pg.JobRuns(t) {
		delete(idle, replicaOf(jr.Worker))
	}
	if len(idle) != 2 {
		t.Fatalf("%d workers idle with 4 jobs for 6 workers, want 2: %v", len(idle), idle)
	}

	scaled := time.Now()
	writeFile(t, q, "2")
	r.waitFor("4 drains started", 10*time.Second, func() bool { return len(r.status("jobs").Draining) == 4 })
	st := r.status("jobs")
	if st.Current != 2 {
		t.Errorf("current = %d during the drain, want 2 (draining replicas are not capacity)", st.Current)
	}
	if d := st.LastDecision; d == nil || !strings.Contains(d.Reason, "→ draining replica ") {
		t.Errorf("last decision does not name the drained replicas: %+v", d)
	} else {
		t.Logf("reason: %s", d.Reason)
	}
	for _, d := range st.Draining {
		if wantIdle := idle[d.Replica]; wantIdle != strings.HasPrefix(d.Reason, "idle;") {
			t.Errorf("replica %s (idle: %v) drained because %q", d.Replica, wantIdle, d.Reason)
		}
	}
	// The idle ones go at once, long before any job ends.
	r.waitFor("the 2 idle workers stopped", 5*time.Second, func() bool {
		n := 0
		for _, d := range r.status("jobs").Draining {
			if idle[d.Replica] && d.State == targets.DrainStopped {
				n++
			}
		}
		return n == 2
	})
	if took := time.Since(scaled); took > job/2 {
		t.Errorf("idle workers took %s to stop; jobs are %s", took, job)
	}

	r.waitFor("every drain over", job+timeout+10*time.Second, func() bool {
		for _, d := range r.status("jobs").Draining {
			if !d.State.Over() {
				return false
			}
		}
		return true
	})
	st = r.status("jobs")
	if st.Current != 2 {
		t.Errorf("current = %d after the drain, want 2", st.Current)
	}
	runs := pg.JobRuns(t)
	finishedAt := map[string]time.Time{}
	tasks := map[int64]int{}
	for _, jr := range runs {
		tasks[jr.Task]++
		if jr.Finished != nil {
			finishedAt[jr.Worker] = *jr.Finished
		}
	}
	for task, n := range tasks {
		if n != 1 {
			t.Errorf("task %d was run %d times", task, n)
		}
	}
	var busyDrains []DrainView
	for _, d := range st.Draining {
		if !idle[d.Replica] {
			busyDrains = append(busyDrains, d)
		}
	}
	if len(busyDrains) != 2 {
		t.Fatalf("%d busy replicas drained, want 2: %+v", len(busyDrains), st.Draining)
	}

	if timeout > job {
		for _, jr := range runs {
			if jr.Status != "done" || jr.Finished == nil {
				t.Errorf("task %d (worker %s) is %s, finished %v: a job was cut short", jr.Task, jr.Worker, jr.Status, jr.Finished)
			}
		}
		for _, d := range busyDrains {
			if d.State != targets.DrainStopped {
				t.Errorf("busy replica %s's drain ended %q, want stopped", d.Replica, d.State)
			}
			// The drain ends when the job ends: within a few polls of its finish.
			var jobEnd time.Time
			for w, at := range finishedAt {
				if replicaOf(w) == d.Replica {
					jobEnd = at
				}
			}
			if jobEnd.IsZero() || d.Ended.Before(jobEnd) || d.Ended.Sub(jobEnd) > 2*time.Second {
				t.Errorf("replica %s: drain ended %s, its job ended %s", d.Replica, d.Ended.Format(time.StampMilli), jobEnd.Format(time.StampMilli))
			}
		}
		if got := strings.Count(r.log.String(), "cut short"); got != 0 {
			t.Errorf("the log mentions %d cut jobs:\n%s", got, r.log.String())
		}
		if n := r.metricValue("autoscalerd_drains_timed_out_total", map[string]string{"policy": "jobs"}); n != 0 {
			t.Errorf("drains_timed_out_total = %v, want 0", n)
		}
	} else {
		r.waitFor("the kept workers' jobs done", job+10*time.Second, func() bool {
			done := 0
			for _, jr := range pg.JobRuns(t) {
				if jr.Finished != nil {
					done++
				}
			}
			return done == 2
		})
		runs = pg.JobRuns(t)
		cut := 0
		for _, jr := range runs {
			if jr.Finished == nil {
				cut++
				if jr.Status != "running" {
					t.Errorf("cut task %d is %s", jr.Task, jr.Status)
				}
			}
		}
		if cut != 2 {
			t.Errorf("%d jobs cut short, want the 2 of the drained busy workers", cut)
		}
		for _, d := range busyDrains {
			if d.State != targets.DrainTimedOut {
				t.Errorf("busy replica %s's drain ended %q, want timed out", d.Replica, d.State)
			}
		}
		log := r.log.String()
		if n := strings.Count(log, "drain timed out while the replica is still busy; stopping it now cuts its work short"); n != 2 {
			t.Errorf("the daemon logged %d timed-out drains, want 2:\n%s", n, log)
		}
		if n := strings.Count(log, "cut short by SIGTERM"); n != 2 {
			t.Errorf("the workers logged %d cut jobs, want 2", n)
		}
		r.waitFor("drains_timed_out_total = 2", 5*time.Second, func() bool {
			return r.metricValue("autoscalerd_drains_timed_out_total", map[string]string{"policy": "jobs"}) == 2
		})
		// The observer (notifications: drain_timed_out) hears each timed-out drain once.
		r.waitFor("two timed-out drains told to the observer", 5*time.Second, func() bool {
			n := 0
			for _, tk := range r.ticks.all() {
				n += len(tk.DrainsTimedOut)
			}
			return n == 2
		})
	}
	r.waitFor("4 drains in the histogram", 5*time.Second, func() bool {
		return r.metricValue("autoscalerd_drain_duration_seconds", map[string]string{"policy": "jobs"}) == 4
	})
	if n := r.metricValue("autoscalerd_policy_replicas", map[string]string{"policy": "jobs", "kind": "draining"}); n != 0 {
		t.Errorf("draining gauge = %v after the drains, want 0", n)
	}
}

// TestDrainTakenBackWhenDemandReturns: demand comes back while 2 busy workers drain; the
// engine's scale-up resumes them (SIGCONT) instead of starting new ones for them, says so
// in the reason, and counts the drains as called off. Their jobs finish, and they go on
// taking jobs.
func TestDrainTakenBackWhenDemandReturns(t *testing.T) {
	r, pg, _, q := startJobsRig(t, time.Minute)
	pg.Exec(t, "INSERT INTO tasks (duration_ms) SELECT 4000 FROM generate_series(1, 4)")
	r.waitFor("4 jobs taken", 10*time.Second, func() bool { return len(pg.JobRuns(t)) == 4 })
	writeFile(t, q, "2")
	r.waitFor("2 busy workers draining", 10*time.Second, func() bool {
		n := 0
		for _, d := range r.status("jobs").Draining {
			if d.State == targets.DrainWaiting {
				n++
			}
		}
		return n == 2
	})
	started := strings.Count(r.log.String(), "ready, busy endpoint on")
	writeFile(t, q, "4")
	r.waitFor("back at 4", 10*time.Second, func() bool { return r.status("jobs").Current == 4 })
	st := r.status("jobs")
	if d := st.LastDecision; d == nil || !strings.Contains(d.Reason, "→ took back draining replica ") {
		t.Errorf("the scale-up's reason does not say it took replicas back: %+v", d)
	}
	back := 0
	for _, d := range st.Draining {
		if d.State == targets.DrainTakenBack {
			back++
		}
	}
	if back != 2 {
		t.Errorf("%d drains taken back, want 2: %+v", back, st.Draining)
	}
	r.waitFor("drains_called_off_total = 2", 5*time.Second, func() bool {
		return r.metricValue("autoscalerd_drains_called_off_total", map[string]string{"policy": "jobs"}) == 2
	})
	// 2 idle ones were stopped; 4 = the 2 kept + the 2 taken back: nothing new started.
	time.Sleep(time.Second)
	if n := strings.Count(r.log.String(), "ready, busy endpoint on") - started; n != 0 {
		t.Errorf("%d new workers started; the 2 taken back were enough", n)
	}
	if n := strings.Count(r.log.String(), "quiet=false"); n != 2 {
		t.Errorf("%d workers told to resume, want 2", n)
	}
	// The resumed workers finish their jobs and take new ones.
	pg.Exec(t, "INSERT INTO tasks (duration_ms) SELECT 100 FROM generate_series(1, 8)")
	r.waitFor("every job done", 20*time.Second, func() bool {
		runs := pg.JobRuns(t)
		for _, jr := range runs {
			if jr.Finished == nil {
				return false
			}
		}
		return len(runs) == 12
	})
	seen := map[int64]bool{}
	for _, jr := range pg.JobRuns(t) {
		if seen[jr.Task] {
			t.Errorf("task %d run twice", jr.Task)
		}
		seen[jr.Task] = true
	}
}
