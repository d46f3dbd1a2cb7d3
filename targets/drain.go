package targets

import "time"

// DrainState is where one replica's drain is.
type DrainState string

// The states of a drain. Quiet and Waiting are in progress; the others are over.
const (
	// DrainQuiet: the replica was chosen and told to stop taking new work.
	DrainQuiet DrainState = "quiet"
	// DrainWaiting: the replica said it is still busy; the drain waits for it.
	DrainWaiting DrainState = "waiting"
	// DrainStopped: the replica reported idle and was stopped.
	DrainStopped DrainState = "stopped"
	// DrainTimedOut: the drain's timeout passed while the replica was busy; it was
	// stopped anyway, cutting its work short.
	DrainTimedOut DrainState = "timed out"
	// DrainTakenBack: demand rose during the drain; the replica was told to take work
	// again and counts as capacity once more.
	DrainTakenBack DrainState = "taken back"
	// DrainGone: the replica ended on its own (or was removed by someone else) during the
	// drain.
	DrainGone DrainState = "gone"
)

// Over reports whether the drain has ended.
func (s DrainState) Over() bool { return s != DrainQuiet && s != DrainWaiting }

// DrainInfo is one replica's drain, as a Drainer reports it.
type DrainInfo struct {
	// ID tells drains apart; it grows with each drain a target starts.
	ID uint64 `json:"id"`
	// Replica names the replica: its number for a process group, the container name for
	// compose.
	Replica string `json:"replica"`
	// Reason says why this replica was chosen ("idle, started 3m ago").
	Reason string     `json:"reason"`
	State  DrainState `json:"state"`
	// Since is when the drain began; Ended when it ended (zero while it runs).
	Since time.Time `json:"since"`
	Ended time.Time `json:"ended,omitzero"`
}

// Drainer is implemented by targets that drain a replica before they stop it (a `drain:`
// block): Scale to fewer replicas returns once the chosen replicas are told to go quiet,
// and the drains carry on in the background. Draining replicas are not in
// Status.Replicas: they are not capacity any more, and the next scale-down never picks
// them again.
type Drainer interface {
	// Drains returns the drains in progress and the recently ended ones, oldest first.
	// It reads only the target's memory.
	Drains() []DrainInfo
}
