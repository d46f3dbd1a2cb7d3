package simulate

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Pool makes a replay closed-loop. A recorded backlog does not answer to the replicas a
// different policy would have run, so it cannot compare policies; a pool can. Instead of
// reading the backlog from the trace, the replay computes it: work arrives at the rate of
// a trace column (tasks per second, holding between rows), and each replica completes
// Throughput tasks a second (or the value of ThroughputColumn at the time) while there is
// work. Tasks are served first in, first out, so the age of the oldest waiting task is
// known at every moment.
type Pool struct {
	// Backlog is the query the pool feeds with the number of tasks waiting.
	Backlog string
	// Arrivals is the trace column holding the arrival rate, tasks per second.
	Arrivals string
	// Throughput is what one replica completes per second; ThroughputColumn, when set, is
	// the trace column that holds it instead.
	Throughput       float64
	ThroughputColumn string
	// Counter, when set, is a query fed with the count of tasks arrived since the start
	// (for a policy's throughput.arrivals).
	Counter string
	// Age, when set, is a query fed with the oldest waiting task's age in seconds.
	Age string
}

// ParseThroughput reads a --pool-throughput value: a number of tasks per replica per
// second, or the name of a trace column.
func (p *Pool) ParseThroughput(s string) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		p.Throughput = f
		return
	}
	p.ThroughputColumn = s
}

// fed reports whether the pool, not the trace, gives query q its values.
func (p *Pool) fed(q string) bool {
	return p != nil && q != "" && (q == p.Backlog || q == p.Counter || q == p.Age)
}

// column reports whether trace column c is the pool's input.
func (p *Pool) column(c string) bool {
	return p != nil && (c == p.Arrivals || (p.ThroughputColumn != "" && c == p.ThroughputColumn))
}

func (p *Pool) check(columns []string) error {
	if p.Backlog == "" || p.Arrivals == "" {
		return fmt.Errorf("a pool needs the backlog query and the arrivals column")
	}
	for _, c := range []string{p.Arrivals, p.ThroughputColumn} {
		if c != "" && !contains(columns, c) {
			return fmt.Errorf("the pool's column %q is not in the trace", c)
		}
	}
	if p.ThroughputColumn == "" && !(p.Throughput > 0) {
		return fmt.Errorf("the pool's throughput must be a positive number of tasks per replica per second, or a trace column")
	}
	return nil
}

// cohort is the tasks that arrived in one step of the pool's clock.
type cohort struct {
	t time.Time
	n float64
}

// poolState is the pool during a replay.
type poolState struct {
	cfg     *Pool
	tr      *Trace
	arrCol  int
	tputCol int
	queue   []cohort
	backlog float64
	arrived float64
	// tput is the per-replica throughput in the pool's last step.
	tput float64
}

func newPoolState(cfg *Pool, tr *Trace) *poolState {
	ps := &poolState{cfg: cfg, tr: tr, arrCol: -1, tputCol: -1}
	for j, c := range tr.Columns {
		switch c {
		case cfg.Arrivals:
			ps.arrCol = j
		case cfg.ThroughputColumn:
			ps.tputCol = j
		}
	}
	return ps
}

// poolStep is the pool's clock: fine enough that a backlog emptied within a tick is seen.
const poolStep = time.Second

// run advances the pool from `from` by d with replicas running and returns the oldest
// waiting task's largest age in that time.
func (ps *poolState) run(from time.Time, d time.Duration, replicas int) time.Duration {
	worst := ps.age(from)
	row := 0
	for t := from; t.Before(from.Add(d)); t = t.Add(poolStep) {
		for row+1 < len(ps.tr.Times) && !ps.tr.Times[row+1].After(t) {
			row++
		}
		rate := cell(ps.tr.Values[row], ps.arrCol)
		tput := ps.cfg.Throughput
		if ps.tputCol >= 0 {
			tput = cell(ps.tr.Values[row], ps.tputCol)
		}
		ps.tput = tput
		s := poolStep.Seconds()
		if in := rate * s; in > 0 {
			ps.queue = append(ps.queue, cohort{t: t, n: in})
			ps.backlog += in
			ps.arrived += in
		}
		capacity := tput * float64(replicas) * s
		for capacity > 0 && len(ps.queue) > 0 {
			take := math.Min(capacity, ps.queue[0].n)
			ps.queue[0].n -= take
			ps.backlog -= take
			capacity -= take
			if ps.queue[0].n <= 1e-9 {
				ps.queue = ps.queue[1:]
			}
		}
		if ps.backlog < 1e-9 {
			ps.backlog = 0
		}
		worst = max(worst, ps.age(t.Add(poolStep)))
	}
	return worst
}

// age is how long the oldest waiting task has waited at now.
func (ps *poolState) age(now time.Time) time.Duration {
	if len(ps.queue) == 0 {
		return 0
	}
	return now.Sub(ps.queue[0].t)
}

// value is what the pool feeds query q at now.
func (ps *poolState) value(q string, now time.Time) float64 {
	switch q {
	case ps.cfg.Backlog:
		return math.Round(ps.backlog) // a queue holds whole tasks
	case ps.cfg.Counter:
		return math.Floor(ps.arrived)
	}
	return ps.age(now).Seconds()
}

// cell is a trace value, 0 for an empty cell (no work arriving, no throughput).
func cell(row []float64, j int) float64 {
	if j < 0 || math.IsNaN(row[j]) {
		return 0
	}
	return row[j]
}

// Summary is what a whole replay cost and how well it served.
type Summary struct {
	// ReplicaMinutes is the replicas run over the replay, in replica-minutes.
	ReplicaMinutes float64
	// WorstAge is the longest any task waited (a pool replay only).
	WorstAge time.Duration
	// WorstBacklog is the largest backlog seen at a tick (a pool replay only).
	WorstBacklog float64
	// Leftover is the tasks still waiting when the replay ends, and LeftoverMinutes the
	// replica-minutes they take at the pool's throughput then (a pool replay only). A
	// policy that keeps a longer queue ends with more of the trace's work not done; what
	// it ran does not include that work, so Cost adds it.
	Leftover, LeftoverMinutes float64
}

// Summarize adds up a replay of a policy evaluated every interval.
func Summarize(ticks []Tick, interval time.Duration) Summary {
	var s Summary
	for _, t := range ticks {
		s.ReplicaMinutes += float64(t.Replicas) * interval.Minutes()
		s.WorstAge = max(s.WorstAge, t.WorstAge)
		s.WorstBacklog = max(s.WorstBacklog, t.Backlog)
	}
	if n := len(ticks); n > 0 && ticks[n-1].LeftThroughput > 0 {
		s.Leftover = ticks[n-1].Left
		s.LeftoverMinutes = s.Leftover / ticks[n-1].LeftThroughput / 60
	}
	return s
}

// Cost is what the replay charges a policy for the trace's work: the replica-minutes it
// ran, plus those that the tasks it left waiting at the end take to complete (busy
// replicas at the throughput then: the least any policy spends on them). Every policy is
// charged so, whatever its queue; without it, a policy that keeps a longer queue is
// credited with work it never did.
func (s Summary) Cost() float64 { return s.ReplicaMinutes + s.LeftoverMinutes }

// String is the summary as `simulate` prints it.
func (s Summary) String() string {
	return fmt.Sprintf("replica-minutes %.1f, left waiting at the end %.0f (%.1f replica-minutes), worst age %s, worst backlog %.0f",
		s.ReplicaMinutes, s.Leftover, s.LeftoverMinutes, s.WorstAge.Round(time.Second), s.WorstBacklog)
}
