package postgres

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/sources"
)

func TestReadme(t *testing.T) { plugintest.ReadmeShowsSample(t) }

func TestSampleDecodes(t *testing.T) {
	plugintest.SampleDecodes[Config](t, sample, map[string]string{"TASKS_DSN": "postgres://a:b@db:5432/app?sslmode=disable"})
}

func newSource(t *testing.T, set *shared.Set, dsn, query string) *source {
	t.Helper()
	src, err := New(&Config{DSN: configs.NewSecret(dsn), Query: query}, sources.Deps{Shared: set})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sources.Close(src) })
	return src.(*source)
}

// seedSchema is the lease-based task table of the seed project (workers claim a task by
// setting status=running, locked_by and a lease_timeout; expired leases are recovered).
const seedSchema = `CREATE TABLE tasks (
	id            bigserial PRIMARY KEY,
	type          text NOT NULL,
	status        text NOT NULL CHECK (status IN ('queued', 'running', 'done')),
	locked_by     text,
	lease_timeout timestamptz,
	try_count     int NOT NULL DEFAULT 0,
	max_tries     int NOT NULL DEFAULT 3
)`

func TestRealPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	pg.Exec(t, seedSchema,
		`INSERT INTO tasks (type, status) SELECT 'send-email', 'queued' FROM generate_series(1, 5)`,
		// Three live leases, two expired (their worker died).
		`INSERT INTO tasks (type, status, locked_by, lease_timeout, try_count)
		 SELECT 'resize', 'running', 'worker-a:41', now() + interval '5 minutes', 1 FROM generate_series(1, 3)`,
		`INSERT INTO tasks (type, status, locked_by, lease_timeout, try_count)
		 SELECT 'resize', 'running', 'worker-b:77', now() - interval '1 minute', 1 FROM generate_series(1, 2)`,
		`INSERT INTO tasks (type, status, try_count) SELECT 'send-email', 'done', 1 FROM generate_series(1, 4)`,
		`CREATE TABLE texts (v text)`,
		`INSERT INTO texts VALUES (' 17 '), ('lots')`,
	)
	set := shared.NewSet()

	cases := []struct {
		name    string
		query   string
		want    float64
		wantErr string
	}{
		{name: "queued tasks", query: `SELECT count(*) FROM tasks WHERE status = 'queued'`, want: 5},
		{name: "expired leases", query: `SELECT count(*) FROM tasks WHERE status = 'running' AND lease_timeout < now()`, want: 2},
		{name: "queued plus expired", query: `SELECT count(*) FROM tasks WHERE status = 'queued' OR (status = 'running' AND lease_timeout < now())`, want: 7},
		{name: "connections say who they are", query: `SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND application_name = 'autoscalerd'`, want: 1},
		{name: "int2", query: `SELECT 42::int2`, want: 42},
		{name: "int4", query: `SELECT 42::int4`, want: 42},
		{name: "float4", query: `SELECT 1.5::float4`, want: 1.5},
		{name: "float8", query: `SELECT 2.25::float8`, want: 2.25},
		{name: "numeric", query: `SELECT avg(try_count) FROM tasks WHERE status = 'running'`, want: 1},
		{name: "numeric fraction", query: `SELECT 12.125::numeric(10,3)`, want: 12.125},
		{name: "numeric text", query: `SELECT v FROM texts WHERE v LIKE '%17%'`, want: 17},
		{name: "interval in seconds", query: `SELECT interval '1 day 90 seconds'`, want: 86490},
		{name: "no rows", query: `SELECT id FROM tasks WHERE false`, wantErr: "query returned no rows, want exactly one"},
		{name: "several rows", query: `SELECT id FROM tasks`, wantErr: "query returned more than one row, want exactly one"},
		{name: "several columns", query: `SELECT status, count(*) FROM tasks GROUP BY status LIMIT 1`, wantErr: "query returns 2 columns (status, count), want exactly one"},
		{name: "NULL", query: `SELECT sum(try_count) AS tries FROM tasks WHERE false`, wantErr: `column "tries" is NULL (wrap it in coalesce(..., 0) if NULL means zero)`},
		{name: "non-numeric text", query: `SELECT v FROM texts WHERE v = 'lots'`, wantErr: `column "v": "lots" is not a number`},
		{name: "boolean", query: `SELECT true AS busy`, wantErr: `column "busy" is of type bool, not a number`},
		{name: "SQL error", query: `SELECT count(*) FROM jobs`, wantErr: `relation "jobs" does not exist`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := plugintest.Value(t, newSource(t, set, pg.DSN(), tc.query))
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %g, %v; want %g", got, err, tc.want)
				}
				return
			}
			where := fmt.Sprintf("postgres 127.0.0.1:%d/%s: ", pg.Port, pg.Database)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), where) {
				t.Fatalf("got %g, %v; want an error starting %q and containing %q", got, err, where, tc.wantErr)
			}
		})
	}
	if n := set.Len(); n != 0 {
		t.Errorf("%d pools still open after every source closed", n)
	}

	t.Run("one pool per DSN", func(t *testing.T) {
		set := shared.NewSet()
		queued := newSource(t, set, pg.DSN(), `SELECT count(*) FROM tasks WHERE status = 'queued'`)
		expired := newSource(t, set, pg.DSN(), `SELECT count(*) FROM tasks WHERE status = 'running' AND lease_timeout < now()`)
		if _, err := plugintest.Value(t, queued); err != nil {
			t.Fatal(err)
		}
		if _, err := plugintest.Value(t, expired); err != nil {
			t.Fatal(err)
		}
		pool, _ := queued.pool.Get(context.Background())
		if other, _ := expired.pool.Get(context.Background()); other != pool || set.Len() != 1 {
			t.Fatalf("two queries with one DSN use %d pools", set.Len())
		}
		queued.Close()
		if got, err := plugintest.Value(t, expired); err != nil || got != 2 || set.Len() != 1 {
			t.Fatalf("after closing one query, the other got %g, %v with %d pools; want 2 with 1 pool", got, err, set.Len())
		}
		expired.Close()
		if set.Len() != 0 {
			t.Fatalf("%d pools open after both queries closed", set.Len())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := pool.Ping(ctx); err == nil {
			t.Fatal("the pool still answers after its last query closed")
		}
	})

	t.Run("bad credentials", func(t *testing.T) {
		wrong := "Wr0ng@pass/word"
		u, _ := url.Parse(pg.DSN())
		u.User = url.UserPassword(pg.User, wrong)
		for _, dsn := range []string{
			u.String(),
			fmt.Sprintf("host=127.0.0.1 port=%d user=%s password='%s' dbname=%s sslmode=disable", pg.Port, pg.User, wrong, pg.Database),
		} {
			_, err := plugintest.Value(t, newSource(t, set, dsn, `SELECT 1`))
			if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
				t.Fatalf("got %v, want a password authentication error", err)
			}
			t.Logf("message: %v", err)
			for _, leak := range []string{wrong, url.QueryEscape(wrong), url.PathEscape(wrong), pg.Password} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error leaks the password: %v", err)
				}
			}
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		dsn := fmt.Sprintf("postgres://%s:s3cret@127.0.0.1:%d/%s?sslmode=disable", pg.User, testenv.FreePort(t), pg.Database)
		_, err := plugintest.Value(t, newSource(t, set, dsn, `SELECT 1`))
		if err == nil || !strings.Contains(err.Error(), "connect") || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("got %v, want a connection error without the password", err)
		}
	})
}

func TestCheckConfig(t *testing.T) {
	plugintest.CheckConfigs(t, func() *Config { return &Config{} }, []plugintest.ConfigCase{
		{Text: "query: SELECT 1", Want: `missing required key "dsn"`},
		{Text: "dsn: postgres://db/app", Want: `missing required key "query"`},
		{Text: "{dsn: 'postgres://db/app', query: ' '}", Want: `q.query: must not be empty`},
		{Text: "{dsn: '', query: SELECT 1}", Want: `q.dsn: must not be empty`},
		{Text: "{dsn: 'postgres://u:hunter2@db:notaport/app', query: SELECT 1}", Want: `cannot parse`},
		{Text: "{dsn: 'postgres://u:hunter2@db/app?sslmode=sometimes', query: SELECT 1}", Want: `sslmode`},
		{Text: "{dsn: 'postgres://u:hunter2@db/app', query: SELECT 1}", Want: ``},
		{Text: "{dsn: 'host=db user=u password=hunter2 dbname=app', query: SELECT 1}", Want: ``},
		{Text: "{dsn: {file: /nonexistent/secret}, query: SELECT 1}", Want: `cannot read secret`},
	}, "hunter2")
}
