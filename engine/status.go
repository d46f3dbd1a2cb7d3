package engine

import (
	"slices"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/targets/warm"
)

// Status is a policy's state as the HTTP API and `autoscalerd status` show it.
type Status struct {
	Name         string        `json:"name"`
	Target       string        `json:"target"`
	Current      int           `json:"current"`
	Ready        *int          `json:"ready,omitempty"`
	Desired      *int          `json:"desired"`
	Min          int           `json:"min"`
	Max          int           `json:"max"`
	Paused       bool          `json:"paused"`
	DryRun       bool          `json:"dry_run"`
	LastDecision *DecisionView `json:"last_decision"`
	LastError    string        `json:"last_error"`
	// StateError is the last failed save of the policy's state, until a save succeeds.
	StateError  string              `json:"state_error,omitempty"`
	Queries     map[string]*float64 `json:"queries"`
	QueryErrors map[string]string   `json:"query_errors,omitempty"`
	Interval    string              `json:"interval"`
	// Draining lists the replicas being drained and the recently drained (compose and
	// process targets with a drain block).
	Draining []DrainView `json:"draining,omitempty"`
	// WarmPool is the target's pool of standby replicas (compose and process targets
	// with a warm block), as the last tick saw it; its members are not in Current.
	WarmPool *warm.Info `json:"warm_pool,omitempty"`
	// QueryOrder is the query names in configuration order.
	QueryOrder []string `json:"-"`
}

// DecisionView is a decision as JSON.
type DecisionView struct {
	Time    time.Time     `json:"time"`
	From    int           `json:"from"`
	To      int           `json:"to"`
	Action  policy.Action `json:"action"`
	Desired *int          `json:"desired"`
	Reason  string        `json:"reason"`
	DryRun  bool          `json:"dry_run,omitempty"`
}

// View converts a decision for JSON.
func View(d policy.Decision) DecisionView {
	v := DecisionView{Time: d.Time, From: d.From, To: d.To, Action: d.Action, Reason: d.Reason, DryRun: d.DryRun}
	if d.Desired >= 0 {
		n := d.Desired
		v.Desired = &n
	}
	return v
}

// ring keeps the last keep decisions without copying on every tick.
type ring struct {
	buf   []policy.Decision
	start int
	keep  int // 0: keepDecisions
}

// decisionsKept is how many decisions each of n policies keeps in memory.
func decisionsKept(n int) int {
	return max(minKeepDecisions, min(keepDecisions, decisionBudget/max(n, 1)))
}

// add appends d, or replaces the newest entry when both are holds at the same count with
// the same desired count, so a steady state does not push the interesting decisions out.
//
// A steady state can also be two decisions taking turns: a dry run decides its action,
// which the target never follows, holds through the cooldown.up that action started, and
// decides it again. When d repeats the entry before the newest and both are steady, the
// two move up instead (the older of the turn, then d), and the ring keeps one of each.
func (r *ring) add(d policy.Decision) {
	if n := len(r.buf); n > 0 && steady(&d) {
		last := &r.buf[(r.start+n-1)%n]
		// A hold that only differs in the values read replaces the previous one, and so
		// does a dry run deciding again what the target never followed.
		if sameSteady(last, &d) {
			*last = d
			return
		}
		if n > 1 {
			prev := &r.buf[(r.start+n-2)%n]
			if steady(last) && sameSteady(prev, &d) {
				*prev, *last = *last, d
				return
			}
		}
	}
	keep := r.keep
	if keep <= 0 {
		keep = keepDecisions
	}
	if len(r.buf) > keep { // a reload added policies: the oldest go, and their memory
		r.buf, r.start = slices.Clone(r.list()[len(r.buf)-keep:]), 0
	}
	if len(r.buf) < keep {
		r.buf = append(r.buf, d)
		return
	}
	r.buf[r.start] = d
	r.start = (r.start + 1) % len(r.buf)
}

func steady(d *policy.Decision) bool { return d.Action == policy.Hold || d.DryRun }

func sameSteady(a, b *policy.Decision) bool {
	return a.Action == b.Action && a.DryRun == b.DryRun && a.From == b.From && a.To == b.To && a.Desired == b.Desired && a.Err == b.Err
}

// clone returns a copy that shares nothing with r.
func (r *ring) clone() ring {
	return ring{buf: append([]policy.Decision(nil), r.buf...), start: r.start, keep: r.keep}
}

// list returns the decisions oldest first.
func (r *ring) list() []policy.Decision {
	out := make([]policy.Decision, 0, len(r.buf))
	out = append(out, r.buf[r.start:]...)
	return append(out, r.buf[:r.start]...)
}

func (r *runner) status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Status{
		Name:       r.p.Name,
		Target:     r.p.Config.Target.Key(),
		Current:    r.current,
		Min:        r.p.Min,
		Max:        r.p.Max,
		Paused:     r.paused.Load(),
		DryRun:     r.p.DryRun,
		LastError:  r.lastErr,
		StateError: r.saveErr,
		Queries:    map[string]*float64{},
		QueryOrder: r.p.Queries,
		Interval:   configs.FormatDuration(r.p.Interval),
		Draining:   r.drainViews(time.Now()),
		WarmPool:   r.poolView(),
	}
	if r.ready >= 0 && r.last != nil {
		n := r.ready
		s.Ready = &n
	}
	if r.last != nil {
		v := View(*r.last)
		s.LastDecision = &v
		s.Desired = v.Desired
		s.Min, s.Max = r.last.Min, r.last.Max
	}
	for i, q := range r.p.Queries {
		if i < len(r.values) {
			if r.values[i].Err == nil {
				f := r.values[i].V
				s.Queries[q] = &f
				continue
			}
			if s.QueryErrors == nil {
				s.QueryErrors = map[string]string{}
			}
			s.QueryErrors[q] = r.values[i].Err.Error()
		}
		s.Queries[q] = nil
	}
	return s
}

func (r *runner) recent() ([]policy.Decision, []ChartPoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.decisions.list(), r.chart.points()
}
