// Package simulate replays a recorded trace of query values through one policy's decision
// pipeline on a virtual clock (SPEC §6). It calls the same policy.Decide as the live
// engine; only the inputs come from a file and the target is imaginary.
package simulate

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
)

// Trace is a recorded series of query values: Times[i] holds Values[i] (one per column,
// NaN for an empty cell, which replays as a failed query).
type Trace struct {
	Columns []string
	Times   []time.Time
	Values  [][]float64
}

// Epoch is where traces whose time column counts seconds start on the virtual clock, so
// schedules in a replay see a definite date: Monday 2024-01-01 00:00 UTC.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// ReadTrace parses a trace CSV: a header `time,<query>...`, then rows whose time is
// seconds from the start or RFC 3339, in increasing order.
func ReadTrace(r io.Reader, name string) (*Trace, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the header: %w", name, err)
	}
	if len(head) < 1 || strings.TrimSpace(head[0]) != "time" {
		return nil, fmt.Errorf("%s:1: the first column must be \"time\"", name)
	}
	tr := &Trace{}
	for _, h := range head[1:] {
		tr.Columns = append(tr.Columns, strings.TrimSpace(h))
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		t, err := parseTime(strings.TrimSpace(rec[0]))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: time: %w", name, line, err)
		}
		if n := len(tr.Times); n > 0 && !t.After(tr.Times[n-1]) {
			return nil, fmt.Errorf("%s:%d: time %s is not after the previous row's", name, line, rec[0])
		}
		vals := make([]float64, len(tr.Columns))
		for i := range tr.Columns {
			cell := strings.TrimSpace(rec[i+1])
			if cell == "" {
				vals[i] = math.NaN()
				continue
			}
			v, err := strconv.ParseFloat(cell, 64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %q is not a number", name, line, tr.Columns[i], cell)
			}
			vals[i] = v
		}
		tr.Times = append(tr.Times, t)
		tr.Values = append(tr.Values, vals)
	}
	if len(tr.Times) == 0 {
		return nil, fmt.Errorf("%s: no rows", name)
	}
	return tr, nil
}

func parseTime(s string) (time.Time, error) {
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return Epoch.Add(time.Duration(secs * float64(time.Second))), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither seconds nor RFC 3339", s)
	}
	return t, nil
}

// Options tune a replay.
type Options struct {
	// StartReplicas is the imaginary target's count at the start; -1 means the policy's min.
	StartReplicas int
	// Until ends the replay early (relative to the first row); zero means the last row.
	Until time.Duration
	// Pool, when set, computes the backlog from arrivals and the replicas run (pool.go).
	Pool *Pool
}

// Tick is one row of the replay's output.
type Tick struct {
	Offset   time.Duration
	Values   []policy.Value
	Decision policy.Decision
	Replicas int
	// Backlog and WorstAge are the pool's, in a pool replay: the backlog at the tick, and
	// the oldest waiting task's largest age until the next tick.
	Backlog  float64
	WorstAge time.Duration
	// Left is the backlog when the tick's interval ends, and LeftThroughput the
	// per-replica throughput then (a pool replay only).
	Left, LeftThroughput float64
}

// errNoData stands in for a query whose trace cell is empty.
var errNoData = errors.New("no data in trace")

// Run replays tr through p at p's interval and returns one Tick per evaluation.
func Run(p *policy.Policy, tr *Trace, opts Options) ([]Tick, error) {
	if opts.Pool != nil {
		if err := opts.Pool.check(tr.Columns); err != nil {
			return nil, err
		}
		for _, q := range []string{opts.Pool.Backlog, opts.Pool.Counter, opts.Pool.Age} {
			if q != "" && !contains(p.Queries, q) {
				return nil, fmt.Errorf("the pool feeds query %q, which policy %q does not have (queries: %s)", q, p.Name, strings.Join(p.Queries, ", "))
			}
		}
	}
	col := make([]int, len(p.Queries))
	for i, q := range p.Queries {
		col[i] = -1
		for j, c := range tr.Columns {
			if c == q {
				col[i] = j
			}
		}
		if col[i] < 0 && !opts.Pool.fed(q) {
			return nil, fmt.Errorf("the trace has no column for query %q (columns: %s)", q, strings.Join(tr.Columns, ", "))
		}
	}
	for _, c := range tr.Columns {
		if !contains(p.Queries, c) && !opts.Pool.column(c) {
			return nil, fmt.Errorf("trace column %q is not a query of policy %q (queries: %s)", c, p.Name, strings.Join(p.Queries, ", "))
		}
	}
	start := tr.Times[0]
	end := tr.Times[len(tr.Times)-1]
	if opts.Until > 0 {
		end = start.Add(opts.Until)
	}
	replicas := p.Min
	if opts.StartReplicas >= 0 {
		replicas = opts.StartReplicas
	}
	var (
		st   policy.State
		row  int
		pool *poolState
	)
	if opts.Pool != nil {
		pool = newPoolState(opts.Pool, tr)
	}
	out := make([]Tick, 0, int(end.Sub(start)/p.Interval)+1)
	for now := start; !now.After(end); now = now.Add(p.Interval) {
		for row+1 < len(tr.Times) && !tr.Times[row+1].After(now) {
			row++
		}
		vals := make([]policy.Value, len(p.Queries))
		for i, c := range col {
			if opts.Pool.fed(p.Queries[i]) {
				vals[i] = policy.Value{V: pool.value(p.Queries[i], now)}
				continue
			}
			if v := tr.Values[row][c]; math.IsNaN(v) {
				vals[i] = policy.Value{Err: errNoData}
			} else {
				vals[i] = policy.Value{V: v}
			}
		}
		var d policy.Decision
		d, st = policy.Decide(p, st, policy.Inputs{Values: vals, Current: replicas}, now)
		st.Commit(d) // the simulated target follows every decision at once
		if !p.DryRun {
			replicas = d.To
		}
		tick := Tick{Offset: now.Sub(start), Values: vals, Decision: d, Replicas: replicas}
		if pool != nil {
			tick.Backlog = pool.backlog
			tick.WorstAge = pool.run(now, p.Interval, replicas)
			tick.Left, tick.LeftThroughput = pool.backlog, pool.tput
		}
		out = append(out, tick)
	}
	return out, nil
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
