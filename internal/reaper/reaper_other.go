//go:build !linux

package reaper

import (
	"context"
	"errors"
)

func setSubreaper(bool) error { return errors.New("child subreaper: Linux only") }

func watch(ctx context.Context) { <-ctx.Done() }

func sweepOnce() bool { return false }
