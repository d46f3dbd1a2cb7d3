package engine

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
)

// TestChartRing: every tick is a point while there is room; then the newest point is
// still the latest tick, the points stay spread over the hour (none spans more than
// about two steps) and the ring keeps at most an hour.
func TestChartRing(t *testing.T) {
	var c chartRing
	start := time.Unix(1_700_000_000, 0)
	for i := 0; i <= 2*3600/2; i++ { // two hours of ticks every 2s
		now := start.Add(time.Duration(i) * 2 * time.Second)
		c.add(now, i%7, i%5, []policy.Value{{V: float64(i)}})
		pts := c.points()
		last := pts[len(pts)-1]
		if !last.Time.Equal(now) || last.Values[0] != float64(i) || last.Desired != i%7 || last.Replicas != i%5 {
			t.Fatalf("tick %d: newest point %+v is not the latest tick", i, last)
		}
		if i < chartPoints && len(pts) != i+1 {
			t.Fatalf("tick %d: %d points, want every tick", i, len(pts))
		}
		for k := 1; k < len(pts); k++ {
			if gap := pts[k].Time.Sub(pts[k-1].Time); gap > 2*chartStep+2*time.Second {
				t.Fatalf("tick %d: points %d and %d are %s apart", i, k-1, k, gap)
			}
		}
	}
	pts := c.points()
	if len(pts) != chartPoints {
		t.Fatalf("%d points, want %d", len(pts), chartPoints)
	}
	if span := pts[len(pts)-1].Time.Sub(pts[0].Time); span < 59*time.Minute || span > time.Hour {
		t.Errorf("the chart spans %s, want about an hour", span)
	}
	// Merged points carry their ticks' ranges: the values rise by one a tick, so a point
	// covers from just after the point before to its own last value.
	for k := 1; k < len(pts); k++ {
		if pts[k].Low[0] != pts[k-1].Values[0]+1 || pts[k].High[0] != pts[k].Values[0] {
			t.Fatalf("point %d covers %v..%v after a point at %v, want %v..%v", k, pts[k].Low[0], pts[k].High[0], pts[k-1].Values[0], pts[k-1].Values[0]+1, pts[k].Values[0])
		}
	}
}

// TestChartRingKeepsThePeak: a reading inside a merged point (not its last) is kept as the
// point's high, and a failed reading neither erases the range nor enters it.
func TestChartRingKeepsThePeak(t *testing.T) {
	var c chartRing
	start := time.Unix(1_700_000_000, 0)
	fail := policy.Value{Err: errors.New("down")}
	// An hour of a tick a second: the queue is empty but for one reading of 500 half an
	// hour in (desired 10, and 10 replicas for three ticks), then a failed read, then
	// empty again.
	const spike = 1800
	for i := 0; i < 3600; i++ {
		v, desired, replicas := policy.Value{V: 0}, 1, 1
		switch i {
		case spike:
			v, desired = policy.Value{V: 500}, 10
		case spike + 1:
			v, desired = fail, -1
		}
		if i >= spike && i < spike+3 {
			replicas = 10
		}
		c.add(start.Add(time.Duration(i)*time.Second), desired, replicas, []policy.Value{v})
	}
	var peak *ChartPoint
	pts := c.points()
	for k := range pts {
		p := &pts[k]
		if p.High[0] == 500 {
			if k == 0 || p.Time.Sub(pts[k-1].Time) <= time.Second {
				t.Fatalf("the reading of 500 is in point %d, which is not a merged one", k)
			}
			peak = p
		}
	}
	if peak == nil {
		t.Fatalf("no point keeps the reading of 500: %+v", pts)
	}
	if peak.Low[0] != 0 || peak.DesiredHigh != 10 || peak.DesiredLow != 1 || peak.ReplicasHigh != 10 || peak.ReplicasLow != 1 {
		t.Errorf("the peak's point: %v..%v, desired %d..%d, replicas %d..%d; want 0..500, desired 1..10, replicas 1..10",
			peak.Low[0], peak.High[0], peak.DesiredLow, peak.DesiredHigh, peak.ReplicasLow, peak.ReplicasHigh)
	}
	if at := peak.Time.Sub(start); at < spike*time.Second || at > spike*time.Second+2*chartStep {
		t.Errorf("the peak's point is at +%s, want within two steps after +%ds", at, spike)
	}
	// A point whose every reading failed has no range.
	var r chartRing
	for i := range chartPoints + 1 {
		r.add(start.Add(time.Duration(i)*time.Second), -1, 1, []policy.Value{fail})
	}
	for _, p := range r.points() {
		if !math.IsNaN(p.Values[0]) || !math.IsNaN(p.Low[0]) || !math.IsNaN(p.High[0]) || p.DesiredLow != -1 || p.DesiredHigh != -1 {
			t.Fatalf("a point of failed reads: %+v, want NaN values and no desired range", p)
		}
	}
}

// TestChartRingOverWeeks: point times are kept as milliseconds after a base, which moves
// along when they would overflow (after 24 days): a month of ticks keeps exact times and
// only the last hour.
func TestChartRingOverWeeks(t *testing.T) {
	var c chartRing
	start := time.UnixMilli(1_700_000_000_123)
	for i := 0; i <= 30*24*6; i++ { // every 10 minutes for 30 days
		now := start.Add(time.Duration(i) * 10 * time.Minute)
		c.add(now, 1, 1, []policy.Value{{V: float64(i)}})
		pts := c.points()
		if last := pts[len(pts)-1]; !last.Time.Equal(now) || last.Values[0] != float64(i) {
			t.Fatalf("tick %d: newest point at %s (%v), want %s (%d)", i, last.Time, last.Values[0], now, i)
		}
		if span := pts[len(pts)-1].Time.Sub(pts[0].Time); span > chartWindow || i >= 6 && len(pts) != 7 {
			t.Fatalf("tick %d: %d points spanning %s, want the last hour's 7", i, len(pts), span)
		}
	}
	// A clock set back by weeks starts the chart again.
	back := start.Add(-40 * 24 * time.Hour)
	c.add(back, 1, 1, []policy.Value{{V: -1}})
	if pts := c.points(); len(pts) != 1 || !pts[0].Time.Equal(back) {
		t.Errorf("after the clock went back: %+v", pts)
	}
}

// TestRingCollapsesSteadyDecisions: consecutive holds at one count, and a dry run deciding
// the same action again, keep one entry (the newest); real changes each keep theirs.
func TestRingCollapsesSteadyDecisions(t *testing.T) {
	var r ring
	at := time.Unix(1_700_000_000, 0)
	add := func(action policy.Action, from, to int, dry bool) {
		at = at.Add(time.Second)
		r.add(policy.Decision{Time: at, Action: action, From: from, To: to, Desired: to, DryRun: dry})
	}
	for range 10 {
		add(policy.Hold, 2, 2, false)
	}
	for range 10 {
		add(policy.Up, 2, 5, true) // dry run: the target stays at 2
	}
	add(policy.Up, 2, 5, false)
	add(policy.Up, 5, 7, false)
	got := r.list()
	if len(got) != 4 || got[0].Action != policy.Hold || !got[1].DryRun || got[1].Time != at.Add(-2*time.Second) {
		t.Fatalf("ring holds %d decisions: %+v", len(got), got)
	}

	// A dry run taking turns with the holds of the cooldown.up it starts: one of each,
	// the newest last.
	r = ring{}
	add(policy.Hold, 1, 1, false)
	for range 20 {
		add(policy.Up, 1, 10, true)
		for range 4 {
			r.add(policy.Decision{Time: at.Add(time.Second), Action: policy.Hold, From: 1, To: 1, Desired: 10, DryRun: true})
			at = at.Add(time.Second)
		}
	}
	add(policy.Up, 1, 10, true)
	got = r.list()
	if len(got) != 3 || got[0].Desired != 1 || got[1].Action != policy.Hold || got[2].Action != policy.Up || got[2].Time != at || got[1].Time != at.Add(-time.Second) {
		t.Fatalf("a dry run's turns fill the ring: %d decisions: %+v", len(got), got)
	}
	// A real change still gets an entry of its own.
	add(policy.Up, 1, 10, false)
	if got = r.list(); len(got) != 4 || got[3].DryRun {
		t.Fatalf("after a real action: %+v", got)
	}
}

// TestChartCounts: counts are kept in 16 bits: 0 and -1 (no desired count) survive, and a
// count above 65,534 is drawn at 65,534 rather than wrapping around.
func TestChartCounts(t *testing.T) {
	var c chartRing
	start := time.Unix(1_700_000_000, 0)
	for i, n := range []int{0, -1, 65534, 70000} {
		c.add(start.Add(time.Duration(i)*time.Second), n, max(n, 0), nil)
	}
	want := [][2]int{{0, 0}, {-1, 0}, {65534, 65534}, {65534, 65534}}
	for k, p := range c.points() {
		if p.Desired != want[k][0] || p.Replicas != want[k][1] || p.DesiredLow != p.Desired || p.ReplicasHigh != p.Replicas {
			t.Errorf("point %d: desired %d (%d..%d), replicas %d (%d..%d); want %v", k, p.Desired, p.DesiredLow, p.DesiredHigh, p.Replicas, p.ReplicasLow, p.ReplicasHigh, want[k])
		}
	}
}

// TestDecisionsKeptShrinkWithManyPolicies: every policy keeps 64 decisions up to 2,500
// policies, fewer beyond (16 at 10,000), and a ring whose share shrank at a reload drops
// its oldest entries on its next decision, keeping the newest in order.
func TestDecisionsKeptShrinkWithManyPolicies(t *testing.T) {
	for n, want := range map[int]int{0: 64, 1: 64, 2500: 64, 5000: 32, 10000: 16, 100000: 16} {
		if got := decisionsKept(n); got != want {
			t.Errorf("decisionsKept(%d) = %d, want %d", n, got, want)
		}
	}
	var r ring
	at := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for i := range 70 { // real actions: each its own entry
		r.add(policy.Decision{Time: at.Add(time.Duration(i) * time.Second), Action: policy.Up, From: i, To: i + 1})
	}
	if got := r.list(); len(got) != 64 || got[0].From != 6 || got[63].From != 69 {
		t.Fatalf("ring of 64: %d entries, %d..%d", len(got), got[0].From, got[len(got)-1].From)
	}
	r.keep = 16
	r.add(policy.Decision{Time: at.Add(70 * time.Second), Action: policy.Up, From: 70, To: 71})
	got := r.list()
	if len(got) != 16 || cap(r.buf) >= 64 {
		t.Fatalf("after the share shrank to 16: %d entries in a buffer of %d", len(got), cap(r.buf))
	}
	for i, d := range got {
		if d.From != 55+i {
			t.Fatalf("entry %d is decision %d, want %d: the newest 16 in order", i, d.From, 55+i)
		}
	}
}
