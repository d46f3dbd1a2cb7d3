package policy_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
)

// snapshot is the state as a save writes it: what a daemon killed afterwards restarts from.
func snapshot(t *testing.T, st policy.State) policy.State {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var out policy.State
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCrashNeverShortensCooldownDown: the state is saved at most every two minutes between
// actions, so a SIGKILL can lose the ticks after the last save, a "wanted 4" among them.
// Restored treats that time as unknown: the restarted policy does not scale down until a
// full cooldown.down has been watched again, never before cooldown.down after the lost
// "wanted 4".
func TestCrashNeverShortensCooldownDown(t *testing.T) {
	p := compile(t, "min: 1\nmax: 10\ninterval: 30s\ncooldown: { up: 0s, down: 150s }\nreplicas: q\n", "q")
	live := &rig{t: t, p: p, cur: 4}
	live.at(0, 1)
	saved := snapshot(t, live.st) // the periodic save
	live.at(sec(30), 4)           // wanted 4: never saved
	live.at(sec(60), 1)
	// SIGKILL; the daemon is back 30 s later.

	naive := &rig{t: t, p: p, cur: 4, st: snapshot(t, saved)}
	naive.play(seq(ticks(sec(90), sec(120), 30*time.Second, 4, 1), step{at: sec(150), vals: v(1), want: 1}))
	if t.Failed() {
		t.Fatal("without Restored the saved history does not show the defect; the test proves nothing")
	}

	st := snapshot(t, saved)
	notes := st.Restored(t0.Add(sec(90)))
	if len(notes) != 1 || !strings.Contains(notes[0], "did not stop cleanly") {
		t.Errorf("notes = %q", notes)
	}
	r := &rig{t: t, p: p, cur: 4, st: st}
	r.play(seq(
		ticks(sec(90), sec(210), 30*time.Second, 4, 1),
		step{at: sec(240), vals: v(1), want: 1, why: "cooldown.down ok: highest in 2m30s=1"},
	))

	// A clean stop saved everything: its history is kept.
	clean := snapshot(t, live.st)
	clean.Clean = true
	if notes := clean.Restored(t0.Add(sec(90))); len(notes) != 0 || len(clean.Recs) == 0 || clean.Clean {
		t.Errorf("clean stop: notes %q, recs %v, clean %v", notes, clean.Recs, clean.Clean)
	}
}

// TestStateFromTheFuture: a state saved before the clock was stepped back a day would hold
// every scale-up for a day. Restored brings its times back to now and starts cautious.
func TestStateFromTheFuture(t *testing.T) {
	p := compile(t, base, "queued")
	later := &rig{t: t, p: p, cur: 2}
	later.at(24*time.Hour, 800) // 2→8 a day "later"
	st := snapshot(t, later.st)
	st.Clean = true

	naive := &rig{t: t, p: p, cur: 8, st: snapshot(t, st)}
	if d := naive.at(time.Minute, 1500); !strings.Contains(d.Reason, "cooldown.up: 23h") {
		t.Fatalf("without Restored: %s; the test proves nothing", d.Reason)
	}

	notes := st.Restored(t0)
	if len(notes) != 1 || !strings.Contains(notes[0], "in the future") {
		t.Errorf("notes = %q", notes)
	}
	r := &rig{t: t, p: p, cur: 8, st: st}
	r.play([]step{
		{at: sec(10), vals: v(1500), want: 8, why: "cooldown.up: 20s left → hold"},
		{at: sec(30), vals: v(1500), want: 15, why: "scale 8→15"},
	})
}

// TestFreshTargetIsRestored: a process group starts empty after a restart. That is not an
// outside change to adopt: the count the policy had is restored at once, and the restore
// starts no cooldown.
func TestFreshTargetIsRestored(t *testing.T) {
	p := compile(t, base, "queued")
	r := &rig{t: t, p: p, cur: 2}
	r.at(0, 500) // 2→5
	st := snapshot(t, r.st)
	in := inputs(0, v(500))
	in.Fresh = true
	d, st := policy.Decide(p, st, in, t0.Add(sec(5)))
	st.Commit(d)
	if d.To != 5 || !d.Restore || !strings.Contains(d.Reason, "restore 5 at once") || strings.Contains(d.Reason, "adopting") {
		t.Fatalf("%+v", d)
	}
	if !st.LastAction.Equal(t0) || st.Expected != 5 {
		t.Errorf("the restore changed the cooldown or the count: %+v", st)
	}
	// Above the restored count, the normal rules apply: cooldown.up counts from the 2→5.
	in = inputs(5, v(900))
	in.Fresh = true
	d, _ = policy.Decide(p, st, in, t0.Add(sec(10)))
	if d.To != 5 || !strings.Contains(d.Reason, "cooldown.up: 20s left") {
		t.Errorf("%+v", d)
	}
}
