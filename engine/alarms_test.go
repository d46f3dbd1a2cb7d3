package engine

import (
	"sync"
	"testing"
	"time"
)

// TestAlarms: alarms go off at their time, not before, each once; an alarm moved later or
// cancelled does not go off at its old time; one set sooner than the timer is armed for
// re-arms it; a thousand due at one instant go off together.
func TestAlarms(t *testing.T) {
	w := newWorkers(2)
	t.Cleanup(w.stop)
	a := newAlarms(w)
	t.Cleanup(a.stop)
	var mu sync.Mutex
	fired := map[string][]time.Time{}
	mk := func(name string) *alarm {
		return newAlarm(func() {
			mu.Lock()
			defer mu.Unlock()
			fired[name] = append(fired[name], time.Now())
		})
	}
	start := time.Now()
	late, moved, gone, soon := mk("late"), mk("moved"), mk("gone"), mk("soon")
	a.set(late, start.Add(300*time.Millisecond))
	a.set(moved, start.Add(50*time.Millisecond))
	a.set(moved, start.Add(250*time.Millisecond))
	a.set(gone, start.Add(100*time.Millisecond))
	a.cancel(gone)
	a.set(soon, start.Add(20*time.Millisecond)) // sooner than the timer is armed for
	var many []*alarm
	at := start.Add(150 * time.Millisecond)
	for range 1000 {
		x := mk("many")
		many = append(many, x)
		a.set(x, at)
	}
	time.Sleep(600 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	check := func(name string, n int, due time.Time) {
		t.Helper()
		got := fired[name]
		if len(got) != n {
			t.Fatalf("%s went off %d times, want %d", name, len(got), n)
		}
		for _, f := range got {
			if f.Before(due) {
				t.Fatalf("%s went off %s before its time", name, due.Sub(f))
			}
			if f.Sub(due) > 200*time.Millisecond {
				t.Fatalf("%s went off %s late", name, f.Sub(due))
			}
		}
	}
	check("soon", 1, start.Add(20*time.Millisecond))
	check("moved", 1, start.Add(250*time.Millisecond))
	check("late", 1, start.Add(300*time.Millisecond))
	check("gone", 0, time.Time{})
	check("many", 1000, at)
	if len(a.buckets) != 0 {
		t.Fatalf("%d buckets still set", len(a.buckets))
	}
}
