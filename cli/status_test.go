package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/engine"
	"github.com/autoscalerd/autoscalerd/policy"
)

// TestStatusFitsTheTerminal: a process target with a long argv and a long reason chain no
// longer make a 210-column table; the decision at the end of the reason stays visible.
func TestStatusFitsTheTerminal(t *testing.T) {
	two := 2
	row := statusRow{Status: engine.Status{
		Name:    "systemd-workers",
		Target:  `process:["/usr/local/bin/worker" "--queue" "https://queue.internal.example/api/v1/tenants/3f2a/jobs" "--concurrency" "8"] in /srv/worker`,
		Current: 2, Desired: &two, Min: 1, Max: 20,
		LastDecision: &engine.DecisionView{Time: time.Now(), From: 2, To: 2, Action: policy.Hold,
			Reason: "queued=180 → lag=3 → max(ceil(180 / 100), ceil(3 / 50))=2 → clamp[1,20]=2 → schedule \"0 8 * * MON-FRI\" active → hold at 2"},
	}}
	var b bytes.Buffer
	if err := renderStatus(&b, []statusRow{row}, 120); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		if n := len([]rune(line)); n > 120 {
			t.Errorf("line of %d columns: %s", n, line)
		}
	}
	if !strings.Contains(b.String(), "hold at 2") || !strings.Contains(b.String(), "process:") || !strings.Contains(b.String(), "/srv/worker") {
		t.Errorf("the table lost what matters:\n%s", b.String())
	}
	b.Reset()
	if err := renderStatus(&b, []statusRow{row}, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), row.Target) {
		t.Errorf("--wide shortened the target:\n%s", b.String())
	}
}
