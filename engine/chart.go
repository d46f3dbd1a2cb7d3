package engine

import (
	"math"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
)

// How far back the status page's chart reaches, and the average time between its points
// once the ring is full.
const (
	chartWindow = time.Hour
	chartStep   = chartWindow / chartPoints
)

// chartRing holds the status page's last hour in at most chartPoints points. Every tick is
// a point of its own while there is room: a daemon that started ten minutes ago charts
// every sample. When the points are full, the two neighbours that together span the least
// time become one, which keeps the hour's points about evenly spread (chartStep, 24 s,
// apart; none spans much more than twice that). A point keeps the last reading of each series and
// the lowest and highest since the point before, so a spike inside a merged point (the
// reading that made the policy scale) is still drawn. 16 bytes a point plus 12 per query:
// 4.2 KB per policy with one query (a daemon with 10,000 policies keeps 42 MB of charts).
type chartRing struct {
	n      int
	base   int64 // unix milliseconds the points' times count from
	pts    [chartPoints]chartSample
	values [][chartPoints]chartRange // per query
}

// chartSample is one point's time (milliseconds after the ring's base, of its last tick)
// and counts.
type chartSample struct {
	t        int32
	desired  chartCount // -1: no desired count
	replicas chartCount
}

// chartCount is a count at a point: the last, and the range of the known ones. Each is
// stored as count+1 in 16 bits, 0 for no count (-1), so that a point is 16 bytes: a chart
// draws counts above 65,534 at 65,534.
type chartCount struct{ last, low, high uint16 }

// chartRange is a query's reading at a point: the last, and the range of the successful
// ones; NaN where none succeeded.
type chartRange struct{ last, low, high float32 }

func countOf(n int) chartCount {
	c := uint16(min(max(n, -1), math.MaxUint16-1) + 1)
	return chartCount{c, c, c}
}

// count is a stored count as an int, -1 for none.
func count(c uint16) int { return int(c) - 1 }

// absorb folds the earlier point c into n (n's last value stays), ignoring no count.
func (n *chartCount) absorb(c chartCount) {
	switch {
	case c.low == 0:
	case n.low == 0:
		n.low, n.high = c.low, c.high
	default:
		n.low, n.high = min(n.low, c.low), max(n.high, c.high)
	}
}

func (n *chartRange) absorb(c chartRange) {
	switch {
	case c.low != c.low: // NaN: no reading succeeded
	case n.low != n.low:
		n.low, n.high = c.low, c.high
	default:
		n.low, n.high = min(n.low, c.low), max(n.high, c.high)
	}
}

func (c *chartRing) add(t time.Time, desired, replicas int, values []policy.Value) {
	if len(c.values) != len(values) {
		c.values, c.n = make([][chartPoints]chartRange, len(values)), 0
	}
	ms := t.UnixMilli()
	if c.n > 0 && ms-c.base > math.MaxInt32 {
		// Weeks after the base: count from the oldest point the ring still holds.
		shift := int64(c.pts[0].t)
		for k := range c.n {
			c.pts[k].t -= int32(shift)
		}
		c.base += shift
	}
	if c.n == 0 || ms-c.base > math.MaxInt32 || ms-c.base < math.MinInt32 {
		c.n, c.base = 0, ms // the first tick, or a clock that jumped by weeks
	}
	at := int32(ms - c.base)
	s := chartSample{t: at, desired: countOf(desired), replicas: countOf(replicas)}
	q := make([]chartRange, 0, 8)
	for _, v := range values {
		f := float32(v.V)
		if v.Err != nil {
			f = float32(math.NaN())
		}
		q = append(q, chartRange{f, f, f})
	}
	for c.n > 0 && int64(at)-int64(c.pts[0].t) > chartWindow.Milliseconds() {
		c.remove(0)
	}
	if c.n == chartPoints {
		// Merge where it costs the least resolution: the new tick into the newest point,
		// or point i into point i+1, whichever pair spans the shortest time.
		best, cost := c.n-1, int64(at)-int64(c.pts[c.n-2].t)
		for i := 1; i < c.n-1; i++ {
			if span := int64(c.pts[i+1].t) - int64(c.pts[i-1].t); span < cost {
				best, cost = i, span
			}
		}
		if best == c.n-1 {
			s.desired.absorb(c.pts[best].desired)
			s.replicas.absorb(c.pts[best].replicas)
			for j := range q {
				q[j].absorb(c.values[j][best])
			}
		} else {
			next := &c.pts[best+1]
			next.desired.absorb(c.pts[best].desired)
			next.replicas.absorb(c.pts[best].replicas)
			for j := range c.values {
				c.values[j][best+1].absorb(c.values[j][best])
			}
		}
		c.remove(best)
	}
	c.pts[c.n] = s
	for j := range c.values {
		c.values[j][c.n] = q[j]
	}
	c.n++
}

// remove drops point i.
func (c *chartRing) remove(i int) {
	copy(c.pts[i:c.n], c.pts[i+1:c.n])
	for j := range c.values {
		copy(c.values[j][i:c.n], c.values[j][i+1:c.n])
	}
	c.n--
}

func (c *chartRing) points() []ChartPoint {
	out := make([]ChartPoint, c.n)
	for k := range c.n {
		s := c.pts[k]
		q := len(c.values)
		p := ChartPoint{Time: time.UnixMilli(c.base + int64(s.t)),
			Desired: count(s.desired.last), DesiredLow: count(s.desired.low), DesiredHigh: count(s.desired.high),
			Replicas: count(s.replicas.last), ReplicasLow: count(s.replicas.low), ReplicasHigh: count(s.replicas.high),
			Values: make([]float64, q), Low: make([]float64, q), High: make([]float64, q)}
		for j := range c.values {
			v := c.values[j][k]
			p.Values[j], p.Low[j], p.High[j] = float64(v.last), float64(v.low), float64(v.high)
		}
		out[k] = p
	}
	return out
}

// ChartPoint is one point of the status page's chart: its last tick, and the range of the
// ticks since the point before.
type ChartPoint struct {
	Time   time.Time
	Values []float64 // per query, the last reading; NaN when it failed
	// Low and High are per query the lowest and highest reading of the point (NaN when
	// none succeeded); nil when only Values are known (points from the decision log).
	Low, High []float64
	Desired   int // -1 when there was none
	Replicas  int
	// The ranges of the point's desired (-1: none) and replica counts; a single tick's
	// point has both ends equal to its count.
	DesiredLow, DesiredHigh   int
	ReplicasLow, ReplicasHigh int
}

// clone returns a copy that shares nothing with c.
func (c *chartRing) clone() chartRing {
	out := *c
	out.values = append([][chartPoints]chartRange(nil), c.values...)
	return out
}
