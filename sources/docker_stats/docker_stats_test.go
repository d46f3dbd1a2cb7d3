package docker_stats //nolint:revive

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/sources"
	"github.com/autoscalerd/autoscalerd/targets"
	"github.com/autoscalerd/autoscalerd/targets/compose"
)

func TestReadme(t *testing.T) { plugintest.ReadmeShowsSample(t) }

func TestSampleDecodes(t *testing.T) { plugintest.SampleDecodes[Config](t, sample, nil) }

func TestCPUPercent(t *testing.T) {
	cpu := func(total, system uint64) container.CPUStats {
		return container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: total}, SystemUsage: system, OnlineCPUs: 4}
	}
	for _, tc := range []struct {
		name     string
		pre, cur container.CPUStats
		limit    float64
		want     float64
		wantErr  bool
	}{
		// system usage counts all 4 cores: 4e9 over one second.
		{"one full core", cpu(0, 0), cpu(1e9, 4e9), 0, 100, false},
		{"two cores", cpu(0, 0), cpu(2e9, 4e9), 0, 200, false},
		{"idle", cpu(5e9, 1e10), cpu(5e9, 1.4e10), 0, 0, false},
		{"half of a 0.5 limit", cpu(0, 0), cpu(0.25e9, 4e9), 0.5, 50, false},
		{"all of a 2-core limit", cpu(0, 0), cpu(2e9, 4e9), 2, 100, false},
		{"restarted between samples", cpu(9e9, 0), cpu(1e8, 4e9), 0, 0, false},
		{"no samples", cpu(0, 4e9), cpu(0, 4e9), 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cpuPercent(tc.pre, tc.cur, tc.limit)
			if (err != nil) != tc.wantErr || math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("cpuPercent = %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestMemoryPercent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       container.MemoryStats
		want    float64
		wantErr bool
	}{
		{"cgroup v1 minus page cache", container.MemoryStats{Usage: 300, Limit: 1000, Stats: map[string]uint64{"total_inactive_file": 100}}, 20, false},
		{"cgroup v2 minus page cache", container.MemoryStats{Usage: 300, Limit: 1000, Stats: map[string]uint64{"inactive_file": 50}}, 25, false},
		{"no cache figures", container.MemoryStats{Usage: 500, Limit: 1000}, 50, false},
		{"no stats", container.MemoryStats{}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := memoryPercent(tc.m)
			if (err != nil) != tc.wantErr || math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("memoryPercent = %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCPULimit(t *testing.T) {
	for _, tc := range []struct {
		hc   *container.HostConfig
		want float64
	}{
		{nil, 0},
		{&container.HostConfig{}, 0},
		{&container.HostConfig{Resources: container.Resources{NanoCPUs: 5e8}}, 0.5},
		{&container.HostConfig{Resources: container.Resources{CPUQuota: 150000, CPUPeriod: 100000}}, 1.5},
	} {
		if got := cpuLimit(tc.hc); got != tc.want {
			t.Errorf("cpuLimit(%+v) = %v, want %v", tc.hc, got, tc.want)
		}
	}
}

func TestConfig(t *testing.T) {
	plugintest.CheckConfigs(t, func() *Config { return &Config{} }, []plugintest.ConfigCase{
		{Text: "resource: cpu", Want: ""},
		{Text: "resource: memory", Want: ""},
		{Text: "resource: disk", Want: `"disk" is not a resource (use cpu or memory)`},
		{Text: "{}", Want: `missing required key "resource"`},
	})
}

func TestNeedsDockerTarget(t *testing.T) {
	_, err := New(&Config{Resource: "cpu"}, sources.Deps{Target: struct{}{}})
	if err == nil || !strings.Contains(err.Error(), "needs a compose or swarm target") {
		t.Fatalf("New with a non-Docker target: %v", err)
	}
}

// TestBusyAndIdle reads real containers: one spinning a core, one idle, one spinning
// under a 0.5-CPU limit, and a service with no replicas; on each engine (Debian's 20.10
// with docker-compose 1.29, Engine 29 with Compose v5).
func TestBusyAndIdle(t *testing.T) {
	for _, e := range testenv.Engines(t) {
		cc := e.UsualCompose()
		t.Run(e.Name, func(t *testing.T) {
			cc.NeedCompose(t)
			testBusyAndIdle(t, cc)
		})
	}
}

func testBusyAndIdle(t *testing.T, cc *testenv.ComposeCLI) {
	e := cc.Engine()
	img := e.WorkerImage(t)
	project := fmt.Sprintf("asstats%04d", rand.IntN(10000))
	cc.Project(t, project, fmt.Sprintf(`version: "2.4"
services:
  busy:
    image: %[1]s
    command: ["serve", "-burn"]
  limited:
    image: %[1]s
    command: ["serve", "-burn"]
    cpus: 0.5
  idle:
    image: %[1]s
`, img))
	set := shared.NewSet()
	read := func(service, resource string) (float64, error) {
		tg, err := compose.New(&compose.Config{Project: project, Service: service, StopTimeout: -1}, targets.Deps{DockerHost: e.Host})
		if err != nil {
			t.Fatal(err)
		}
		src, err := New(&Config{Resource: resource}, sources.Deps{Target: tg, Shared: set, DockerHost: e.Host})
		if err != nil {
			t.Fatal(err)
		}
		defer sources.Close(src)
		return src.Value(context.Background())
	}
	// The machine may be shared with other work (CI runners, parallel test packages): a
	// spinning container is not always given a whole core, but it is far from idle.
	for _, tc := range []struct {
		service, resource string
		lo, hi            float64
	}{
		{"busy", "cpu", 5, 250},
		{"limited", "cpu", 5, 130}, // of its 0.5 CPU limit: at most ~100
		{"idle", "cpu", 0, 2},
		{"busy", "memory", 0.000001, 5},
		{"idle", "memory", 0.000001, 5},
	} {
		t.Run(tc.service+"/"+tc.resource, func(t *testing.T) {
			v, err := read(tc.service, tc.resource)
			if err != nil {
				t.Fatal(err)
			}
			if v < tc.lo || v > tc.hi {
				t.Fatalf("%s %s = %.2f%%, want within [%g, %g]", tc.service, tc.resource, v, tc.lo, tc.hi)
			}
			t.Logf("%s %s = %.2f%%", tc.service, tc.resource, v)
		})
	}
	t.Run("no replicas", func(t *testing.T) {
		_, err := read("missing", "cpu")
		if err == nil || !strings.Contains(err.Error(), "no running replicas, no data") {
			t.Fatalf("Value = %v, want a no-data error", err)
		}
	})
	if set.Len() != 0 {
		t.Errorf("%d shared clients left open after every source was closed", set.Len())
	}
}

// TestBuildsWithComposeTarget builds a policy's target and query as the daemon (and
// `autoscalerd validate`) do, without touching an engine.
func TestBuildsWithComposeTarget(t *testing.T) {
	cfg, err := configs.Parse("a.yaml", []byte(`docker: { host: "tcp://127.0.0.1:1" }
policies:
  - name: p
    max: 3
    target:
      compose: { project: shop, service: worker }
    queries:
      cpu:
        docker_stats: { resource: cpu }
    replicas: ceil(current * cpu / 60)
`), configs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Policies[0]
	tg, err := targets.New(p.Target, targets.Deps{Policy: p.Name, DockerHost: cfg.Docker.Host})
	if err != nil {
		t.Fatal(err)
	}
	src, err := sources.New(p.Queries[0], sources.Deps{Policy: p.Name, Target: tg, DockerHost: cfg.Docker.Host, Shared: shared.NewSet()})
	if err != nil {
		t.Fatalf("docker_stats with a compose target: %v", err)
	}
	if err := sources.Close(src); err != nil {
		t.Fatal(err)
	}
}
