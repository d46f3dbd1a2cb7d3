package chart

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wellFormed parses the SVG as XML, the way a browser would refuse a broken one.
func wellFormed(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b)
		}
	}
}

func TestSVG(t *testing.T) {
	nan := math.NaN()
	var buf bytes.Buffer
	err := SVG(&buf, Chart{
		Title:   `<queue> & "workers"`,
		X:       []float64{0, 15, 30, 45},
		XFormat: Seconds,
		Series: []Series{
			{Name: "depth<1>", Values: []float64{0, 2000, nan, 80000}, Right: true},
			{Name: "replicas", Values: []float64{2, 2, 5, 50}, Step: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	wellFormed(t, buf.Bytes())
	s := buf.String()
	for _, want := range []string{"&lt;queue&gt; &amp; &#34;workers&#34;", "depth&lt;1&gt;", ">replicas</text>", ">45s</text>", ">100k</text>", "stroke-dasharray"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	// The NaN leaves a gap: the query's path starts twice (two M commands).
	for _, line := range strings.Split(s, "<path") {
		if strings.Contains(line, "stroke-dasharray") && strings.Count(line, "M") != 2 {
			t.Errorf("query path should have a gap at the NaN: %s", line)
		}
	}
}

func TestSVGEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := SVG(&buf, Chart{Title: "nothing"}); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, buf.Bytes())
	if !strings.Contains(buf.String(), "no data yet") {
		t.Error("an empty chart should say there is no data yet")
	}
}

func TestNiceMaxAndLabels(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0, 1}, {1, 1}, {3, 5}, {7, 10}, {50, 50}, {80000, 100000}, {0.3, 0.5}} {
		if got := niceMax(c.in); got != c.want {
			t.Errorf("niceMax(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		in   float64
		want string
	}{{90, "1m30s"}, {-300, "-5m"}, {3600, "1h0m"}, {0, "0s"}} {
		if got := Seconds(c.in); got != c.want {
			t.Errorf("Seconds(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// pathYs returns every y coordinate a path's M, L and V commands reach.
func pathYs(t *testing.T, d string) []float64 {
	t.Helper()
	var ys []float64
	for _, cmd := range regexp.MustCompile(`[MLHV][^MLHV]*`).FindAllString(d, -1) {
		nums := strings.Fields(cmd[1:])
		switch cmd[0] {
		case 'M', 'L':
			y, err := strconv.ParseFloat(nums[1], 64)
			if err != nil {
				t.Fatalf("path %q: %v", d, err)
			}
			ys = append(ys, y)
		case 'V':
			y, err := strconv.ParseFloat(nums[0], 64)
			if err != nil {
				t.Fatalf("path %q: %v", d, err)
			}
			ys = append(ys, y)
		}
	}
	return ys
}

// TestSVGDrawsThePeakOfAStep: a point that sums up several samples draws their range, so
// a reading that was not the last of its step (the one that made the policy scale) is on
// the chart. Without the range the line would stay at 0.
func TestSVGDrawsThePeakOfAStep(t *testing.T) {
	nan := math.NaN()
	c := Chart{
		X:      []float64{0, 15, 30, 45},
		Width:  400,
		Height: 200,
		Series: []Series{{Name: "queued", Right: true, Step: true,
			Values: []float64{0, 0, 0, 0},
			Low:    []float64{0, 0, 0, nan},
			High:   []float64{0, 100, 0, nan}}},
	}
	var buf bytes.Buffer
	if err := SVG(&buf, c); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, buf.Bytes())
	d := regexp.MustCompile(`<path d="([^"]*)" fill="none"`).FindStringSubmatch(buf.String())
	if d == nil {
		t.Fatalf("no series path in\n%s", buf.String())
	}
	frame := regexp.MustCompile(`<rect x="\d+" y="(\d+)" width="\d+" height="(\d+)"`).FindStringSubmatch(buf.String())
	top, _ := strconv.ParseFloat(frame[1], 64)
	height, _ := strconv.ParseFloat(frame[2], 64)
	ys := pathYs(t, d[1])
	lo, hi := slices.Min(ys), slices.Max(ys)
	// The axis tops out at 100 (the peak), so the peak is at the frame's top and 0 at its
	// bottom.
	if math.Abs(lo-top) > 0.1 || math.Abs(hi-(top+height)) > 0.1 {
		t.Errorf("the path spans y %.1f..%.1f, want the frame's %.1f..%.1f (the peak of 100 drawn): %s", lo, hi, top, top+height, d[1])
	}
	// Steps: horizontal then vertical moves only, no slanted lines.
	if strings.Contains(d[1], "L") {
		t.Errorf("a step series has slanted segments: %s", d[1])
	}
}

// TestSVGMarks: scaling actions are drawn as marks with their hover text, labels that
// would overlap are dropped (the hover text stays), marks outside the x range are not
// drawn, and on a narrow chart the legend wraps instead of running off the drawing.
func TestSVGMarks(t *testing.T) {
	c := Chart{
		X:      []float64{0, 60, 120, 180},
		Width:  340,
		Height: 240,
		Series: []Series{
			{Name: "queued_process_order", Values: []float64{0, 500, 0, 0}, Right: true, Step: true},
			{Name: "pending_retries", Values: []float64{0, 1, 0, 0}, Right: true, Step: true},
			{Name: "desired", Values: []float64{1, 10, 10, 1}, Step: true},
			{Name: "replicas", Values: []float64{1, 10, 10, 1}, Step: true},
		},
		Marks: []Mark{
			{X: 60, Kind: "up", Label: "1→10", Title: "12:01:00 up 1→10"},
			{X: 61, Kind: "up", Label: "10→12", Title: "12:01:01 up 10→12"},
			{X: 62, Kind: "down", Label: "12→10", Title: "12:01:02 down 12→10"},
			{X: 180, Kind: "down", Label: "10→1", Title: "12:03:00 down 10→1 <&>"},
			{X: 999, Kind: "up", Label: "outside", Title: "outside"},
		},
	}
	var buf bytes.Buffer
	if err := SVG(&buf, c); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, buf.Bytes())
	s := buf.String()
	if n := strings.Count(s, `<g class="mark mark-up">`); n != 2 {
		t.Errorf("%d up marks, want 2 (the third is outside the chart)", n)
	}
	if n := strings.Count(s, `<g class="mark mark-down">`); n != 2 {
		t.Errorf("%d down marks, want 2", n)
	}
	for _, want := range []string{"<title>12:01:00 up 1→10</title>", "<title>12:03:00 down 10→1 &lt;&amp;&gt;</title>", ">1→10</text>", ">10→1</text>"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %s", want)
		}
	}
	if strings.Contains(s, "outside") {
		t.Error("a mark outside the x range is drawn")
	}
	// Three labels a second apart: two rows, so one is left to its hover text.
	if n := strings.Count(s, `font-size="10"`); n != 3 {
		t.Errorf("%d mark labels drawn, want 3 (1→10, 10→12 on a second row, 10→1)", n)
	}
	// Nothing is placed beyond the drawing's width: every text starts inside it, and
	// one that starts near the right edge is anchored at its end.
	for _, m := range regexp.MustCompile(`<text x="([\d.]+)"([^>]*)>([^<]*)<`).FindAllStringSubmatch(s, -1) {
		x, _ := strconv.ParseFloat(m[1], 64)
		end := x + 6*float64(len([]rune(m[3])))
		if strings.Contains(m[2], `text-anchor="end"`) {
			end = x
		} else if strings.Contains(m[2], `text-anchor="middle"`) {
			end = x + 3*float64(len([]rune(m[3])))
		}
		if end > float64(c.Width) {
			t.Errorf("text %q at x=%v runs past the %d px drawing", m[3], x, c.Width)
		}
	}
}

func TestClockTicks(t *testing.T) {
	utc := time.UTC
	t0 := float64(time.Date(2026, 12, 2, 7, 3, 20, 0, utc).Unix())
	for _, c := range []struct {
		span   time.Duration
		max    int
		layout string
		first  string
		n      int
	}{
		{time.Hour, 7, "15:04", "07:10", 6},
		{time.Hour, 3, "15:04", "07:30", 2},
		{2 * time.Minute, 7, "15:04:05", "07:03:30", 4},
		{24 * time.Hour, 7, "Mon 15:04", "Wed 12:00", 4},
	} {
		ticks, layout := ClockTicks(t0, t0+c.span.Seconds(), c.max, utc)
		if layout != c.layout || len(ticks) != c.n || len(ticks) > c.max || time.Unix(int64(ticks[0]), 0).In(utc).Format(layout) != c.first {
			var got []string
			for _, x := range ticks {
				got = append(got, time.Unix(int64(x), 0).In(utc).Format(layout))
			}
			t.Errorf("%s, at most %d: %q (%s), want %d from %s (%s)", c.span, c.max, got, layout, c.n, c.first, c.layout)
		}
	}
	// A 7 s span with room for 3 labels between round times (every 2 s is 4 labels, every
	// 5 s one): the ends and the middle, to the second, never a lone label.
	x0 := t0 + 35.5
	ticks, layout := ClockTicks(x0, x0+7, 3, utc)
	var got []string
	for _, x := range ticks {
		got = append(got, time.Unix(int64(x), 0).In(utc).Format(layout))
	}
	if want := []string{"07:03:56", "07:03:59", "07:04:02"}; !slices.Equal(got, want) {
		t.Errorf("7 s, at most 3: %q, want %q", got, want)
	}
	// Half-hour zones: whole hours of the local clock.
	india := time.FixedZone("IST", 5*3600+1800)
	ticks, _ = ClockTicks(t0, t0+6*3600, 7, india)
	if got := time.Unix(int64(ticks[0]), 0).In(india).Format("15:04"); got != "13:00" {
		t.Errorf("first tick in IST %s, want 13:00", got)
	}
}

// TestSVGSteadyStep: a step series draws the points that change something only, and
// still reaches the last x: an hour of a steady count is one segment, not 240.
func TestSVGSteadyStep(t *testing.T) {
	c := Chart{Width: 400, Height: 200}
	s := Series{Name: "replicas", Step: true}
	for i := range 240 {
		c.X = append(c.X, float64(i*15))
		v := 2.0
		if i >= 100 && i < 110 {
			v = 5
		}
		s.Values = append(s.Values, v)
	}
	c.Series = []Series{s}
	var buf bytes.Buffer
	if err := SVG(&buf, c); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, buf.Bytes())
	d := regexp.MustCompile(`<path d="([^"]*)" fill="none"`).FindStringSubmatch(buf.String())[1]
	// M, up at point 100, down at point 110, the end: M + 2×(H,V) + H.
	if got := len(regexp.MustCompile(`[MHV]`).FindAllString(d, -1)); got != 6 {
		t.Errorf("%d path commands, want 6: %s", got, d)
	}
	if !strings.HasSuffix(d, "H344.0") { // padL + plot width: the last point's x
		t.Errorf("the path does not reach the last point: %s", d)
	}
}
