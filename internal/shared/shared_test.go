package shared

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server counts what the Conns under test do to the values they open.
type server struct {
	mu     sync.Mutex
	opened int
	closed []int
	fail   bool
	delay  time.Duration
}

type value struct {
	id   int
	dead atomic.Bool
}

func (s *server) spec(key string) Spec[*value] {
	return Spec[*value]{
		Key: key,
		Open: func(ctx context.Context) (*value, error) {
			if s.delay > 0 {
				select {
				case <-time.After(s.delay):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.fail {
				return nil, errors.New("connection refused")
			}
			s.opened++
			return &value{id: s.opened}, nil
		},
		Close: func(v *value) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.closed = append(s.closed, v.id)
			return nil
		},
		Stale: func(v *value) bool { return v.dead.Load() },
	}
}

func (s *server) counts() (opened, closed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened, len(s.closed)
}

func TestNewDoesNoIO(t *testing.T) {
	var srv server
	set := NewSet()
	c := New(set, srv.spec("k"))
	if opened, _ := srv.counts(); opened != 0 || set.Len() != 1 {
		t.Fatalf("New opened %d values (%d keys held); want 0 opened, 1 held", opened, set.Len())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if opened, closed := srv.counts(); opened != 0 || closed != 0 || set.Len() != 0 {
		t.Fatalf("closing an unused Conn: opened %d, closed %d, %d held", opened, closed, set.Len())
	}
}

func TestRefcount(t *testing.T) {
	var srv server
	set := NewSet()
	ctx := context.Background()
	a, b := New(set, srv.spec("k")), New(set, srv.spec("k"))
	other := New(set, srv.spec("other"))
	va, err := a.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vb, _ := b.Get(ctx)
	vo, _ := other.Get(ctx)
	if va != vb || va == vo || set.Len() != 2 {
		t.Fatalf("one key must give one value, two keys two: %p %p %p, %d held", va, vb, vo, set.Len())
	}
	if again, _ := a.Get(ctx); again != va {
		t.Fatal("Get opened a second value")
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	_ = a.Close() // closing twice releases once
	if _, closed := srv.counts(); closed != 0 {
		t.Fatalf("closed %d values while b still holds its key", closed)
	}
	if _, err := a.Get(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if v, err := b.Get(ctx); err != nil || v != va {
		t.Fatalf("the other holder lost the value: %v, %v", v, err)
	}
	_ = b.Close()
	if _, closed := srv.counts(); closed != 1 || set.Len() != 1 {
		t.Fatalf("after the last holder of k closed: %d closed, %d held; want 1 and 1", closed, set.Len())
	}
	_ = other.Close()
	if set.Len() != 0 {
		t.Fatalf("%d keys held after every Conn closed", set.Len())
	}

	// A key given up by all is opened anew by the next holder.
	c := New(set, srv.spec("k"))
	defer c.Close()
	if v, _ := c.Get(ctx); v == va || v.id != 3 {
		t.Fatalf("got %+v, want a fresh third value", v)
	}
}

func TestFailedOpenIsRetried(t *testing.T) {
	srv := server{fail: true}
	c := New(NewSet(), srv.spec("k"))
	defer c.Close()
	ctx := context.Background()
	for range 2 {
		if _, err := c.Get(ctx); err == nil || err.Error() != "connection refused" {
			t.Fatalf("Get = %v, want the dial error", err)
		}
	}
	srv.mu.Lock()
	srv.fail = false
	srv.mu.Unlock()
	v, err := c.Get(ctx)
	if err != nil || v.id != 1 {
		t.Fatalf("after the server came back: %+v, %v; want the first value", v, err)
	}
}

func TestStaleIsReplaced(t *testing.T) {
	var srv server
	c := New(nil, srv.spec("k")) // a private set
	ctx := context.Background()
	v1, _ := c.Get(ctx)
	v1.dead.Store(true) // closed by its library behind our back
	v2, err := c.Get(ctx)
	if err != nil || v2 == v1 || v2.id != 2 {
		t.Fatalf("stale value not replaced: %+v, %v", v2, err)
	}
	if _, closed := srv.counts(); closed != 1 {
		t.Fatalf("the stale value was not closed (%d closed)", closed)
	}
	_ = c.Close()
	if _, closed := srv.counts(); closed != 2 {
		t.Fatalf("Close left the value open (%d closed)", closed)
	}
}

func TestCloseReturnsCloseError(t *testing.T) {
	boom := errors.New("boom")
	spec := Spec[int]{Key: "k", Open: func(context.Context) (int, error) { return 1, nil }, Close: func(int) error { return boom }}
	set := NewSet()
	a, b := New(set, spec), New(set, spec)
	if _, err := a.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("a holder that is not the last got %v", err)
	}
	if err := b.Close(); !errors.Is(err, boom) {
		t.Fatalf("the last holder got %v, want the close error", err)
	}
}

func TestOneDialForManyHolders(t *testing.T) {
	srv := server{delay: 50 * time.Millisecond}
	set := NewSet()
	conns := make([]*Conn[*value], 8)
	for i := range conns {
		conns[i] = New(set, srv.spec("k"))
	}
	var wg sync.WaitGroup
	got := make([]*value, 64)
	for i := range got {
		wg.Go(func() {
			v, err := conns[i%len(conns)].Get(context.Background())
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	if opened, _ := srv.counts(); opened != 1 {
		t.Fatalf("%d dials for one key, want 1", opened)
	}
	for _, v := range got {
		if v != got[0] {
			t.Fatal("holders got different values")
		}
	}
	for _, c := range conns {
		wg.Go(func() { _ = c.Close() })
	}
	wg.Wait()
	if _, closed := srv.counts(); closed != 1 || set.Len() != 0 {
		t.Fatalf("after concurrent closes: %d closed, %d held; want 1 and 0", closed, set.Len())
	}
}

// Holders come and go while others read: every value opened is closed exactly once, and
// nothing is left open at the end (run with -race).
func TestChurn(t *testing.T) {
	var srv server
	set := NewSet()
	keep := New(set, srv.spec("k"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				c := New(set, srv.spec("k"))
				if _, err := c.Get(context.Background()); err != nil {
					t.Error(err)
				}
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	if opened, closed := srv.counts(); opened != 1 || closed != 0 {
		t.Fatalf("with one holder kept, churn opened %d and closed %d; want 1 and 0", opened, closed)
	}
	_ = keep.Close()

	// Now with no holder kept: the value may close and reopen, but never leak.
	for range 8 {
		wg.Go(func() {
			for range 200 {
				c := New(set, srv.spec("k"))
				_, _ = c.Get(context.Background())
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	if opened, closed := srv.counts(); opened != closed || set.Len() != 0 {
		t.Fatalf("opened %d, closed %d, %d held; every value opened must be closed", opened, closed, set.Len())
	}
}

func TestWaiterGivesUp(t *testing.T) {
	release := make(chan struct{})
	spec := Spec[int]{Key: "k", Open: func(context.Context) (int, error) {
		<-release // a dial that hangs until the test lets it go
		return 1, nil
	}, Close: func(int) error { return nil }}
	set := NewSet()
	a, b := New(set, spec), New(set, spec)
	defer a.Close()
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = a.Get(context.Background())
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := b.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter got %v, want its own deadline", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("waiter waited %s", took)
	}
	close(release)
	<-done
	if v, err := b.Get(context.Background()); err != nil || v != 1 {
		t.Fatalf("after the dial: %v, %v", v, err)
	}
}

func TestKeyWithAnotherType(t *testing.T) {
	set := NewSet()
	a := New(set, Spec[int]{Key: "k"})
	defer a.Close()
	defer func() {
		if recover() == nil {
			t.Fatal("a key reused for another type must panic")
		}
	}()
	New(set, Spec[string]{Key: "k"})
}
