// Package chart draws the small line charts of the status page and of `simulate --svg`:
// replica counts on the left axis, query values on the right, over time. One drawing
// routine serves both, so what an operator sees live and in a replay looks the same.
package chart

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Series is one line. Values are aligned with Chart.X; NaN leaves a gap.
type Series struct {
	Name   string
	Values []float64
	// Right puts the series on the right-hand (query value) axis.
	Right bool
	// Step draws a staircase, for replica counts that change in jumps.
	Step bool
}

// Chart is what to draw.
type Chart struct {
	Title  string
	XLabel string
	// X is the horizontal coordinate of each point (seconds, increasing).
	X      []float64
	Series []Series
	Width  int
	Height int
	// XFormat prints an x value for the axis; plain numbers when nil.
	XFormat func(float64) string
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

const (
	padL, padR, padT, padB = 44, 56, 42, 34
)

// SVG writes the chart as a standalone SVG element.
func SVG(w io.Writer, c Chart) error {
	if c.Width == 0 {
		c.Width = 640
	}
	if c.Height == 0 {
		c.Height = 220
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, c.Width, c.Height, c.Width, c.Height)
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
		for _, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			if s.Right {
				rightMax = math.Max(rightMax, v)
			} else {
				leftMax = math.Max(leftMax, v)
			}
		}
	}
	leftMax, rightMax = niceMax(leftMax), niceMax(rightMax)
	px := func(x float64) float64 { return padL + (x-x0)/(x1-x0)*pw }
	py := func(v, top float64) float64 { return padT + ph - v/top*ph }

	// Frame, grid and axis labels.
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#ccc"/>`, padL, padT, pw, ph)
	for i := 0; i <= 4; i++ {
		f := float64(i) / 4
		y := padT + ph - f*ph
		fmt.Fprintf(&b, `<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/>`, padL, padL+pw, y, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y+4, label(f*leftMax))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f">%s</text>`, padL+pw+4, y+4, label(f*rightMax))
	}
	xlabel := label
	if c.XFormat != nil {
		xlabel = c.XFormat
	}
	for i := 0; i <= 4; i++ {
		x := x0 + float64(i)/4*(x1-x0)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`, px(x), padT+ph+14, html.EscapeString(xlabel(x)))
	}
	if c.XLabel != "" {
		fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle" fill="#666">%s</text>`, padL+pw/2, c.Height-4, html.EscapeString(c.XLabel))
	}
	fmt.Fprintf(&b, `<text x="4" y="%d" fill="#666">replicas</text>`, padT-6)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#666">queries</text>`, c.Width-4, padT-6)

	for si, s := range c.Series {
		color := palette[si%len(palette)]
		top := leftMax
		if s.Right {
			top = rightMax
		}
		var d strings.Builder
		pen := false
		for i, v := range s.Values {
			if i >= len(c.X) {
				break
			}
			if math.IsNaN(v) {
				pen = false
				continue
			}
			x, y := px(c.X[i]), py(v, top)
			switch {
			case !pen:
				fmt.Fprintf(&d, "M%.1f %.1f", x, y)
			case s.Step:
				fmt.Fprintf(&d, "H%.1fV%.1f", x, y)
			default:
				fmt.Fprintf(&d, "L%.1f %.1f", x, y)
			}
			pen = true
		}
		dash := ""
		if s.Right {
			dash = ` stroke-dasharray="4 2"`
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.6"%s/>`, d.String(), color, dash)
		lx := padL + si*120
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="24" y2="24" stroke="%s" stroke-width="2"%s/><text x="%d" y="28">%s</text>`,
			lx, lx+14, color, dash, lx+18, html.EscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	_, err := io.WriteString(w, b.String())
	return err
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
