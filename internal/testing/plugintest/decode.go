package plugintest

import (
	"strings"
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

// SampleDecodes fails the test unless sample (a kind's sample.conf: `queries:` or
// `target:` holding one example of the kind) decodes without errors, with env for ${VAR}.
func SampleDecodes[C any](t *testing.T, sample string, env map[string]string) {
	t.Helper()
	var s struct {
		Queries map[string]map[string]*C `yaml:"queries"`
		Target  map[string]*C            `yaml:"target"`
	}
	if err := Decode(t, sample, &s, env); err != nil {
		t.Fatalf("sample.conf does not decode:\n%v", err)
	}
}

// ConfigCase is one config text (the body of a kind) and a part of the error it must
// produce; Want "" means the text must decode without errors.
type ConfigCase struct{ Text, Want string }

// CheckConfigs decodes every case into a fresh config from newConfig (so defaults apply)
// and checks its errors. No error message may contain any of leaks (the passwords in the
// cases): config errors are printed, and must not print secrets.
func CheckConfigs[C any](t *testing.T, newConfig func() *C, cases []ConfigCase, leaks ...string) {
	t.Helper()
	for _, tc := range cases {
		err := Decode(t, tc.Text, newConfig(), nil)
		switch {
		case tc.Want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.Text, err)
		case tc.Want != "" && (err == nil || !strings.Contains(err.Error(), tc.Want)):
			t.Errorf("%s: got error %v, want one containing %q", tc.Text, err, tc.Want)
		}
		for _, leak := range leaks {
			if err != nil && strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error leaks %q: %v", tc.Text, leak, err)
			}
		}
	}
}
