package simulate

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

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
