package engine

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
)

// knowing is a source that knows its value without a read while known is set.
type knowing struct {
	known atomic.Bool
	v     float64
	reads atomic.Int64
}

func (k *knowing) Value(context.Context) (float64, error) {
	k.reads.Add(1)
	return 0, errors.New("read")
}

func (k *knowing) Current(context.Context) (float64, bool) { return k.v, k.known.Load() }

// TestReaderTakesTheCurrentValue: a value the source knows without waiting is taken as it
// is, checked like any read, and a source that does not know is read.
func TestReaderTakesTheCurrentValue(t *testing.T) {
	w := newWorkers(1)
	t.Cleanup(w.stop)
	src := &knowing{v: 7}
	r := &reader{src: src, work: w}
	src.known.Store(true)
	if v, err := r.read(context.Background()); err != nil || v != 7 || src.reads.Load() != 0 {
		t.Fatalf("known: %v, %v after %d reads; want 7 and no read", v, err, src.reads.Load())
	}
	src.v = math.NaN()
	if _, err := r.read(context.Background()); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("a known NaN: %v, want the NaN refused", err)
	}
	src.known.Store(false)
	if _, err := r.read(context.Background()); err == nil || err.Error() != "read" || src.reads.Load() != 1 {
		t.Fatalf("not known: %v after %d reads; want the read's error", err, src.reads.Load())
	}
}
