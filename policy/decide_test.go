package policy_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
)

// base is the policy most decision tests start from: 100 queued tasks per worker, ticks
// every 10 s, the default cooldowns written out.
const base = `
min: 1
max: 20
interval: 10s
replicas: ceil(queued / 100)
cooldown: { up: 30s, down: 5m }
`

// decideCase is one scenario of SPEC §3: a policy, the target's count at the start, an
// optional saved state, and the ticks with their expected outcome.
type decideCase struct {
	name    string
	body    string
	queries []string // default: queued
	start   int
	state   func() policy.State
	steps   []step
}

func runCases(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			qs := c.queries
			if qs == nil {
				qs = []string{"queued"}
			}
			r := &rig{t: t, p: compile(t, c.body, qs...), cur: c.start}
			if c.state != nil {
				r.st = c.state()
			}
			r.play(c.steps)
		})
	}
}

// TestReasonChain checks the reason chain word for word, as SPEC §3 shows it.
func TestReasonChain(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		start int
		vals  []float64
		want  string
	}{
		{"spec example", base, 2, v(350),
			"queued=350 → ceil(350 / 100)=4 → clamp[1,20]=4 → cooldown.up ok → scale 2→4"},
		{"fraction rounded up", "min: 1\nmax: 20\nreplicas: queued / 100", 2, v(350),
			"queued=350 → 350 / 100=3.5↑4 → clamp[1,20]=4 → cooldown.up ok → scale 2→4"},
		{"hold", base, 4, v(350),
			"queued=350 → ceil(350 / 100)=4 → clamp[1,20]=4 → hold at 4"},
		{"clamped to max", base, 4, v(5000),
			"queued=5000 → ceil(5000 / 100)=50 → clamp[1,20]=20 → cooldown.up ok → scale 4→20"},
		{"failed query", base, 4, v(fail),
			"queued failed: connection refused → expression: no value without queued, which failed this tick; to decide without it, give a default: queued ?? 0 → no desired count → hold at 4"},
		{"dry run", base + "dry_run: true\n", 2, v(350),
			"queued=350 → ceil(350 / 100)=4 → clamp[1,20]=4 → cooldown.up ok → dry run: would scale 2→4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &rig{t: t, p: compile(t, c.body, "queued"), cur: c.start}
			if d := r.at(0, c.vals...); d.Reason != c.want {
				t.Errorf("reason\n got: %s\nwant: %s", d.Reason, c.want)
			}
		})
	}
}

func TestClamp(t *testing.T) {
	body := strings.Replace(base, "min: 1", "min: 2", 1)
	runCases(t, []decideCase{
		{name: "below min holds at min", body: body, start: 2,
			steps: []step{{at: 0, vals: v(0), want: 2, why: "ceil(0 / 100)=0 → clamp[2,20]=2 → hold at 2"}}},
		{name: "below min from below scales up to min", body: body, start: 1,
			steps: []step{{at: 0, vals: v(0), want: 2, why: "clamp[2,20]=2 → cooldown.up ok → scale 1→2"}}},
		{name: "above max goes to max", body: body, start: 2,
			steps: []step{{at: 0, vals: v(1e12), want: 20, why: "clamp[2,20]=20"}}},
		{name: "negative raw is zero, then min", body: body + "", start: 3, queries: []string{"queued"},
			steps: seq(ticks(0, sec(290), 10*time.Second, 3, -500), step{at: sec(300), vals: v(-500), want: 2, why: "clamp[2,20]=2"})},
	})
}

func TestCooldownUp(t *testing.T) {
	runCases(t, []decideCase{
		{name: "since the last scale-up", body: base, start: 2, steps: []step{
			{at: 0, vals: v(400), want: 4, why: "cooldown.up ok → scale 2→4"},
			{at: sec(10), vals: v(800), want: 4, why: "cooldown.up: 20s left → hold"},
			{at: sec(20), vals: v(800), want: 4, why: "cooldown.up: 10s left → hold"},
			{at: sec(30), vals: v(800), want: 8, why: "cooldown.up ok → scale 4→8"},
		}},
		{name: "since the last scale-down", body: base, start: 5, steps: seq(
			ticks(0, sec(290), 10*time.Second, 5, 100),
			step{at: sec(300), vals: v(100), want: 1, why: "scale 5→1"},
			step{at: sec(310), vals: v(500), want: 1, why: "cooldown.up: 20s left → hold"},
			step{at: sec(320), vals: v(500), want: 1, why: "cooldown.up: 10s left → hold"},
			step{at: sec(330), vals: v(500), want: 5, why: "cooldown.up ok → scale 1→5"},
		)},
		{name: "zero cooldown.up scales every tick", body: strings.Replace(base, "up: 30s", "up: 0s", 1), start: 1, steps: []step{
			{at: 0, vals: v(200), want: 2},
			{at: sec(10), vals: v(300), want: 3},
			{at: sec(20), vals: v(400), want: 4},
		}},
	})
}

func TestCooldownDown(t *testing.T) {
	every := 10 * time.Second
	runCases(t, []decideCase{
		{name: "only after the whole window below current", body: base, start: 10, steps: seq(
			step{at: 0, vals: v(400), want: 10, why: "cooldown.down: below 10 for 0s of 5m → hold"},
			ticks(sec(10), sec(280), every, 10, 400),
			step{at: sec(290), vals: v(400), want: 10, why: "cooldown.down: below 10 for 4m50s of 5m → hold"},
			step{at: sec(300), vals: v(400), want: 4, why: "cooldown.down ok: highest in 5m=4 → scale 10→4"},
		)},
		{name: "down to the highest desired in the window", body: base, start: 10, steps: seq(
			ticks(0, sec(90), every, 10, 600),
			ticks(sec(100), sec(290), every, 10, 400),
			step{at: sec(300), vals: v(400), want: 6, why: "cooldown.down ok: highest in 5m=6 → scale 10→6"},
			ticks(sec(310), sec(380), every, 6, 400),
			step{at: sec(390), vals: v(400), want: 6, why: "cooldown.down: wanted 6 within the last 5m → hold"},
			step{at: sec(400), vals: v(400), want: 4, why: "cooldown.down ok: highest in 5m=4 → scale 6→4"},
		)},
		{name: "desired back at current restarts the window", body: base, start: 10, steps: seq(
			ticks(0, sec(140), every, 10, 400),
			step{at: sec(150), vals: v(1000), want: 10, why: "hold at 10"},
			ticks(sec(160), sec(440), every, 10, 400),
			step{at: sec(450), vals: v(400), want: 10, why: "cooldown.down: wanted 10 within the last 5m → hold"},
			step{at: sec(460), vals: v(400), want: 4, why: "scale 10→4"},
		)},
		{name: "never within cooldown.down of the last scale-up (saved state)", body: base, start: 6,
			state: func() policy.State {
				// Ten minutes of low demand on record, but a scale-up one minute ago.
				return policy.State{
					LastAction: t0.Add(-time.Minute), LastDirection: policy.Up, LastUp: t0.Add(-time.Minute),
					Known: true, Expected: 6, LastTick: t0.Add(-every),
					Recs: []policy.Rec{{T: t0.Add(-10 * time.Minute), V: 2}},
				}
			},
			steps: seq(
				step{at: 0, vals: v(200), want: 6, why: "cooldown.down: 4m left since the last scale-up → hold"},
				ticks(sec(10), sec(230), every, 6, 200),
				step{at: sec(240), vals: v(200), want: 2, why: "cooldown.down ok: highest in 5m=2 → scale 6→2"},
			)},
		{name: "never within cooldown.down of an adopted outside scale-up", body: base, start: 2, steps: seq(
			ticks(0, sec(390), every, 2, 200),
			step{at: sec(400), vals: v(200), ext: 6, want: 6, why: "adopting"},
			step{at: sec(410), vals: v(200), want: 6, why: "cooldown.down: 4m50s left since the last scale-up → hold"},
			ticks(sec(420), sec(690), every, 6, 200),
			step{at: sec(700), vals: v(200), want: 2, why: "cooldown.down ok: highest in 5m=2 → scale 6→2"},
		)},
		{name: "a scale-up is never delayed by cooldown.down", body: base, start: 10, steps: seq(
			ticks(0, sec(290), every, 10, 400),
			step{at: sec(300), vals: v(400), want: 4, why: "scale 10→4"},
			ticks(sec(310), sec(320), every, 4, 900),
			step{at: sec(330), vals: v(900), want: 9, why: "cooldown.up ok → scale 4→9"},
			step{at: sec(360), vals: v(1500), want: 15, why: "cooldown.up ok → scale 9→15"},
		)},
		{name: "a gap in ticks restarts the window", body: base, start: 10, steps: seq(
			ticks(0, sec(200), every, 10, 400),
			// Not watching for 10 minutes: no claim that demand stayed low.
			ticks(sec(800), sec(1090), every, 10, 400),
			step{at: sec(1100), vals: v(400), want: 4, why: "scale 10→4"},
		)},
		{name: "zero cooldown.down scales down at once", body: strings.Replace(base, "down: 5m", "down: 0s", 1), start: 10, steps: []step{
			{at: 0, vals: v(400), want: 4, why: "scale 10→4"},
		}},
	})
}

func TestStabilizationUp(t *testing.T) {
	body := base + "stabilization: { up: 1m }\n"
	every := 10 * time.Second
	runCases(t, []decideCase{
		{name: "demand must last the window", body: body, start: 2, steps: seq(
			step{at: 0, vals: v(500), want: 2, why: "stabilization.up: demand seen for 0s of 1m → hold"},
			ticks(sec(10), sec(40), every, 2, 500),
			step{at: sec(50), vals: v(500), want: 2, why: "stabilization.up: demand seen for 50s of 1m → hold"},
			step{at: sec(60), vals: v(500), want: 5, why: "stabilization.up: lowest in 1m=5 → cooldown.up ok → scale 2→5"},
		)},
		{name: "goes to the lowest desired in the window", body: body, start: 2, steps: seq(
			ticks(0, sec(50), every, 2, 500),
			step{at: sec(60), vals: v(800), want: 5, why: "lowest in 1m=5"},
			ticks(sec(70), sec(100), every, 5, 800),
			step{at: sec(110), vals: v(800), want: 5, why: "stabilization.up: lowest desired in 1m is 5 → hold"},
			step{at: sec(120), vals: v(800), want: 8, why: "stabilization.up: lowest in 1m=8 → cooldown.up ok → scale 5→8"},
		)},
		{name: "a dip restarts the window", body: body, start: 2, steps: seq(
			ticks(0, sec(20), every, 2, 500),
			step{at: sec(30), vals: v(100), want: 2},
			ticks(sec(40), sec(90), every, 2, 500),
			step{at: sec(90), vals: v(500), want: 2, why: "lowest desired in 1m is 1 → hold"},
			step{at: sec(100), vals: v(500), want: 5, why: "scale 2→5"},
		)},
	})
}

func TestStep(t *testing.T) {
	every := 10 * time.Second
	withStep := func(s string) string { return base + "step: " + s + "\n" }
	runCases(t, []decideCase{
		{name: "up by count", body: withStep("{ up: 2 }"), start: 2, steps: []step{
			{at: 0, vals: v(1000), want: 4, why: "cooldown.up ok → step.up 2 → 4 → scale 2→4"},
			{at: sec(10), vals: v(1000), want: 4, why: "cooldown.up: 20s left"},
			{at: sec(30), vals: v(1000), want: 6},
			{at: sec(60), vals: v(1000), want: 8},
			{at: sec(90), vals: v(1000), want: 10},
			{at: sec(120), vals: v(1000), want: 10, why: "hold at 10"},
		}},
		{name: "down by count, one action per tick once the window holds", body: withStep("{ down: 2 }"), start: 10, steps: seq(
			ticks(0, sec(290), every, 10, 100),
			step{at: sec(300), vals: v(100), want: 8, why: "cooldown.down ok: highest in 5m=1 → step.down 2 → 8 → scale 10→8"},
			step{at: sec(310), vals: v(100), want: 6},
			step{at: sec(320), vals: v(100), want: 4},
			step{at: sec(330), vals: v(100), want: 2},
			step{at: sec(340), vals: v(100), want: 1, why: "scale 2→1"},
		)},
		{name: "up by percent", body: withStep(`{ up: "50%" }`), start: 4, steps: []step{
			{at: 0, vals: v(2000), want: 6, why: "step.up 50% → 6"},
			{at: sec(30), vals: v(2000), want: 9},  // 6 × 50% = 3
			{at: sec(60), vals: v(2000), want: 14}, // 9 × 50% = 4.5 → 5
			{at: sec(90), vals: v(2000), want: 20}, // 14 × 50% = 7, capped by desired
		}},
		{name: "up by percent from zero adds one", body: strings.Replace(withStep(`{ up: "50%" }`), "min: 1", "min: 0", 1), start: 0, steps: []step{
			{at: 0, vals: v(500), want: 1, why: "step.up 50% → 1"},
			{at: sec(30), vals: v(500), want: 2}, // 1 × 50% = 0.5 → 1
			{at: sec(60), vals: v(500), want: 3},
			{at: sec(90), vals: v(500), want: 5}, // 3 × 50% = 1.5 → 2
		}},
		{name: "up by percent over 100", body: withStep(`{ up: "200%" }`), start: 1, steps: []step{
			{at: 0, vals: v(2000), want: 3},
			{at: sec(30), vals: v(2000), want: 9},
			{at: sec(60), vals: v(2000), want: 20},
		}},
		{name: "down by percent, small counts", body: strings.Replace(withStep(`{ down: "50%" }`), "min: 1", "min: 0", 1), start: 10, steps: seq(
			ticks(0, sec(290), every, 10, 0),
			step{at: sec(300), vals: v(0), want: 5, why: "step.down 50% → 5"},
			step{at: sec(310), vals: v(0), want: 2},                   // 5 × 50% = 2.5 → 3
			step{at: sec(320), vals: v(0), want: 1},                   // 2 × 50% = 1
			step{at: sec(330), vals: v(0), want: 0, why: "scale 1→0"}, // never less than one
		)},
	})
}

func TestSchedules(t *testing.T) {
	every := 10 * time.Second
	body := base + `schedule:
  - cron: "0 8 * * MON-FRI"
    duration: 10h
    timezone: Europe/Berlin
    min: 3
`
	// Monday 08:00 in Berlin is 07:00 UTC in winter.
	open := 7 * time.Hour
	closed := 17 * time.Hour
	runCases(t, []decideCase{
		{name: "raising min scales up through cooldown.up, then down through cooldown.down", body: body, start: 1, steps: seq(
			ticks(open-sec(60), open-sec(10), every, 1, 0),
			step{at: open, vals: v(0), want: 3, why: `queued=0 → schedule "0 8 * * MON-FRI" active → ceil(0 / 100)=0 → clamp[3,20]=3 → cooldown.up ok → scale 1→3`},
			ticks(open+sec(10), open+sec(290), every, 3, 0),
			step{at: open + sec(300), vals: v(200), want: 3, why: "hold at 3"},
			ticks(closed-sec(300), closed-sec(10), every, 3, 0),
			step{at: closed, vals: v(0), want: 3, why: "clamp[1,20]=1 → cooldown.down: wanted 3 within the last 5m → hold"},
			ticks(closed+sec(10), closed+sec(290), every, 3, 0),
			step{at: closed + sec(300), vals: v(0), want: 1, why: "scale 3→1"},
		)},
		{name: "lowering max scales down through cooldown.down", body: base + `schedule:
  - cron: "@daily"
    duration: 1h
    max: 4
`, start: 10, steps: seq(
			step{at: -sec(10), vals: v(1000), want: 10},
			step{at: 0, vals: v(1000), want: 10, why: `queued=1000 → schedule "@daily" active → ceil(1000 / 100)=10 → clamp[1,4]=4 → cooldown.down: below 10 for 0s of 5m → hold`},
			ticks(sec(10), sec(290), every, 10, 1000),
			step{at: sec(300), vals: v(1000), want: 4, why: "scale 10→4"},
		)},
		{name: "raising max lets it grow past the policy's max", body: base + `schedule:
  - cron: "@hourly"
    duration: 1h
    max: 30
`, start: 10, steps: []step{
			{at: 0, vals: v(5000), want: 30, why: "clamp[1,30]=30"},
		}},
	})
}

// TestScheduleBounds checks the effective [min, max] at the edges of schedule windows.
func TestScheduleBounds(t *testing.T) {
	day := func(y int, m time.Month, d, hh, mm, ss int) time.Time {
		return time.Date(y, m, d, hh, mm, ss, 0, time.UTC)
	}
	cases := []struct {
		name     string
		schedule string
		at       time.Time
		min, max int
	}{
		// Berlin: UTC+1 in January, UTC+2 in July. 2024-01-01 is a Monday, 2024-01-06 a Saturday.
		{"tz: before the window", `{ cron: "0 8 * * MON-FRI", duration: 10h, timezone: Europe/Berlin, min: 3 }`, day(2024, 1, 1, 6, 59, 59), 1, 10},
		{"tz: window opens", `{ cron: "0 8 * * MON-FRI", duration: 10h, timezone: Europe/Berlin, min: 3 }`, day(2024, 1, 1, 7, 0, 0), 3, 10},
		{"tz: last second", `{ cron: "0 8 * * MON-FRI", duration: 10h, timezone: Europe/Berlin, min: 3 }`, day(2024, 1, 1, 16, 59, 59), 3, 10},
		{"tz: window closes", `{ cron: "0 8 * * MON-FRI", duration: 10h, timezone: Europe/Berlin, min: 3 }`, day(2024, 1, 1, 17, 0, 0), 1, 10},
		{"tz: weekend", `{ cron: "0 8 * * MON-FRI", duration: 10h, timezone: Europe/Berlin, min: 3 }`, day(2024, 1, 6, 10, 0, 0), 1, 10},
		{"tz: summer time opens", `{ cron: "0 8 * * MON-FRI", duration: 10h, timezone: Europe/Berlin, min: 3 }`, day(2024, 7, 1, 6, 0, 0), 3, 10},
		{"tz: summer time, winter hour", `{ cron: "0 8 * * MON-FRI", duration: 10h, timezone: Europe/Berlin, min: 3 }`, day(2024, 7, 1, 16, 30, 0), 1, 10},
		{"seconds field: before", `{ cron: "30 0 8 * * *", duration: 1m, min: 2 }`, day(2024, 1, 1, 8, 0, 29), 1, 10},
		{"seconds field: opens", `{ cron: "30 0 8 * * *", duration: 1m, min: 2 }`, day(2024, 1, 1, 8, 0, 30), 2, 10},
		{"seconds field: last second", `{ cron: "30 0 8 * * *", duration: 1m, min: 2 }`, day(2024, 1, 1, 8, 1, 29), 2, 10},
		{"seconds field: closes", `{ cron: "30 0 8 * * *", duration: 1m, min: 2 }`, day(2024, 1, 1, 8, 1, 30), 1, 10},
		{"@daily: midnight", `{ cron: "@daily", duration: 1h, max: 4 }`, day(2024, 1, 2, 0, 0, 0), 1, 4},
		{"@daily: closes", `{ cron: "@daily", duration: 1h, max: 4 }`, day(2024, 1, 2, 1, 0, 0), 1, 10},
		{"@daily in New York: before", `{ cron: "@daily", duration: 1h, timezone: America/New_York, min: 5 }`, day(2024, 1, 2, 4, 59, 59), 1, 10},
		{"@daily in New York: opens", `{ cron: "@daily", duration: 1h, timezone: America/New_York, min: 5 }`, day(2024, 1, 2, 5, 0, 0), 5, 10},
		{"raises max", `{ cron: "@hourly", duration: 1h, max: 30 }`, day(2024, 1, 2, 3, 4, 5), 1, 30},
		{"min above the policy's max", `{ cron: "@hourly", duration: 1h, min: 12, max: 15 }`, day(2024, 1, 2, 3, 4, 5), 12, 15},
		{"min only raises: a lower min does nothing", `{ cron: "@hourly", duration: 1h, min: 0 }`, day(2024, 1, 2, 3, 4, 5), 1, 10},
		{"min above max: the floor wins", `{ cron: "@hourly", duration: 1h, min: 6 }
  - { cron: "@hourly", duration: 1h, max: 4 }`, day(2024, 1, 2, 3, 4, 5), 6, 6},
		{"two active: highest floor and highest ceiling", `{ cron: "@hourly", duration: 1h, min: 3, max: 8 }
  - { cron: "@hourly", duration: 1h, min: 5, max: 12 }`, day(2024, 1, 2, 3, 4, 5), 5, 12},
		{"two, one active", `{ cron: "@hourly", duration: 1h, min: 3 }
  - { cron: "@daily", duration: 1h, min: 5 }`, day(2024, 1, 2, 3, 4, 5), 3, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := compile(t, "min: 1\nmax: 10\nreplicas: ceil(queued / 100)\nschedule:\n  - "+c.schedule+"\n", "queued")
			d, _ := policy.Decide(p, policy.State{}, inputs(1, v(0)), c.at)
			if d.Min != c.min || d.Max != c.max {
				t.Errorf("at %s: [%d,%d], want [%d,%d] (%s)", c.at.Format(time.RFC3339), d.Min, d.Max, c.min, c.max, d.Reason)
			}
		})
	}
}

func TestOnErrorHold(t *testing.T) {
	every := 10 * time.Second
	// b is always there; a may fail and is replaced by 0 with ??.
	orZero := `
min: 1
max: 20
interval: 10s
replicas: max(ceil((a ?? 0) / 100), ceil(b / 50))
`
	runCases(t, []decideCase{
		{name: "without ?? a failed query holds", body: base, start: 4, steps: []step{
			{at: 0, vals: v(fail), want: 4, why: "queued failed: connection refused"},
			{at: sec(10), vals: v(1000), want: 10, why: "scale 4→10"},
			{at: sec(40), vals: v(fail), want: 10, why: "no desired count → hold at 10"},
		}},
		{name: "with ?? it may scale up on partial data", body: orZero, queries: []string{"a", "b"}, start: 4, steps: []step{
			{at: 0, vals: v(fail, 500), want: 10, why: "a failed: connection refused → b=500 → max(ceil((nil ?? 0) / 100), ceil(500 / 50))=10 → clamp[1,20]=10 → cooldown.up ok → scale 4→10"},
		}},
		{name: "a query that fails and comes back with its old value is bound again", body: orZero, queries: []string{"a", "b"}, start: 4, steps: []step{
			{at: 0, vals: v(1000, 50), want: 10, why: "max(ceil((1000 ?? 0) / 100), ceil(50 / 50))=10"},
			{at: sec(40), vals: v(fail, 50), want: 10, why: "max(ceil((nil ?? 0) / 100), ceil(50 / 50))=1"},
			{at: sec(80), vals: v(1000, 50), want: 10, why: "max(ceil((1000 ?? 0) / 100), ceil(50 / 50))=10"},
			{at: sec(120), vals: v(1000, 100), want: 10, why: "max(ceil((1000 ?? 0) / 100), ceil(100 / 50))=10"},
		}},
		{name: "with ?? it never scales down on partial data, and the failed tick restarts the down window", body: orZero, queries: []string{"a", "b"}, start: 4, steps: seq(
			ticks(0, sec(290), every, 4, 100, 50),
			step{at: sec(300), vals: v(fail, 50), want: 4, why: "a query failed: never scale down on partial data → hold"},
			ticks(sec(310), sec(590), every, 4, 100, 50),
			step{at: sec(600), vals: v(100, 50), want: 4, why: "wanted 4 within the last 5m"},
			step{at: sec(610), vals: v(100, 50), want: 1, why: "scale 4→1"},
		)},
	})
}

func TestOnErrorFallback(t *testing.T) {
	every := 10 * time.Second
	body := base + "on_error: { replicas: 6 }\nfailure_threshold: 3\n"
	runCases(t, []decideCase{
		{name: "after failure_threshold failed ticks, up to N", body: body, start: 2, steps: []step{
			{at: 0, vals: v(fail), want: 2, why: "no desired count → hold at 2"},
			{at: sec(10), vals: v(fail), want: 2},
			{at: sec(20), vals: v(fail), want: 6, why: "on_error: 3 failed ticks ≥ 3 → fallback 6 → cooldown.up ok → scale 2→6"},
			{at: sec(30), vals: v(fail), want: 6, why: "hold at 6"},
			{at: sec(40), vals: v(100), want: 6, why: "cooldown.down"}, // data is back: normal rules
		}},
		{name: "the count of failed ticks must be consecutive", body: body, start: 2, steps: []step{
			{at: 0, vals: v(fail), want: 2},
			{at: sec(10), vals: v(fail), want: 2},
			{at: sec(20), vals: v(200), want: 2},
			{at: sec(30), vals: v(fail), want: 2},
			{at: sec(40), vals: v(fail), want: 2},
			{at: sec(50), vals: v(fail), want: 6, why: "fallback 6"},
		}},
		{name: "respects step", body: body + "step: { up: 2 }\n", start: 2, steps: []step{
			{at: 0, vals: v(fail), want: 2},
			{at: sec(10), vals: v(fail), want: 2},
			{at: sec(20), vals: v(fail), want: 4, why: "fallback 6 → cooldown.up ok → step.up 2 → 4"},
			{at: sec(30), vals: v(fail), want: 4, why: "cooldown.up: 20s left"},
			{at: sec(50), vals: v(fail), want: 6},
		}},
		{name: "respects a schedule's max", body: body + "schedule:\n  - { cron: \"@hourly\", duration: 1h, max: 4 }\n", start: 2, steps: []step{
			{at: 0, vals: v(fail), want: 2},
			{at: sec(10), vals: v(fail), want: 2},
			{at: sec(20), vals: v(fail), want: 4, why: "fallback 4"},
		}},
		{name: "down to N through cooldown.down", body: body, start: 10, steps: seq(
			ticks(0, sec(10), every, 10, fail),
			step{at: sec(20), vals: v(fail), want: 10, why: "fallback 6 → cooldown.down: below 10 for 0s of 5m → hold"},
			ticks(sec(30), sec(310), every, 10, fail),
			step{at: sec(320), vals: v(fail), want: 6, why: "cooldown.down ok: highest in 5m=6 → scale 10→6"},
		)},
		{name: "a number from ?? above N wins", body: `
min: 1
max: 20
interval: 10s
replicas: max(ceil((a ?? 0) / 100), ceil((b ?? 0) / 50))
on_error: { replicas: 6 }
failure_threshold: 1
`, queries: []string{"a", "b"}, start: 2, steps: []step{
			{at: 0, vals: v(fail, 500), want: 10, why: "fallback 6 → cooldown.up ok → scale 2→10"},
		}},
	})
}

func TestScaleToZero(t *testing.T) {
	every := 10 * time.Second
	body := `
min: 0
max: 10
interval: 10s
replicas: ceil(queued / 100)
activation: queued > 0
cooldown: { up: 30s, down: 5m }
`
	runCases(t, []decideCase{
		{name: "inactive stays at 0, active goes to 1 at once", body: body, start: 0, steps: []step{
			{at: 0, vals: v(0), want: 0, why: "inactive → 0 → hold at 0"},
			{at: sec(10), vals: v(5), want: 1, why: "active → 1 → activation: 0→1 skips cooldown.up → scale 0→1"},
		}},
		{name: "activation right after a scale-down to 0 skips cooldown.up", body: body, start: 1, steps: seq(
			ticks(0, sec(290), every, 1, 0),
			step{at: sec(300), vals: v(0), want: 0, why: "inactive → 0 → cooldown.down ok: highest in 5m=0 → scale 1→0"},
			step{at: sec(310), vals: v(250), want: 3, why: "activation: 0→1 skips cooldown.up → scale 0→3"},
			step{at: sec(320), vals: v(900), want: 3, why: "cooldown.up: 20s left"},
		)},
		{name: "activation skips stabilization.up but not step", body: body + "stabilization: { up: 1m }\nstep: { up: 2 }\n", start: 0, steps: []step{
			{at: 0, vals: v(900), want: 2, why: "activation: 0→1 skips cooldown.up → step.up 2 → 2 → scale 0→2"},
		}},
		{name: "a failed activation holds", body: body, start: 0, steps: []step{
			{at: 0, vals: v(fail), want: 0, why: "hold at 0"},
		}},
		{name: "inactive respects a schedule's floor", body: body + "schedule:\n  - { cron: \"@hourly\", duration: 1h, min: 2 }\n", start: 0, steps: seq(
			step{at: 0, vals: v(0), want: 2, why: "clamp[2,10]=2 → inactive → 2 → cooldown.up ok → scale 0→2"},
			ticks(sec(10), sec(600), every, 2, 0),
		)},
	})
}

func TestDryRun(t *testing.T) {
	p := compile(t, base+"dry_run: true\n", "queued")
	r := &rig{t: t, p: p, cur: 2}
	d := r.at(0, 400)
	if d.Action != policy.Up || d.To != 4 || !d.DryRun || !strings.HasSuffix(d.Reason, "dry run: would scale 2→4") {
		t.Fatalf("dry run decision: %+v", d)
	}
	if r.st.Expected != 2 {
		t.Errorf("state expects %d, want the untouched 2", r.st.Expected)
	}
	// The target still has 2: no adoption, and the cooldown of the would-be action counts.
	d = r.at(sec(10), 400)
	if d.To != 2 || !strings.Contains(d.Reason, "cooldown.up: 20s left → hold") || strings.Contains(d.Reason, "adopting") {
		t.Errorf("second tick: %+v", d)
	}
	d = r.at(sec(30), 400)
	if d.To != 4 || !strings.HasSuffix(d.Reason, "dry run: would scale 2→4") {
		t.Errorf("after cooldown.up: %+v", d)
	}
}

func TestPause(t *testing.T) {
	p := compile(t, base, "queued")
	r := &rig{t: t, p: p, cur: 2}
	r.st.Paused = true
	d := r.at(0, 400)
	if d.Action != policy.Hold || d.To != 2 || !strings.HasSuffix(d.Reason, "cooldown.up ok → paused (would scale 2→4) → hold") {
		t.Fatalf("paused: %+v", d)
	}
	if !r.st.LastAction.IsZero() {
		t.Errorf("a paused hold started a cooldown: %v", r.st.LastAction)
	}
	r.st.Paused = false
	if d := r.at(sec(10), 400); d.To != 4 {
		t.Errorf("resumed: %+v", d)
	}
}

func TestAdoption(t *testing.T) {
	every := 10 * time.Second
	runCases(t, []decideCase{
		{name: "outside scale-up: adopt, hold, then converge after cooldown.down", body: base, start: 4, steps: seq(
			step{at: 0, vals: v(400), want: 4},
			step{at: sec(10), vals: v(400), ext: 7, want: 7, why: "queued=400 → observed 7 replicas, expected 4: adopting the change made outside autoscalerd → ceil(400 / 100)=4 → clamp[1,20]=4 → hold this tick"},
			ticks(sec(20), sec(300), every, 7, 400),
			step{at: sec(310), vals: v(400), want: 4, why: "scale 7→4"},
		)},
		{name: "outside scale-down: adopt, hold, then converge after cooldown.up", body: base, start: 4, steps: []step{
			{at: 0, vals: v(400), want: 4},
			{at: sec(10), vals: v(400), ext: 2, want: 2, why: "adopting"},
			{at: sec(20), vals: v(400), want: 2, why: "cooldown.up: 20s left → hold"},
			{at: sec(30), vals: v(400), want: 2, why: "cooldown.up: 10s left → hold"},
			{at: sec(40), vals: v(400), want: 4, why: "scale 2→4"},
		}},
		{name: "an outside change to the count we want is adopted quietly", body: base, start: 2, steps: []step{
			{at: 0, vals: v(400), want: 4},
			{at: sec(10), vals: v(800), ext: 8, want: 8, why: "hold this tick"},
			{at: sec(20), vals: v(800), want: 8, why: "hold at 8"},
		}},
	})

	// No tight loop: someone keeps setting 9 by hand; the policy acts at most once per
	// cooldown, never tick after tick.
	p := compile(t, base, "queued")
	r := &rig{t: t, p: p, cur: 4}
	actions := 0
	for i := range 120 {
		if i%30 == 0 {
			r.cur = 9
		}
		if d := r.at(sec(10*i), 400); d.Action != policy.Hold {
			actions++
		}
	}
	if actions > 4 {
		t.Errorf("%d actions in 20 minutes against an operator who resets the count every 5", actions)
	}
}

func TestWindowFunctions(t *testing.T) {
	every := 10 * time.Second
	rampUp := func(r *rig) {
		for i := range 7 { // 10, 20, ... 70 at t = 0 ... 60
			r.at(sec(10*i), float64(10*(i+1)))
		}
	}
	cases := []struct {
		name string
		expr string
		at   time.Duration
		val  float64
		raw  float64
	}{
		// The window is (now-1m, now]: at t=70 it holds the samples of t=20 ... 70.
		{"avg_over", "avg_over(q, 1m)", sec(70), 80, (30 + 40 + 50 + 60 + 70 + 80) / 6.0},
		{"max_over", "max_over(q, 1m)", sec(70), 0, 70},
		{"min_over", "min_over(q, 1m)", sec(70), 100, 30},
		{"rate", "rate(q, 1m)", sec(70), 80, 1}, // from 30 at t=20 to 80 at t=70
		{"window in seconds", "max_over(q, 30s)", sec(70), 0, 70},
		{"window shorter than the history", "avg_over(q, 20s)", sec(70), 80, 75},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := compile(t, "min: 0\nmax: 1000\ninterval: 10s\nreplicas: "+c.expr+"\n", "q")
			r := &rig{t: t, p: p}
			rampUp(r)
			d := r.at(c.at, c.val)
			if d.Err != "" || d.Raw != c.raw {
				t.Errorf("%s = %v (err %q), want %v\n  reason: %s", c.expr, d.Raw, d.Err, c.raw, d.Reason)
			}
		})
	}

	// "if CPU > 70% for 5 minutes, add one" (SPEC §2.3).
	cpu := `
min: 1
max: 10
interval: 10s
replicas: "min_over(cpu, 5m) > 70 ? current + 1 : current"
cooldown: { up: 30s, down: 5m }
`
	runCases(t, []decideCase{
		{name: "cpu above 70 for 5 minutes adds one", body: cpu, queries: []string{"cpu"}, start: 2, steps: seq(
			ticks(0, sec(290), every, 2, 80),
			step{at: sec(300), vals: v(80), want: 3, why: "scale 2→3"},
			ticks(sec(310), sec(320), every, 3, 80),
			step{at: sec(330), vals: v(80), want: 4, why: "scale 3→4"},
		)},
		{name: "a dip in the window resets it", body: cpu, queries: []string{"cpu"}, start: 2, steps: seq(
			ticks(0, sec(190), every, 2, 80),
			step{at: sec(200), vals: v(60), want: 2},
			// The window is (now-5m, now]: at 500 s the 60 at 200 s has left it.
			ticks(sec(210), sec(490), every, 2, 80),
			step{at: sec(500), vals: v(80), want: 3, why: "scale 2→3"},
		)},
		{name: "a short query outage keeps the window", body: cpu, queries: []string{"cpu"}, start: 2, steps: seq(
			ticks(0, sec(100), every, 2, 80),
			ticks(sec(110), sec(130), every, 2, fail),
			ticks(sec(140), sec(290), every, 2, 80),
			step{at: sec(300), vals: v(80), want: 3, why: "scale 2→3"},
		)},
		{name: "a long query outage restarts the window", body: cpu, queries: []string{"cpu"}, start: 2, steps: seq(
			ticks(0, sec(100), every, 2, 80),
			ticks(sec(110), sec(200), every, 2, fail),
			step{at: sec(210), vals: v(80), want: 2, why: "min_over(cpu, 5m): window not fully watched yet (0s of it)"},
			ticks(sec(220), sec(500), every, 2, 80),
			step{at: sec(510), vals: v(80), want: 3, why: "scale 2→3"},
		)},
		{name: "warming up holds and is not a failed tick", body: `
min: 1
max: 10
interval: 10s
replicas: ceil(avg_over(q, 1m) / 10)
on_error: { replicas: 5 }
failure_threshold: 1
`, queries: []string{"q"}, start: 2, steps: seq(
			step{at: 0, vals: v(80), want: 2, why: "q=80 → expression: avg_over(q, 1m): window not fully watched yet (0s of it) (1:6) → no desired count → hold at 2"},
			ticks(sec(10), sec(50), every, 2, 80),
			step{at: sec(60), vals: v(80), want: 8, why: "ceil(avg_over(q, 1m) / 10)=8"},
		)},
	})
}

func TestNonFiniteIsAnError(t *testing.T) {
	p := compile(t, "min: 1\nmax: 10\nreplicas: a / b\non_error: { replicas: 5 }\nfailure_threshold: 2\n", "a", "b")
	cases := []struct {
		a, b float64
		err  string
	}{
		{5, 0, "result +Inf is not a finite number"},
		{-5, 0, "result -Inf is not a finite number"},
		{0, 0, "result NaN is not a finite number"},
	}
	for _, c := range cases {
		st := policy.State{}
		d, st := policy.Decide(p, st, inputs(3, v(c.a, c.b)), t0)
		if d.Err != c.err || d.Desired != -1 || d.To != 3 || d.Raw == d.Raw {
			t.Errorf("%v / %v: %+v", c.a, c.b, d)
		}
		if !strings.Contains(d.Reason, "expression: "+c.err+" → no desired count → hold at 3") {
			t.Errorf("%v / %v: reason %s", c.a, c.b, d.Reason)
		}
		// An evaluation error is a failed tick: the second one falls back.
		d, _ = policy.Decide(p, st, inputs(3, v(c.a, c.b)), t0.Add(15*time.Second))
		if d.To != 5 {
			t.Errorf("%v / %v: second failed tick: %+v", c.a, c.b, d)
		}
	}
}

// TestWarmingUpIsNotAnError: a window function waiting for its window holds the tick, but
// the decision carries no error for the status page to show.
func TestWarmingUpIsNotAnError(t *testing.T) {
	p := compile(t, "min: 1\nmax: 10\nreplicas: ceil(rate(q, 1m))\n", "q")
	d, _ := policy.Decide(p, policy.State{}, inputs(3, v(10)), t0)
	if d.Err != "" || d.Desired != -1 || d.To != 3 || !strings.Contains(d.Reason, "rate(q, 1m): window not fully watched yet") {
		t.Errorf("%+v", d)
	}
}

// TestScheduleSpansAgreeWithCron walks the clock in random steps (and sometimes back) over
// two months: the bounds Decide computes, which reuse each schedule's last answer while it
// holds, must equal the cron's answer asked afresh.
func TestScheduleSpansAgreeWithCron(t *testing.T) {
	p := compile(t, `
min: 1
max: 10
replicas: ceil(queued / 100)
schedule:
  - { cron: "0 8 * * MON-FRI", duration: 10h, timezone: Europe/Berlin, min: 3 }
  - { cron: "30 */7 * * * *", duration: 90s, max: 4 }
  - { cron: "@daily", duration: 1h, timezone: America/New_York, min: 6 }
  - { cron: "0 0 29 2 *", duration: 24h, min: 7 }
`, "queued")
	rng := rand.New(rand.NewPCG(1, 2))
	var st policy.State
	now := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC) // through Feb 29 and the March DST change
	for range 20000 {
		switch rng.IntN(50) {
		case 0:
			now = now.Add(-time.Duration(rng.IntN(3600)) * time.Second)
		default:
			now = now.Add(time.Duration(1+rng.IntN(600)) * time.Second)
		}
		var d policy.Decision
		d, st = policy.Decide(p, st, inputs(1, v(0)), now)
		lo, hi := 1, 10
		schedMax := -1
		for i := range p.Schedules {
			s := &p.Schedules[i]
			if !s.ActiveAt(now) {
				continue
			}
			if s.Min != nil {
				lo = max(lo, *s.Min)
			}
			if s.Max != nil {
				schedMax = max(schedMax, *s.Max)
			}
		}
		if schedMax >= 0 {
			hi = schedMax
		}
		hi = max(hi, lo)
		if d.Min != lo || d.Max != hi {
			t.Fatalf("at %s: Decide says [%d,%d], the cron [%d,%d]", now.Format(time.RFC3339), d.Min, d.Max, lo, hi)
		}
	}
}
