package daemon

import (
	"fmt"
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
	svg := policyChart(s, got, 24*time.Hour)
	for _, h := range []int{0, 6, 24} {
		label := ">" + at(h).Local().Format("Mon 15:04") + "<"
		if !strings.Contains(svg, label) {
			t.Errorf("the time axis lacks %s", label)
		}
	}
}
