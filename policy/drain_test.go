package policy

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestDrainNeed checks drain's sizing against numbers worked out by hand: the capacity
// that starts every waiting task within its time, first in first out, with the ages read
// from the arrivals counter.
func TestDrainNeed(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	counter := func(vals ...float64) []Sample {
		xs := make([]Sample, len(vals))
		for i, v := range vals {
			xs[i] = Sample{T: t0.Add(time.Duration(i) * 15 * time.Second), V: v}
		}
		return xs
	}
	const T, interval = 5 * time.Minute, 15 * time.Second
	for _, tc := range []struct {
		name    string
		backlog float64
		counter []Sample
		want    float64
		why     string
	}{
		// No ages: the newest task has all of 5m, behind the whole backlog.
		{"no counter", 1500, nil, 1500.0 / 300, "1500 waiting / 5m"},
		// 10/s arriving steadily for 5 minutes, 1500 waiting (the last 150s of arrivals):
		// the newest, taken as arrived one tick ago, binds: 1500 within 4m45s.
		{"steady arrivals", 1500, counter(0, 150, 300, 450, 600, 750, 900, 1050, 1200, 1350, 1500, 1650, 1800, 1950, 2100,
			2250, 2400, 2550, 2700, 2850, 3000), 1500.0 / 285, "1500 waiting, all taken as arrived 15s ago (per arrived): 1500 / 4m45s left"},
		// 1500 arrived in the first 15 seconds and nothing since, all still waiting at 4m:
		// they are up to 4m old and must be done within the minute left.
		{"an old burst", 1500, counter(0, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500),
			1500.0 / 60, "1500 waiting, all taken as arrived 4m ago (per arrived): 1500 / 1m left"},
		// 600 of 900 waiting arrived by 15s (4m ago) and 300 just now: the old 600 bind.
		{"old and new", 900, counter(0, 600, 600, 600, 600, 600, 600, 600, 600, 600, 600, 600, 600, 600, 600, 600, 900),
			600.0 / 60, "900 waiting, the oldest 600 taken as arrived 4m ago (per arrived): max(900 / 5m, 600 / 1m left)"},
		// Late tasks (6m old) are to start within the next interval.
		{"late", 100, counter(100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100,
			100, 100, 100, 100, 100), 100.0 / 15, "100 waiting, all taken as arrived 6m ago (per arrived): 100 / 15s left"},
		// The counter went back (its source restarted): ages before then are unknown.
		{"counter restarted", 1500, counter(5000, 0, 1000), 1500.0 / 285, "1500 waiting, all taken as arrived 15s ago (per arrived): 1500 / 4m45s left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			if n := len(tc.counter); n > 0 {
				now = tc.counter[n-1].T
			}
			rate, why := drainNeed(tc.backlog, "arrived", tc.counter, now, T, interval)
			if math.Abs(rate-tc.want) > 1e-9 || !strings.HasPrefix(why, tc.why) {
				t.Fatalf("drainNeed = %v (%s), want %v (%s)", rate, why, tc.want, tc.why)
			}
		})
	}
}
