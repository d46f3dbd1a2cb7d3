package main_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/hashicorp/nomad/api"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopSharedNomad()
	os.Exit(code)
}

const haConfig = `
ha:
  nomad: { lock_path: %s, ttl: 10s, address: %s }
policies:
  - name: web
    target:
      nomad: { job: %s, group: api, address: %s }
    min: 1
    max: 10
    interval: 300ms
    queries:
      depth: { http: { url: %s, value: depth } }
    replicas: ceil(depth / 10)
    cooldown: { up: 1s, down: 10m }
`

// TestHighAvailability runs two daemons against a real Nomad agent: exactly one leads and
// scales; when the leader is SIGKILLed (so it cannot release the lock) the other takes
// over within the lock TTL, and no scaling action happens twice.
func TestHighAvailability(t *testing.T) {
	agent := testenv.SharedNomad(t)
	client, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	jobID := fmt.Sprintf("ha-%d", time.Now().UnixNano())
	job := api.NewServiceJob(jobID, jobID, "global", 50)
	job.Datacenters = []string{"*"}
	job.Update = &api.UpdateStrategy{MaxParallel: new(0)}
	task := api.NewTask("sleep", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"3600"})
	task.Resources = &api.Resources{CPU: new(20), MemoryMB: new(16)}
	job.AddTaskGroup(api.NewTaskGroup("api", 1).AddTask(task))
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	defer client.Jobs().Deregister(jobID, true, nil)

	var depth atomic.Int64
	depth.Store(30)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"depth": %d}`, depth.Load())
	}))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, haConfig, "autoscalerd/leader-"+jobID, agent.Addr, jobID, agent.Addr, srv.URL), 0o644)

	a, b := startDaemon(t, cfg), startDaemon(t, cfg)
	role := func(d *daemon) string {
		var ps []struct {
			Role string `json:"role"`
		}
		d.getJSON("/v1/policies", &ps)
		if len(ps) == 0 {
			return ""
		}
		return ps[0].Role
	}
	var leader, follower *daemon
	a.waitFor("one leader", 30*time.Second, func() bool {
		ra, rb := role(a), role(b)
		switch {
		case ra == "leader" && rb == "follower":
			leader, follower = a, b
		case rb == "leader" && ra == "follower":
			leader, follower = b, a
		}
		return leader != nil
	})
	count := func() int {
		j, _, err := client.Jobs().Info(jobID, nil)
		if err != nil || len(j.TaskGroups) == 0 {
			return -1
		}
		return *j.TaskGroups[0].Count
	}
	leader.waitFor("the leader scales 1→3", 20*time.Second, func() bool { return count() == 3 })

	leader.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	depth.Store(50)
	follower.waitFor("the follower takes over and scales 3→5", 40*time.Second, func() bool { return count() == 5 })
	if took := time.Since(killed); took > 25*time.Second {
		// Nomad expires a lock twice its TTL after the last renewal, plus the 1s lock delay.
		t.Errorf("take-over took %s; with a 10s TTL Nomad frees the lock within ~21s", took)
	} else {
		t.Logf("take-over and scale within %s of the leader's death", took.Round(100*time.Millisecond))
	}
	if r := role(follower); r != "leader" {
		t.Errorf("the survivor says %q, want leader", r)
	}
	time.Sleep(2 * time.Second) // room for any duplicate action to show up
	st, _, err := client.Jobs().ScaleStatus(jobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, ev := range st.TaskGroups["api"].Events {
		if ev.Count != nil {
			changes = append(changes, fmt.Sprintf("%d→%d", ev.PreviousCount, *ev.Count))
		}
	}
	if len(changes) != 2 {
		t.Errorf("scaling events %v, want exactly 1→3 and 3→5 (once each)", changes)
	}
}
