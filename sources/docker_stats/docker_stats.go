// Package docker_stats reads the mean CPU or memory utilisation of a policy's own Docker
// replicas (the containers of its compose or swarm target).
package docker_stats //nolint:revive // the package is named after the query kind

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/dockerapi"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/sources"
)

//go:embed sample.conf
var sample string

// Config is the `docker_stats` query kind.
type Config struct {
	Resource string `yaml:"resource" required:"true"`
}

func init() {
	sources.Register("docker_stats", sample, func() *Config { return &Config{} }, New)
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	if ch.Has("resource") && c.Resource != "cpu" && c.Resource != "memory" {
		ch.Errorf("resource", "%q is not a resource (use cpu or memory)", c.Resource)
	}
}

// Replicas is what the policy's target must offer: the compose and swarm targets do.
type Replicas interface {
	ContainerIDs(ctx context.Context) ([]string, error)
}

// api is the part of the Engine API the source uses.
type api interface {
	ContainerStats(ctx context.Context, id string, options client.ContainerStatsOptions) (client.ContainerStatsResult, error)
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}

type source struct {
	resource string
	replicas Replicas
	where    string // names the query in errors
	cli      *shared.Conn[*client.Client]
}

// New returns the source for cfg. The policy's target must list its containers.
func New(cfg *Config, deps sources.Deps) (sources.Source, error) {
	r, ok := deps.Target.(Replicas)
	if !ok {
		return nil, fmt.Errorf("docker_stats: needs a compose or swarm target to measure (this policy's target is %s)", deps.TargetKind)
	}
	// The engine client is shared with the policy's target and every docker_stats query
	// of the engine.
	return &source{resource: cfg.Resource, replicas: r, cli: dockerapi.Shared(deps.Shared, deps.DockerHost),
		where: fmt.Sprintf("docker_stats %s", cfg.Resource)}, nil
}

// Close implements io.Closer.
func (s *source) Close() error { return s.cli.Close() }

// Value is the mean utilisation, in percent, over the running replicas, read
// concurrently. No running replica is no data: an error, so the policy holds.
func (s *source) Value(ctx context.Context) (float64, error) {
	c, err := s.cli.Get(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.where, err)
	}
	ids, err := s.replicas.ContainerIDs(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.where, err)
	}
	if len(ids) == 0 {
		return 0, fmt.Errorf("%s: no running replicas, no data", s.where)
	}
	vals := make([]float64, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			vals[i], errs[i] = s.read(ctx, c, id)
		})
	}
	wg.Wait()
	var sum float64
	n := 0
	var failed []error
	for i := range ids {
		if errs[i] != nil {
			failed = append(failed, errs[i])
			continue
		}
		sum += vals[i]
		n++
	}
	// A replica that went away between the list and its stats does not spoil the mean of
	// the others; only when none could be read is there no value.
	if n == 0 {
		return 0, fmt.Errorf("%s: %w", s.where, errors.Join(failed...))
	}
	return sum / float64(n), nil
}

func (s *source) read(ctx context.Context, c api, id string) (float64, error) {
	short := id[:min(12, len(id))]
	if s.resource == "memory" {
		st, err := stats(ctx, c, id, false)
		if err != nil {
			return 0, fmt.Errorf("container %s: %w", short, err)
		}
		return memoryPercent(st.MemoryStats)
	}
	ins, err := c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("container %s: %w", short, err)
	}
	// Not one-shot: the engine takes two samples (about a second apart) and reports the
	// earlier one as precpu_stats.
	st, err := stats(ctx, c, id, true)
	if err != nil {
		return 0, fmt.Errorf("container %s: %w", short, err)
	}
	pre := st.PreCPUStats
	if pre.SystemUsage == 0 {
		// Some engines leave precpu empty on the first read: take a second sample.
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		first := st
		st, err = stats(ctx, c, id, false)
		if err != nil {
			return 0, fmt.Errorf("container %s: %w", short, err)
		}
		pre = first.CPUStats
	}
	return cpuPercent(pre, st.CPUStats, cpuLimit(ins.Container.HostConfig))
}

func stats(ctx context.Context, c api, id string, withPrevious bool) (container.StatsResponse, error) {
	res, err := c.ContainerStats(ctx, id, client.ContainerStatsOptions{IncludePreviousSample: withPrevious})
	if err != nil {
		return container.StatsResponse{}, fmt.Errorf("stats: %w", err)
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return container.StatsResponse{}, fmt.Errorf("stats: decoding: %w", err)
	}
	return st, nil
}

// cpuLimit is the container's CPU limit in cores (--cpus, or a CFS quota), 0 for none.
func cpuLimit(hc *container.HostConfig) float64 {
	switch {
	case hc == nil:
		return 0
	case hc.NanoCPUs > 0:
		return float64(hc.NanoCPUs) / 1e9
	case hc.CPUQuota > 0 && hc.CPUPeriod > 0:
		return float64(hc.CPUQuota) / float64(hc.CPUPeriod)
	}
	return 0
}

// cpuPercent is the CPU used between two samples as `docker stats` computes it (percent
// of one core), divided by the limit in cores when there is one, so that a container
// using all of its 0.5-CPU limit is at 100%.
func cpuPercent(pre, cur container.CPUStats, limit float64) (float64, error) {
	sysDelta := float64(cur.SystemUsage) - float64(pre.SystemUsage)
	cpuDelta := float64(cur.CPUUsage.TotalUsage) - float64(pre.CPUUsage.TotalUsage)
	online := float64(cur.OnlineCPUs)
	if online == 0 {
		online = float64(len(cur.CPUUsage.PercpuUsage))
	}
	if sysDelta <= 0 || online == 0 {
		return 0, errors.New("cpu: the engine reported no usable CPU samples")
	}
	if cpuDelta < 0 { // counter reset (container restarted between the samples)
		cpuDelta = 0
	}
	pct := cpuDelta / sysDelta * online * 100
	if limit > 0 {
		pct /= limit
	}
	return pct, nil
}

// memoryPercent is usage without the reclaimable page cache, of the limit (the host's
// memory when the container has none), as `docker stats` shows it.
func memoryPercent(m container.MemoryStats) (float64, error) {
	if m.Limit == 0 {
		return 0, errors.New("memory: the engine reported no memory stats")
	}
	used := m.Usage
	// cgroup v1 reports total_inactive_file, v2 inactive_file.
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := m.Stats[k]; ok {
			if v < used {
				used -= v
			}
			break
		}
	}
	return float64(used) / float64(m.Limit) * 100, nil
}
