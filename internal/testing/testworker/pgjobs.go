package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgJobsSchema is the job table pgjobs works from: the lease-based task table of the
// seed's worker guide (status, locked_by, lease_timeout, try_count), each job with a known
// length, and a runs table where every attempt records its start and, if it got there,
// its end, so a test can see a job cut short or done twice.
const pgJobsSchema = `
CREATE TABLE IF NOT EXISTS tasks (
	id            bigserial PRIMARY KEY,
	type          text NOT NULL DEFAULT 'sleep',
	status        text NOT NULL DEFAULT 'pending',
	locked_by     text,
	lease_timeout timestamptz,
	try_count     int NOT NULL DEFAULT 0,
	duration_ms   int NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
	task_id     bigint NOT NULL REFERENCES tasks(id),
	worker      text NOT NULL,
	started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
	finished_at timestamptz
);`

// pgJobs works jobs from the Postgres task table at $PG_DSN, one at a time:
//
//	GET /busy     {"busy": true} while it holds a job (or is claiming one)
//	SIGTSTP       quiet: finish the current job, take no new one
//	SIGCONT       take jobs again
//	POST /quiet   as SIGTSTP; POST /resume as SIGCONT (for quiet/resume calls, and for
//	              `testworker post` inside a container: a quiet.exec)
//	$BUSY_FILE    when set, exists while it holds a job (a busy.file check)
//	SIGTERM       exit; a job in hand is cut short (logged, its run left unfinished)
//
// The busy server listens on 127.0.0.1:$BUSY_BASE_PORT+$AUTOSCALER_REPLICA when
// BUSY_BASE_PORT is set (a process target), else on :8080 (a container).
func pgJobs(args []string) int {
	fs := flag.NewFlagSet("pgjobs", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.Arg(0) == "init" {
		return pgJobsInit()
	}
	host, _ := os.Hostname()
	name := fmt.Sprintf("%s/%s:%d", host, os.Getenv("AUTOSCALER_REPLICA"), os.Getpid())
	addr := ":8080"
	if base := os.Getenv("BUSY_BASE_PORT"); base != "" {
		b, err1 := strconv.Atoi(base)
		n, err2 := strconv.Atoi(os.Getenv("AUTOSCALER_REPLICA"))
		if err1 != nil || err2 != nil {
			fmt.Println("pgjobs: BUSY_BASE_PORT and AUTOSCALER_REPLICA must be numbers")
			return 2
		}
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(b+n))
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	conn, err := pgx.Connect(ctx, os.Getenv("PG_DSN"))
	if err != nil {
		fmt.Printf("pgjobs: connect: %v\n", err)
		return 1
	}
	defer conn.Close(context.Background())

	var (
		mu          sync.Mutex
		busy, quiet bool
	)
	busyFile := os.Getenv("BUSY_FILE")
	// setBusy is called with mu held: the file goes up and down with the flag, so a file
	// probe sees what an HTTP probe would.
	setBusy := func(b bool) {
		busy = b
		if busyFile == "" {
			return
		}
		var err error
		if b {
			err = os.WriteFile(busyFile, []byte(name+"\n"), 0o644)
		} else if err = os.Remove(busyFile); errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		if err != nil {
			fmt.Printf("pgjobs: busy file: %v\n", err)
		}
	}
	setQuiet := func(q bool) {
		mu.Lock()
		quiet = q
		mu.Unlock()
		fmt.Printf("pgjobs: %s quiet=%v\n", name, q)
	}
	quietSig := make(chan os.Signal, 4)
	signal.Notify(quietSig, syscall.SIGTSTP, syscall.SIGCONT)
	go func() {
		for s := range quietSig {
			setQuiet(s == syscall.SIGTSTP)
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /quiet", func(_ http.ResponseWriter, _ *http.Request) { setQuiet(true) })
	mux.HandleFunc("POST /resume", func(_ http.ResponseWriter, _ *http.Request) { setQuiet(false) })
	mux.HandleFunc("GET /busy", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		b := busy
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"busy": %v}`, b)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Printf("pgjobs: listen: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Printf("pgjobs: %s ready, busy endpoint on %s\n", name, ln.Addr())

	for ctx.Err() == nil {
		// Busy goes up before the claim, under the same lock as quiet: a quiet that
		// arrives during a claim is followed by a busy answer, never by an idle one while
		// a job is being taken.
		mu.Lock()
		if quiet {
			mu.Unlock()
			sleep(ctx, 50*time.Millisecond)
			continue
		}
		setBusy(true)
		mu.Unlock()
		id, ms, ok, err := claim(ctx, conn, name)
		if err != nil || !ok {
			mu.Lock()
			setBusy(false)
			mu.Unlock()
			if err != nil && ctx.Err() == nil {
				fmt.Printf("pgjobs: claim: %v\n", err)
			}
			// Idle polls are far apart so that a busy probe rarely lands on a claim
			// that finds nothing (it would rightly answer busy).
			sleep(ctx, time.Second)
			continue
		}
		fmt.Printf("pgjobs: %s took job %d (%dms)\n", name, id, ms)
		if !sleep(ctx, time.Duration(ms)*time.Millisecond) {
			fmt.Printf("pgjobs: %s job %d cut short by SIGTERM\n", name, id)
			return 1
		}
		if err := finish(context.Background(), conn, id, name); err != nil {
			fmt.Printf("pgjobs: finishing job %d: %v\n", id, err)
			return 1
		}
		fmt.Printf("pgjobs: %s finished job %d\n", name, id)
		mu.Lock()
		setBusy(false)
		mu.Unlock()
	}
	fmt.Printf("pgjobs: %s stopped while idle\n", name)
	return 0
}

// pgJobsInit creates the tables (`testworker pgjobs init`), once, before the workers.
func pgJobsInit() int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, os.Getenv("PG_DSN"))
	if err != nil {
		fmt.Printf("pgjobs: connect: %v\n", err)
		return 1
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, pgJobsSchema); err != nil {
		fmt.Printf("pgjobs: creating the tables: %v\n", err)
		return 1
	}
	return 0
}

// claim leases the oldest pending job, as the seed's workers do (FOR UPDATE SKIP LOCKED),
// and records the attempt.
func claim(ctx context.Context, conn *pgx.Conn, name string) (id int64, ms int, ok bool, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, 0, false, err
	}
	defer tx.Rollback(context.Background())
	err = tx.QueryRow(ctx, `
		UPDATE tasks SET status = 'running', locked_by = $1, lease_timeout = now() + interval '5 minutes', try_count = try_count + 1
		WHERE id = (SELECT id FROM tasks WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id, duration_ms`, name).Scan(&id, &ms)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO runs (task_id, worker) VALUES ($1, $2)`, id, name); err != nil {
		return 0, 0, false, err
	}
	return id, ms, true, tx.Commit(ctx)
}

func finish(ctx context.Context, conn *pgx.Conn, id int64, name string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `UPDATE tasks SET status = 'done', lease_timeout = NULL WHERE id = $1 AND locked_by = $2`, id, name); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE runs SET finished_at = clock_timestamp() WHERE task_id = $1 AND worker = $2`, id, name); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
