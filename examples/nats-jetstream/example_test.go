// Package natsjetstreamexample checks the NATS JetStream example: the config loads and
// builds as `autoscalerd validate` does, and the policy asks for the worker counts the
// README's table promises.
package natsjetstreamexample

import (
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/sources"
	_ "github.com/autoscalerd/autoscalerd/sources/nats"
	_ "github.com/autoscalerd/autoscalerd/targets/compose"
)

func load(t *testing.T) *policy.Policy {
	t.Helper()
	env := map[string]string{"NATS_PASSWORD": "from-a-secret"}
	cfg, err := configs.Load("autoscalerd.yaml", configs.Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatalf("autoscalerd.yaml:\n%v", err)
	}
	ps, err := policy.Compile(cfg)
	if err != nil {
		t.Fatalf("autoscalerd.yaml:\n%v", err)
	}
	for _, q := range cfg.Policies[0].Queries {
		src, err := sources.New(q, sources.Deps{Policy: cfg.Policies[0].Name, Shared: sources.NewShared(), Global: cfg})
		if err != nil {
			t.Fatalf("query %s: %v", q.Name, err)
		}
		_ = sources.Close(src)
	}
	return ps[0]
}

func TestWorkersPerBacklog(t *testing.T) {
	p := load(t)
	if p.CooldownUp != 30*time.Second || p.CooldownDown != 5*time.Minute {
		t.Errorf("cooldown = %s up, %s down; the README promises 30s and 5m", p.CooldownUp, p.CooldownDown)
	}
	for _, tc := range []struct {
		backlog float64
		want    int
	}{{0, 2}, {2000, 2}, {2001, 3}, {5000, 5}, {20000, 20}, {50000, 50}, {1e6, 50}} {
		d, _ := policy.Decide(p, policy.State{}, policy.Inputs{Values: []policy.Value{{V: tc.backlog}}, Current: 2}, time.Now())
		if d.Desired != tc.want {
			t.Errorf("backlog %v: desired %d workers, want %d (%s)", tc.backlog, d.Desired, tc.want, d.Reason)
		}
	}
}
