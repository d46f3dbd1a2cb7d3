// Package swarm scales a Docker Swarm service by setting its replica count.
package swarm

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/dockerapi"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/targets"
)

//go:embed sample.conf
var sample string

// Config is the `swarm` target kind.
type Config struct {
	Service string `yaml:"service" required:"true"`
}

func init() {
	targets.Register("swarm", sample, func() *Config { return &Config{} }, New)
}

// TargetKey implements configs.Keyed: one policy per service.
func (c *Config) TargetKey() string { return c.Service }

// RefuseKey implements configs.KeyRefuser: a drain block is what people reach for, and
// this target cannot honour one.
func (c *Config) RefuseKey(key string) string {
	if key != "drain" {
		return ""
	}
	return "swarm targets cannot drain: Swarm chooses which tasks a scale-down stops, so autoscalerd cannot pick the idle ones or wait for busy ones; give the service a stop_grace_period long enough for a job and a worker that finishes its job on SIGTERM (see docs/scale-in.md; drain works on compose and process targets)"
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	if ch.Has("service") && c.Service == "" {
		ch.Errorf("service", "must not be empty")
	}
}

// api is the part of the Engine API the target uses.
type api interface {
	ServiceInspect(ctx context.Context, id string, options client.ServiceInspectOptions) (client.ServiceInspectResult, error)
	ServiceUpdate(ctx context.Context, id string, options client.ServiceUpdateOptions) (client.ServiceUpdateResult, error)
	TaskList(ctx context.Context, options client.TaskListOptions) (client.TaskListResult, error)
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
}

// maxAttempts bounds the retries when another writer updates the service between our
// inspect and our update; each retry re-reads the service, so it only takes longer than
// one round when someone else keeps writing.
const maxAttempts = 8

// Target scales one swarm service.
type Target struct {
	cfg Config
	log *slog.Logger

	cli *shared.Conn[*client.Client]

	// beforeUpdate, when set (tests), runs between the inspect and the update of each attempt.
	beforeUpdate func(attempt int)
	// retried counts updates rejected as out of sequence and retried.
	mu      sync.Mutex
	retried int
}

// New returns the target for cfg. It does no I/O.
func New(cfg *Config, deps targets.Deps) (targets.Target, error) {
	log := deps.Log()
	return &Target{
		cfg: *cfg,
		cli: dockerapi.Shared(deps.Shared, deps.DockerHost),
		log: log.With("target", "swarm", "service", cfg.Service),
	}, nil
}

func (t *Target) client(ctx context.Context) (api, error) {
	c, err := t.cli.Get(ctx)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Close implements targets.Closer.
func (t *Target) Close(context.Context) error { return t.cli.Close() }

func (t *Target) errorf(format string, args ...any) error {
	return fmt.Errorf("swarm service %s: "+format, append([]any{t.cfg.Service}, args...)...)
}

// inspect returns the service, refusing modes without a replica count.
func (t *Target) inspect(ctx context.Context, c api) (swarm.Service, error) {
	res, err := c.ServiceInspect(ctx, t.cfg.Service, client.ServiceInspectOptions{})
	if err != nil {
		return swarm.Service{}, t.errorf("inspect: %w", err)
	}
	svc := res.Service
	m := svc.Spec.Mode
	switch {
	case m.Replicated != nil:
		return svc, nil
	case m.Global != nil:
		return svc, t.errorf("is in global mode (one task per node); only replicated services can be scaled")
	default:
		return svc, t.errorf("is a job, not a replicated service; only replicated services can be scaled")
	}
}

// Status implements targets.Target: Replicas is the desired count, Ready the running tasks.
func (t *Target) Status(ctx context.Context) (targets.Status, error) {
	c, err := t.client(ctx)
	if err != nil {
		return targets.Status{}, err
	}
	svc, err := t.inspect(ctx, c)
	if err != nil {
		return targets.Status{}, err
	}
	tasks, err := t.runningTasks(ctx, c, svc.ID)
	if err != nil {
		return targets.Status{}, err
	}
	st := targets.Status{Ready: len(tasks)}
	if r := svc.Spec.Mode.Replicated.Replicas; r != nil {
		st.Replicas = int(*r)
	}
	return st, nil
}

func (t *Target) runningTasks(ctx context.Context, c api, serviceID string) ([]swarm.Task, error) {
	res, err := c.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.
		Add("service", serviceID).Add("desired-state", "running")})
	if err != nil {
		return nil, t.errorf("listing tasks: %w", err)
	}
	var out []swarm.Task
	for _, task := range res.Items {
		if task.Status.State == swarm.TaskStateRunning {
			out = append(out, task)
		}
	}
	return out, nil
}

// Scale implements targets.Target: it sets Spec.Mode.Replicated.Replicas with the version
// index it read, and when another writer got in between ("update out of sequence") it
// reads the service again and retries, so a concurrent change of anything else in the
// spec is never overwritten.
func (t *Target) Scale(ctx context.Context, n int, why targets.Reason) error {
	if n < 0 {
		return t.errorf("cannot scale to %d replicas", n)
	}
	c, err := t.client(ctx)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		svc, err := t.inspect(ctx, c)
		if err != nil {
			return err
		}
		cur := svc.Spec.Mode.Replicated.Replicas
		if cur != nil && int(*cur) == n {
			return nil
		}
		replicas := uint64(n)
		svc.Spec.Mode.Replicated.Replicas = &replicas
		if t.beforeUpdate != nil {
			t.beforeUpdate(attempt)
		}
		_, err = c.ServiceUpdate(ctx, svc.ID, client.ServiceUpdateOptions{Version: svc.Version, Spec: svc.Spec})
		if err == nil {
			t.log.Info("scaled", "to", n, "policy", why.Policy, "reason", why.Message)
			return nil
		}
		if !strings.Contains(err.Error(), "update out of sequence") || attempt >= maxAttempts {
			return t.errorf("update to %d replicas: %w", n, err)
		}
		t.mu.Lock()
		t.retried++
		t.mu.Unlock()
		t.log.Debug("service changed meanwhile; retrying with the new version", "attempt", attempt)
		if err := ctx.Err(); err != nil {
			return t.errorf("update to %d replicas: %w", n, err)
		}
	}
}

// ContainerIDs returns the containers of the service's running tasks on the node
// autoscalerd talks to (stats can only be read there), for docker_stats.
func (t *Target) ContainerIDs(ctx context.Context) ([]string, error) {
	c, err := t.client(ctx)
	if err != nil {
		return nil, err
	}
	svc, err := t.inspect(ctx, c)
	if err != nil {
		return nil, err
	}
	info, err := c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, t.errorf("engine info: %w", err)
	}
	tasks, err := t.runningTasks(ctx, c, svc.ID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, task := range tasks {
		if task.NodeID == info.Info.Swarm.NodeID && task.Status.ContainerStatus != nil && task.Status.ContainerStatus.ContainerID != "" {
			ids = append(ids, task.Status.ContainerStatus.ContainerID)
		}
	}
	return ids, nil
}

// Watch implements targets.Watcher: updates of the service (someone ran `docker service
// scale`) ask for an early evaluation.
func (t *Target) Watch(ctx context.Context, changed func()) error {
	c, err := t.client(ctx)
	if err != nil {
		return err
	}
	f := client.Filters{}.Add("type", "service").Add("service", t.cfg.Service)
	return dockerapi.Watch(ctx, c, f, changed, t.log)
}
