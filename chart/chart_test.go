package chart

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
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
