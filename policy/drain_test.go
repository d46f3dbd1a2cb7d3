package policy

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// drainT0 is when the test counters start; counter makes one sampled every 15s from it.
var drainT0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func counter(vals ...float64) []Sample {
	xs := make([]Sample, len(vals))
	for i, v := range vals {
		xs[i] = Sample{T: drainT0.Add(time.Duration(i) * 15 * time.Second), V: v}
	}
	return xs
}

// TestDrainNeed checks drain's sizing against numbers worked out by hand: the capacity
// that starts every waiting task within its time, first in first out, with the ages read
// from the arrivals counter.
func TestDrainNeed(t *testing.T) {
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
			now := drainT0
			if n := len(tc.counter); n > 0 {
				now = tc.counter[n-1].T
			}
			rate, why, _ := drainNeed(tc.backlog, "arrived", tc.counter, now, T, 0, interval)
			if math.Abs(rate-tc.want) > 1e-9 || !strings.HasPrefix(why, tc.why) {
				t.Fatalf("drainNeed = %v (%s), want %v (%s)", rate, why, tc.want, tc.why)
			}
		})
	}
}

// TestDrainNeedReserve checks the reserve drain keeps for reaction: each waiting task is
// planned to start within what is left of its time less the reaction time, but never less
// than half of what is left (numbers worked out by hand, a reaction of 45s).
func TestDrainNeedReserve(t *testing.T) {
	old := func(n float64, first float64, ticks int) []Sample { // first arrived by 15s, n by the last tick
		vals := []float64{0}
		for i := 1; i < ticks; i++ {
			vals = append(vals, first)
		}
		return counter(append(vals, n)...)
	}
	const interval, reaction = 15 * time.Second, 45 * time.Second
	for _, tc := range []struct {
		name    string
		T       time.Duration
		backlog float64
		counter []Sample
		want    float64
		why     string
	}{
		// The whole backlog within 5m less 45s.
		{"no counter", 5 * time.Minute, 1500, nil, 1500.0 / 255, "1500 waiting / 4m15s"},
		// The newest, taken as arrived 15s ago, has 4m45s: 4m planned.
		{"steady arrivals", 5 * time.Minute, 1500, counter(0, 1500), 1500.0 / 240, "1500 waiting, all taken as arrived 15s ago (per arrived): 1500 / 4m left"},
		// 4m old, 1m left: 45s held back would leave 15s; half of the minute, 30s, is
		// held back instead (the whole reaction would ask for 1500 within 15s: 100/s).
		{"an old burst", 5 * time.Minute, 1500, old(1500, 1500, 16), 1500.0 / 30, "1500 waiting, all taken as arrived 4m ago (per arrived): 1500 / 30s left"},
		{"old and new", 5 * time.Minute, 900, old(900, 600, 16), 600.0 / 30, "900 waiting, the oldest 600 taken as arrived 4m ago (per arrived): max(900 / 4m15s, 600 / 30s left)"},
		// Late tasks (6m old) are to start within the next interval.
		{"late", 5 * time.Minute, 100, old(100, 100, 24), 100.0 / 15, "100 waiting, all taken as arrived 6m ago (per arrived): 100 / 15s left"},
		// A reaction longer than half the time: half of it is planned.
		{"short time", time.Minute, 600, nil, 600.0 / 30, "600 waiting / 30s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := drainT0
			if n := len(tc.counter); n > 0 {
				now = tc.counter[n-1].T
			}
			rate, why, _ := drainNeed(tc.backlog, "arrived", tc.counter, now, tc.T, reaction, interval)
			if math.Abs(rate-tc.want) > 1e-9 || !strings.HasPrefix(why, tc.why) {
				t.Fatalf("drainNeed = %v (%s), want %v (%s)", rate, why, tc.want, tc.why)
			}
		})
	}
}

// TestReactionTime checks how long drain takes a decision to be wrong before a later one
// acts: the median of the last min_intervals turns after more than half of them are slow,
// and the decision that sees it may wait for cooldown.up since the tick before.
func TestReactionTime(t *testing.T) {
	for _, tc := range []struct {
		minIntervals int
		interval, up time.Duration
		want         time.Duration
	}{
		{3, 15 * time.Second, 30 * time.Second, 45 * time.Second}, // the defaults: 2 intervals + 15s
		{1, 15 * time.Second, 0, 15 * time.Second},
		{3, 15 * time.Second, 15 * time.Second, 30 * time.Second}, // cooldown.up within a tick adds nothing
		{4, 10 * time.Second, 25 * time.Second, 50 * time.Second}, // 3 of 4 slow; 15s left of cooldown.up, acted on at the tick after
		{2, time.Minute, 5 * time.Minute, 6 * time.Minute},
	} {
		if got := reactionTime(tc.minIntervals, tc.interval, tc.up); got != tc.want {
			t.Errorf("reactionTime(%d, %s, %s) = %s, want %s", tc.minIntervals, tc.interval, tc.up, got, tc.want)
		}
	}
}

// TestKeptReplicas checks what drain counts on cooldown.down to keep running, against
// histories worked out by hand: the whole pool within cooldown.down of the last scale-up,
// then the highest count wanted within the window (a count wanted until end is wanted until
// end + down), never more than runs now.
func TestKeptReplicas(t *testing.T) {
	now := time.Date(2024, 1, 1, 1, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	const iv, down, horizon = 15 * time.Second, 5 * time.Minute, 3*time.Minute + 45*time.Second
	rep := func(v float64, n int) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = v
		}
		return xs
	}
	for _, tc := range []struct {
		name   string
		recs   []Rec
		lastUp time.Time
		cur    int
		down   time.Duration
		want   []float64
	}{
		// Scaled up a minute ago: all 29 are kept until 4m from now, past the horizon.
		{"after a scale-up", []Rec{{ago(6 * time.Minute), 1}, {ago(time.Minute), 29}}, ago(time.Minute), 29, down, rep(29, 15)},
		// 29 was wanted from 4m to 3m ago, 1 since: 29 is kept while 3m ago + 5m is ahead
		// (the ticks at 0s..1m45s), then 1; the 3 wanted until 4m ago is kept only 1m.
		{"a wanted peak", []Rec{{ago(10 * time.Minute), 3}, {ago(4 * time.Minute), 29}, {ago(3 * time.Minute), 1}}, ago(10 * time.Minute), 29, down,
			append(rep(29, 8), rep(1, 7)...)},
		// The pool never got to 29 (cooldown.up, max): only the 20 running are kept.
		{"fewer running than wanted", []Rec{{ago(2 * time.Minute), 29}}, ago(10 * time.Minute), 20, down, rep(20, 15)},
		// The last count on record is wanted until now at least.
		{"a steady count", []Rec{{ago(20 * time.Minute), 4}}, ago(20 * time.Minute), 4, down, rep(4, 15)},
		{"no cooldown.down", []Rec{{ago(time.Minute), 29}}, ago(time.Minute), 29, 0, nil},
		{"no history", nil, time.Time{}, 5, down, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := keptReplicas(nil, tc.recs, tc.lastUp, tc.cur, now, tc.down, iv, horizon)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("keptReplicas = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBeside checks the fewest replicas that, beside a kept pool, give a given work
// (replica-seconds) within the time left, against numbers worked out by hand.
func TestBeside(t *testing.T) {
	const iv = 15 * time.Second
	for _, tc := range []struct {
		name string
		kept []float64
		left time.Duration
		work float64
		want float64
	}{
		{"nothing kept", nil, 210 * time.Second, 12000, 12000.0 / 210},
		// 29 kept for all of 3m30s do 6090 replica-seconds: more is not needed.
		{"the kept pool suffices", slices.Repeat([]float64{29}, 14), 210 * time.Second, 29*210 - 1, 0},
		// 30 kept for the first minute do 1800 of 2400 within 2m: 10 for the second minute.
		{"kept for part of the time", slices.Repeat([]float64{30}, 4), 2 * time.Minute, 2400, 10},
		// Asking for more than is kept: the kept pool adds nothing.
		{"more than kept", []float64{5, 5}, time.Minute, 600, 10},
		// 30 then 20 kept, 15s each, then nothing: 25 gives 30·15 + 25·15 + 25·30 = 1575.
		{"two kept counts", []float64{30, 20}, time.Minute, 1575, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := beside(tc.kept, iv, tc.left, tc.work); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("beside = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestStepWait checks when the first later tick that may take a step up comes, against
// cases worked out by hand: the next tick, not before cooldown.up has passed since the last
// action (rounded up to a tick), and with stabilization.up not before a demand recorded
// from the next tick on has been seen for that long.
func TestStepWait(t *testing.T) {
	now := time.Date(2024, 1, 1, 1, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	const s = time.Second
	for _, tc := range []struct {
		name                   string
		lastAction             time.Time
		interval, up, stabilUp time.Duration
		want                   time.Duration
	}{
		{"no action yet", time.Time{}, 15 * s, 30 * s, 0, 15 * s},
		{"cooldown.up long over", ago(time.Minute), 15 * s, 30 * s, 0, 15 * s},
		// 10s of cooldown.up left: over by the next tick.
		{"cooldown.up over before the next tick", ago(20 * s), 15 * s, 30 * s, 0, 15 * s},
		{"cooldown.up over at the next tick", ago(15 * s), 15 * s, 30 * s, 0, 15 * s},
		// 20s left: the tick after next, 30s from now.
		{"cooldown.up left past the next tick", ago(10 * s), 15 * s, 30 * s, 0, 30 * s},
		// An action this tick (a change adopted from outside): all of cooldown.up.
		{"an action this tick", now, 15 * s, 30 * s, 0, 30 * s},
		// 1m55s left: rounded up to 8 ticks.
		{"a long cooldown.up", ago(5 * s), 15 * s, 2 * time.Minute, 0, 2 * time.Minute},
		// 25s left at a 10s interval: 3 ticks.
		{"another interval", now, 10 * s, 25 * s, 0, 30 * s},
		// This tick records the count it asks for; a demand recorded from the next tick on
		// is seen for 1m at the tick 1m after it.
		{"stabilization.up", time.Time{}, 15 * s, 30 * s, time.Minute, 75 * s},
		// 50s is rounded up to 4 ticks, after the next: 15s + 1m.
		{"stabilization.up, not whole ticks", time.Time{}, 15 * s, 30 * s, 50 * s, 75 * s},
		{"cooldown.up the later", now, 15 * s, 2 * time.Minute, time.Minute, 2 * time.Minute},
		{"stabilization.up the later", ago(20 * s), 15 * s, 30 * s, time.Minute, 75 * s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stepWait(now, tc.lastAction, tc.interval, tc.up, tc.stabilUp); got != tc.want {
				t.Fatalf("stepWait = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestStepCanWait checks whether a step up from 1 to 2 replicas of 2 tasks a second can be
// taken after a wait with every waiting task still started within its bound, against
// numbers worked out by hand (work in replica-seconds: ahead / 2).
func TestStepCanWait(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		name   string
		wait   time.Duration
		bounds []drainBound
		want   bool
	}{
		// 560 just arrived (drain asks 560 / 4m / 2 = 1.167 → 2): 280 within 4m; 1 for 15s
		// and 2 for 3m45s do 15 + 450 = 465; within 4m15s 495.
		{"a small backlog", 15 * s, []drainBound{{560, 255 * s}, {560, 240 * s}}, true},
		// 50 late tasks, to start within the next interval (50 / 15s / 2 = 1.667 → 2): 25
		// within 15s, which 2 replicas do (30) and 1 does not (15).
		{"late tasks", 15 * s, []drainBound{{50, 255 * s}, {50, 15 * s}}, false},
		// 140 with 45s planned (140 / 45s / 2 = 1.556 → 2): 70 within 45s; 1 for 15s and 2
		// for 30s do 75, 1 for 30s (cooldown.up left) and 2 for 15s only 60.
		{"old tasks, the next tick", 15 * s, []drainBound{{140, 255 * s}, {140, 45 * s}}, true},
		{"old tasks, cooldown.up left", 30 * s, []drainBound{{140, 255 * s}, {140, 45 * s}}, false},
		// 90 within 30s: 45, just what 1 for 15s and 2 for 15s do.
		{"exactly in time", 15 * s, []drainBound{{90, 30 * s}}, true},
		// A wait longer than a bound (stabilization.up): the floor alone must do its work,
		// 30 of 60 tasks within 45s (45) but not 50 of 100.
		{"the floor alone in time", 75 * s, []drainBound{{60, 45 * s}}, true},
		{"the floor alone too slow", 75 * s, []drainBound{{100, 45 * s}}, false},
		{"nothing waiting", 15 * s, []drainBound{{0, 255 * s}}, true},
		{"no wait", 0, []drainBound{{0, 255 * s}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stepCanWait(1, 2, tc.wait, tc.bounds, 2); got != tc.want {
				t.Fatalf("stepCanWait = %v, want %v", got, tc.want)
			}
		})
	}
}
