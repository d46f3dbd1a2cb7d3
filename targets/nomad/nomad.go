// Package nomad scales a Nomad job's task group through the Job Scale API, so every action
// shows up as a scaling event (`nomad job scaling-events`) with the policy and its reason.
package nomad

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/nomadclient"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/targets"
)

//go:embed sample.conf
var sample string

// MetaPolicy is the scaling event meta key that names the policy that scaled.
const MetaPolicy = "autoscalerd.policy"

// ErrNotFound is wrapped by errors about a job or group that does not exist.
var ErrNotFound = errors.New("not found")

// Config is the `nomad` target kind.
type Config struct {
	Job       string         `yaml:"job" required:"true"`
	Group     string         `yaml:"group" required:"true"`
	Namespace string         `yaml:"namespace"`
	Address   string         `yaml:"address"`
	Token     configs.Secret `yaml:"token"`
	Region    string         `yaml:"region"`
}

func init() {
	targets.Register("nomad", sample, func() *Config { return &Config{Namespace: api.DefaultNamespace} }, New)
}

// RefuseKey implements configs.KeyRefuser: a drain block is what people reach for, and
// this target cannot honour one.
func (c *Config) RefuseKey(key string) string {
	if key != "drain" {
		return ""
	}
	return "nomad targets cannot drain: Nomad chooses which allocations a scale-down stops, so autoscalerd cannot pick the idle ones or wait for busy ones; set the task's kill_timeout and kill_signal so a worker can finish its job (see docs/scale-in.md; drain works on compose and process targets)"
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	for field, v := range map[string]string{"job": c.Job, "group": c.Group, "namespace": c.Namespace} {
		if ch.Has(field) && strings.TrimSpace(v) == "" {
			ch.Errorf(field, "must not be empty")
		}
	}
	if err := nomadclient.CheckAddress(c.Address); err != nil {
		ch.Errorf("address", "%v", err)
	}
}

// TargetKey implements configs.Keyed: one task group of one job in one cluster.
func (c *Config) TargetKey() string {
	key := c.Namespace + "/" + c.Job + "/" + c.Group
	if c.Region != "" {
		key += "@" + c.Region
	}
	if c.Address != "" {
		key += "@" + nomadclient.Redact(c.Address)
	}
	return key
}

type target struct {
	cfg  *Config
	name string // `job "web" group "api"`, the prefix of every message

	client *shared.Conn[*api.Client]
	// ours is the count this target last asked for, so Watch can tell our own changes
	// from outside ones; -1 when none is pending.
	ours atomic.Int64
}

// New returns the target for cfg. It connects on first use.
func New(cfg *Config, _ targets.Deps) (targets.Target, error) {
	name := fmt.Sprintf("job %q group %q", cfg.Job, cfg.Group)
	if cfg.Namespace != api.DefaultNamespace {
		name = fmt.Sprintf("job %q group %q (namespace %q)", cfg.Job, cfg.Group, cfg.Namespace)
	}
	t := &target{cfg: cfg, name: name}
	// The target's own client: its namespace and token are part of it. A failure to make
	// one (an unreadable NOMAD_CACERT) is retried on the next call.
	t.client = shared.New(nil, shared.Spec[*api.Client]{
		Open: func(context.Context) (*api.Client, error) {
			return nomadclient.New(nomadclient.Options{
				Address: cfg.Address, Token: cfg.Token.Value(),
				Namespace: cfg.Namespace, Region: cfg.Region,
			})
		},
		Close: func(c *api.Client) error { c.Close(); return nil },
	})
	t.ours.Store(-1)
	return t, nil
}

func (t *target) api(ctx context.Context) (*api.Client, error) {
	c, err := t.client.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("nomad: %s: %w", t.name, err)
	}
	return c, nil
}

// group returns the scale status of the configured group.
func (t *target) group(ctx context.Context) (api.TaskGroupScaleStatus, error) {
	c, err := t.api(ctx)
	if err != nil {
		return api.TaskGroupScaleStatus{}, err
	}
	st, _, err := c.Jobs().ScaleStatus(t.cfg.Job, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		if nomadclient.IsNotFound(err) {
			return api.TaskGroupScaleStatus{}, fmt.Errorf("nomad: %s: job %w in namespace %q", t.name, ErrNotFound, t.cfg.Namespace)
		}
		return api.TaskGroupScaleStatus{}, fmt.Errorf("nomad: %s: scale status: %w", t.name, err)
	}
	g, ok := st.TaskGroups[t.cfg.Group]
	if !ok {
		return api.TaskGroupScaleStatus{}, fmt.Errorf("nomad: %s: group %w (the job has %s)", t.name, ErrNotFound, groupList(st.TaskGroups))
	}
	if st.JobStopped {
		return g, errStopped
	}
	return g, nil
}

// errStopped is returned by group with the status of a stopped job's group.
var errStopped = errors.New("stopped")

func groupList(groups map[string]api.TaskGroupScaleStatus) string {
	if len(groups) == 0 {
		return "no groups"
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	return "groups " + strings.Join(names, ", ")
}

// Status reports the group's desired count (what the policy decides from) and how many of
// its allocations are running.
func (t *target) Status(ctx context.Context) (targets.Status, error) {
	g, err := t.group(ctx)
	if errors.Is(err, errStopped) {
		// Scaling a stopped job only rewrites its count; nothing would run.
		return targets.Status{}, fmt.Errorf("nomad: %s: the job is stopped; start it (nomad job start) or pause the policy", t.name)
	}
	if err != nil {
		return targets.Status{}, err
	}
	return targets.Status{Replicas: g.Desired, Ready: g.Running}, nil
}

// Scale sets the group's count through the Job Scale API, which records a scaling event.
func (t *target) Scale(ctx context.Context, replicas int, why targets.Reason) error {
	c, err := t.api(ctx)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("autoscalerd policy %q: %s", why.Policy, why.Message)
	if why.Message == "" {
		msg = fmt.Sprintf("autoscalerd policy %q: scale to %d", why.Policy, replicas)
	}
	meta := map[string]any{MetaPolicy: why.Policy}
	count := replicas
	t.ours.Store(int64(replicas))
	_, _, err = c.Jobs().Scale(t.cfg.Job, t.cfg.Group, &count, msg, false, meta, (&api.WriteOptions{}).WithContext(ctx))
	if err == nil {
		return nil
	}
	t.ours.Store(-1)
	text := err.Error()
	switch code := nomadclient.StatusCode(err); {
	case strings.Contains(text, "scaling blocked due to active deployment"):
		// The deployment will finish (or fail); scaling then works. No cooldown meanwhile.
		return fmt.Errorf("nomad: %s: %w: scaling blocked by the job's active deployment, retrying next tick", t.name, targets.ErrNoop)
	case code == http.StatusNotFound:
		return fmt.Errorf("nomad: %s: job %w in namespace %q", t.name, ErrNotFound, t.cfg.Namespace)
	case code == http.StatusBadRequest && strings.Contains(text, "does not exist in job"):
		return fmt.Errorf("nomad: %s: group %w in the job", t.name, ErrNotFound)
	}
	return fmt.Errorf("nomad: %s: scale to %d: %w", t.name, replicas, err)
}

// watchWait bounds one blocking query of Watch; Nomad answers earlier when the job changes.
const watchWait = 5 * time.Minute

// Watch implements targets.Watcher: a blocking query on the job's scale status wakes up
// when the job changes, and a desired count this target did not ask for (someone ran
// `nomad job scale`, or re-submitted the job) asks the policy for an early evaluation.
func (t *target) Watch(ctx context.Context, changed func()) error {
	c, err := t.api(ctx)
	if err != nil {
		return err
	}
	var index uint64
	last := -1
	retry := time.Second
	for ctx.Err() == nil {
		st, meta, err := c.Jobs().ScaleStatus(t.cfg.Job, (&api.QueryOptions{WaitIndex: index, WaitTime: watchWait}).WithContext(ctx))
		if err != nil {
			// Status reports the error on the policy's tick; here only wait and retry.
			select {
			case <-ctx.Done():
			case <-time.After(retry):
			}
			retry = min(2*retry, time.Minute)
			index = 0
			continue
		}
		retry = time.Second
		index = meta.LastIndex
		g, ok := st.TaskGroups[t.cfg.Group]
		if !ok {
			continue
		}
		if g.Desired != last && last >= 0 && int64(g.Desired) != t.ours.Swap(-1) {
			changed()
		}
		last = g.Desired
	}
	return nil
}

// LastScaled implements targets.Historian from the group's scaling events. Events that
// record an error or carry no count (messages only) are not actions.
func (t *target) LastScaled(ctx context.Context) (targets.Scaling, bool, error) {
	g, err := t.group(ctx)
	if err != nil && !errors.Is(err, errStopped) {
		// A stopped job's events still count: they date its last action.
		return targets.Scaling{}, false, err
	}
	var last *api.ScalingEvent
	for i := range g.Events {
		e := &g.Events[i]
		if e.Error || e.Count == nil {
			continue
		}
		if last == nil || e.Time > last.Time {
			last = e
		}
	}
	if last == nil {
		return targets.Scaling{}, false, nil
	}
	return targets.Scaling{
		At:      time.Unix(0, int64(last.Time)),
		From:    int(last.PreviousCount),
		To:      int(*last.Count),
		Message: last.Message,
	}, true, nil
}

// Close drops the client's idle connections.
func (t *target) Close(context.Context) error { return t.client.Close() }
