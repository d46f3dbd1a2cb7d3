package redis

import (
	"context"
	"fmt"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/sources"
)

// TestOldestAge reads measure: oldest_age from a real redis-server. Entries get explicit
// IDs a known number of seconds before the server's clock, so every expected age is
// exact up to the time the test itself takes.
func TestOldestAge(t *testing.T) {
	addr := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	ctx := context.Background()
	now, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// id is an entry ID secondsAgo before the server's clock at the start of the test.
	id := func(secondsAgo, seq int) string {
		return fmt.Sprintf("%d-%d", now.Add(-time.Duration(secondsAgo)*time.Second).UnixMilli(), seq)
	}
	for i, ago := range []int{90, 60, 30} {
		must(t, c, []any{"XADD", "jobs", id(ago, i+1), "job", i})
	}
	must(t, c, []any{"XGROUP", "CREATE", "jobs", "workers", "0"})
	must(t, c, []any{"XGROUP", "CREATE", "jobs", "late", "$"})
	must(t, c, []any{"RPUSH", "list", "a"})
	// future: an entry ahead of the server clock (IDs given by hand) is skew, age 0.
	must(t, c, []any{"XADD", "future", id(-60, 1), "job", 1})

	set := shared.NewSet()
	age := func(key, group string) (float64, error) {
		t.Helper()
		src := newSource(t, set, Config{Address: addr, Key: key, Group: group, Measure: sources.MeasureOldestAge})
		return sources.Read(ctx, src, 5*time.Second)
	}
	// want checks an age to within the seconds the test has run.
	want := func(key, group string, seconds float64) {
		t.Helper()
		got, err := age(key, group)
		if err != nil {
			t.Fatalf("%s/%s: %v", key, group, err)
		}
		if slack := time.Since(now).Seconds() + 1; got < seconds || got > seconds+slack {
			t.Fatalf("%s/%s: age %vs, want %vs (+%.1fs)", key, group, got, seconds, slack)
		}
	}

	want("jobs", "", 90)        // no group: the stream's first entry
	want("jobs", "workers", 90) // nothing delivered: the first undelivered entry
	want("jobs", "late", 0)     // created at $: nothing owed
	want("missing", "", 0)      // no key: an empty queue
	want("future", "", 0)

	// Delivered, not acknowledged: still owed, still the oldest.
	readGroup(t, c, "jobs", "workers", 1, 0)
	want("jobs", "workers", 90)
	// Acknowledged: the oldest owed is now the first undelivered entry.
	must(t, c, []any{"XACK", "jobs", "workers", id(90, 1)})
	want("jobs", "workers", 60)
	// Two delivered, the newer one acknowledged first: the older stays owed.
	readGroup(t, c, "jobs", "workers", 2, 0)
	must(t, c, []any{"XACK", "jobs", "workers", id(30, 3)})
	want("jobs", "workers", 60)
	must(t, c, []any{"XACK", "jobs", "workers", id(60, 2)})
	want("jobs", "workers", 0) // everything acknowledged
	want("jobs", "", 90)       // the stream itself still holds its entries

	for _, tc := range []struct{ key, group, want string }{
		{"list", "", `key "list": is a list; measure: oldest_age needs a stream`},
		{"jobs", "nobody", `key "jobs": stream has no consumer group "nobody" (it has late, workers)`},
	} {
		_, err := age(tc.key, tc.group)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s/%s: got %v, want %q", tc.key, tc.group, err, tc.want)
		}
	}
}
