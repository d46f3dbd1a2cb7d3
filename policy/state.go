package policy

import (
	"fmt"
	"time"
)

// Rec says the policy wanted V replicas from T until the next Rec (run-length encoded, so
// a steady demand costs one entry however long it lasts).
type Rec struct {
	T time.Time `json:"t"`
	V int       `json:"v"`
}

// Sample is one query value, for window functions.
type Sample struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// State is what a policy remembers between ticks. It is persisted in state_dir so that a
// restart never shortens a cooldown or forgets the stabilisation window.
type State struct {
	// LastAction is the time of the last scaling action, ours or one adopted from outside.
	LastAction    time.Time `json:"last_action,omitzero"`
	LastDirection Action    `json:"last_direction,omitempty"`
	// LastUp is the time of the last scale-up: no scale-down within cooldown.down of it.
	LastUp time.Time `json:"last_scale_up,omitzero"`
	// Expected is the count the target should have; a different observed count was
	// changed outside autoscalerd. Known says Expected is meaningful.
	Expected int  `json:"expected"`
	Known    bool `json:"known"`
	// Failures counts consecutive ticks whose queries or expression failed.
	Failures int  `json:"failures,omitempty"`
	Paused   bool `json:"paused,omitempty"`
	// LastTick is the time of the last evaluation; a gap in ticks breaks the history.
	LastTick time.Time `json:"last_tick,omitzero"`
	// Recs is the desired-count history the cooldown and stabilisation windows look at.
	Recs []Rec `json:"recommendations,omitempty"`
	// Samples holds query values for window functions, by query name.
	Samples map[string][]Sample `json:"samples,omitempty"`
	// Clean is set in the state saved when the daemon stopped cleanly. A state saved while
	// it ran may lack what happened after the save, if the daemon then crashed.
	Clean bool `json:"clean_stop,omitempty"`
}

// Restored makes a state loaded at start safe to decide from at now, and says what it
// changed (for the log):
//   - Times in the future (the clock stepped back since the save) are brought back to
//     now, so a cooldown never lasts longer than configured, and the windows' history is
//     dropped: the policy starts cautious.
//   - A state not saved at a clean stop may lack the last minutes before a crash, a
//     high desired count among them: its windows' history is dropped rather than trusted,
//     so a restart never shortens cooldown.down (at the price of a full window of
//     history before the next scale-down).
func (s *State) Restored(now time.Time) []string {
	var notes []string
	late := now.Add(time.Minute) // clock skew that is not worth a word
	latest := time.Time{}
	for _, t := range []time.Time{s.LastAction, s.LastUp, s.LastTick} {
		if t.After(latest) {
			latest = t
		}
	}
	if n := len(s.Recs); n > 0 && s.Recs[n-1].T.After(latest) {
		latest = s.Recs[n-1].T
	}
	if latest.After(late) {
		notes = append(notes, fmt.Sprintf("saved times up to %s are %s in the future (the clock stepped back?): cooldowns count from now and the windows' history starts again",
			latest.UTC().Format(time.RFC3339), latest.Sub(now).Round(time.Second)))
		if s.LastAction.After(now) {
			s.LastAction = now
		}
		if s.LastUp.After(now) {
			s.LastUp = now
		}
		s.LastTick, s.Recs, s.Samples = time.Time{}, nil, nil
	}
	if !s.Clean && (len(s.Recs) > 0 || len(s.Samples) > 0) {
		notes = append(notes, fmt.Sprintf("the daemon did not stop cleanly: what happened after the last save (%s) is unknown, so the windows' history starts again (no scale-down before a full cooldown.down)",
			s.LastTick.UTC().Format(time.RFC3339)))
		s.Recs, s.Samples = nil, nil
	}
	s.Clean = false
	return notes
}

// addRec records the desired count at now. History older than keep is dropped, and a gap
// longer than maxGap since the previous tick restarts the history: the daemon was not
// watching, so it cannot claim demand was low all along.
func (s *State) addRec(now time.Time, v int, keep, maxGap time.Duration) {
	if len(s.Recs) > 0 && now.Sub(s.LastTick) > maxGap {
		s.Recs = s.Recs[:0]
	}
	if n := len(s.Recs); n == 0 || s.Recs[n-1].V != v {
		s.Recs = append(s.Recs, Rec{T: now, V: v})
	}
	cut := now.Add(-keep)
	drop := 0
	for drop+1 < len(s.Recs) && !s.Recs[drop+1].T.After(cut) {
		drop++
	}
	if drop > 0 {
		s.Recs = append(s.Recs[:0], s.Recs[drop:]...)
	}
}

// recsCover reports whether the history reaches back over the whole window ending at now.
func (s *State) recsCover(now time.Time, window time.Duration) bool {
	return len(s.Recs) > 0 && !s.Recs[0].T.After(now.Add(-window))
}

// recsFor returns how long, back from now, every desired count on record satisfied ok,
// for reasons ("below 10 for 2m of 5m").
func (s *State) recsFor(now time.Time, ok func(int) bool) time.Duration {
	since := now
	for i := len(s.Recs) - 1; i >= 0 && ok(s.Recs[i].V); i-- {
		since = s.Recs[i].T
	}
	return now.Sub(since)
}

// recsRange returns the lowest and highest desired count in (now-window, now].
func (s *State) recsRange(now time.Time, window time.Duration) (lo, hi int) {
	from := now.Add(-window)
	lo, hi = 1<<31-1, -1
	for i := len(s.Recs) - 1; i >= 0; i-- {
		r := s.Recs[i]
		lo, hi = min(lo, r.V), max(hi, r.V)
		if !r.T.After(from) {
			break
		}
	}
	return lo, hi
}

// addSample records a query value. Samples older than keep are dropped, except the last
// one at or before the cut, which shows that the history reaches back over the window. A
// gap longer than maxGap since the previous sample restarts the history.
func (s *State) addSample(name string, now time.Time, v float64, keep, maxGap time.Duration) {
	if s.Samples == nil {
		s.Samples = map[string][]Sample{}
	}
	xs := s.Samples[name]
	if n := len(xs); n > 0 && now.Sub(xs[n-1].T) > maxGap {
		xs = xs[:0]
	}
	xs = append(xs, Sample{T: now, V: v})
	cut := now.Add(-keep)
	drop := 0
	for drop+1 < len(xs) && !xs[drop+1].T.After(cut) {
		drop++
	}
	if drop > len(xs)/2 && drop > 16 {
		xs = append(xs[:0:0], xs[drop:]...) // reallocate so the dropped prefix is freed
	} else {
		xs = xs[drop:]
	}
	s.Samples[name] = xs
}

// Summary is what tells whether a tick changed anything worth saving.
type Summary struct {
	lastAction time.Time
	lastUp     time.Time
	expected   int
	known      bool
	failures   int
	paused     bool
	recs       int
	lastRec    Rec
}

// Summary returns the parts of the state whose change is worth a save.
func (s *State) Summary() Summary {
	sum := Summary{lastAction: s.LastAction, lastUp: s.LastUp, expected: s.Expected, known: s.Known, failures: s.Failures, paused: s.Paused, recs: len(s.Recs)}
	if n := len(s.Recs); n > 0 {
		sum.lastRec = s.Recs[n-1]
	}
	return sum
}
