package swarm

import (
	"strings"
	"testing"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
)

func TestReadme(t *testing.T) { plugintest.ReadmeShowsSample(t) }

func TestSampleDecodes(t *testing.T) { plugintest.SampleDecodes[Config](t, sample, nil) }

func TestConfig(t *testing.T) {
	const head = "policies:\n  - name: p\n    max: 3\n    replicas: \"1\"\n    target:\n      swarm:\n"
	for _, tc := range []struct{ name, body, wantErr string }{
		{"ok", "        service: shop_worker\n", ""},
		{"missing", "        {}\n", `missing required key "service"`},
		{"empty", "        service: \"\"\n", "policies[0].target.swarm.service: must not be empty"},
		{"unknown key", "        service: a\n        replicas: 3\n", "replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := configs.Parse("a.yaml", []byte(head+tc.body), configs.Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k := cfg.Policies[0].Target.Key(); k != "swarm:shop_worker" {
				t.Errorf("target key %q", k)
			}
		})
	}
}
