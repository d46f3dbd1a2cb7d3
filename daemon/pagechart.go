package daemon

import (
	"bytes"
	"fmt"
	"math"
	"time"

	"github.com/autoscalerd/autoscalerd/chart"
	"github.com/autoscalerd/autoscalerd/decisionlog"
	"github.com/autoscalerd/autoscalerd/engine"
	"github.com/autoscalerd/autoscalerd/policy"
)

// chartRanges are the time ranges the status page charts, in the order it offers them.
// The last hour comes from memory (every tick, or points that keep each range); longer ranges
// from the decision log, which holds every change of the replica count and a sample of
// the holds: the replica and desired lines are exact, query values appear where a
// decision was logged.
var chartRanges = []struct {
	Name   string
	Window time.Duration
}{{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour}}

// chartRange returns the range a ?range= value names, the last hour for anything else.
func chartRange(name string) (string, time.Duration) {
	for _, r := range chartRanges {
		if r.Name == name {
			return r.Name, r.Window
		}
	}
	return chartRanges[0].Name, chartRanges[0].Window
}

// chartData returns the points and the scaling actions to chart for window, and a note
// saying where they come from when that is not obvious. The last hour comes from memory
// (decisions: the recent ones the engine keeps), longer ranges from the decision log.
func (d *Daemon) chartData(s engine.Status, memory []engine.ChartPoint, decisions []policy.Decision, window time.Duration, now time.Time) ([]engine.ChartPoint, []decisionlog.Record, string) {
	fromMemory := func(note string) ([]engine.ChartPoint, []decisionlog.Record, string) {
		recs := make([]decisionlog.Record, 0, len(decisions))
		for _, dec := range decisions {
			recs = append(recs, record(engine.Tick{Policy: &policy.Policy{Name: s.Name}, Decision: dec}))
		}
		return memory, recs, note
	}
	if window <= time.Hour {
		return fromMemory("")
	}
	dl := d.obs.dlog
	if dl == nil {
		return fromMemory("the decision log is disabled: the last hour only")
	}
	since := now.Add(-window)
	recs, err := dl.Query(decisionlog.Query{Policy: s.Name, Since: since, Limit: decisionlog.MaxLimit})
	if err != nil {
		d.log.Warn("status page: reading the decision log", "err", err)
		return fromMemory("the decision log could not be read: the last hour only")
	}
	return logPoints(s, recs, since, now), recs, ""
}

// logPoints turns decision-log records into chart points, from since (at the count the
// first record started from) to now (at the current count).
func logPoints(s engine.Status, recs []decisionlog.Record, since, now time.Time) []engine.ChartPoint {
	var out []engine.ChartPoint
	point := func(t time.Time, desired, replicas int, values map[string]*float64) {
		p := engine.ChartPoint{Time: t, Desired: desired, DesiredLow: desired, DesiredHigh: desired,
			Replicas: replicas, ReplicasLow: replicas, ReplicasHigh: replicas, Values: make([]float64, len(s.QueryOrder))}
		for i, q := range s.QueryOrder {
			p.Values[i] = math.NaN()
			if v := values[q]; v != nil {
				p.Values[i] = *v
			}
		}
		out = append(out, p)
	}
	if len(recs) > 0 {
		point(since, -1, recs[0].From, nil)
	}
	for _, r := range recs {
		desired := -1
		if r.Desired != nil {
			desired = *r.Desired
		}
		point(r.Time, desired, r.To, r.Values)
	}
	desired := -1
	if s.Desired != nil {
		desired = *s.Desired
	}
	current := map[string]*float64{}
	for q, v := range s.Queries {
		current[q] = v
	}
	point(now, desired, s.Current, current)
	return out
}

// Sizes of the page's two charts: the wide one for screens, the narrow one (picked by the
// page's CSS) fits a 400 px phone screen with the card's margins.
const (
	chartWide, chartNarrow = 900, 340
	chartHeight            = 240
)

// policyChart draws query values, desired and actual replicas against the clock, with a
// mark at every scaling action: twice, a wide chart and a narrow one, since text that
// scales with a 900 px drawing is unreadable on a phone.
func policyChart(s engine.Status, points []engine.ChartPoint, recs []decisionlog.Record) string {
	var c chart.Chart
	queries := make([]chart.Series, len(s.QueryOrder))
	for i, q := range s.QueryOrder {
		queries[i] = chart.Series{Name: q, Right: true, Step: true}
	}
	desired := chart.Series{Name: "desired", Step: true}
	replicas := chart.Series{Name: "replicas", Step: true}
	nan := math.NaN()
	count := func(n int) float64 {
		if n < 0 {
			return nan
		}
		return float64(n)
	}
	for _, p := range points {
		c.X = append(c.X, float64(p.Time.UnixMilli())/1000)
		for i := range queries {
			v, lo, hi := nan, nan, nan
			if i < len(p.Values) {
				v = p.Values[i]
			}
			if i < len(p.Low) && i < len(p.High) {
				lo, hi = p.Low[i], p.High[i]
			}
			queries[i].Values = append(queries[i].Values, v)
			queries[i].Low = append(queries[i].Low, lo)
			queries[i].High = append(queries[i].High, hi)
		}
		desired.Values = append(desired.Values, count(p.Desired))
		desired.Low = append(desired.Low, count(p.DesiredLow))
		desired.High = append(desired.High, count(p.DesiredHigh))
		replicas.Values = append(replicas.Values, float64(p.Replicas))
		replicas.Low = append(replicas.Low, float64(p.ReplicasLow))
		replicas.High = append(replicas.High, float64(p.ReplicasHigh))
	}
	c.Series = append(queries, desired, replicas)
	c.Marks = scalingMarks(recs)
	var buf bytes.Buffer
	for _, w := range []struct {
		width, ticks int
		class        string
	}{{chartWide, 7, "chart chart-wide"}, {chartNarrow, 3, "chart chart-narrow"}} {
		c.Width, c.Height, c.Class = w.width, chartHeight, w.class
		var layout string
		if len(c.X) > 0 {
			c.XTicks, layout = chart.ClockTicks(c.X[0], c.X[len(c.X)-1], w.ticks, time.Local)
		}
		c.XFormat = func(x float64) string { return time.Unix(int64(x), 0).Format(layout) }
		c.XLabel = "time (" + time.Now().Format("MST") + ")"
		_ = chart.SVG(&buf, c)
	}
	return buf.String()
}

// scalingMarks turns the scaling actions among recs into chart marks. A dry run proposes
// the same action every tick (the target never follows): it is marked once.
func scalingMarks(recs []decisionlog.Record) []chart.Mark {
	var out []chart.Mark
	var prev *decisionlog.Record
	for i, r := range recs {
		if r.Action != policy.Up.String() && r.Action != policy.Down.String() {
			continue
		}
		if prev != nil && r.DryRun && prev.DryRun && prev.From == r.From && prev.To == r.To {
			continue
		}
		prev = &recs[i]
		title := fmt.Sprintf("%s %s %d→%d", r.Time.Local().Format("15:04:05"), r.Action, r.From, r.To)
		if r.DryRun {
			title += " (dry run)"
		}
		out = append(out, chart.Mark{X: float64(r.Time.UnixMilli()) / 1000, Kind: r.Action,
			Label: fmt.Sprintf("%d→%d", r.From, r.To), Title: title})
	}
	return out
}
