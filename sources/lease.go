package sources

import (
	"io"
	"sync"
)

// Lease is one source's hold on a value in Shared (a pool, a client). It is taken on the
// first Get, not when the source is built, so that building a source does no I/O, and
// given back by Close. A Lease is safe for concurrent use; its zero value is ready.
type Lease[T io.Closer] struct {
	mu      sync.Mutex
	v       T
	release func()
}

// Get returns the value shared under key, acquiring it on the first call (open runs only
// if no other source holds it yet). A nil Shared gets a private one: the value is then
// this source's alone.
func (l *Lease[T]) Get(s *Shared, key string, open func() (T, error)) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.release != nil {
		return l.v, nil
	}
	if s == nil {
		s = NewShared()
	}
	v, release, err := s.Acquire(key, func() (io.Closer, error) { return open() })
	if err != nil {
		var zero T
		return zero, err
	}
	l.v, l.release = v.(T), release
	return l.v, nil
}

// Close gives the value back; the last holder's release closes it. A later Get acquires
// it again.
func (l *Lease[T]) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.release != nil {
		l.release()
		var zero T
		l.v, l.release = zero, nil
	}
	return nil
}
