package nats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autoscalerd/autoscalerd/sources"
)

// oldestAge is how long, in seconds, the oldest message of the consumer's backlog has
// been in the stream: with include_ack_pending the oldest message not acknowledged yet,
// the first one after the consumer's ack floor; without, the oldest not delivered yet,
// the first one after its last delivered stream sequence. "First after" is asked of the
// stream by subject (STREAM.MSG.GET with next_by_subj, or a direct get), so messages on
// subjects outside the consumer's filter and messages deleted from the stream are
// skipped, as the consumer skips them. The message's time is the server's, and so is
// "now" (the consumer info's timestamp), so the daemon's clock does not matter.
//
// An empty backlog is 0, without the second request.
func (s *source) oldestAge(ctx context.Context, js jetstream.JetStream, info *jetstream.ConsumerInfo) (float64, error) {
	after, owed := info.Delivered.Stream, info.NumPending
	if s.ackPending {
		after, owed = info.AckFloor.Stream, owed+uint64(info.NumAckPending)
	}
	if owed == 0 {
		return 0, nil
	}
	stream, err := js.Stream(ctx, s.stream)
	if err != nil {
		return 0, err
	}
	subjects := info.Config.FilterSubjects
	if info.Config.FilterSubject != "" {
		subjects = []string{info.Config.FilterSubject}
	}
	if len(subjects) == 0 {
		subjects = []string{">"} // no filter: any subject of the stream
	}
	var oldest *jetstream.RawStreamMsg
	for _, subject := range subjects {
		m, err := stream.GetMsg(ctx, after+1, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("oldest message after stream sequence %d on %q: %w", after, subject, err)
		}
		if oldest == nil || m.Sequence < oldest.Sequence {
			oldest = m
		}
	}
	if oldest == nil {
		return 0, nil // taken and acknowledged between the two requests
	}
	now := info.TimeStamp
	if now.IsZero() { // servers before 2.10 do not send it
		now = time.Now()
	}
	return sources.AgeSeconds(now, oldest.Time), nil
}
