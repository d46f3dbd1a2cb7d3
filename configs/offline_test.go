package configs_test

import (
	"strings"
	"testing"

	"github.com/autoscalerd/autoscalerd/configs"
)

// TestOfflineSecrets: validate and simulate touch nothing, so a secret they cannot have
// here (an unset variable, an unreadable file) is a note, not an error; run still fails.
func TestOfflineSecrets(t *testing.T) {
	const file = `api_token: ${TOKEN_NOT_SET}
policies:
  - name: w
    target: { process: { command: [/bin/true] } }
    max: 2
    queries:
      q: { file: { path: /dev/null } }
    replicas: q
`
	none := func(string) (string, bool) { return "", false }
	if _, err := configs.Parse("a.yaml", []byte(file), configs.Options{LookupEnv: none}); err == nil || !strings.Contains(err.Error(), "TOKEN_NOT_SET is not set") {
		t.Fatalf("without OfflineSecrets: %v", err)
	}
	cfg, err := configs.Parse("a.yaml", []byte(file), configs.Options{LookupEnv: none, OfflineSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Notes) != 1 || !strings.Contains(cfg.Notes[0], "a.yaml:1:12: api_token: environment variable TOKEN_NOT_SET is not set; run will need it") {
		t.Errorf("notes = %q", cfg.Notes)
	}
	if !cfg.APIToken.Offline() || !cfg.APIToken.IsSet() {
		t.Errorf("the placeholder is not marked or is empty")
	}
}
