package daemon

import (
	"bytes"
	"math"
	"time"

	"github.com/autoscalerd/autoscalerd/chart"
	"github.com/autoscalerd/autoscalerd/decisionlog"
	"github.com/autoscalerd/autoscalerd/engine"
)

// chartRanges are the time ranges the status page charts, in the order it offers them.
// The last hour comes from memory at full resolution (a point every 15 s); longer ranges
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

// chartPoints returns the points to chart for window, and a note saying where they come
// from when that is not obvious.
func (d *Daemon) chartPoints(s engine.Status, memory []engine.ChartPoint, window time.Duration, now time.Time) ([]engine.ChartPoint, string) {
	if window <= time.Hour {
		return memory, ""
	}
	dl := d.obs.dlog
	if dl == nil {
		return memory, "the decision log is disabled: the last hour only"
	}
	since := now.Add(-window)
	recs, err := dl.Query(decisionlog.Query{Policy: s.Name, Since: since, Limit: decisionlog.MaxLimit})
	if err != nil {
		d.log.Warn("status page: reading the decision log", "err", err)
		return memory, "the decision log could not be read: the last hour only"
	}
	return logPoints(s, recs, since, now), ""
}

// logPoints turns decision-log records into chart points, from since (at the count the
// first record started from) to now (at the current count).
func logPoints(s engine.Status, recs []decisionlog.Record, since, now time.Time) []engine.ChartPoint {
	var out []engine.ChartPoint
	point := func(t time.Time, desired, replicas int, values map[string]*float64) {
		p := engine.ChartPoint{Time: t, Desired: desired, Replicas: replicas, Values: make([]float64, len(s.QueryOrder))}
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

// policyChart draws query values, desired and actual replicas against the clock.
func policyChart(s engine.Status, points []engine.ChartPoint, window time.Duration) string {
	layout := "15:04"
	if window > 12*time.Hour {
		layout = "Mon 15:04"
	}
	c := chart.Chart{XLabel: "time (" + time.Now().Format("MST") + ")", Width: 900, Height: 220,
		XFormat: func(x float64) string { return time.Unix(int64(x), 0).Format(layout) }}
	queries := make([]chart.Series, len(s.QueryOrder))
	for i, q := range s.QueryOrder {
		queries[i] = chart.Series{Name: q, Right: true}
	}
	desired := chart.Series{Name: "desired", Step: true}
	replicas := chart.Series{Name: "replicas", Step: true}
	for _, p := range points {
		c.X = append(c.X, float64(p.Time.UnixMilli())/1000)
		for i := range queries {
			v := math.NaN()
			if i < len(p.Values) {
				v = p.Values[i]
			}
			queries[i].Values = append(queries[i].Values, v)
		}
		dv := float64(p.Desired)
		if p.Desired < 0 {
			dv = math.NaN()
		}
		desired.Values = append(desired.Values, dv)
		replicas.Values = append(replicas.Values, float64(p.Replicas))
	}
	c.Series = append(queries, desired, replicas)
	var buf bytes.Buffer
	_ = chart.SVG(&buf, c)
	return buf.String()
}
