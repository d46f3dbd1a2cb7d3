package warm

import "testing"

// TestBounds: the pool is kept at size, and with parking at max_size, never beyond what
// the running replicas leave of the policy's max, never below zero.
func TestBounds(t *testing.T) {
	c := &Config{Size: 3, MaxSize: 5, ReuseOnScaleIn: true}
	for _, tc := range []struct{ running, max, want, keep int }{
		{1, 10, 3, 5},
		{7, 10, 3, 3},
		{9, 10, 1, 1},
		{10, 10, 0, 0},
		{12, 10, 0, 0}, // above max (a schedule lowered it): no pool, not a negative one
		{4, 0, 3, 5},   // no max given (tests): no bound
	} {
		if got := c.Want(tc.running, tc.max); got != tc.want {
			t.Errorf("Want(%d, %d) = %d, want %d", tc.running, tc.max, got, tc.want)
		}
		if got := c.Keep(tc.running, tc.max); got != tc.keep {
			t.Errorf("Keep(%d, %d) = %d, want %d", tc.running, tc.max, got, tc.keep)
		}
	}
	if (&Config{Size: 2}).MaxSizeOrDefault() != 2 || (&Config{}).StateOrDefault() != Paused {
		t.Error("defaults: max_size is size, state is paused")
	}
}
