package sources

import "context"

// Lazy is a connection made on first use and kept until Close: what a kind puts in Shared
// when its client library dials and reconnects by itself (NATS, gRPC). Building it does
// no I/O, so sources stay cheap to build and `validate` touches nothing.
//
// Queries that share it wait for one dial at a time, each no longer than its own context
// allows, so a slow dial for one query does not push the others past their timeouts. A
// failed dial is not remembered: the next Get dials again.
type Lazy[T any] struct {
	dial  func(context.Context) (T, error)
	stale func(T) bool
	close func(T)

	lock chan struct{} // a mutex that a waiter can give up on
	v    T
	ok   bool
}

// NewLazy returns a Lazy that makes its value with dial. stale (may be nil) reports that a
// kept value is beyond repair — closed by its library — so Get dials anew; close
// releases a value.
func NewLazy[T any](dial func(context.Context) (T, error), stale func(T) bool, close func(T)) *Lazy[T] {
	return &Lazy[T]{dial: dial, stale: stale, close: close, lock: make(chan struct{}, 1)}
}

// Get returns the value, dialling it first if there is none (or it is stale).
func (l *Lazy[T]) Get(ctx context.Context) (T, error) {
	var zero T
	select {
	case l.lock <- struct{}{}:
		defer func() { <-l.lock }()
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	if l.ok && l.stale != nil && l.stale(l.v) {
		l.close(l.v)
		l.v, l.ok = zero, false
	}
	if !l.ok {
		v, err := l.dial(ctx)
		if err != nil {
			return zero, err
		}
		l.v, l.ok = v, true
	}
	return l.v, nil
}

// Close releases the value, if one was made; a later Get dials again.
func (l *Lazy[T]) Close() error {
	l.lock <- struct{}{}
	defer func() { <-l.lock }()
	if l.ok {
		var zero T
		l.close(l.v)
		l.v, l.ok = zero, false
	}
	return nil
}
