package daemon

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/autoscalerd/autoscalerd/decisionlog"
	"github.com/autoscalerd/autoscalerd/engine"
	"github.com/autoscalerd/autoscalerd/policy"
)

// decisionsView is the answer of GET /v1/policies/{name}/decisions and GET /v1/decisions.
type decisionsView struct {
	Policy string `json:"policy,omitempty"`
	// Source is "log" (the durable decision log) or "memory" (the last decisions of
	// running policies, when decision_log is disabled or unusable).
	Source    string               `json:"source"`
	Decisions []decisionlog.Record `json:"decisions"`
}

// parseDecisionQuery reads since, until (RFC 3339 or a duration before now) and limit.
func parseDecisionQuery(v url.Values, now time.Time) (decisionlog.Query, error) {
	var q decisionlog.Query
	var err error
	if q.Since, err = decisionlog.ParseTime(v.Get("since"), now); err != nil {
		return q, fmt.Errorf("since: %w", err)
	}
	if q.Until, err = decisionlog.ParseTime(v.Get("until"), now); err != nil {
		return q, fmt.Errorf("until: %w", err)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > decisionlog.MaxLimit {
			return q, fmt.Errorf("limit: %q is not a count from 1 to %d", s, decisionlog.MaxLimit)
		}
		q.Limit = n
	}
	return q, nil
}

func (d *Daemon) handleDecisions(w http.ResponseWriter, r *http.Request) {
	q, err := parseDecisionQuery(r.URL.Query(), time.Now())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	q.Policy = r.PathValue("name")
	out := decisionsView{Policy: q.Policy, Source: "log", Decisions: []decisionlog.Record{}}
	if dl := d.obs.dlog; dl != nil {
		recs, err := dl.Query(q)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		out.Decisions = append(out.Decisions, recs...)
	} else {
		out.Source = "memory"
		out.Decisions = append(out.Decisions, d.recentDecisions(q)...)
	}
	// A policy that is gone may still have history; one that never was has none.
	if q.Policy != "" && len(out.Decisions) == 0 {
		if _, _, _, ok := d.engine.Detail(q.Policy); !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such policy and no decisions of it: " + q.Policy})
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// recentDecisions answers a query from the engine's memory: every decision of the last
// few dozen ticks, holds included.
func (d *Daemon) recentDecisions(q decisionlog.Query) []decisionlog.Record {
	names := []string{q.Policy}
	if q.Policy == "" {
		names = names[:0]
		for _, s := range d.engine.Statuses() {
			names = append(names, s.Name)
		}
	}
	var out []decisionlog.Record
	for _, name := range names {
		_, ds, _, ok := d.engine.Detail(name)
		if !ok {
			continue
		}
		for _, dec := range ds {
			if (!q.Since.IsZero() && dec.Time.Before(q.Since)) || (!q.Until.IsZero() && dec.Time.After(q.Until)) {
				continue
			}
			out = append(out, record(engine.Tick{Policy: &policy.Policy{Name: name}, Decision: dec}))
		}
	}
	decisionlog.SortByTime(out)
	limit := q.Limit
	if limit <= 0 {
		limit = decisionlog.DefaultLimit
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}
