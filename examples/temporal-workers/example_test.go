// Package temporalworkersexample checks the Temporal workers example: the config loads
// and builds as `autoscalerd validate` does, and the policy asks for the worker counts the
// README's table promises.
package temporalworkersexample

import (
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/exampletest"
	_ "github.com/autoscalerd/autoscalerd/sources/temporal"
	_ "github.com/autoscalerd/autoscalerd/targets/compose"
)

func TestWorkersPerBacklog(t *testing.T) {
	p := exampletest.Load(t, "autoscalerd.yaml", map[string]string{"TEMPORAL_ADDRESS": "temporal:7233"})[0]
	if p.CooldownUp != 30*time.Second || p.CooldownDown != 5*time.Minute {
		t.Errorf("cooldown = %s up, %s down; the README promises 30s and 5m", p.CooldownUp, p.CooldownDown)
	}
	for _, tc := range []struct {
		backlog, oldest float64
		current, want   int
	}{
		{0, 0, 3, 1},      // idle: down to min (after the 5m window)
		{100, 10, 1, 1},   // 100 per worker is fine
		{101, 10, 1, 2},   // "task queue depth > 100: add replicas"
		{450, 30, 2, 5},   // target tracking: ceil(450 / 100)
		{150, 300, 4, 5},  // few but old tasks: one more than now
		{5000, 30, 4, 20}, // clamped to max
	} {
		if got, why := exampletest.Desired(p, tc.current, tc.backlog, tc.oldest); got != tc.want {
			t.Errorf("backlog %v, oldest %vs, %d workers: desired %d, want %d (%s)", tc.backlog, tc.oldest, tc.current, got, tc.want, why)
		}
	}
}
