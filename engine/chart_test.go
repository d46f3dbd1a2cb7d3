package engine

import (
	"github.com/autoscalerd/autoscalerd/policy"
	"testing"
	"time"
)

// TestChartRing: the newest point is always the latest tick, older points are about a step
// apart, and the ring keeps at most an hour.
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
		for k := 1; k+1 < len(pts); k++ {
			if gap := pts[k].Time.Sub(pts[k-1].Time); gap < chartStep || gap > chartStep+2*time.Second {
				t.Fatalf("tick %d: points %d and %d are %s apart", i, k-1, k, gap)
			}
		}
	}
	pts := c.points()
	if len(pts) != chartPoints {
		t.Fatalf("%d points, want %d", len(pts), chartPoints)
	}
	if span := pts[len(pts)-1].Time.Sub(pts[0].Time); span < 59*time.Minute || span > 70*time.Minute {
		t.Errorf("the chart spans %s, want about an hour", span)
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
}
