package redis

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// scanPage is how many entries one XRANGE fetches while counting a lag by hand.
const scanPage = 1000

// groupBacklog is the work a consumer group still has: entries delivered to a consumer
// but not acknowledged (pending) plus entries not delivered yet (lag).
//
// Redis 7 reports lag in XINFO GROUPS, but not always: after XDEL left a tombstone past
// the group's position it answers nil, because its counters can no longer tell. Redis 6
// has no lag field at all. Then lag is counted honestly instead — see undelivered.
func (s *source) groupBacklog(ctx context.Context, c *redis.Client) (int64, error) {
	g, err := s.groupInfo(ctx, c)
	if err != nil {
		return 0, err
	}
	lag := g.Lag
	// go-redis reports a nil lag as -1. A lag and entries-read both 0 on a stream
	// that has entries can only mean the fields were absent (Redis < 7): a Redis 7
	// group that has read nothing would report the whole stream as lag.
	if lag < 0 || (lag == 0 && g.EntriesRead == 0) {
		if lag, err = undelivered(ctx, c, s.key, g.LastDeliveredID); err != nil {
			return 0, err
		}
	}
	return g.Pending + lag, nil
}

// groupInfo is the source's group from XINFO GROUPS; a group that does not exist is an
// error listing the groups that do.
func (s *source) groupInfo(ctx context.Context, c *redis.Client) (redis.XInfoGroup, error) {
	groups, err := c.XInfoGroups(ctx, s.key).Result()
	if err != nil {
		return redis.XInfoGroup{}, fmt.Errorf("XINFO GROUPS: %w", err)
	}
	var names []string
	for _, g := range groups {
		if g.Name == s.group {
			return g, nil
		}
		names = append(names, g.Name)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return redis.XInfoGroup{}, fmt.Errorf("stream has no consumer group %q (it has none)", s.group)
	}
	return redis.XInfoGroup{}, fmt.Errorf("stream has no consumer group %q (it has %s)", s.group, strings.Join(names, ", "))
}

// undelivered counts the entries after a group's last-delivered ID: exactly the entries
// its consumers have not been given yet (deleted entries are gone and never will be).
// The two common cases cost one XINFO STREAM: the group is past the last entry (0), or
// the stream was trimmed past the group's position (every entry is undelivered).
// Otherwise it pages through the entries with XRANGE, scanPage at a time: O(lag), bounded
// by the query's timeout, never an estimate.
func undelivered(ctx context.Context, c *redis.Client, key, lastDelivered string) (int64, error) {
	info, err := c.XInfoStream(ctx, key).Result()
	if err != nil {
		return 0, fmt.Errorf("XINFO STREAM: %w", err)
	}
	if info.Length == 0 {
		return 0, nil
	}
	if cmp, err := compareIDs(lastDelivered, info.LastEntry.ID); err != nil || cmp >= 0 {
		return 0, err
	}
	if cmp, err := compareIDs(lastDelivered, info.FirstEntry.ID); err != nil || cmp < 0 {
		return info.Length, err
	}
	var n int64
	start := "(" + lastDelivered
	for {
		msgs, err := c.XRangeN(ctx, key, start, "+", scanPage).Result()
		if err != nil {
			return 0, fmt.Errorf("counting undelivered entries (XRANGE): %w", err)
		}
		n += int64(len(msgs))
		if len(msgs) < scanPage {
			return n, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}
