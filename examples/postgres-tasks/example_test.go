// Package postgrestasksexample checks the Postgres tasks example: both configurations
// load and build as `autoscalerd validate` does, their queries return what the README
// says against a real PostgreSQL holding the seed's lease-based tasks table, and the
// policies ask for the worker counts the README's tables promise.
package postgrestasksexample

import (
	"context"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/exampletest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/sources"
	_ "github.com/autoscalerd/autoscalerd/sources/postgres"
	_ "github.com/autoscalerd/autoscalerd/targets/compose"
)

// schema is the seed's tasks table, with the created_at column oldest-age.yaml needs.
const schema = `CREATE TABLE tasks (
	id            bigserial PRIMARY KEY,
	type          text NOT NULL,
	status        text NOT NULL CHECK (status IN ('queued', 'running', 'done')),
	locked_by     text,
	lease_timeout timestamptz,
	try_count     int NOT NULL DEFAULT 0,
	max_tries     int NOT NULL DEFAULT 3,
	created_at    timestamptz NOT NULL DEFAULT now()
)`

// read runs every query of file's policy against dsn and returns the values by name.
func read(t *testing.T, file, dsn string) map[string]float64 {
	t.Helper()
	cfg, err := configs.Load(file, configs.Options{LookupEnv: func(k string) (string, bool) {
		return dsn, k == "TASKS_DSN"
	}})
	if err != nil {
		t.Fatal(err)
	}
	set := shared.NewSet()
	out := map[string]float64{}
	for _, q := range cfg.Policies[0].Queries {
		src, err := sources.New(q, sources.Deps{Shared: set})
		if err != nil {
			t.Fatal(err)
		}
		v, err := sources.Read(context.Background(), src, 5*time.Second)
		_ = sources.Close(src)
		if err != nil {
			t.Fatalf("%s: query %s: %v", file, q.Name, err)
		}
		out[q.Name] = v
	}
	return out
}

func TestQueriesOnRealPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	pg.Exec(t, schema)
	empty := read(t, "oldest-age.yaml", pg.DSN())
	if empty["queued"] != 0 || empty["expired"] != 0 || empty["oldest"] != 0 {
		t.Fatalf("empty table: %v, want every query 0 (oldest: coalesce turns no rows' NULL into 0)", empty)
	}

	pg.Exec(t,
		// 45 queued, the oldest created 3 minutes ago; 2 live leases, 1 expired; 4 done
		// long ago (they must not count towards the age).
		`INSERT INTO tasks (type, status, created_at) SELECT 'send-email', 'queued', now() - interval '3 minutes' + g * interval '1 second' FROM generate_series(0, 44) g`,
		`INSERT INTO tasks (type, status, locked_by, lease_timeout) SELECT 'resize', 'running', 'w:1', now() + interval '5 minutes' FROM generate_series(1, 2)`,
		`INSERT INTO tasks (type, status, locked_by, lease_timeout) VALUES ('resize', 'running', 'w:2', now() - interval '1 minute')`,
		`INSERT INTO tasks (type, status, created_at) SELECT 'resize', 'done', now() - interval '1 day' FROM generate_series(1, 4)`,
	)
	start := time.Now()
	for _, file := range []string{"autoscalerd.yaml", "oldest-age.yaml"} {
		got := read(t, file, pg.DSN())
		if got["queued"] != 45 || got["expired"] != 1 {
			t.Errorf("%s: queued %v, expired %v; want 45, 1", file, got["queued"], got["expired"])
		}
		if file == "oldest-age.yaml" {
			if slack := time.Since(start).Seconds() + 1; got["oldest"] < 180 || got["oldest"] > 180+slack {
				t.Errorf("%s: oldest %vs, want 180s (+%.1fs)", file, got["oldest"], slack)
			}
		}
	}
}

func TestWorkersPerBacklog(t *testing.T) {
	env := map[string]string{"TASKS_DSN": "postgres://autoscalerd:pw@db:5432/tasks?sslmode=disable"}
	plain := exampletest.Load(t, "autoscalerd.yaml", env)[0]
	for _, tc := range []struct {
		queued, expired float64
		want            int
	}{
		{0, 0, 1}, {45, 0, 3}, {150, 10, 8}, {500, 0, 10},
	} {
		if got, why := exampletest.Desired(plain, 1, tc.queued, tc.expired); got != tc.want {
			t.Errorf("autoscalerd.yaml: queued %v, expired %v: desired %d (%s), want %d", tc.queued, tc.expired, got, why, tc.want)
		}
	}
	guarded := exampletest.Load(t, "oldest-age.yaml", env)[0]
	for _, tc := range []struct {
		current                 int
		queued, expired, oldest float64
		want                    int
	}{
		{1, 0, 0, 0, 1},      // nothing waits
		{2, 10, 0, 30, 1},    // a short queue, served promptly
		{2, 10, 0, 150, 3},   // a short queue whose oldest task waits too long: one more
		{3, 150, 10, 150, 8}, // the count asks for more than the guard
		{10, 20, 0, 600, 10}, // max
	} {
		if got, why := exampletest.Desired(guarded, tc.current, tc.queued, tc.expired, tc.oldest); got != tc.want {
			t.Errorf("oldest-age.yaml: current %d, queued %v, expired %v, oldest %v: desired %d (%s), want %d",
				tc.current, tc.queued, tc.expired, tc.oldest, got, why, tc.want)
		}
	}
}
