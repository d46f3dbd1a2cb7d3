// Package targets defines what a scalable thing implements. Each kind lives in
// targets/<kind> and registers itself from init() with Register, into the one registry
// (internal/plugin) that the loader also reads; targets/all imports them all.
//
// Like sources, a target is built by engine.Build without I/O and holds its client as a
// *shared.Conn (internal/shared): opened on first use (the Docker targets share one client
// per engine with docker_stats), opened again on the next call after a failure.
package targets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/plugin"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/targets/warm"
)

// Status is what a target reports about itself.
type Status struct {
	// Replicas is the current count the policy decides from (compose: running containers;
	// swarm and nomad: the desired count).
	Replicas int
	// Ready is how many replicas are up and serving, or -1 when the target can't tell.
	Ready int
	// Fresh says the target started from nothing with this daemon and has not been scaled
	// yet: its replicas end with the daemon (a process group), so a count lower than the
	// policy last set is not a change made outside autoscalerd, and the count is restored
	// at once, without waiting for cooldown.up.
	Fresh bool
}

// Reason travels with a scaling action so targets can record why (Nomad scaling events).
type Reason struct {
	Policy  string
	Message string
}

// Target is one scalable thing. Methods may be called concurrently with each other only
// through Watch; Status and Scale are called from the policy's own goroutine.
type Target interface {
	Status(ctx context.Context) (Status, error)
	// Scale sets the replica count. It returns when the change is made (or failed).
	Scale(ctx context.Context, replicas int, why Reason) error
}

// InMemory is implemented by targets whose Status is answered from the daemon's own
// memory (a process group): it never waits on I/O, so the engine calls it without the
// deadline it gives every other target's Status (a context timer per tick, a measurable
// share of the daemon's cost with thousands of policies).
type InMemory interface {
	StatusInMemory()
}

// ErrNoop is returned (wrapped) by Scale when the target cannot act right now for a
// reason that will pass (an active Nomad deployment): the engine retries next tick and
// starts no cooldown.
var ErrNoop = errors.New("no-op")

// Closer is implemented by targets that hold resources or children. Close is called when
// the policy is removed or its target changes, and at shutdown.
type Closer interface {
	Close(ctx context.Context) error
}

// Updater is implemented by targets that can take some setting changes in place (a process
// group's stop signal and timeout) instead of being replaced, which would restart their
// replicas. Update reports whether cfg (the kind's config) can be taken in place and, if
// so, returns the function that applies it; the engine calls it once the whole new
// configuration has been built.
type Updater interface {
	Update(cfg any) (apply func(), ok bool)
}

// HostChecker is implemented by target configs that name things on this machine (a
// process target's command and dir). validate asks it: a missing binary is a mistake to
// report before run, where it would only show up as failing scale-ups.
type HostChecker interface {
	CheckHost() []HostProblem
}

// HostProblem is one thing a HostChecker did not find: the config key and why.
type HostProblem struct {
	Field string
	Msg   string
}

// Watcher is implemented by targets that can notice outside changes (Docker events) and
// ask for an early evaluation. Watch runs until ctx ends.
type Watcher interface {
	Watch(ctx context.Context, changed func()) error
}

// Notifier is implemented by targets that notice their changes themselves (a supervised
// child that left) and can call back without anyone blocking in Watch. The engine prefers
// it to Watcher: a policy then costs no goroutine between ticks. changed is called until
// stop is; it must not block.
type Notifier interface {
	Notify(changed func()) (stop func())
}

// Historian is implemented by targets that remember their own scaling actions (Nomad
// keeps scaling events per task group). At start the engine asks for the latest action;
// when it is newer than the persisted state it counts as the policy's last action, so a
// daemon restarted on another node, or a scale by someone else, never shortens a cooldown.
type Historian interface {
	// LastScaled returns the most recent successful scaling action; ok is false when the
	// target has none on record.
	LastScaled(ctx context.Context) (last Scaling, ok bool, err error)
}

// Scaling is one past scaling action, as a Historian remembers it.
type Scaling struct {
	At       time.Time
	From, To int
	// Message is the reason recorded with the action ("" if none was given).
	Message string
}

// Deps is what a target may use besides its own config: only what some kind needs,
// never the daemon's own secrets (its API token). The engine's build function fills it;
// a test may leave any field zero.
type Deps struct {
	Logger *slog.Logger
	Policy string
	// Shared holds the clients targets and sources share (one Docker client per engine);
	// nil gives the target clients of its own.
	Shared *shared.Set
	// DockerHost is the daemon's docker.host ("" = DOCKER_HOST or the default socket).
	DockerHost string
	// StateDir is the daemon's state_dir, for targets that keep records of their own (a
	// compose target's drains in progress); "" keeps them in memory only.
	StateDir string
	// MaxReplicas is the policy's max: a warm pool holds at most what the running
	// replicas leave of it (0: no bound, in tests).
	MaxReplicas int
}

// Pooler is implemented by targets with a warm pool (a `warm:` block). Pool reads only
// the target's memory: what it saw at its last look at the pool.
type Pooler interface {
	Pool() warm.Info
	// SetMax tells the pool the policy's max in force (a schedule or a reload may change
	// it): running replicas plus members stay within it.
	SetMax(n int)
}

// Log returns the target's logger, or one that discards when the caller gave none
// (validate, tests).
func (d Deps) Log() *slog.Logger { return plugin.Logger(d.Logger) }

// Register makes a target kind available, to the loader and to New, in the one plugin
// registry. newConfig returns a fresh config with its defaults (it must implement
// configs.Keyed); build makes the Target without I/O.
func Register[C any](name, sample string, newConfig func() *C, build func(cfg *C, deps Deps) (Target, error)) {
	if _, ok := any(newConfig()).(configs.Keyed); !ok {
		panic("targets: the config of kind " + name + " does not implement configs.Keyed")
	}
	plugin.Register(plugin.Target, name, sample, newConfig, build)
}

// Sample returns the sample config of a kind.
func Sample(name string) (string, bool) { return plugin.Sample(plugin.Target, name) }

// Kinds lists the registered target kinds.
func Kinds() []string { return plugin.Names(plugin.Target) }

// New builds the target of a policy.
func New(t configs.Target, deps Deps) (Target, error) {
	tgt, err, ok := plugin.Build[Deps, Target](plugin.Target, t.Kind, t.Config, deps)
	if !ok {
		return nil, fmt.Errorf("unknown target kind %q", t.Kind)
	}
	return tgt, err
}
