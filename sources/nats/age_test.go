package nats

import (
	"context"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv/natstest"
	"github.com/autoscalerd/autoscalerd/sources"
)

// TestOldestAge reads measure: oldest_age from a real (embedded) nats-server. JetStream
// stamps messages itself, so the test brackets each publish with the clock and spaces
// the messages a gap apart: each expected age is then known to within the test's own
// run time, and the gap tells one message's age from the next one's.
func TestOldestAge(t *testing.T) {
	const gap = 1500 * time.Millisecond
	srv := natstest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	consumer := func(name string, filters ...string) jetstream.Consumer {
		cfg := jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour}
		if len(filters) == 1 {
			cfg.FilterSubject = filters[0]
		} else {
			cfg.FilterSubjects = filters
		}
		c, err := js.CreateConsumer(ctx, "ORDERS", cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	workers := consumer("workers")
	eu := consumer("eu", "orders.eu")
	euAsia := consumer("eu-asia", "orders.eu", "orders.asia")
	consumer("idle", "orders.none")

	// publish returns the clock just before and just after the message was stored.
	publish := func(subject string) (before, after time.Time) {
		t.Helper()
		before = time.Now()
		if _, err := js.Publish(ctx, subject, []byte("order")); err != nil {
			t.Fatal(err)
		}
		return before, time.Now()
	}
	// Stream: 1 orders.us, 2 orders.asia, 3 orders.eu, 4 orders.eu, a gap apart (4 and 5
	// together).
	usBefore, usAfter := publish("orders.us")
	time.Sleep(gap)
	asiaBefore, asiaAfter := publish("orders.asia")
	time.Sleep(gap)
	eu1Before, eu1After := publish("orders.eu")
	time.Sleep(gap)
	eu2Before, eu2After := publish("orders.eu")

	age := func(name string, ackPending bool) float64 {
		t.Helper()
		src := newSource(t, shared.NewSet(), Config{URL: srv.ClientURL(), Stream: "ORDERS", Consumer: name,
			IncludeAckPending: ackPending, Measure: sources.MeasureOldestAge})
		v, err := read(t, src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	// between checks an age of the message stored between before and after.
	between := func(name string, ackPending bool, before, after time.Time) {
		t.Helper()
		start := time.Now()
		got := age(name, ackPending)
		lo, hi := start.Sub(after).Seconds(), time.Since(before).Seconds()
		if got < lo || got > hi {
			t.Fatalf("%s (include_ack_pending %v): age %.3fs, want %.3f..%.3fs", name, ackPending, got, lo, hi)
		}
	}
	zero := func(name string, ackPending bool) {
		t.Helper()
		if got := age(name, ackPending); got != 0 {
			t.Fatalf("%s (include_ack_pending %v): age %vs, want 0 (nothing owed)", name, ackPending, got)
		}
	}
	fetch := func(c jetstream.Consumer, n int) []jetstream.Msg {
		t.Helper()
		batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if len(msgs) != n {
			t.Fatalf("fetched %d, want %d", len(msgs), n)
		}
		return msgs
	}
	ack := func(m jetstream.Msg) {
		t.Helper()
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}

	between("workers", true, usBefore, usAfter)     // no filter: the stream's first message
	between("eu", true, eu1Before, eu1After)        // filtered: older messages on other subjects do not count
	between("eu-asia", true, asiaBefore, asiaAfter) // several filters: the oldest over them
	zero("idle", true)                              // a filter nothing matches

	// workers: 1 delivered and held: still owed with include_ack_pending, not without.
	m := fetch(workers, 1)
	between("workers", true, usBefore, usAfter)
	between("workers", false, asiaBefore, asiaAfter)
	ack(m[0])
	between("workers", true, asiaBefore, asiaAfter)

	// eu: both delivered, the newer acknowledged first: the older is still owed.
	ms := fetch(eu, 2)
	ack(ms[1])
	between("eu", true, eu1Before, eu1After)
	zero("eu", false) // nothing left undelivered
	ack(ms[0])
	zero("eu", true)

	// A message deleted from the stream is skipped, as the consumer skips it.
	fetch(euAsia, 1) // asia, held
	stream, err := js.Stream(ctx, "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, 3); err != nil { // the first orders.eu
		t.Fatal(err)
	}
	between("eu-asia", false, eu2Before, eu2After)
	between("eu-asia", true, asiaBefore, asiaAfter)
}
