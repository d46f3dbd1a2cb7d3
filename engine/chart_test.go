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
