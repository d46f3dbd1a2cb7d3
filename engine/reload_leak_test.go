package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/engine"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv/natstest"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/sources"
	_ "github.com/autoscalerd/autoscalerd/sources/all"
	_ "github.com/autoscalerd/autoscalerd/targets/all"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// TestNoConnectionLeaksAcrossReloads applies a configuration whose queries talk to real
// Postgres, Redis, NATS and HTTP servers 100 times, with a tick after each, and checks on
// the servers' side that connections are reused across reloads and all closed at the end.
func TestNoConnectionLeaksAcrossReloads(t *testing.T) {
	pg := testenv.StartPostgres(t)
	pg.Exec(t, "CREATE TABLE tasks (id serial, status text)", "INSERT INTO tasks (status) VALUES ('queued'), ('queued')")
	redisAddr := testenv.StartRedis(t)
	ns := natstest.Start(t, nil)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := nc.JetStream()
	if _, err := js.AddStream(&nats.StreamConfig{Name: "orders", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddConsumer("orders", &nats.ConsumerConfig{Durable: "workers", AckPolicy: nats.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	var httpConns atomic.Int64
	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"n": 3}`) }))
	web.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			httpConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			httpConns.Add(-1)
		}
	}
	web.Start()
	defer web.Close()

	yaml := fmt.Sprintf(`
policies:
  - name: leak
    target: { process: { command: ["/bin/sleep", "3600.125"] } }
    min: 0
    max: 1
    interval: 100ms
    dry_run: true
    queries:
      pg_a: { postgres: { dsn: %q, query: "SELECT count(*) FROM tasks WHERE status = 'queued'" } }
      pg_b: { postgres: { dsn: %q, query: "SELECT count(*) FROM tasks" } }
      rd: { redis: { address: %q, key: jobs } }
      ns: { nats: { url: %q, stream: orders, consumer: workers } }
      web: { http: { url: %q, value: n } }
    replicas: pg_a + pg_b + rd + ns + web
`, pg.DSN(), pg.DSN(), redisAddr, ns.ClientURL(), web.URL)
	cfg, err := configs.Parse("leak.yaml", []byte(yaml), configs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := policy.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	shared := sources.NewShared()
	e := engine.NewEngine(engine.EngineOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: engine.NewMetrics(prometheus.NewRegistry()), Shared: shared})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if err := e.Apply(ctx, cfg, ps); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(done)
		e.Run(ctx, context.Background())
	}()

	waitTick := func(after time.Time) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			st := e.Statuses()[0]
			if d := st.LastDecision; d != nil && d.Time.After(after) {
				if st.LastError != "" {
					t.Fatalf("tick failed: %s", st.LastError)
				}
				if d.Desired == nil || *d.Desired != 1 {
					t.Fatalf("unexpected decision %+v", d)
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("no tick within 10s")
	}
	waitTick(time.Now())
	for i := range 100 {
		cfg, _ := configs.Parse("leak.yaml", []byte(yaml), configs.Options{})
		ps, _ := policy.Compile(cfg)
		at := time.Now()
		if err := e.Apply(ctx, cfg, ps); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		waitTick(at)
	}

	// One shared pool or connection per server, whatever the number of reloads.
	if n := shared.Len(); n > 4 {
		t.Errorf("%d shared connections/pools after 100 reloads, want at most 4 (postgres, redis, nats, and none or one for http)", n)
	}
	// One checking connection for the whole test: a fresh one per check would race with the
	// previous one's backend still exiting.
	checker, err := pgx.Connect(context.Background(), pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer checker.Close(context.Background())
	pgConns := func() int {
		var n int
		checker.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()", pg.User).Scan(&n)
		return n
	}
	rc := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rc.Close()
	redisConns := func() int {
		n, _ := rc.ClientList(context.Background()).Result()
		lines := 0
		for _, l := range []byte(n) {
			if l == '\n' {
				lines++
			}
		}
		return lines - 1 // our own checking connection
	}
	if n := pgConns(); n > 2 {
		t.Errorf("postgres: %d connections from autoscalerd after 100 reloads", n)
	}
	if n := redisConns(); n > 2 {
		t.Errorf("redis: %d connections after 100 reloads", n)
	}
	if n := ns.NumClients(); n > 1 {
		t.Errorf("nats: %d clients after 100 reloads", n)
	}
	if n := httpConns.Load(); n > 2 {
		t.Errorf("http: %d open connections after 100 reloads", n)
	}

	cancel()
	<-done
	e.Close(context.Background())
	if n := shared.Len(); n != 0 {
		t.Errorf("%d shared pools still open after shutdown", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (pgConns() > 0 || redisConns() > 0 || ns.NumClients() > 0 || httpConns.Load() > 0) {
		time.Sleep(50 * time.Millisecond)
	}
	if pg, rd, nn, h := pgConns(), redisConns(), ns.NumClients(), httpConns.Load(); pg+rd+nn+int(h) != 0 {
		t.Errorf("connections left after shutdown: postgres %d, redis %d, nats %d, http %d", pg, rd, nn, h)
	}
}
