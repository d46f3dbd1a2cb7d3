package hatchet

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/sources"
)

const examplePath = "../../examples/hatchet/autoscalerd.yaml"

// TestExample loads examples/hatchet/autoscalerd.yaml. The compose target kind lives in a
// package this test does not link, so the one error allowed is that kind being unknown;
// any other mistake in the file fails. The hatchet query is then decoded on its own and
// checked field by field.
func TestExample(t *testing.T) {
	env := map[string]string{"HATCHET_TENANT_ID": tenant, "HATCHET_TOKEN": token}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if _, err := configs.Load(examplePath, configs.Options{LookupEnv: lookup}); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.Contains(line, `unknown target kind "compose"`) {
				t.Errorf("example config error: %s", line)
			}
		}
	}

	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Policies []struct {
			Queries struct {
				Queued struct {
					Hatchet yaml.Node `yaml:"hatchet"`
				} `yaml:"queued"`
			} `yaml:"queries"`
			Replicas string `yaml:"replicas"`
		} `yaml:"policies"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Policies) != 1 {
		t.Fatalf("example: %v, %d policies", err, len(doc.Policies))
	}
	var errs configs.Errors
	q := &Config{URL: DefaultURL, State: "queued", Measure: sources.MeasureCount}
	configs.NewDecoder(examplePath, &errs, lookup).Decode(&doc.Policies[0].Queries.Queued.Hatchet, "hatchet", q)
	if err := errs.Err(); err != nil {
		t.Fatal(err)
	}
	if q.TenantID != tenant || q.Token.Value() != token || len(q.Tasks) != 3 || q.URL != DefaultURL || q.State != "queued" {
		t.Errorf("query: %+v", q)
	}
	if got := doc.Policies[0].Replicas; got != "ceil(queued / 100)" {
		t.Errorf("replicas: %q", got)
	}
}
