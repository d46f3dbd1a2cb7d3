// Package warm is the `warm:` block that compose and process targets share: a pool of
// standby replicas, made ahead of demand, that a scale-up hands out in milliseconds instead
// of starting replicas at the engine's speed.
//
// A member is a replica that is not capacity: compose keeps it paused (`docker pause`,
// its processes frozen by the cgroup freezer) or created and never started; a process
// group keeps it stopped with SIGSTOP. Scale-up takes members first (unpause, SIGCONT,
// start) and makes new replicas only for the rest; the pool is refilled in the background,
// never beyond the policy's max counting the running replicas.
package warm

import (
	"fmt"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
)

// The pace of a pool, the same on every target.
const (
	// RefillEvery is how often a pool is refilled without a kick (a scale, an event):
	// members that died are replaced at this pace, never in a tight loop.
	RefillEvery = 15 * time.Second
	// ReadyLimit bounds a new member's start-up (healthcheck, busy probe, going idle); one
	// not ready by then is removed and the failure kept for the status.
	ReadyLimit = 5 * time.Minute
)

// State is how a member waits.
type State string

// The states a pool may keep its members in.
const (
	// Paused members were started (and, with a drain block, told to go quiet and seen
	// idle) and are frozen: they hold their memory, use no CPU, and join at once.
	Paused State = "paused"
	// Stopped members are created but never started: they hold no memory, and joining
	// costs a container start (the engine's share of a scale-up, without the create).
	Stopped State = "stopped"
)

// Config is a target's `warm:` block.
type Config struct {
	// Size is how many members the pool keeps, as far as the policy's max allows
	// (running replicas plus members never exceed it).
	Size int `yaml:"size" required:"true"`
	// State is paused (the default) or stopped.
	State State `yaml:"state"`
	// ReuseOnScaleIn parks replicas a scale-down removes into the pool (after their drain,
	// with a drain block) instead of removing them, while the pool has room.
	ReuseOnScaleIn bool `yaml:"reuse_on_scale_in"`
	// MaxSize is how many members the pool may hold when scale-ins park replicas in it
	// (default: size); above it parked replicas are removed.
	MaxSize int `yaml:"max_size"`
}

// StateOrDefault is the state in force.
func (c *Config) StateOrDefault() State {
	if c.State == "" {
		return Paused
	}
	return c.State
}

// MaxSizeOrDefault is the most members the pool keeps.
func (c *Config) MaxSizeOrDefault() int { return max(c.MaxSize, c.Size) }

// Want is how many members the pool should hold with running replicas up and the
// policy's max at most: what it keeps refilled to.
func (c *Config) Want(running, policyMax int) int { return bound(c.Size, running, policyMax) }

// Keep is how many members the pool may hold, parked replicas included; members beyond
// it are removed.
func (c *Config) Keep(running, policyMax int) int {
	return bound(c.MaxSizeOrDefault(), running, policyMax)
}

func bound(n, running, policyMax int) int {
	if policyMax > 0 {
		n = min(n, policyMax-running)
	}
	return max(n, 0)
}

// Kind says which target the block is on.
type Kind int

// The target kinds with a warm block.
const (
	Compose Kind = iota
	Process
)

// Check reports the block's mistakes at their positions. field is the block's key
// ("warm"); hasDrain says whether the target has a drain block, unresumable whether that
// block quiets replicas with no way to resume them.
func (c *Config) Check(ch *configs.Check, field string, kind Kind, hasDrain, unresumable bool) {
	at := func(k string) string { return configs.JoinPath(field, k) }
	if ch.Has(at("size")) && c.Size < 1 {
		ch.Errorf(at("size"), "must be at least 1 (remove the warm block for no pool)")
	}
	if ch.Has(at("state")) {
		switch c.State {
		case Paused:
		case Stopped:
			if kind == Process {
				ch.Errorf(at("state"), "a process cannot be made without being started, so a stopped pool would hold nothing; use paused (started, then SIGSTOPped)")
			}
		default:
			ch.Errorf(at("state"), "%q is not a pool state: use paused or stopped", c.State)
		}
	}
	if ch.Has(at("max_size")) {
		switch {
		case !c.ReuseOnScaleIn:
			ch.Errorf(at("max_size"), "max_size bounds the replicas a scale-in parks in the pool; it needs reuse_on_scale_in: true")
		case c.MaxSize < c.Size:
			ch.Errorf(at("max_size"), "max_size (%d) is below size (%d)", c.MaxSize, c.Size)
		}
	}
	if c.ReuseOnScaleIn && c.StateOrDefault() == Paused && !hasDrain && ch.Has(at("reuse_on_scale_in")) {
		hint := ", or use state: stopped"
		if kind == Process {
			hint = "" // a process pool has no stopped state
		}
		ch.Errorf(at("reuse_on_scale_in"), "parking a replica paused would freeze the job it is working on; add a drain: block so it is parked only once idle%s", hint)
	}
	if c.StateOrDefault() == Paused && unresumable && ch.Has(field) {
		ch.Errorf(field, "a paused member is told to go quiet (the drain block's quiet) before it is frozen, and nothing could tell it to take work again once handed out; add resume_signal or resume to the drain block")
	}
}

// Info is a pool as the status shows it.
type Info struct {
	State State `json:"state"`
	// Size is the configured size; Want what the pool is kept at now (the policy's max
	// may allow fewer).
	Size int `json:"size"`
	Want int `json:"want"`
	// Members are ready to hand out; Warming are being made (started, waiting to be
	// ready and idle, then paused).
	Members int `json:"members"`
	Warming int `json:"warming"`
	// HandedOut counts the members scale-ups took since the daemon started; Parked the
	// replicas scale-ins put back.
	HandedOut uint64 `json:"handed_out"`
	Parked    uint64 `json:"parked"`
	// Replaced counts members removed because the service changed under them (a new
	// image or configuration).
	Replaced uint64 `json:"replaced"`
	// LastError is the last failure to make a member ("" after a success).
	LastError string `json:"last_error,omitempty"`
}

// String is the pool in a few words, for logs and the reason chain.
func (i Info) String() string {
	return fmt.Sprintf("%d of %d %s (%d warming)", i.Members, i.Want, i.State, i.Warming)
}
