// Package compose scales a Docker Compose service the way `docker compose up --scale`
// does, without the compose CLI or the compose file: it clones one of the service's
// containers through the Engine API.
package compose

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/dockerapi"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/drain"
	"github.com/autoscalerd/autoscalerd/targets/warm"
)

//go:embed sample.conf
var sample string

// The labels docker compose (v1 and v2) puts on a service's containers.
const (
	labelProject = "com.docker.compose.project"
	labelService = "com.docker.compose.service"
	labelOneoff  = "com.docker.compose.oneoff"
	labelNumber  = "com.docker.compose.container-number"
	// labelConfigHash is compose's hash of the service's configuration: `docker compose
	// up` recreates a container whose hash differs from the compose file's.
	labelConfigHash = "com.docker.compose.config-hash"
)

// Config is the `compose` target kind.
type Config struct {
	Project string `yaml:"project" required:"true"`
	Service string `yaml:"service" required:"true"`
	// StopTimeout overrides the container's own grace period; negative (the default)
	// keeps the container's own (compose's stop_grace_period, else the engine's 10s).
	StopTimeout   configs.Duration `yaml:"stop_timeout"`
	RemoveVolumes bool             `yaml:"remove_volumes"`
	// Drain makes scale-in wait for busy containers (see drain.go).
	Drain *drain.Config `yaml:"drain"`
	// Warm keeps standby containers for scale-ups to take (see warm.go).
	Warm *warm.Config `yaml:"warm"`
}

func defaultConfig() *Config { return &Config{StopTimeout: -1} }

func init() {
	targets.Register("compose", sample, defaultConfig, New)
}

// TargetKey implements configs.Keyed: one policy per compose service.
func (c *Config) TargetKey() string { return c.Project + "/" + c.Service }

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	if ch.Has("project") && c.Project == "" {
		ch.Errorf("project", "must not be empty")
	}
	if ch.Has("service") && c.Service == "" {
		ch.Errorf("service", "must not be empty")
	}
	if ch.Has("stop_timeout") && c.StopTimeout < 0 {
		ch.Errorf("stop_timeout", "must not be negative")
	}
	if c.Drain != nil {
		c.Drain.Check(ch, "drain", drain.Compose)
	}
	if c.Warm != nil {
		c.Warm.Check(ch, "warm", warm.Compose, c.Drain != nil, c.Drain != nil && !c.Drain.Resumable())
	}
}

// api is the part of the Engine API the target uses.
type api interface {
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerStart(ctx context.Context, id string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerStop(ctx context.Context, id string, options client.ContainerStopOptions) (client.ContainerStopResult, error)
	ContainerRemove(ctx context.Context, id string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	NetworkConnect(ctx context.Context, network string, options client.NetworkConnectOptions) (client.NetworkConnectResult, error)
	ImageInspect(ctx context.Context, image string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error)
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
	ContainerKill(ctx context.Context, id string, options client.ContainerKillOptions) (client.ContainerKillResult, error)
	ContainerPause(ctx context.Context, id string, options client.ContainerPauseOptions) (client.ContainerPauseResult, error)
	ContainerUnpause(ctx context.Context, id string, options client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error)
	ContainerStatPath(ctx context.Context, id string, options client.ContainerStatPathOptions) (client.ContainerStatPathResult, error)
	CopyToContainer(ctx context.Context, id string, options client.CopyToContainerOptions) (client.CopyToContainerResult, error)
	CopyFromContainer(ctx context.Context, id string, options client.CopyFromContainerOptions) (client.CopyFromContainerResult, error)
	ExecCreate(ctx context.Context, id string, options client.ExecCreateOptions) (client.ExecCreateResult, error)
	ExecStart(ctx context.Context, execID string, options client.ExecStartOptions) (client.ExecStartResult, error)
	ExecInspect(ctx context.Context, execID string, options client.ExecInspectOptions) (client.ExecInspectResult, error)
}

// Target scales one compose service.
type Target struct {
	cfg Config
	log *slog.Logger
	// parallel bounds concurrent container creates/starts/stops. Starting a container
	// costs the engine a few hundred ms, mostly CPU (namespaces, network, DNS rules), so
	// beyond the engine's cores more concurrency buys little; 16 keeps a 20-replica step
	// to about one round without swamping a small host.
	parallel int

	cli *shared.Conn[*client.Client]

	// beforeStart, when set (tests), runs between creating a clone and starting it.
	beforeStart func(name string)

	dr *drains
	// pool is the warm pool (nil without a warm block).
	pool *pool
}

// New returns the target for cfg. It does no I/O: the engine is contacted on first use.
func New(cfg *Config, deps targets.Deps) (targets.Target, error) {
	log := deps.Log()
	return &Target{
		dr:       newDrains(deps.StateDir, cfg.Project, cfg.Service),
		cfg:      *cfg,
		cli:      dockerapi.Shared(deps.Shared, deps.DockerHost),
		log:      log.With("target", "compose", "project", cfg.Project, "service", cfg.Service),
		parallel: 16,
		pool:     newPool(cfg.Warm, deps.MaxReplicas),
	}, nil
}

func (t *Target) client(ctx context.Context) (api, error) {
	c, err := t.cli.Get(ctx)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Close implements targets.Closer. Drains under way stop waiting; state_dir keeps them
// for the next run.
func (t *Target) Close(ctx context.Context) error {
	t.closeDrains(ctx)
	t.closePool()
	return t.cli.Close()
}

func (t *Target) String() string { return "compose " + t.cfg.Project + "/" + t.cfg.Service }

func (t *Target) errorf(format string, args ...any) error {
	return fmt.Errorf("compose %s/%s: "+format, append([]any{t.cfg.Project, t.cfg.Service}, args...)...)
}

// replica is one container of the service as the container list shows it.
type replica struct {
	id     string
	name   string
	number int
	state  container.ContainerState
	status string // "Up 3 minutes (healthy)"
	// image is the image ID, hash the config-hash label: a warm pool member must match
	// the running replicas in both to be handed out.
	image, hash string
}

func (r replica) running() bool { return r.state == container.StateRunning }

// ready: running, and not failing or still starting its healthcheck. The list's Status
// text carries the health on every API version; the structured field is 1.52+.
func (r replica) ready() bool {
	return r.running() && !strings.Contains(r.status, "(unhealthy)") && !strings.Contains(r.status, "(health: starting)")
}

// startable: stopped in a way `docker start` can undo.
func (r replica) startable() bool {
	return r.state == container.StateCreated || r.state == container.StateExited
}

// replicas lists the service's containers (all states, one-off `run` containers excluded),
// lowest number first.
func (t *Target) replicas(ctx context.Context, c api) ([]replica, error) {
	f := client.Filters{}.
		Add("label", labelProject+"="+t.cfg.Project, labelService+"="+t.cfg.Service)
	res, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, t.errorf("listing containers: %w", err)
	}
	out := make([]replica, 0, len(res.Items))
	for _, s := range res.Items {
		// Compose v1 writes "False", v2 "False" too, but be lenient about case.
		if strings.EqualFold(s.Labels[labelOneoff], "true") {
			continue
		}
		n, _ := strconv.Atoi(s.Labels[labelNumber])
		name := ""
		if len(s.Names) > 0 {
			name = strings.TrimPrefix(s.Names[0], "/")
		}
		out = append(out, replica{id: s.ID, name: name, number: n, state: s.State, status: s.Status, image: s.ImageID, hash: s.Labels[labelConfigHash]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].number != out[j].number {
			return out[i].number < out[j].number
		}
		return out[i].name < out[j].name
	})
	return out, nil
}

// Status implements targets.Target: Replicas counts running containers, Ready those that
// are not unhealthy or still starting; containers being drained count in neither.
func (t *Target) Status(ctx context.Context) (targets.Status, error) {
	c, err := t.client(ctx)
	if err != nil {
		return targets.Status{}, err
	}
	rs, err := t.replicas(ctx, c)
	if err != nil {
		return targets.Status{}, err
	}
	t.recoverDrains(ctx, c, rs)
	t.startPool()
	_, _, rs = t.splitPool(t.notDraining(rs))
	var st targets.Status
	for _, r := range rs {
		if r.running() {
			st.Replicas++
		}
		if r.ready() {
			st.Ready++
		}
	}
	return st, nil
}

// ContainerIDs returns the IDs of the service's running containers (for docker_stats).
func (t *Target) ContainerIDs(ctx context.Context) ([]string, error) {
	c, err := t.client(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := t.replicas(ctx, c)
	if err != nil {
		return nil, err
	}
	_, _, rs = t.splitPool(rs) // a member being warmed runs, but is not a replica
	var ids []string
	for _, r := range rs {
		if r.running() {
			ids = append(ids, r.id)
		}
	}
	return ids, nil
}

// Watch implements targets.Watcher: container events of this service (someone ran
// `docker compose up`, a replica crashed) ask for an early evaluation.
func (t *Target) Watch(ctx context.Context, changed func()) error {
	c, err := t.client(ctx)
	if err != nil {
		return err
	}
	f := client.Filters{}.
		Add("type", "container").
		Add("label", labelProject+"="+t.cfg.Project, labelService+"="+t.cfg.Service).
		Add("event", "create", "start", "die", "destroy", "pause", "unpause", "health_status")
	return dockerapi.Watch(ctx, c, f, func() { changed(); t.kickPool() }, t.log)
}
