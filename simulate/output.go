package simulate

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/autoscalerd/autoscalerd/chart"
	"github.com/autoscalerd/autoscalerd/policy"
)

// Header is the output's column names.
func Header(p *policy.Policy) []string {
	h := append([]string{"time"}, p.Queries...)
	return append(h, "raw", "desired", "replicas", "reason")
}

// Row formats one tick as output cells.
func Row(t Tick) []string {
	row := []string{num(t.Offset.Seconds())}
	for _, v := range t.Values {
		if v.Err != nil {
			row = append(row, "")
		} else {
			row = append(row, num(v.V))
		}
	}
	raw, desired := "", ""
	if t.Decision.Err == "" && t.Decision.Raw == t.Decision.Raw { // not NaN
		raw = num(t.Decision.Raw)
	}
	if t.Decision.Desired >= 0 {
		desired = strconv.Itoa(t.Decision.Desired)
	}
	return append(row, raw, desired, strconv.Itoa(t.Replicas), t.Decision.Reason)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// WriteCSV writes the replay as CSV.
func WriteCSV(w io.Writer, p *policy.Policy, ticks []Tick) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Header(p)); err != nil {
		return err
	}
	for _, t := range ticks {
		if err := cw.Write(Row(t)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes the replay as an aligned table for people.
func WriteTable(w io.Writer, p *policy.Policy, ticks []Tick) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(Header(p), "\t"))
	for _, t := range ticks {
		fmt.Fprintln(tw, strings.Join(Row(t), "\t"))
	}
	return tw.Flush()
}

// WriteSVG draws the replay: query values (right axis, dashed), desired and replicas
// (left axis) over time.
func WriteSVG(w io.Writer, p *policy.Policy, ticks []Tick) error {
	c := chart.Chart{Title: "simulate: " + p.Name, XLabel: "time from start", Width: 900, Height: 320, XFormat: chart.Seconds}
	desired := chart.Series{Name: "desired", Step: true}
	replicas := chart.Series{Name: "replicas", Step: true}
	queries := make([]chart.Series, len(p.Queries))
	for i, q := range p.Queries {
		queries[i] = chart.Series{Name: q, Right: true}
	}
	for _, t := range ticks {
		c.X = append(c.X, t.Offset.Seconds())
		for i, v := range t.Values {
			f := v.V
			if v.Err != nil {
				f = math.NaN()
			}
			queries[i].Values = append(queries[i].Values, f)
		}
		d := float64(t.Decision.Desired)
		if t.Decision.Desired < 0 {
			d = math.NaN()
		}
		desired.Values = append(desired.Values, d)
		replicas.Values = append(replicas.Values, float64(t.Replicas))
	}
	c.Series = append(append(queries, desired), replicas)
	return chart.SVG(w, c)
}
