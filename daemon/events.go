package daemon

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/decisionlog"
	"github.com/autoscalerd/autoscalerd/engine"
	"github.com/autoscalerd/autoscalerd/notify"
	"github.com/autoscalerd/autoscalerd/policy"
)

// observer is the engine's Observer: it writes the decision log and turns ticks and
// pauses into notifications. Both are quick on the policy's loop: the notifier only
// queues, and the log writes one line (fsyncing only changes and failures).
type observer struct {
	dlog     *decisionlog.Log // nil when disabled or unusable
	notifier *notify.Notifier
	log      *slog.Logger
	// logErrAt rate-limits warnings about a failing decision log (a full disk would
	// otherwise warn on every tick of every policy).
	logErrAt atomic.Int64
}

var _ engine.Observer = (*observer)(nil)

// Decided implements engine.Observer.
func (o *observer) Decided(t engine.Tick) {
	d := t.Decision
	if r := record(t); o.dlog.Admit(&r) {
		// Most holds are not recorded: their values are only looked at for those that are.
		recordValues(&r, t)
		o.write(r)
	}
	for _, x := range t.DrainsTimedOut {
		o.notifier.Notify(notify.Event{Kind: configs.EventDrainTimedOut, Policy: t.Policy.Name, From: d.From, To: d.To, Time: x.Ended,
			Reason: fmt.Sprintf("replica %s did not go idle within its drain timeout (drained since %s, %s); it was stopped with its work cut short",
				x.Replica, x.Since.Format(time.RFC3339), x.Reason)})
	}
	if t.Repeat {
		return // a dry run deciding what it decided a tick ago: the log samples it as a hold
	}
	ev := notify.Event{Policy: t.Policy.Name, From: d.From, To: d.To, Reason: d.Reason, DryRun: d.DryRun, Time: d.Time}
	switch {
	case t.ScaleErr != nil:
		ev.Kind, ev.To, ev.Error = configs.EventScaleFailed, t.Attempted, t.ScaleErr.Error()
		o.notifier.Notify(ev)
	case d.Action != policy.Hold:
		ev.Kind = configs.EventScaled
		o.notifier.Notify(ev)
	}
	switch {
	case t.Fallback && !t.WasFallback:
		ev.Kind, ev.To, ev.Error = configs.EventFallbackEntered, d.To, ""
		o.notifier.Notify(ev)
	case !t.Fallback && t.WasFallback:
		ev.Kind, ev.To, ev.Error = configs.EventFallbackLeft, d.To, ""
		o.notifier.Notify(ev)
	}
}

// Paused implements engine.Observer.
func (o *observer) Paused(p engine.Pause) {
	kind, action, reason := configs.EventResumed, "resumed", "resumed over the API"
	if p.Paused {
		kind, action, reason = configs.EventPaused, "paused", "paused over the API: decisions are recorded, the target is not scaled"
	}
	o.append(decisionlog.Record{Time: p.Time, Policy: p.Policy, Action: action, From: p.Current, To: p.Current, Reason: reason})
	o.notifier.Notify(notify.Event{Kind: kind, Policy: p.Policy, From: p.Current, To: p.Current, Reason: reason, Time: p.Time})
}

// config tells the sinks about a reload.
func (o *observer) config(err error) {
	if err != nil {
		o.notifier.Notify(notify.Event{Kind: configs.EventConfigFailed, Error: err.Error()})
		return
	}
	o.notifier.Notify(notify.Event{Kind: configs.EventConfigReloaded})
}

func (o *observer) append(r decisionlog.Record) {
	if o.dlog.Admit(&r) {
		o.write(r)
	}
}

func (o *observer) write(r decisionlog.Record) {
	if err := o.dlog.Write(r); err != nil {
		now := time.Now().UnixNano()
		if last := o.logErrAt.Load(); now-last > int64(time.Minute) && o.logErrAt.CompareAndSwap(last, now) {
			o.log.Warn("decision log: a record was not written (warning at most once a minute)", "policy", r.Policy, "err", err)
		}
	}
}

// record turns a tick into a decision-log record.
func record(t engine.Tick) decisionlog.Record {
	d := t.Decision
	r := decisionlog.Record{Time: d.Time, Policy: t.Policy.Name, Action: d.Action.String(), From: d.From, To: d.To,
		Min: d.Min, Max: d.Max, Reason: d.Reason, DryRun: d.DryRun, Repeat: t.Repeat}
	if d.Desired >= 0 {
		n := d.Desired
		r.Desired = &n
	}
	switch {
	case t.ScaleErr != nil:
		r.Failed, r.Error = true, t.ScaleErr.Error()
	case t.TargetErr != nil:
		r.Failed, r.Error = true, t.TargetErr.Error()
	case d.Err != "":
		r.Error = "expression: " + d.Err
	}
	return r
}

// recordValues adds the tick's query values to its record (and, when nothing else
// failed, the first failed query as its error).
func recordValues(r *decisionlog.Record, t engine.Tick) {
	if len(t.Values) > 0 {
		r.Values = make(map[string]*float64, len(t.Values))
		for i, v := range t.Values {
			if i >= len(t.Policy.Queries) {
				break
			}
			if v.Err != nil {
				r.Values[t.Policy.Queries[i]] = nil
				if r.Error == "" {
					r.Error = "query " + t.Policy.Queries[i] + ": " + v.Err.Error()
				}
				continue
			}
			x := v.V
			r.Values[t.Policy.Queries[i]] = &x
		}
	}
}
