package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/sources"
)

// readGrace is how long past its timeout a read may take to return its own error before
// the engine gives up on it.
const readGrace = time.Second

// reader reads one query's source with its timeout enforced by the engine, not only by
// the source: a source that does not honour its context (a file on a FIFO or a hung NFS
// mount, a client that ignores deadlines) cannot hold up the tick, the reload or the
// shutdown. Go cannot stop a goroutine, so a read that never returns is abandoned; while
// it is outstanding the source is not read again, so each source holds at most one such
// goroutine, which ends when the read finally returns.
type reader struct {
	src     sources.Source
	timeout time.Duration
	work    *workers
	// busySince is when the outstanding read started (unix nanoseconds), 0 when none is.
	busySince atomic.Int64
}

type readResult struct {
	v   float64
	err error
}

func (r *reader) read(ctx context.Context) (float64, error) {
	now := time.Now()
	if since := r.busySince.Load(); since != 0 {
		return 0, fmt.Errorf("the previous read has not returned after %s (the source ignores its timeout); not reading again until it does",
			configs.FormatDuration(now.Sub(time.Unix(0, since)).Round(time.Second)))
	}
	if c, ok := r.src.(sources.Current); ok { // known without waiting: no read, no timer
		if v, ok := c.Current(ctx); ok {
			return sources.Check(v)
		}
	}
	timeout := r.timeout
	if timeout <= 0 {
		timeout = configs.DefaultTimeout
	}
	// One timer per read, the context's: the grace timer is made only for a read that
	// outlives its timeout.
	rctx, cancel := context.WithTimeout(ctx, timeout)
	r.busySince.Store(now.UnixNano())
	done := make(chan readResult, 1)
	r.work.run(func() {
		defer cancel()
		v, err := sources.Read(rctx, r.src, 0)
		if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("timed out after %s: %w", configs.FormatDuration(timeout), err)
		}
		r.busySince.Store(0)
		done <- readResult{v, err}
	})
	select {
	case res := <-done:
		return res.v, res.err
	case <-rctx.Done():
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	grace := time.NewTimer(readGrace)
	defer grace.Stop()
	select {
	case res := <-done:
		return res.v, res.err
	case <-grace.C:
		return 0, fmt.Errorf("timed out after %s (the source did not return; its read is abandoned)", configs.FormatDuration(timeout))
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
