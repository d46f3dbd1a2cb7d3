package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/sources"
)

func TestReadme(t *testing.T) { plugintest.ReadmeShowsSample(t) }

func TestSampleDecodes(t *testing.T) { plugintest.SampleDecodes[Config](t, sample, nil) }

func newSource(t *testing.T, set *shared.Set, cfg Config) *source {
	t.Helper()
	if cfg.Type == "" {
		cfg.Type = "auto"
	}
	src, err := New(&cfg, sources.Deps{Shared: set})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sources.Close(src) })
	return src.(*source)
}

// must runs setup commands against the test server.
func must(t *testing.T, c *redis.Client, cmds ...[]any) {
	t.Helper()
	ctx := context.Background()
	for _, args := range cmds {
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
}

// xadd adds n entries with explicit IDs <ms>-1 .. <ms>-n, so tests can name them.
func xadd(t *testing.T, c *redis.Client, key string, ms, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		must(t, c, []any{"XADD", key, fmt.Sprintf("%d-%d", ms, i), "job", i})
	}
}

// readGroup delivers n entries to consumer c1 of group, acknowledging the first ack.
func readGroup(t *testing.T, c *redis.Client, key, group string, n, ack int) {
	t.Helper()
	res, err := c.XReadGroup(context.Background(), &redis.XReadGroupArgs{
		Group: group, Consumer: "c1", Streams: []string{key, ">"}, Count: int64(n), Block: -1,
	}).Result()
	if err != nil {
		t.Fatalf("XREADGROUP: %v", err)
	}
	msgs := res[0].Messages
	if len(msgs) != n {
		t.Fatalf("XREADGROUP delivered %d entries, want %d", len(msgs), n)
	}
	for _, m := range msgs[:ack] {
		must(t, c, []any{"XACK", key, group, m.ID})
	}
}

func groupLag(t *testing.T, c *redis.Client, key, group string) int64 {
	t.Helper()
	groups, err := c.XInfoGroups(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Name == group {
			return g.Lag
		}
	}
	t.Fatalf("no group %s on %s", group, key)
	return 0
}

func TestRealRedis(t *testing.T) {
	addr := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()

	must(t, c,
		[]any{"RPUSH", "queue:list", "a", "b", "c"},
		[]any{"ZADD", "queue:delayed", 1, "a", 2, "b", 3, "c", 4, "d"},
		[]any{"SADD", "queue:set", "a", "b"},
		[]any{"SET", "queue:string", "7"},
		[]any{"HSET", "queue:hash", "f", "v"},
		[]any{"SELECT", 0},
	)
	// db 3 holds another list, to show db is honoured.
	c3 := redis.NewClient(&redis.Options{Addr: addr, DB: 3, DisableIdentity: true})
	defer c3.Close()
	must(t, c3, []any{"RPUSH", "queue:list", "x"})

	// events: 10 entries; group "workers" got 5 (acked 3, 2 pending), 5 never delivered.
	xadd(t, c, "events", 1000, 10)
	must(t, c, []any{"XGROUP", "CREATE", "events", "workers", "0"})
	readGroup(t, c, "events", "workers", 5, 3)
	// A group created at the end ($) sees only what is added later: 2 entries.
	must(t, c, []any{"XGROUP", "CREATE", "events", "late", "$"})
	// idle: a group that has not read anything yet.
	must(t, c, []any{"XGROUP", "CREATE", "events", "idle", "0"})

	// tomb: 10 entries, 3 delivered (1 acked), then an undelivered entry deleted. The
	// tombstone past the group's position makes Redis 7.0 report lag as nil.
	xadd(t, c, "tomb", 2000, 10)
	must(t, c, []any{"XGROUP", "CREATE", "tomb", "workers", "0"})
	readGroup(t, c, "tomb", "workers", 3, 1)
	must(t, c, []any{"XDEL", "tomb", "2000-6"})

	// trimmed: like tomb, then trimmed past the group's position: every entry left is
	// undelivered.
	xadd(t, c, "trimmed", 3000, 10)
	must(t, c, []any{"XGROUP", "CREATE", "trimmed", "workers", "0"})
	readGroup(t, c, "trimmed", "workers", 3, 3)
	must(t, c, []any{"XDEL", "trimmed", "3000-6"}, []any{"XTRIM", "trimmed", "MINID", "3000-5"})

	// big: the nil-lag count has to page through more than one XRANGE page.
	pipe := c.Pipeline()
	for i := 1; i <= 2*scanPage+500; i++ {
		pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: "big", ID: fmt.Sprintf("4000-%d", i), Values: []any{"job", i}})
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	must(t, c, []any{"XGROUP", "CREATE", "big", "workers", "0"})
	readGroup(t, c, "big", "workers", 10, 4)
	must(t, c, []any{"XDEL", "big", "4000-20"})

	for _, key := range []string{"tomb", "trimmed", "big"} {
		if lag := groupLag(t, c, key, "workers"); lag != -1 {
			t.Fatalf("setup: Redis reports lag %d for %s; the test needs a nil lag to check the fallback", lag, key)
		}
	}
	xadd(t, c, "events", 1001, 2) // after "late" was created

	set := shared.NewSet()
	cases := []struct {
		name    string
		cfg     Config
		want    float64
		wantErr string
	}{
		{name: "list", cfg: Config{Key: "queue:list"}, want: 3},
		{name: "list, explicit type", cfg: Config{Key: "queue:list", Type: "list"}, want: 3},
		{name: "list in db 3", cfg: Config{Key: "queue:list", DB: 3}, want: 1},
		{name: "zset", cfg: Config{Key: "queue:delayed", Type: "zset"}, want: 4},
		{name: "set", cfg: Config{Key: "queue:set"}, want: 2},
		{name: "stream length", cfg: Config{Key: "events"}, want: 12},
		// 2 pending + 7 never delivered (5 + the 2 added later)
		{name: "stream group: pending + lag", cfg: Config{Key: "events", Group: "workers"}, want: 9},
		{name: "stream group created at $", cfg: Config{Key: "events", Type: "stream", Group: "late"}, want: 2},
		{name: "stream group that read nothing", cfg: Config{Key: "events", Group: "idle"}, want: 12},
		// 2 pending + 6 undelivered (10 - 3 delivered - 1 deleted), lag counted by hand
		{name: "stream group, nil lag", cfg: Config{Key: "tomb", Group: "workers"}, want: 8},
		// 0 pending + 5 left after trimming (3000-5, 7, 8, 9, 10)
		{name: "stream group, nil lag, trimmed", cfg: Config{Key: "trimmed", Group: "workers"}, want: 5},
		// 6 pending + (2500 - 10 delivered - 1 deleted) undelivered
		{name: "stream group, nil lag, several pages", cfg: Config{Key: "big", Group: "workers"}, want: 6 + 2*scanPage + 500 - 10 - 1},
		{name: "missing key", cfg: Config{Key: "queue:nothing"}, want: 0},
		{name: "missing key, explicit type", cfg: Config{Key: "queue:nothing", Type: "stream", Group: "workers"}, want: 0},
		{name: "string", cfg: Config{Key: "queue:string"}, wantErr: `key "queue:string": is a string, not a list, stream, zset or set`},
		{name: "hash", cfg: Config{Key: "queue:hash", Type: "list"}, wantErr: `key "queue:hash": is a hash, not a list`},
		{name: "zset read as list", cfg: Config{Key: "queue:delayed", Type: "list"}, wantErr: `key "queue:delayed": is a zset, not a list`},
		{name: "group on a list", cfg: Config{Key: "queue:list", Group: "workers"}, wantErr: `is a list; group "workers" needs a stream`},
		{name: "unknown group", cfg: Config{Key: "events", Group: "wrokers"}, wantErr: `stream has no consumer group "wrokers" (it has idle, late, workers)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Address = addr
			got, err := plugintest.Value(t, newSource(t, set, cfg))
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %g, %v; want %g", got, err, tc.want)
				}
				return
			}
			where := fmt.Sprintf("redis %s/%d: ", addr, cfg.DB)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), where) {
				t.Fatalf("got %g, %v; want an error starting %q and containing %q", got, err, where, tc.wantErr)
			}
		})
	}

	t.Run("one client per server and db", func(t *testing.T) {
		set := shared.NewSet()
		a := newSource(t, set, Config{Address: addr, Key: "queue:list"})
		b := newSource(t, set, Config{URL: configs.NewSecret("redis://" + addr + "/0"), Key: "queue:set"})
		other := newSource(t, set, Config{Address: addr, DB: 3, Key: "queue:list"})
		for _, s := range []*source{a, b, other} {
			if _, err := plugintest.Value(t, s); err != nil {
				t.Fatal(err)
			}
		}
		ca, _ := a.client.Get(context.Background())
		cb, _ := b.client.Get(context.Background())
		cother, _ := other.client.Get(context.Background())
		if ca != cb || ca == cother || set.Len() != 2 {
			t.Fatalf("%d clients for two databases", set.Len())
		}
		a.Close()
		if got, err := plugintest.Value(t, b); err != nil || got != 2 {
			t.Fatalf("after closing one query, the other got %g, %v", got, err)
		}
		b.Close()
		other.Close()
		if set.Len() != 0 {
			t.Fatalf("%d clients open after every query closed", set.Len())
		}
	})
}

func TestRealRedisAuth(t *testing.T) {
	const password = "c0rrect-h0rse"
	addr := testenv.StartRedis(t, "--requirepass", password)
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, DisableIdentity: true})
	defer c.Close()
	must(t, c, []any{"RPUSH", "jobs", "a", "b"})

	wrong := "wr0ng/p@ss"
	cases := []struct {
		name    string
		cfg     Config
		want    float64
		wantErr string
	}{
		{name: "password", cfg: Config{Address: addr, Password: configs.NewSecret(password)}, want: 2},
		{name: "password in url", cfg: Config{URL: configs.NewSecret("redis://:" + password + "@" + addr + "/0")}, want: 2},
		{name: "url plus password", cfg: Config{URL: configs.NewSecret("redis://" + addr), Password: configs.NewSecret(password)}, want: 2},
		{name: "no password", cfg: Config{Address: addr}, wantErr: "NOAUTH"},
		{name: "wrong password", cfg: Config{Address: addr, Password: configs.NewSecret(wrong)}, wantErr: "WRONGPASS"},
		{name: "wrong password in url", cfg: Config{URL: configs.NewSecret("redis://:" + "wr0ng%2Fp%40ss" + "@" + addr + "/0")}, wantErr: "WRONGPASS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Key = "jobs"
			got, err := plugintest.Value(t, newSource(t, nil, tc.cfg))
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %g, %v; want %g", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %g, %v; want an error containing %q", got, err, tc.wantErr)
			}
			for _, leak := range []string{wrong, "wr0ng%2Fp%40ss", password} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error leaks a password: %v", err)
				}
			}
			t.Logf("message: %v", err)
		})
	}
}

func TestUnreachable(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	_, err := plugintest.Value(t, newSource(t, nil, Config{URL: configs.NewSecret("redis://:s3cret@" + addr + "/2"), Key: "jobs"}))
	if err == nil || !strings.Contains(err.Error(), "redis "+addr+"/2: ") || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("got %v, want a connection error naming the server, without the password", err)
	}
}

func TestCheckConfig(t *testing.T) {
	plugintest.CheckConfigs(t, func() *Config { return &Config{Type: "auto", Measure: sources.MeasureCount} }, []plugintest.ConfigCase{
		{Text: "key: jobs", Want: `needs address (host:port) or url (redis://...)`},
		{Text: "{address: 'r:6379', url: 'redis://r:6379', key: jobs}", Want: `give address or url, not both`},
		{Text: "{address: 'redis://r:6379', key: jobs}", Want: `is a URL; use url:`},
		{Text: "{url: 'http://r:6379', key: jobs}", Want: `invalid URL scheme`},
		{Text: "{url: 'redis://:hunter2@r:6379/x', key: jobs}", Want: `invalid database number`},
		{Text: "{url: 'redis://r:6379/1', db: 2, key: jobs}", Want: `put the database in the url instead`},
		{Text: "{url: 'redis://:hunter2@r:6379', password: x, key: jobs}", Want: `the url has a password already`},
		{Text: "{address: 'r:6379', db: -1, key: jobs}", Want: `db: must not be negative`},
		{Text: "address: 'r:6379'", Want: `missing required key "key"`},
		{Text: "{address: 'r:6379', key: jobs, type: hash}", Want: `"hash" is not a type a query can measure`},
		{Text: "{address: 'r:6379', key: jobs, type: list, group: workers}", Want: `consumer groups belong to streams`},
		{Text: "{address: 'r:6379', key: jobs, type: stream, group: workers}", Want: ``},
		{Text: "{url: 'rediss://u:hunter2@r:6380/4', key: jobs}", Want: ``},
		{Text: "{address: 'r:6379', key: jobs, measure: oldest_age}", Want: ``},
		{Text: "{address: 'r:6379', key: jobs, type: stream, group: g, measure: oldest_age}", Want: ``},
		{Text: "{address: 'r:6379', key: jobs, measure: age}", Want: `test.yaml:1:41: q.measure: "age" is not a measure (use count or oldest_age)`},
		{Text: "{address: 'r:6379', key: jobs, type: list, measure: oldest_age}", Want: `q.measure: oldest_age needs a stream (its entry IDs hold the time each was added); this key has type: list`},
	}, "hunter2")
}

func TestCompareIDs(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1-0", "1-0", 0}, {"1-1", "1-0", 1}, {"1-9", "2-0", -1}, {"10-0", "9-99", 1}, {"5", "5-0", 0},
	}
	for _, tc := range cases {
		if got, err := compareIDs(tc.a, tc.b); err != nil || got != tc.want {
			t.Errorf("compareIDs(%s, %s) = %d, %v; want %d", tc.a, tc.b, got, err, tc.want)
		}
	}
	if _, err := compareIDs("x-1", "1-1"); err == nil {
		t.Error("a bad ID compares without error")
	}
}
