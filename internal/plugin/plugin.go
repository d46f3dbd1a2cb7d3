// Package plugin is the registry behind both query kinds and target kinds: each kind has
// a name, its sample config and a function that builds it from its decoded config.
package plugin

import (
	"log/slog"
	"sort"
	"sync"
)

// Registry holds the kinds that build a T from a decoded config and deps D.
type Registry[D, T any] struct {
	mu    sync.RWMutex
	kinds map[string]kind[D, T]
}

type kind[D, T any] struct {
	sample string
	build  func(cfg any, deps D) (T, error)
}

// Add registers a kind whose config type is C.
func Add[C, D, T any](r *Registry[D, T], name, sample string, build func(cfg *C, deps D) (T, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kinds == nil {
		r.kinds = map[string]kind[D, T]{}
	}
	if _, dup := r.kinds[name]; dup {
		panic("plugin: kind registered twice: " + name)
	}
	r.kinds[name] = kind[D, T]{sample: sample, build: func(cfg any, deps D) (T, error) { return build(cfg.(*C), deps) }}
}

// Sample returns a kind's sample config.
func (r *Registry[D, T]) Sample(name string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[name]
	return k.sample, ok
}

// Names lists the registered kinds, sorted.
func (r *Registry[D, T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.kinds))
	for name := range r.kinds {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Build builds a kind from its decoded config; ok is false for an unknown kind.
func (r *Registry[D, T]) Build(name string, cfg any, deps D) (v T, err error, ok bool) {
	r.mu.RLock()
	k, ok := r.kinds[name]
	r.mu.RUnlock()
	if !ok {
		return v, nil, false
	}
	v, err = k.build(cfg, deps)
	return v, err, true
}

// Logger returns l, or a logger that discards when there is none (validate, tests).
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
