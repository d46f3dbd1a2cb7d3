package rabbitmq

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/sources"
)

// TestHeadAgeShapes covers what the broker may say about the head message's timestamp.
func TestHeadAgeShapes(t *testing.T) {
	now := time.Unix(1_700_000_100, 0)
	for _, tc := range []struct {
		name, body string
		want       float64
		wantErr    string
	}{
		{"timestamp", `{"messages": 9, "messages_ready": 4, "head_message_timestamp": 1700000000}`, 100, ""},
		{"empty queue", `{"messages": 0, "messages_ready": 0, "head_message_timestamp": ""}`, 0, ""},
		{"only unacked", `{"messages": 3, "messages_ready": 0, "messages_unacknowledged": 3, "head_message_timestamp": 1700000040}`, 60, ""},
		{"future timestamp is skew", `{"messages_ready": 1, "head_message_timestamp": 1700000160}`, 0, ""},
		{"no timestamp property", `{"messages_ready": 4, "head_message_timestamp": ""}`, 0, "4 messages but no head_message_timestamp"},
		{"null", `{"messages_ready": 4, "head_message_timestamp": null}`, 0, "no head_message_timestamp"},
		{"field absent", `{"messages_ready": 4}`, 0, "no head_message_timestamp"},
		{"no stats yet", `{"name": "orders"}`, 0, "no message counts yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			src, _ := New(&Config{URL: srv.URL, VHost: "/", Queue: "orders", Measure: sources.MeasureOldestAge}, sources.Deps{})
			src.(*source).now = func() time.Time { return now }
			v, err := src.Value(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error containing %q, got %v, %v", tc.wantErr, v, err)
				}
				return
			}
			if err != nil || v != tc.want {
				t.Fatalf("value = %v, %v; want %v", v, err, tc.want)
			}
		})
	}
}

// testOldestAge runs measure: oldest_age against the real broker of TestBroker.
func testOldestAge(t *testing.T, mq *testenv.RabbitMQ) {
	start := time.Now()
	ch := channel(t, mq.AMQPURL)
	declare(t, ch, "stamped", nil)
	publish(t, ch, "stamped", start.Add(-120*time.Second), start.Add(-60*time.Second), start.Add(-30*time.Second))
	declare(t, ch, "unstamped", nil)
	publish(t, ch, "unstamped", time.Time{}, start.Add(-60*time.Second))
	declare(t, ch, "idle", nil)
	declare(t, ch, "quorum", amqp.Table{"x-queue-type": "quorum"})
	publish(t, ch, "quorum", start.Add(-60*time.Second))

	age := func(queue string) (float64, error) {
		t.Helper()
		src, err := New(&Config{URL: mq.ManagementURL, VHost: "/", Queue: queue, Measure: sources.MeasureOldestAge}, sources.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		defer sources.Close(src)
		return sources.Read(context.Background(), src, 5*time.Second)
	}
	// AMQP timestamps have whole seconds: an age may read up to 1s more than exact.
	want := func(queue string, seconds float64) {
		t.Helper()
		got, err := age(queue)
		if err != nil {
			t.Fatalf("%s: %v", queue, err)
		}
		if slack := time.Since(start).Seconds() + 1; got < seconds || got > seconds+slack {
			t.Fatalf("%s: age %vs, want %vs (+%.1fs)", queue, got, seconds, slack)
		}
	}

	waitStats(t, mq, "/", "stamped", 3, 0)
	want("stamped", 120)
	// The head consumed: the next message is the head.
	get(t, ch, "stamped", true)
	waitStats(t, mq, "/", "stamped", 2, 0)
	want("stamped", 60)
	// Delivered and not acknowledged: still the queue's (and still counted by
	// messages), so still the head.
	held := get(t, ch, "stamped", false)
	waitStats(t, mq, "/", "stamped", 1, 1)
	want("stamped", 60)
	if err := held.Ack(false); err != nil {
		t.Fatal(err)
	}
	waitStats(t, mq, "/", "stamped", 1, 0)
	want("stamped", 30)

	waitStats(t, mq, "/", "idle", 0, 0)
	want("idle", 0)

	waitStats(t, mq, "/", "unstamped", 2, 0)
	if _, err := age("unstamped"); err == nil || !strings.Contains(err.Error(), `rabbitmq: queue "unstamped" in vhost "/": 2 messages but no head_message_timestamp`) {
		t.Errorf("unstamped head: got %v", err)
	}
	// Quorum queues do not report head_message_timestamp, stamped or not: an error.
	waitStats(t, mq, "/", "quorum", 1, 0)
	if _, err := age("quorum"); err == nil || !strings.Contains(err.Error(), `1 messages but no head_message_timestamp`) {
		t.Errorf("quorum queue: got %v, want the no-timestamp error", err)
	}
}

func channel(t *testing.T, amqpURL string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatalf("amqp dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return ch
}

func declare(t *testing.T, ch *amqp.Channel, queue string, args amqp.Table) {
	t.Helper()
	if _, err := ch.QueueDeclare(queue, true, false, false, false, args); err != nil {
		t.Fatalf("declare %s: %v", queue, err)
	}
}

// publish sends one message per stamp, with that timestamp property (none for a zero
// time), and waits for the broker's confirm.
func publish(t *testing.T, ch *amqp.Channel, queue string, stamps ...time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, ts := range stamps {
		conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
			amqp.Publishing{Body: fmt.Appendf(nil, "job %d", i), DeliveryMode: amqp.Persistent, Timestamp: ts})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		if ok, err := conf.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish not confirmed: %v", err)
		}
	}
}

// get takes the head message, acknowledged at once (autoAck) or held unacknowledged.
func get(t *testing.T, ch *amqp.Channel, queue string, autoAck bool) amqp.Delivery {
	t.Helper()
	d, ok, err := ch.Get(queue, autoAck)
	if err != nil || !ok {
		t.Fatalf("get from %s: %v, %v", queue, ok, err)
	}
	return d
}
