package process

import (
	"fmt"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/reaper"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
)

// TestSetsidGrandchildDiesWithReplica: a worker that starts a process outside its process
// group (setsid) no longer leaves it behind on scale-down, under the daemon's child
// subreaper (reaper.Enable, as daemon.Run does): the group kill misses it, the subreaper
// gets it when the worker dies, and kills and reaps it.
func TestSetsidGrandchildDiesWithReplica(t *testing.T) {
	testenv.LookPath(t, "setsid", "apt-get install util-linux")
	stop, err := reaper.Enable()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop) // last: the cleanups below still need the subreaper
	tg, rec := newTestTarget(t, "serve", nil, func(c *Config) {
		c.Command = []string{"sh", "-c", `setsid sh -c 'echo escaped pid=$$; exec sleep 3600.92' & wait`}
	}, testTiming)
	for round := range 2 { // a scale-down each round: one escaped process each time
		mustScale(t, tg, 1)
		lines := rec.waitN(t, `^\[pol\.1\] escaped pid=`, round+1, 10*time.Second)
		var escaped int
		if _, err := fmt.Sscanf(lines[round].msg, "[pol.1] escaped pid=%d", &escaped); err != nil {
			t.Fatal(err)
		}
		leader := tg.pids()[1]
		mustScale(t, tg, 0)
		testenv.WaitReaped(t, 5*time.Second, leader, escaped)
	}
}
