// Package natsjetstreamexample checks the NATS JetStream example: the config loads and
// builds as `autoscalerd validate` does, and the policy asks for the worker counts the
// README's table promises.
package natsjetstreamexample

import (
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/exampletest"
	_ "github.com/autoscalerd/autoscalerd/sources/nats"
	_ "github.com/autoscalerd/autoscalerd/targets/compose"
)

func TestWorkersPerBacklog(t *testing.T) {
	p := exampletest.Load(t, "autoscalerd.yaml", map[string]string{"NATS_PASSWORD": "from-a-secret"})[0]
	if p.CooldownUp != 30*time.Second || p.CooldownDown != 5*time.Minute {
		t.Errorf("cooldown = %s up, %s down; the README promises 30s and 5m", p.CooldownUp, p.CooldownDown)
	}
	for _, tc := range []struct {
		backlog float64
		want    int
	}{{0, 2}, {2000, 2}, {2001, 3}, {5000, 5}, {20000, 20}, {50000, 50}, {1e6, 50}} {
		if got, why := exampletest.Desired(p, 2, tc.backlog); got != tc.want {
			t.Errorf("backlog %v: desired %d workers, want %d (%s)", tc.backlog, got, tc.want, why)
		}
	}
}
