package sources

import (
	"errors"
	"testing"
)

type closeCounter struct{ closed *int }

func (c closeCounter) Close() error { *c.closed++; return nil }

func TestLease(t *testing.T) {
	shared := NewShared()
	closed, opened := 0, 0
	open := func() (closeCounter, error) { opened++; return closeCounter{&closed}, nil }

	var a, b Lease[closeCounter]
	for i := 0; i < 2; i++ { // a second Get reuses the first acquisition
		if _, err := a.Get(shared, "k", open); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Get(shared, "k", open); err != nil {
		t.Fatal(err)
	}
	if opened != 1 || shared.Len() != 1 {
		t.Fatalf("opened %d values, %d shared; want 1 and 1", opened, shared.Len())
	}
	a.Close()
	a.Close() // closing twice releases once
	if closed != 0 || shared.Len() != 1 {
		t.Fatalf("closed %d with one holder left; want 0", closed)
	}
	b.Close()
	if closed != 1 || shared.Len() != 0 {
		t.Fatalf("closed %d, %d shared after the last holder closed; want 1 and 0", closed, shared.Len())
	}

	var c Lease[closeCounter]
	boom := errors.New("boom")
	if _, err := c.Get(shared, "k", func() (closeCounter, error) { return closeCounter{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the open error", err)
	}
	if _, err := c.Get(nil, "k", open); err != nil || opened != 2 {
		t.Fatalf("after a failed open, Get got %v and opened %d; want a fresh open", err, opened)
	}
	c.Close()
	if closed != 2 {
		t.Fatalf("a private value was not closed")
	}
}
