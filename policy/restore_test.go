package policy_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
)

// restart returns a rig that continues from r's state written out and read back as the
// engine's store does (JSON; engine's store tests check the file handling), as a daemon
// restarted between two ticks would.
func restart(t *testing.T, r *rig) *rig {
	t.Helper()
	b, err := json.Marshal(r.st)
	if err != nil {
		t.Fatal(err)
	}
	var st policy.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, p: r.p, st: st, cur: r.cur}
}

func TestStateRoundTrip(t *testing.T) {
	p := compile(t, `
min: 1
max: 20
interval: 10s
replicas: max(ceil(queued / 100), ceil(avg_over(cpu, 1m) / 10))
cooldown: { up: 30s, down: 5m }
stabilization: { up: 20s }
`, "queued", "cpu")
	live := &rig{t: t, p: p, cur: 2}
	for i := range 40 {
		live.at(sec(10*i), float64(100*(i%7)), float64(30+i))
	}
	if live.st.LastAction.IsZero() || len(live.st.Recs) == 0 || len(live.st.Samples["cpu"]) == 0 {
		t.Fatalf("the warm-up run left too little state to test: %+v", live.st)
	}
	restored := restart(t, live)

	want, _ := json.Marshal(live.st)
	got, _ := json.Marshal(restored.st)
	if string(got) != string(want) {
		t.Fatalf("state changed through the store:\n got: %s\nwant: %s", got, want)
	}
	// The restored state must decide exactly as the one that never left memory.
	for i := 40; i < 100; i++ {
		vals := []float64{float64(150 * (i % 5)), float64(90 - i/2)}
		if i%11 == 0 {
			vals[0] = fail
		}
		a, b := live.at(sec(10*i), vals...), restored.at(sec(10*i), vals...)
		if a.To != b.To || a.Reason != b.Reason {
			t.Fatalf("t=%ds: live %d (%s), restored %d (%s)", 10*i, a.To, a.Reason, b.To, b.Reason)
		}
	}
}

func TestRestartNeverShortensCooldown(t *testing.T) {
	p := compile(t, base, "queued")
	r := &rig{t: t, p: p, cur: 2}
	r.play([]step{{at: 0, vals: v(800), want: 8, why: "scale 2→8"}})

	r = restart(t, r)
	r.play(seq(
		step{at: sec(10), vals: v(1200), want: 8, why: "cooldown.up: 20s left → hold"},
		step{at: sec(20), vals: v(300), want: 8, why: "cooldown.down: 4m40s left since the last scale-up → hold"},
		ticks(sec(30), sec(290), 10*time.Second, 8, 300),
	))

	// A restart that takes two minutes: the cooldown since the scale-up still counts, and
	// the down window starts again because nobody watched the demand meanwhile.
	r = restart(t, r)
	r.play(seq(
		step{at: sec(420), vals: v(300), want: 8, why: "cooldown.down: below 8 for 0s of 5m → hold"},
		ticks(sec(430), sec(710), 10*time.Second, 8, 300),
		step{at: sec(720), vals: v(300), want: 3, why: "scale 8→3"},
	))
}

// TestEmptyStateIsCautious: a missing or corrupt state file makes the engine start from
// an empty state (engine's TestMissingOrCorruptState), which is cautious: a target found
// at 10 is not scaled down before a full cooldown.down of history, however low the
// demand; a scale-up is not held back.
func TestEmptyStateIsCautious(t *testing.T) {
	p := compile(t, base, "queued")
	r := &rig{t: t, p: p, cur: 10}
	r.play(seq(
		ticks(0, sec(290), 10*time.Second, 10, 200),
		step{at: sec(300), vals: v(200), want: 2, why: "scale 10→2"},
	))
	r = &rig{t: t, p: p, cur: 2}
	r.play([]step{{at: 0, vals: v(900), want: 9, why: "scale 2→9"}})
}

// TestRestartAdoptsOutsideChange: the target was changed while the daemon was down. The
// restored state expects the old count, so the first tick adopts the new one and holds.
func TestRestartAdoptsOutsideChange(t *testing.T) {
	p := compile(t, base, "queued")
	r := &rig{t: t, p: p, cur: 2}
	r.play([]step{{at: 0, vals: v(400), want: 4, why: "scale 2→4"}})
	r = restart(t, r)
	r.cur = 9 // someone ran `docker compose up --scale worker=9` meanwhile
	r.play(seq(
		step{at: sec(40), vals: v(400), want: 9, why: "observed 9 replicas, expected 4: adopting the change made outside autoscalerd"},
		// The adopted scale-up counts as one: no scale-down within cooldown.down of it.
		ticks(sec(50), sec(330), 10*time.Second, 9, 400),
		step{at: sec(340), vals: v(400), want: 4, why: "scale 9→4"},
	))
}

// TestDecideIsDeterministic replays the same trace twice from an empty state: Decide reads
// no clock and keeps nothing outside the state, so both runs agree tick by tick.
func TestDecideIsDeterministic(t *testing.T) {
	body := `
min: 0
max: 30
interval: 10s
replicas: max(ceil((queued ?? 0) / 100), ceil(avg_over(cpu, 2m) / 20))
activation: (queued ?? 0) > 0
cooldown: { up: 30s, down: 2m }
stabilization: { up: 20s }
step: { up: "50%", down: 3 }
schedule:
  - { cron: "*/15 * * * *", duration: 5m, timezone: Europe/Berlin, min: 2 }
`
	run := func() []policy.Decision {
		r := &rig{t: t, p: compile(t, body, "queued", "cpu")}
		var out []policy.Decision
		for i := range 600 {
			q := float64((i * 7919) % 3000)
			if i%13 == 0 {
				q = fail
			}
			if i%97 < 20 {
				q = 0
			}
			out = append(out, r.at(sec(10*i), q, float64(20+(i*31)%70)))
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i].To != b[i].To || a[i].Reason != b[i].Reason {
			t.Fatalf("tick %d: %d (%s) vs %d (%s)", i, a[i].To, a[i].Reason, b[i].To, b[i].Reason)
		}
	}
}
