package sources

import (
	"io"
	"sync"
)

// Shared hands out reference-counted connections and pools keyed by what identifies them
// (a DSN, a server URL), so every query that talks to the same server uses one pool, and a
// reload that keeps the server keeps the pool. The last release closes it.
type Shared struct {
	mu sync.Mutex
	m  map[string]*sharedEntry
}

type sharedEntry struct {
	v    io.Closer
	refs int
}

// NewShared returns an empty set.
func NewShared() *Shared { return &Shared{m: map[string]*sharedEntry{}} }

// Acquire returns the value for key, calling open on first use. Call release exactly once
// when done with it.
func (s *Shared) Acquire(key string, open func() (io.Closer, error)) (v io.Closer, release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		c, err := open()
		if err != nil {
			return nil, nil, err
		}
		e = &sharedEntry{v: c}
		s.m[key] = e
	}
	e.refs++
	var once sync.Once
	return e.v, func() { once.Do(func() { s.release(key, e) }) }, nil
}

func (s *Shared) release(key string, e *sharedEntry) {
	s.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && s.m[key] == e {
		delete(s.m, key)
	}
	s.mu.Unlock()
	if last {
		_ = e.v.Close()
	}
}

// Len is the number of open shared values (for leak tests and metrics).
func (s *Shared) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
