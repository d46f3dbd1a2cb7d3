package daemon

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/decisionlog"
	"github.com/autoscalerd/autoscalerd/engine"
)

func TestLogPoints(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	f := func(v float64) *float64 { return &v }
	i := func(v int) *int { return &v }
	recs := []decisionlog.Record{
		{Time: at(2), Action: "up", From: 1, To: 3, Desired: i(3), Values: map[string]*float64{"queued": f(300)}},
		{Time: at(5), Action: "paused", From: 3, To: 3},
		{Time: at(7), Action: "hold", From: 3, To: 3, Desired: i(3), Sampled: true, Values: map[string]*float64{"queued": nil}},
	}
	two := 2
	s := engine.Status{Name: "w", Current: 2, Desired: &two, QueryOrder: []string{"queued"}, Queries: map[string]*float64{"queued": f(180)}}
	got := logPoints(s, recs, at(0), at(24))
	var lines []string
	for _, p := range got {
		lines = append(lines, fmt.Sprintf("%s desired=%d replicas=%d queued=%v", p.Time.Format("15"), p.Desired, p.Replicas, p.Values[0]))
	}
	want := []string{
		"00 desired=-1 replicas=1 queued=NaN", // the window starts at the count the first record came from
		"02 desired=3 replicas=3 queued=300",
		"05 desired=-1 replicas=3 queued=NaN",
		"07 desired=3 replicas=3 queued=NaN", // the query failed
		"00 desired=2 replicas=2 queued=180", // now: the status
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// The axis shows clock times (local, as the page's reader sees them), from the window's
	// start to now.
	svg := policyChart(s, got, recs)
	for _, h := range []int{0, 6, 24} {
		label := ">" + at(h).Local().Format("Mon 15:04") + "<"
		if !strings.Contains(svg, label) {
			t.Errorf("the time axis lacks %s", label)
		}
	}
}

// TestPolicyChart: the page draws a wide and a narrow chart, each with the query's peak
// within a step, a mark per scaling action (a dry run's repeated proposal once) and
// clock times on the axis.
func TestPolicyChart(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 7, 0, 0, 0, time.Local)
	var pts []engine.ChartPoint
	for k := range 12 {
		p := engine.ChartPoint{Time: t0.Add(time.Duration(k) * 15 * time.Second), Values: []float64{0}, Low: []float64{0}, High: []float64{0},
			Desired: 1, DesiredLow: 1, DesiredHigh: 1, Replicas: 1, ReplicasLow: 1, ReplicasHigh: 1}
		if k == 4 {
			p.High[0], p.DesiredHigh = 480, 10
		}
		if k >= 4 && k < 10 {
			p.Replicas, p.ReplicasLow, p.ReplicasHigh = 10, 10, 10
		}
		pts = append(pts, p)
	}
	recs := []decisionlog.Record{
		{Time: t0.Add(59 * time.Second), Action: "up", From: 1, To: 10},
		{Time: t0.Add(60 * time.Second), Action: "hold", From: 10, To: 10},
		{Time: t0.Add(150 * time.Second), Action: "down", From: 10, To: 1, DryRun: true},
		{Time: t0.Add(151 * time.Second), Action: "down", From: 10, To: 1, DryRun: true},
	}
	s := engine.Status{Name: "w", QueryOrder: []string{"queued"}}
	svg := policyChart(s, pts, recs)
	d := xml.NewDecoder(strings.NewReader("<div>" + svg + "</div>"))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
	}
	charts := strings.Split(svg, "</svg>")[:2]
	// Clock times on the axis: the chart spans 2m45s, every 30 s on the wide chart, every
	// 2 minutes on the narrow one.
	ticks := []string{">07:01:00<", ">07:02<"}
	for i, class := range []string{`class="chart chart-wide" width="900"`, `class="chart chart-narrow" width="340"`} {
		c := charts[i]
		if !strings.Contains(c, class) {
			t.Fatalf("chart %d is not %s", i, class)
		}
		for _, want := range []string{
			`<g class="mark mark-up"><title>07:00:59 up 1→10</title>`,
			`<g class="mark mark-down"><title>07:02:30 down 10→1 (dry run)</title>`,
			ticks[i],
		} {
			if !strings.Contains(c, want) {
				t.Errorf("chart %d lacks %s", i, want)
			}
		}
		if n := strings.Count(c, `class="mark `); n != 2 {
			t.Errorf("chart %d has %d marks, want 2 (the dry run's repeat is not marked again)", i, n)
		}
		// The axis on the right tops out at 500: the peak of 480 makes it so.
		if !strings.Contains(c, ">500</text>") {
			t.Errorf("chart %d: the query axis does not reach the peak of 480", i)
		}
	}
}
