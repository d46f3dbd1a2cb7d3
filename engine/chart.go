package engine

import (
	"math"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
)

// chartRing holds the status page's last hour in columns (a few KB per policy).
type chartRing struct {
	start    int
	n        int
	t        [chartPoints]int64 // unix seconds
	desired  [chartPoints]int32
	replicas [chartPoints]int32
	values   [][chartPoints]float32 // per query
}

func (c *chartRing) add(t time.Time, desired, replicas int, values []policy.Value) {
	if len(c.values) != len(values) {
		c.values = make([][chartPoints]float32, len(values))
	}
	// The newest point follows every tick until it is a full step after the one before
	// it; then the next tick starts a new point. The chart is always current and its
	// points stay about a step apart.
	var i int
	if c.n >= 2 && c.t[c.at(c.n-1)]-c.t[c.at(c.n-2)] < int64(chartStep/time.Second) {
		i = c.at(c.n - 1)
	} else {
		i = c.at(c.n)
		if c.n == chartPoints {
			c.start = (c.start + 1) % chartPoints
		} else {
			c.n++
		}
	}
	c.t[i], c.desired[i], c.replicas[i] = t.Unix(), int32(desired), int32(replicas)
	for q, v := range values {
		c.values[q][i] = float32(v.V)
		if v.Err != nil {
			c.values[q][i] = float32(math.NaN())
		}
	}
}

func (c *chartRing) at(k int) int { return (c.start + k) % chartPoints }

func (c *chartRing) points() []ChartPoint {
	out := make([]ChartPoint, c.n)
	for k := range c.n {
		i := (c.start + k) % chartPoints
		p := ChartPoint{Time: time.Unix(c.t[i], 0), Desired: int(c.desired[i]), Replicas: int(c.replicas[i]), Values: make([]float64, len(c.values))}
		for q := range c.values {
			p.Values[q] = float64(c.values[q][i])
		}
		out[k] = p
	}
	return out
}

// ChartPoint is one sample of the status page's chart.
type ChartPoint struct {
	Time     time.Time
	Values   []float64 // per query; NaN when the query failed
	Desired  int
	Replicas int
}

// clone returns a copy that shares nothing with c.
func (c *chartRing) clone() chartRing {
	out := *c
	out.values = append([][chartPoints]float32(nil), c.values...)
	return out
}
