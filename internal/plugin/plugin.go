// Package plugin is the one registry of kinds. A query kind or a target kind registers
// here, once (from its init, through sources.Register or targets.Register): its name, its
// sample config, the constructor of its config and the function that builds it.
//
// It sits below everything that uses it: configs reads it to decode a kind's settings,
// sources and targets build from it, and none of them has to import another for that.
package plugin

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
)

// Class tells query kinds from target kinds: a name is unique within its class.
type Class string

// The classes of kinds.
const (
	Query  Class = "query"
	Target Class = "target"
	Sink   Class = "sink" // notification sinks (notify)
)

type kind struct {
	sample    string
	newConfig func() any
	build     any // func(cfg any, deps D) (T, error) with the class's D and T
}

var (
	mu    sync.RWMutex
	kinds = map[Class]map[string]kind{}
)

// Register adds a kind to class. newConfig returns a fresh config with its defaults set;
// build turns a decoded, checked config into the plugin (D and T are the class's deps and
// plugin types, the same for every kind of a class). Registering a name twice panics.
func Register[C, D, T any](class Class, name, sample string, newConfig func() *C, build func(cfg *C, deps D) (T, error)) {
	mu.Lock()
	defer mu.Unlock()
	if kinds[class] == nil {
		kinds[class] = map[string]kind{}
	}
	if _, dup := kinds[class][name]; dup {
		panic(fmt.Sprintf("plugin: %s kind registered twice: %s", class, name))
	}
	kinds[class][name] = kind{
		sample:    sample,
		newConfig: func() any { return newConfig() },
		build:     func(cfg any, deps D) (T, error) { return build(cfg.(*C), deps) },
	}
}

func lookup(class Class, name string) (kind, bool) {
	mu.RLock()
	defer mu.RUnlock()
	k, ok := kinds[class][name]
	return k, ok
}

// Names lists the kinds of class, sorted.
func Names(class Class) []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(kinds[class]))
	for name := range kinds[class] {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Sample returns a kind's sample config.
func Sample(class Class, name string) (string, bool) {
	k, ok := lookup(class, name)
	return k.sample, ok
}

// NewConfig returns a fresh config of a kind, with its defaults, for the loader to decode
// into; ok is false for an unknown kind.
func NewConfig(class Class, name string) (cfg any, ok bool) {
	k, ok := lookup(class, name)
	if !ok {
		return nil, false
	}
	return k.newConfig(), true
}

// Build builds a kind from a config NewConfig made and the loader filled; ok is false for
// an unknown kind. D and T must be the class's, as registered.
func Build[D, T any](class Class, name string, cfg any, deps D) (v T, err error, ok bool) {
	k, ok := lookup(class, name)
	if !ok {
		return v, nil, false
	}
	build, typed := k.build.(func(any, D) (T, error))
	if !typed {
		panic(fmt.Sprintf("plugin: %s kind %s was registered with other deps or plugin types than it is built with", class, name))
	}
	v, err = build(cfg, deps)
	return v, err, true
}

// Logger returns l, or a logger that discards when there is none (validate, tests).
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
