// Package nomadexample checks the Nomad example: the daemon's config loads, the jobspecs
// are valid for a real Nomad, and the policy's bounds fit the job's scaling block.
package nomadexample

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/exampletest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	_ "github.com/autoscalerd/autoscalerd/sources/prometheus"
	"github.com/autoscalerd/autoscalerd/targets/nomad"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopSharedNomad()
	os.Exit(code)
}

// env is what the job's templates and Nomad provide to the task.
var env = map[string]string{
	"AUTOSCALERD_API_TOKEN": "token-from-a-nomad-variable",
	"NOMAD_ALLOC_DIR":       "/alloc",
	"PROMETHEUS_ADDR":       "http://10.0.0.5:9090",
}

func loadConfig(t *testing.T) *configs.Config {
	t.Helper()
	cfg, err := configs.Load("autoscalerd.yaml", configs.Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatalf("autoscalerd.yaml:\n%v", err)
	}
	return cfg
}

func TestConfigLoads(t *testing.T) {
	ps := exampletest.Load(t, "autoscalerd.yaml", env)
	// 100 ready messages per replica, as the README says.
	if got, why := exampletest.Desired(ps[0], 1, 350); got != 4 {
		t.Errorf("350 queued from 1 replica: desired %d (%s), want 4", got, why)
	}
	cfg := loadConfig(t)
	if cfg.HA.Nomad == nil || cfg.HA.Nomad.LockPath != "autoscalerd/leader" {
		t.Errorf("ha.nomad = %+v, want the lock the ACL policy grants", cfg.HA.Nomad)
	}
	if cfg.StateDir != "/alloc/data" {
		t.Errorf("state_dir = %q", cfg.StateDir)
	}
	acl, err := os.ReadFile("acl-policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(acl), `path "`+cfg.HA.Nomad.LockPath+`"`) {
		t.Errorf("acl-policy.hcl does not grant the lock path %q", cfg.HA.Nomad.LockPath)
	}
}

// TestJobspecs validates both jobspecs with the nomad CLI against a real agent, and checks
// that the policy drives a group that exists, within the group's scaling bounds.
func TestJobspecs(t *testing.T) {
	a := testenv.SharedNomad(t)
	for _, file := range []string{"autoscalerd.nomad.hcl", "web.nomad.hcl"} {
		cmd := exec.Command(a.Bin, "job", "validate", file)
		cmd.Env = append(os.Environ(), "NOMAD_ADDR="+a.Addr)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("nomad job validate %s: %v\n%s", file, err, out)
		}
	}

	c, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	web, err := os.ReadFile("web.nomad.hcl")
	if err != nil {
		t.Fatal(err)
	}
	job, err := c.Jobs().ParseHCL(string(web), true)
	if err != nil {
		t.Fatal(err)
	}
	p := loadConfig(t).Policies[0]
	tgt := p.Target.Config.(*nomad.Config)
	if tgt.Job != *job.ID {
		t.Fatalf("the policy scales job %q, the jobspec is %q", tgt.Job, *job.ID)
	}
	for _, g := range job.TaskGroups {
		if *g.Name != tgt.Group {
			continue
		}
		if g.Scaling == nil || g.Scaling.Min == nil || g.Scaling.Max == nil {
			t.Fatalf("group %q has no scaling bounds", tgt.Group)
		}
		if int64(p.Min) < *g.Scaling.Min || int64(p.Max) > *g.Scaling.Max {
			t.Errorf("policy [%d, %d] is not inside the group's scaling [%d, %d]: Nomad would refuse some counts", p.Min, p.Max, *g.Scaling.Min, *g.Scaling.Max)
		}
		return
	}
	t.Fatalf("job %q has no group %q", *job.ID, tgt.Group)
}
