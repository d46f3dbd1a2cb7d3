package cli

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: without GOGC the daemon's collector target is 75 %; GOGC, when set, is left
// to decide.
func TestTuneGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != defaultGOGC {
		t.Fatalf("GOGC unset: target %d %%, want %d", got, defaultGOGC)
	}
	tuneGC(func(k string) string {
		if k == "GOGC" {
			return "200"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC=200 in the environment: target changed to %d %%", got)
	}
}
