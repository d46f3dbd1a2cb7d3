// Package shared is the one way a plugin holds a connection, pool or client:
//
//   - opened on first use, not when the plugin is built, so building does no I/O and
//     `autoscalerd validate` touches nothing;
//   - shared by key (same server, same identity, same TLS) with every plugin that talks to
//     the same server, across queries, policies and reloads;
//   - dialled again on the next use when a dial failed or the value went stale: a server
//     that is down at start is picked up on the next tick;
//   - closed by the last holder.
//
// A plugin makes a *Conn with New from the Set its Deps carry and calls Get in Value,
// Status or Scale and Close in its own Close.
package shared

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Set holds the values shared by key. The engine keeps one for the daemon's life; its
// zero value is not usable, use NewSet.
type Set struct {
	mu sync.Mutex
	m  map[string]any // *entry[T], T fixed by the key's kind
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{m: map[string]any{}} }

// Len is the number of keys held (for leak tests).
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Spec says how to make and drop one kind of value.
type Spec[T any] struct {
	// Key identifies the value in the Set. Every Conn with one key must open equivalent
	// values: whichever Get comes first dials. Keys hold no secrets (see
	// sources.Fingerprint), so they are safe to print.
	Key string
	// Open makes the value within ctx (the caller's timeout bounds a dial).
	Open func(ctx context.Context) (T, error)
	// Close releases a value Open made.
	Close func(T) error
	// Stale, if set, reports that a kept value is beyond repair (closed by its library),
	// so Get drops it and dials anew.
	Stale func(T) bool
}

// ErrClosed is returned by Get on a Conn that was closed.
var ErrClosed = errors.New("connection used after Close")

// entry is the state of one key, shared by the Conns that hold it.
type entry[T any] struct {
	refs int           // guarded by Set.mu
	lock chan struct{} // guards the rest: a mutex that a waiter can give up on
	v    T
	ok   bool
	dead bool // the last holder closed it; a Get that raced with that must not reopen
}

// Conn is one holder's hold on the value under a key. It is safe for concurrent use.
type Conn[T any] struct {
	set    *Set
	spec   Spec[T]
	e      *entry[T]
	mu     sync.Mutex
	closed bool
}

// New takes a hold on spec.Key in set, without opening anything. A nil set gives the
// Conn a set of its own: the value is then this holder's alone (for a plugin built
// outside the engine, or a client that is never worth sharing).
func New[T any](set *Set, spec Spec[T]) *Conn[T] {
	if set == nil {
		set = NewSet()
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	var e *entry[T]
	if old, ok := set.m[spec.Key]; ok {
		typed, ok := old.(*entry[T])
		if !ok {
			panic(fmt.Sprintf("shared: key %q holds a %T, not a %T", spec.Key, old, e))
		}
		e = typed
	} else {
		e = &entry[T]{lock: make(chan struct{}, 1)}
		set.m[spec.Key] = e
	}
	e.refs++
	return &Conn[T]{set: set, spec: spec, e: e}
}

// Get returns the value, opening it first if there is none yet, the last dial failed,
// or it went stale. Holders of one key wait for one dial at a time, each no longer than
// its own ctx allows, so a slow dial for one query does not push the others past their
// timeouts.
func (c *Conn[T]) Get(ctx context.Context) (T, error) {
	var zero T
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return zero, ErrClosed
	}
	e := c.e
	select {
	case e.lock <- struct{}{}:
		defer func() { <-e.lock }()
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	if e.dead {
		return zero, ErrClosed
	}
	if e.ok && c.spec.Stale != nil && c.spec.Stale(e.v) {
		_ = c.spec.Close(e.v) // it is dead already; nothing to tell
		e.v, e.ok = zero, false
	}
	if !e.ok {
		v, err := c.spec.Open(ctx)
		if err != nil {
			return zero, err // not remembered: the next Get dials again
		}
		e.v, e.ok = v, true
	}
	return e.v, nil
}

// Close gives the hold back; the last holder's Close closes the value (waiting for a dial
// in progress) and returns what closing it returned. Closing twice releases once.
func (c *Conn[T]) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	s, e := c.set, c.e
	s.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last {
		delete(s.m, c.spec.Key) // a later New for the key starts afresh
	}
	s.mu.Unlock()
	if !last {
		return nil
	}
	e.lock <- struct{}{}
	defer func() { <-e.lock }()
	e.dead = true
	if !e.ok {
		return nil
	}
	var zero T
	v := e.v
	e.v, e.ok = zero, false
	return c.spec.Close(v)
}
