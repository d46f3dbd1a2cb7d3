// Package chart draws the small line charts of the status page and of `simulate --svg`:
// replica counts on the left axis, query values on the right, over time. One drawing
// routine serves both, so what an operator sees live and in a replay looks the same.
package chart

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Series is one line. Values are aligned with Chart.X; NaN leaves a gap.
type Series struct {
	Name   string
	Values []float64
	// Low and High, when set (aligned with Values), are the lowest and highest readings a
	// point stands for: a point that sums up several samples draws their whole range, so
	// the spike that made the policy scale is on the chart even when it was not the last
	// reading of its step. NaN or a missing entry: the point is Values alone.
	Low, High []float64
	// Right puts the series on the right-hand (query value) axis.
	Right bool
	// Step draws a staircase: each value holds until the next point.
	Step bool
}

// Mark is an event drawn as a vertical line across the plot, a scaling action on the
// status page.
type Mark struct {
	X float64
	// Label is drawn at the top of the line when there is room ("1→10"); Title is the
	// hover text and always present.
	Label, Title string
	// Kind is "up" or "down" (the colour and the arrow); anything else is grey.
	Kind string
}

// Chart is what to draw.
type Chart struct {
	Title  string
	XLabel string
	// X is the horizontal coordinate of each point (seconds, increasing).
	X      []float64
	Series []Series
	Marks  []Mark
	Width  int
	Height int
	// XFormat prints an x value for the axis; plain numbers when nil.
	XFormat func(float64) string
	// XTicks are the x values to label; five evenly spaced ones when nil (three on a
	// chart narrower than 480).
	XTicks []float64
	// Class is set on the svg element (the page picks its wide or narrow chart by it).
	Class string
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

var markColor = map[string]string{"up": "#2e7d32", "down": "#c2185b"}

const (
	padL, padR, padB = 44, 56, 34
	legendRow        = 16
	narrow           = 480
)

// legendRows lays the series names out left to right, wrapping at width; it returns each
// item's position.
func legendRows(names []string, width int) (xs, ys []int, rows int) {
	x, row := padL, 0
	for _, n := range names {
		w := 30 + 7*len([]rune(n))
		if x > padL && x+w > width-4 {
			x, row = padL, row+1
		}
		xs, ys = append(xs, x), append(ys, 24+row*legendRow)
		x += w
	}
	return xs, ys, row + 1
}

// SVG writes the chart as a standalone SVG element.
func SVG(w io.Writer, c Chart) error {
	if c.Width == 0 {
		c.Width = 640
	}
	if c.Height == 0 {
		c.Height = 220
	}
	names := make([]string, len(c.Series))
	for i, s := range c.Series {
		names[i] = s.Name
	}
	lx, ly, rows := legendRows(names, c.Width)
	padT := 30 + rows*legendRow // the axis titles sit below the legend
	class := ""
	if c.Class != "" {
		class = ` class="` + html.EscapeString(c.Class) + `"`
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg"%s width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, class, c.Width, c.Height, c.Width, c.Height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/>`)
	if c.Title != "" {
		fmt.Fprintf(&b, `<text x="4" y="13" font-weight="bold">%s</text>`, html.EscapeString(c.Title))
	}
	pw, ph := float64(c.Width-padL-padR), float64(c.Height-padT-padB)
	if len(c.X) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#888">no data yet</text></svg>`, padL, padT+int(ph/2))
		_, err := io.WriteString(w, b.String())
		return err
	}
	x0, x1 := c.X[0], c.X[len(c.X)-1]
	if x1 == x0 {
		x1 = x0 + 1
	}
	leftMax, rightMax := 1.0, 1.0
	for _, s := range c.Series {
		for _, vs := range [][]float64{s.Values, s.Low, s.High} {
			for _, v := range vs {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					continue
				}
				if s.Right {
					rightMax = math.Max(rightMax, v)
				} else {
					leftMax = math.Max(leftMax, v)
				}
			}
		}
	}
	leftMax, rightMax = niceMax(leftMax), niceMax(rightMax)
	px := func(x float64) float64 { return padL + (x-x0)/(x1-x0)*pw }
	py := func(v, top float64) float64 { return float64(padT) + ph - v/top*ph }

	// Frame, grid and axis labels.
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#ccc"/>`, padL, padT, pw, ph)
	for i := 0; i <= 4; i++ {
		f := float64(i) / 4
		y := float64(padT) + ph - f*ph
		fmt.Fprintf(&b, `<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/>`, padL, padL+pw, y, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y+4, label(f*leftMax))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f">%s</text>`, padL+pw+4, y+4, label(f*rightMax))
	}
	xlabel := label
	if c.XFormat != nil {
		xlabel = c.XFormat
	}
	ticks := c.XTicks
	if ticks == nil {
		n := 4
		if c.Width < narrow {
			n = 2
		}
		for i := 0; i <= n; i++ {
			ticks = append(ticks, x0+float64(i)/float64(n)*(x1-x0))
		}
	}
	for _, x := range ticks {
		if x < x0 || x > x1 {
			continue
		}
		fmt.Fprintf(&b, `<text class="xtick" x="%.1f" y="%.0f" text-anchor="middle">%s</text>`, px(x), float64(padT)+ph+14, html.EscapeString(xlabel(x)))
	}
	if c.XLabel != "" {
		fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle" fill="#666">%s</text>`, padL+pw/2, c.Height-4, html.EscapeString(c.XLabel))
	}
	fmt.Fprintf(&b, `<text x="4" y="%d" fill="#666">replicas</text>`, padT-6)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#666">queries</text>`, c.Width-4, padT-6)

	drawMarks(&b, c.Marks, x0, x1, px, float64(padT), ph)

	// The counts first, the query values over them: a reading that made the policy scale
	// stays visible where the replica line jumps at the same moment.
	for _, right := range []bool{false, true} {
		for si, s := range c.Series {
			if s.Right != right {
				continue
			}
			color := palette[si%len(palette)]
			top, dash := leftMax, ""
			if s.Right {
				top, dash = rightMax, ` stroke-dasharray="4 2"`
			}
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.6"%s/>`, seriesPath(s, c.X, px, func(v float64) float64 { return py(v, top) }), color, dash)
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s</text>`,
				lx[si], lx[si]+14, ly[si], ly[si], color, dash, lx[si]+18, ly[si]+4, html.EscapeString(s.Name))
		}
	}
	b.WriteString(`</svg>`)
	_, err := io.WriteString(w, b.String())
	return err
}

// seriesPath is the path of one series. A point with a range (Low/High) draws it as a
// vertical stroke at the point's x before settling at its value. A step series leaves
// out the points that change nothing (an hour of a steady count is one segment).
func seriesPath(s Series, xs []float64, px, py func(float64) float64) string {
	at := func(vs []float64, i int) float64 {
		if i < len(vs) {
			return vs[i]
		}
		return math.NaN()
	}
	var d strings.Builder
	pen := false
	lastY, pending := "", "" // the y the pen is at; the x a left-out point would have reached
	flush := func() {
		if pending != "" {
			d.WriteString("H" + pending)
			pending = ""
		}
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	for i, v := range s.Values {
		if i >= len(xs) {
			break
		}
		x := f(px(xs[i]))
		lo, hi := at(s.Low, i), at(s.High, i)
		if math.IsNaN(lo) || math.IsNaN(hi) || lo == v && hi == v {
			lo, hi = math.NaN(), math.NaN() // nothing beyond the value itself
		}
		if math.IsNaN(v) && math.IsNaN(hi) {
			flush()
			pen = false
			continue
		}
		y := ""
		if !math.IsNaN(v) {
			y = f(py(v))
		}
		switch {
		case !pen:
			first := y
			if !math.IsNaN(hi) {
				first = f(py(hi))
			}
			d.WriteString("M" + x + " " + first)
			lastY = first
		case s.Step && math.IsNaN(hi) && y == lastY:
			pending = x
			continue
		case s.Step:
			pending = ""
			d.WriteString("H" + x)
			if math.IsNaN(hi) {
				d.WriteString("V" + y)
				lastY = y
			}
		default:
			first := y
			if !math.IsNaN(hi) {
				first = f(py(hi))
			}
			d.WriteString("L" + x + " " + first)
			lastY = first
		}
		if !math.IsNaN(hi) {
			d.WriteString("V" + f(py(hi)) + "V" + f(py(lo)))
			lastY = f(py(lo))
			if y != "" {
				d.WriteString("V" + y)
				lastY = y
			}
		}
		// A point whose last reading failed ends the line after its range.
		pen = y != ""
	}
	flush()
	return d.String()
}

// drawMarks draws each mark inside the x range as a vertical line with an arrow and, where
// it does not run into the previous one, its label.
func drawMarks(b *strings.Builder, marks []Mark, x0, x1 float64, px func(float64) float64, top, ph float64) {
	right := px(x1)
	lastEnd := [2]float64{math.Inf(-1), math.Inf(-1)} // the right end of the last label on each row
	for _, m := range marks {
		if m.X < x0 || m.X > x1 {
			continue
		}
		color, ok := markColor[m.Kind]
		if !ok {
			color = "#888"
		}
		x := px(m.X)
		arrow := fmt.Sprintf("M%.1f %.1fl-4 6h8z", x, top+1) // pointing up
		if m.Kind == "down" {
			arrow = fmt.Sprintf("M%.1f %.1fl-4 -6h8z", x, top+7)
		}
		fmt.Fprintf(b, `<g class="mark mark-%s"><title>%s</title><line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="1" stroke-dasharray="2 2"/><path d="%s" fill="%s"/>`,
			html.EscapeString(m.Kind), html.EscapeString(m.Title), x, x, top, top+ph, color, arrow, color)
		if m.Label != "" {
			// Right of the line, or left of it near the plot's right edge.
			w := 6 * float64(len([]rune(m.Label)))
			start, anchor := x+4, ""
			if start+w > right {
				start, anchor = x-4-w, ` text-anchor="end"`
			}
			for row := range lastEnd {
				if start > lastEnd[row]+3 {
					tx := start
					if anchor != "" {
						tx = x - 4
					}
					fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="%s" font-size="10"%s>%s</text>`, tx, top+18+float64(row)*11, color, anchor, html.EscapeString(m.Label))
					lastEnd[row] = start + w
					break
				}
			}
		}
		b.WriteString(`</g>`)
	}
}

// ClockTicks returns round clock times (unix seconds) between x0 and x1 to label a time
// axis with, at most max of them, in loc; and the layout to print them with.
func ClockTicks(x0, x1 float64, max int, loc *time.Location) ([]float64, string) {
	span := x1 - x0
	steps := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second,
		30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}
	// Round in local time, so hours fall on the hour where the offset is not whole hours.
	_, off := time.Unix(int64(x0), 0).In(loc).Zone()
	var out []float64
	var step time.Duration
	for _, step = range steps { // the finest step that gives at most max ticks
		out = out[:0]
		st := step.Seconds()
		for t := math.Ceil((x0+float64(off))/st)*st - float64(off); t <= x1; t += st {
			out = append(out, t)
		}
		if len(out) <= max {
			break
		}
	}
	if len(out) < 2 && max >= 2 && span >= 2 {
		// A short span that falls between round times (7 s with room for 3 labels: every
		// 2 s is too many, every 5 s leaves one): label both ends and between, to the second.
		out = out[:0]
		for i := range max {
			out = append(out, math.Round(x0+float64(i)/float64(max-1)*span))
		}
		out[0], out[len(out)-1] = math.Ceil(x0), math.Floor(x1)
		return out, "15:04:05"
	}
	layout := "15:04"
	switch {
	case step < time.Minute:
		layout = "15:04:05"
	case span > 12*3600:
		layout = "Mon 15:04"
	}
	return out, layout
}

// Seconds prints an x value in seconds as a duration ("1m30s", "-5m").
func Seconds(x float64) string {
	d := time.Duration(x * float64(time.Second)).Round(time.Second)
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	return s
}

// niceMax rounds an axis maximum up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func label(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
