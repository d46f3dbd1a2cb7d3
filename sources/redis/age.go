package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/autoscalerd/autoscalerd/sources"
)

// oldestAge is how long, in seconds, the oldest entry the stream's consumers still owe
// has been in the stream, measured from the time in its ID (the milliseconds part of an
// ID Redis generated with XADD *) to the server's own clock (TIME), so the daemon's clock
// does not matter.
//
// Which entry is the oldest owed:
//   - with a group, the oldest entry not yet acknowledged: the smallest pending ID
//     (XPENDING) when entries are pending — pending IDs all precede the group's
//     last-delivered ID — otherwise the first entry after last-delivered-id, which no
//     consumer of the group has been given yet;
//   - without a group, the stream's first entry: with no group to say what is done, the
//     stream is the queue (its consumers XDEL or trim what they finish).
//
// Nothing owed (an empty or missing stream, a group that has acknowledged everything) is 0.
func (s *source) oldestAge(ctx context.Context, c *redis.Client) (float64, error) {
	actual, err := s.keyType(ctx, c)
	if err != nil {
		return 0, err
	}
	switch actual {
	case "none":
		return 0, nil
	case "stream":
	default:
		return 0, fmt.Errorf("is a %s; measure: oldest_age needs a stream", actual)
	}
	id, err := s.oldestOwed(ctx, c)
	if err != nil || id == "" {
		return 0, err
	}
	ms, _, err := parseID(id)
	if err != nil {
		return 0, err
	}
	now, err := c.Time(ctx).Result()
	if err != nil {
		return 0, fmt.Errorf("TIME: %w", err)
	}
	return sources.AgeSeconds(now, time.UnixMilli(int64(ms))), nil
}

// oldestOwed is the ID of the oldest entry still owed (see oldestAge), or "" for none.
func (s *source) oldestOwed(ctx context.Context, c *redis.Client) (string, error) {
	start := "-"
	if s.group != "" {
		g, err := s.groupInfo(ctx, c)
		if err != nil {
			return "", err
		}
		if g.Pending > 0 {
			p, err := c.XPending(ctx, s.key, s.group).Result()
			if err != nil {
				return "", fmt.Errorf("XPENDING: %w", err)
			}
			if p.Count > 0 {
				return p.Lower, nil
			}
			// Acknowledged between the two calls: fall through to the undelivered.
		}
		start = "(" + g.LastDeliveredID
	}
	msgs, err := c.XRangeN(ctx, s.key, start, "+", 1).Result()
	if err != nil {
		return "", fmt.Errorf("XRANGE: %w", err)
	}
	if len(msgs) == 0 {
		return "", nil
	}
	return msgs[0].ID, nil
}
