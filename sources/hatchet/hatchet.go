// Package hatchet is the `hatchet` query kind: the number of queued (or running) tasks
// of a Hatchet tenant, or the age of the oldest of them, from its task-stats API.
package hatchet

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/sources"
	httpsrc "github.com/autoscalerd/autoscalerd/sources/http"
)

//go:embed sample.conf
var sample string

// DefaultURL is Hatchet Cloud.
const DefaultURL = "https://cloud.onhatchet.run"

// Config is the `hatchet` query kind.
type Config struct {
	TenantID string         `yaml:"tenant_id" required:"true"`
	Token    configs.Secret `yaml:"token" required:"true"`
	// URL is the Hatchet API's base URL; self-hosted installations set their own.
	URL string `yaml:"url"`
	// Tasks limits the sum to these task names; empty means every task.
	Tasks []string `yaml:"tasks"`
	// State is which count to sum: queued (waiting for a worker) or running.
	State string `yaml:"state"`
	// Measure is count (the sum of the totals) or oldest_age (seconds since the oldest
	// task in that state was queued or started).
	Measure string `yaml:"measure"`
	// TLS is for self-hosted installations behind a private CA.
	TLS configs.TLS `yaml:"tls"`
}

func init() {
	sources.Register("hatchet", sample, func() *Config {
		return &Config{URL: DefaultURL, State: "queued", Measure: sources.MeasureCount}
	}, New)
}

// Hatchet tenant IDs are UUIDs; checking the shape catches a tenant's name pasted instead.
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	switch {
	case !ch.Has("tenant_id"):
	case c.TenantID == "":
		ch.Errorf("tenant_id", "is empty (the tenant's UUID, shown in the Hatchet dashboard's settings)")
	case !uuidRE.MatchString(c.TenantID):
		ch.Errorf("tenant_id", "%q is not a tenant ID (a UUID such as 707d0855-80ab-4e1f-a156-f1c4546cbf52, shown in the Hatchet dashboard's settings)", c.TenantID)
	}
	if ch.Has("token") && !c.Token.IsSet() {
		ch.Errorf("token", "is empty (create an API token in the Hatchet dashboard's settings)")
	}
	if err := httpsrc.CheckURL(c.URL); err != nil {
		ch.Errorf("url", "%v", err)
	}
	if c.State != "queued" && c.State != "running" {
		ch.Errorf("state", "%q is not a task state (use queued or running)", c.State)
	}
	sources.CheckMeasure(ch, c.Measure)
	seen := map[string]bool{}
	for _, t := range c.Tasks {
		switch {
		case strings.TrimSpace(t) == "":
			ch.Errorf("tasks", "holds an empty task name")
		case seen[t]:
			ch.Errorf("tasks", "lists %q twice; it would be counted twice", t)
		}
		seen[t] = true
	}
}

type source struct {
	client *httpsrc.Client
	tenant string
	state  string
	age    bool
	tasks  []string
	log    *slog.Logger
	now    func() time.Time
	// absent holds the chosen tasks missing from the last response, so each absence is
	// logged once rather than on every tick.
	absent map[string]bool
}

// New returns the source for cfg. It does no I/O.
func New(cfg *Config, deps sources.Deps) (sources.Source, error) {
	log := deps.Log()
	ep := httpsrc.Endpoint{
		Method: http.MethodGet,
		URL:    strings.TrimRight(cfg.URL, "/") + "/api/v1/tenants/" + url.PathEscape(cfg.TenantID) + "/task-stats",
		Auth:   httpsrc.Auth{BearerToken: cfg.Token},
		TLS:    cfg.TLS,
	}
	return &source{
		client: httpsrc.NewClient(ep, log),
		tenant: cfg.TenantID,
		state:  cfg.State,
		age:    cfg.Measure == sources.MeasureOldestAge,
		tasks:  cfg.Tasks,
		log:    log,
		now:    time.Now,
		absent: map[string]bool{},
	}, nil
}

// Value sums <task>.<state>.total over the chosen tasks (every task when none are chosen),
// or with measure oldest_age returns the age of the earliest <task>.<state>.oldest.
//
// The response holds an entry only for tasks that have queued or running runs: the
// stats are aggregated from the runs that exist, and a task with none has nothing to
// aggregate. A chosen task that is absent therefore counts 0, as does a task with
// running but no queued runs (no "queued" entry). That is also what a mistyped task
// name looks like, which is why the first absence is logged with the names present.
func (s *source) Value(ctx context.Context) (float64, error) {
	body, err := s.client.FetchJSON(ctx)
	if err != nil {
		var se *httpsrc.StatusError
		if errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden) {
			return 0, fmt.Errorf("hatchet: %w (check that token is a valid API token of tenant %s)", err, s.tenant)
		}
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return 0, fmt.Errorf("hatchet: %w (check tenant_id, and url for a self-hosted Hatchet)", err)
		}
		return 0, fmt.Errorf("hatchet: %w", err)
	}
	doc := gjson.ParseBytes(body)
	if !doc.IsObject() {
		return 0, fmt.Errorf("hatchet: GET %s: the response is %s, not task stats (an object keyed by task name)",
			s.client.URL(), s.client.Scrub(httpsrc.Describe(doc)))
	}
	stats := map[string]gjson.Result{}
	var names []string
	doc.ForEach(func(k, v gjson.Result) bool {
		stats[k.String()] = v
		names = append(names, k.String())
		return true
	})
	chosen := s.tasks
	if len(chosen) == 0 {
		chosen = names
	}
	var sum float64
	var oldest time.Time
	for _, task := range chosen {
		st, ok := stats[task]
		if !ok {
			if !s.absent[task] {
				s.absent[task] = true
				s.log.Debug("hatchet task not in task stats; counting 0 (no queued or running runs, or a misspelt name)",
					"task", task, "tenant", s.tenant, "tasks_present", names)
			}
			continue
		}
		delete(s.absent, task)
		n, err := s.total(task, st)
		if err != nil {
			return 0, fmt.Errorf("hatchet: GET %s: %w", s.client.URL(), err)
		}
		sum += n
		if s.age && n > 0 {
			t, err := s.oldest(task, st)
			if err != nil {
				return 0, fmt.Errorf("hatchet: GET %s: %w", s.client.URL(), err)
			}
			if oldest.IsZero() || t.Before(oldest) {
				oldest = t
			}
		}
	}
	if s.age {
		if oldest.IsZero() {
			return 0, nil // nothing in that state: nothing has waited
		}
		return sources.AgeSeconds(s.now(), oldest), nil
	}
	return sum, nil
}

// oldest is the timestamp of one task's oldest run in the source's state. A task with
// runs in that state and no timestamp is an error, not an age of 0: a missing age must
// not look like an empty queue.
func (s *source) oldest(task string, st gjson.Result) (time.Time, error) {
	v := st.Get(s.state + ".oldest")
	if !v.Exists() || v.Type == gjson.Null {
		return time.Time{}, fmt.Errorf("task %q: %s has runs but no oldest timestamp (this Hatchet version may not report it; use measure: count)", task, s.state)
	}
	t, err := time.Parse(time.RFC3339Nano, v.String())
	if err != nil {
		return time.Time{}, fmt.Errorf("task %q: %s.oldest: %q is not an RFC 3339 timestamp", task, s.state, s.client.Scrub(v.String()))
	}
	return t, nil
}

// total is one task's count in the source's state.
func (s *source) total(task string, st gjson.Result) (float64, error) {
	if !st.IsObject() {
		return 0, fmt.Errorf("task %q: stats are %s, not an object", task, s.client.Scrub(httpsrc.Describe(st)))
	}
	state := st.Get(s.state)
	if !state.Exists() {
		return 0, nil
	}
	total := state.Get("total")
	if !total.Exists() {
		return 0, fmt.Errorf("task %q: %s has no total", task, s.state)
	}
	n, err := httpsrc.Number(total)
	if err != nil {
		return 0, fmt.Errorf("task %q: %s.total: %w", task, s.state, err)
	}
	return n, nil
}

// Close drops the idle connections.
func (s *source) Close() error { return s.client.Close() }
