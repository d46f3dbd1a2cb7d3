package notify

import (
	"strings"
	"testing"

	"github.com/autoscalerd/autoscalerd/configs"
)

// TestOfflineURL: under validate (OfflineSecrets) a webhook URL held in an unset variable
// is a note, not "not an http:// URL", and two such sinks do not clash on a default name.
func TestOfflineURL(t *testing.T) {
	const file = `notify:
  - webhook: { url: "${SLACK_URL}", format: slack }
  - webhook: { url: "${OTHER_URL}" }
  - webhook: { url: "https://hooks.example.com/${PATH_TOKEN}" }
`
	none := func(string) (string, bool) { return "", false }
	cfg, err := configs.Parse("a.yaml", []byte(file), configs.Options{LookupEnv: none, OfflineSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Notes) != 3 || !strings.Contains(cfg.Notes[0], "SLACK_URL is not set; run will need it") {
		t.Errorf("notes: %q", cfg.Notes)
	}
	var names []string
	for _, s := range cfg.Notify {
		names = append(names, s.Name)
	}
	if strings.Join(names, " ") != "webhook-1 webhook-2 hooks.example.com" {
		t.Errorf("names: %v", names)
	}
	if _, err := configs.Parse("a.yaml", []byte(file), configs.Options{LookupEnv: none}); err == nil {
		t.Error("run accepts unset URLs")
	}
}
