package testenv

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var pgJobsBin struct {
	once sync.Once
	path string
	err  error
}

// PGJobsWorker builds internal/testing/testworker (once per test binary; its `pgjobs`
// mode works jobs from a Postgres task table), creates the job tables in pg, and returns
// the binary's path.
func PGJobsWorker(t testing.TB, pg *Postgres) string {
	t.Helper()
	pgJobsBin.once.Do(func() {
		bin, err := BuildStatic(t, "./internal/testing/testworker")
		if err != nil {
			pgJobsBin.err = err
			return
		}
		dir, err := os.MkdirTemp("", "pgjobs-worker")
		if err != nil {
			pgJobsBin.err = err
			return
		}
		pgJobsBin.path = filepath.Join(dir, "testworker")
		pgJobsBin.err = os.WriteFile(pgJobsBin.path, bin, 0o755)
	})
	if pgJobsBin.err != nil {
		t.Fatalf("building the test worker: %v", pgJobsBin.err)
	}
	init := exec.Command(pgJobsBin.path, "pgjobs", "init")
	init.Env = append(os.Environ(), "PG_DSN="+pg.DSN())
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("pgjobs init: %v: %s", err, out)
	}
	return pgJobsBin.path
}

// JobRun is one attempt at a job, as the pgjobs workers record it.
type JobRun struct {
	Task     int64
	Status   string // the job's status now: pending, running, done
	Worker   string // host/AUTOSCALER_REPLICA:pid of the worker that took it
	Started  time.Time
	Finished *time.Time // nil: the attempt never ended (cut short)
}

// JobRuns lists every attempt, by job.
func (p *Postgres) JobRuns(t testing.TB) []JobRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT r.task_id, t.status, r.worker, r.started_at, r.finished_at FROM runs r JOIN tasks t ON t.id = r.task_id ORDER BY r.task_id, r.started_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []JobRun
	for rows.Next() {
		var r JobRun
		if err := rows.Scan(&r.Task, &r.Status, &r.Worker, &r.Started, &r.Finished); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Forward accepts on l until the test ends and relays each connection to backend.
func Forward(t testing.TB, l net.Listener, backend string) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in) }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
}

// JobsDone waits up to timeout for every attempt among JobRuns()[from:] to end (a job
// cut short never does) and returns them; it fails the test naming each attempt left
// unfinished, and each job run more than once.
func (p *Postgres) JobsDone(t testing.TB, from int, timeout time.Duration) []JobRun {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		runs := p.JobRuns(t)[from:]
		var open []JobRun
		for _, r := range runs {
			if r.Status != "done" || r.Finished == nil {
				open = append(open, r)
			}
		}
		if len(open) == 0 || time.Now().After(deadline) {
			for _, r := range open {
				t.Errorf("task %d on %s is %s (started %s, not finished within %s): cut short", r.Task, r.Worker, r.Status, r.Started.Format(time.TimeOnly), timeout)
			}
			seen := map[int64]int{}
			for _, r := range runs {
				seen[r.Task]++
			}
			for task, n := range seen {
				if n != 1 {
					t.Errorf("task %d was run %d times", task, n)
				}
			}
			return runs
		}
		time.Sleep(100 * time.Millisecond)
	}
}
