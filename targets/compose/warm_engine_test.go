package compose

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
)

// TestComposeWarmPoolThroughTheEngine: the engine keeps a pool of 2 beside 1 replica and
// shows it in the policy's status (warm_pool, not in current); a scale-up to 3 takes both
// members, and the decision's reason says so.
func TestComposeWarmPoolThroughTheEngine(t *testing.T) { eachEngine(t, testWarmPoolThroughTheEngine) }

func testWarmPoolThroughTheEngine(t *testing.T, cc *testenv.ComposeCLI) {
	_, project, _, plain := startProject(t, cc, "ascwarme")
	plain.Close(t.Context())
	q := filepath.Join(t.TempDir(), "want")
	if err := os.WriteFile(q, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	text := fmt.Sprintf(`state_dir: %s
docker: { host: "%s" }
policies:
  - name: jobs
    target:
      compose:
        project: %s
        service: worker
        remove_volumes: true
        warm: { size: 2 }
    min: 1
    max: 4
    interval: 300ms
    cooldown: { up: 0s, down: 0s }
    queries:
      want: { file: { path: %s } }
    replicas: want
`, stateDir, cc.Engine().Host, project, q)
	var log plugintest.SyncBuffer
	reg := prometheus.NewPedanticRegistry()
	e, _ := runEngineWith(t, text, stateDir, &log, reg)
	waitUntil(t, "a pool of 2 in the status", 60*time.Second, func() bool {
		s := policyStatus(e)
		return s.Current == 1 && s.WarmPool != nil && s.WarmPool.Members == 2 && s.WarmPool.Warming == 0
	})
	b, err := json.Marshal(policyStatus(e))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"warm_pool":{"state":"paused","size":2,"want":2,"members":2`) {
		t.Errorf("status JSON does not show the pool: %s", b)
	}
	if err := os.WriteFile(q, []byte("3"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "3 replicas", 30*time.Second, func() bool { return policyStatus(e).Current == 3 })
	_, decisions, _, _ := e.Detail("jobs")
	found := false
	for _, d := range decisions {
		if d.To == 3 && strings.Contains(d.Reason, "→ 2 from the warm pool (paused), 0 new") {
			found = true
		}
	}
	if !found {
		t.Errorf("no decision to 3 says it took 2 from the warm pool: %+v", decisions)
	}
	// max 4 with 3 running leaves room for 1 member.
	waitUntil(t, "the pool refilled to 1", 60*time.Second, func() bool {
		s := policyStatus(e)
		return s.WarmPool != nil && s.WarmPool.Members == 1 && s.WarmPool.Want == 1 && s.WarmPool.HandedOut == 2
	})
	// The metrics say the same once a tick has read the pool.
	waitUntil(t, "the pool's metrics", 10*time.Second, func() bool {
		return metricValue(t, reg, "autoscalerd_policy_replicas", "warm") == 1 &&
			metricValue(t, reg, "autoscalerd_policy_replicas", "warm_wanted") == 1 &&
			metricValue(t, reg, "autoscalerd_warm_pool_handed_out_total", "") == 2
	})
}

// metricValue is the jobs policy's sample of metric (with kind=kind when kind is given),
// or -1.
func metricValue(t *testing.T, reg *prometheus.Registry, metric, kind string) float64 {
	t.Helper()
	labels := map[string]string{"policy": "jobs"}
	if kind != "" {
		labels["kind"] = kind
	}
	if v, ok := plugintest.Metric(t, reg, metric, labels); ok {
		return v
	}
	return -1
}
