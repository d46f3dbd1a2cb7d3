package engine

import (
	"time"

	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/targets"
)

// Observer hears what the engine did, for the durable decision log and notifications.
// Its methods are called synchronously on a policy's loop (Decided) or on the caller of
// SetPaused (Paused), after the fact: they must return quickly and never wait for the
// network. Hand the work to a queue, or write one line to a local file.
type Observer interface {
	// Decided is called once per tick with the committed decision, including ticks whose
	// target could not be reached or whose scaling action failed.
	Decided(Tick)
	// Paused is called when a policy is paused or resumed (and only on a change).
	Paused(Pause)
}

// Tick is what one evaluation of a policy did.
type Tick struct {
	Policy *policy.Policy
	// Decision is the committed decision: a failed action is a hold whose reason says
	// what failed.
	Decision policy.Decision
	// Values are the query values read, in Policy.Queries order; nil when the target
	// could not be reached (no queries were read).
	Values []policy.Value
	// ScaleErr is the target's error when the action failed; TargetErr the error of a
	// target that could not be reached for its status (the tick decided nothing).
	ScaleErr, TargetErr error
	// Attempted is the count the action tried to reach (Decision.To, unless it failed).
	Attempted int
	// Fallback says on_error's fallback count is in force after this tick, WasFallback
	// that it was before: the two differ on the ticks that enter or leave it.
	Fallback, WasFallback bool
	// Repeat marks a dry-run action that is the one of the tick before: the target never
	// follows a dry run, so it comes back every tick; it is no news.
	Repeat bool
	// DrainsTimedOut are the drains that reached their timeout since the last tick: their
	// replicas were stopped with work in hand.
	DrainsTimedOut []targets.DrainInfo
}

// Pause is a policy paused or resumed over the API.
type Pause struct {
	Policy  string
	Paused  bool
	Current int
	Time    time.Time
}

// inFallback reports whether p's fallback replicas are in force in st.
func inFallback(p *policy.Policy, st policy.State) bool {
	return p.Fallback != nil && st.Failures >= p.FailureThreshold
}
