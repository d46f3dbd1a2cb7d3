package engine

import (
	"context"
	"testing"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/dockerapi"
	"github.com/autoscalerd/autoscalerd/internal/shared"

	_ "github.com/autoscalerd/autoscalerd/sources/docker_stats"
	_ "github.com/autoscalerd/autoscalerd/targets/compose"
)

// TestBuildHandsPluginsDockerHost: the target and its docker_stats query are built with
// the daemon's docker.host and share one client for it; nothing is opened by building,
// and closing what was built gives the client back.
func TestBuildHandsPluginsDockerHost(t *testing.T) {
	const host = "tcp://127.0.0.1:1" // nothing listens: building must not need it
	cfg, err := configs.Parse("build.yaml", []byte(`
docker: { host: "`+host+`" }
api_token: s3cret-t0ken-of-the-daemon
policies:
  - name: web
    target: { compose: { project: shop, service: web } }
    max: 3
    queries:
      cpu: { docker_stats: { resource: cpu } }
    replicas: ceil(current * cpu / 60)
`), configs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	set := shared.NewSet()
	b, err := Build(cfg, cfg.Policies[0], BuildOptions{Shared: set})
	if err != nil {
		t.Fatal(err)
	}
	if n := set.Len(); n != 1 {
		t.Fatalf("%d shared clients for one target and its query on one engine, want 1", n)
	}
	// A holder of the same key gets the very client the plugins use: it is for docker.host.
	probe := dockerapi.Shared(set, host)
	if n := set.Len(); n != 1 {
		t.Fatalf("the plugins' client is not the one for docker.host %s (%d clients held)", host, n)
	}
	c, err := probe.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.DaemonHost(); got != host {
		t.Fatalf("the plugins' client is for %s, want docker.host %s", got, host)
	}
	b.Close(context.Background())
	if n := set.Len(); n != 1 {
		t.Fatalf("closing the plugins dropped the probe's hold too (%d held)", n)
	}
	_ = probe.Close()
	if n := set.Len(); n != 0 {
		t.Fatalf("%d clients held after every holder closed", n)
	}
}
