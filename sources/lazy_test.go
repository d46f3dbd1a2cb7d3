package sources

import (
	"context"
	"errors"
	"testing"
	"time"
)

type fakeConn struct {
	id     int
	closed bool
}

func TestLazy(t *testing.T) {
	dials, fail := 0, true
	var closed []int
	l := NewLazy(func(ctx context.Context) (*fakeConn, error) {
		dials++
		if fail {
			return nil, errors.New("refused")
		}
		return &fakeConn{id: dials}, nil
	}, func(c *fakeConn) bool { return c.closed }, func(c *fakeConn) { closed = append(closed, c.id) })
	ctx := context.Background()

	if _, err := l.Get(ctx); err == nil {
		t.Fatal("want the dial error")
	}
	fail = false
	c, err := l.Get(ctx) // a failed dial is not remembered
	if err != nil || c.id != 2 {
		t.Fatalf("Get = %+v, %v; want the second dial", c, err)
	}
	if again, _ := l.Get(ctx); again != c || dials != 2 {
		t.Fatalf("Get dialled again (%d dials) instead of keeping the value", dials)
	}
	c.closed = true // closed behind our back: redial
	if c3, _ := l.Get(ctx); c3.id != 3 || len(closed) != 1 || closed[0] != 2 {
		t.Fatalf("stale value not replaced: got %+v, closed %v", c3, closed)
	}
	if err := l.Close(); err != nil || len(closed) != 2 {
		t.Fatalf("Close: %v, closed %v", err, closed)
	}
	if err := l.Close(); err != nil || len(closed) != 2 {
		t.Fatalf("second Close closed again: %v", closed)
	}
}

func TestLazyWaiterGivesUp(t *testing.T) {
	release := make(chan struct{})
	l := NewLazy(func(ctx context.Context) (int, error) {
		<-release // a dial that hangs until the test lets it go
		return 1, nil
	}, nil, func(int) {})
	go func() { _, _ = l.Get(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := l.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter got %v, want its own deadline", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("waiter waited %s", took)
	}
	close(release)
	if v, err := l.Get(context.Background()); err != nil || v != 1 {
		t.Fatalf("after the dial: %v, %v", v, err)
	}
}
