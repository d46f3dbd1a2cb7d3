package plugintest

import (
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/autoscalerd/autoscalerd/configs"
)

// Decode decodes text (the body of one query or target kind, as in a config file) into cfg
// the way the config loader does, CheckConfig included, and returns the configuration
// errors (nil when there are none). ${VAR} expands from env. Plugin tests use it to check
// their config rules without a whole config file.
func Decode(t *testing.T, text string, cfg any, env map[string]string) error {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		t.Fatalf("test YAML: %v", err)
	}
	if len(root.Content) == 0 {
		t.Fatalf("test YAML is empty")
	}
	var errs configs.Errors
	d := configs.NewDecoder("test.yaml", &errs, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	d.Decode(root.Content[0], "q", cfg)
	return errs.Err()
}
