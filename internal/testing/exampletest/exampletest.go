// Package exampletest checks the configurations in examples/: each loads, compiles and
// builds its sources and targets the way `autoscalerd validate` does, and the tests can
// then run the policy's decision on the numbers a README promises.
package exampletest

import (
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/engine"
	"github.com/autoscalerd/autoscalerd/policy"
)

// Load loads the example's config file with env for ${VAR}, compiles its policies and
// builds every target and source as `validate` does (engine.Resolve, which does no I/O),
// failing the test on any error. The caller imports the source and target kinds the file
// uses.
func Load(t *testing.T, file string, env map[string]string) []*policy.Policy {
	t.Helper()
	cfg, err := configs.Load(file, configs.Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatalf("%s:\n%v", file, err)
	}
	ps, err := policy.Compile(cfg)
	if err != nil {
		t.Fatalf("%s:\n%v", file, err)
	}
	if errs := engine.Resolve(t.Context(), cfg); len(errs) > 0 {
		t.Fatalf("%s:\n%v", file, errs.Err())
	}
	return ps
}

// Desired is the count p asks for, from a fresh state, when its queries read values (in
// the policy's query order) and the target has current replicas.
func Desired(p *policy.Policy, current int, values ...float64) (int, string) {
	in := policy.Inputs{Current: current}
	for _, v := range values {
		in.Values = append(in.Values, policy.Value{V: v})
	}
	d, _ := policy.Decide(p, policy.State{}, in, time.Now())
	return d.Desired, d.Reason
}
