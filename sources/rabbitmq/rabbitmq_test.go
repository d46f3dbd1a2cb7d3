package rabbitmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/internal/testing/testenv"
	"github.com/autoscalerd/autoscalerd/sources"
	httpsrc "github.com/autoscalerd/autoscalerd/sources/http"
)

func TestReadmeShowsSample(t *testing.T) { plugintest.ReadmeShowsSample(t) }

func TestSampleDecodes(t *testing.T) {
	var q struct {
		Queries configs.Queries `yaml:"queries"`
	}
	if err := plugintest.Decode(t, sample, &q, map[string]string{"RABBITMQ_PASSWORD": "pw"}); err != nil {
		t.Fatalf("sample.conf: %v", err)
	}
	cfg := q.Queries[0].Config.(*Config)
	if cfg.VHost != "/" || cfg.Queue != "orders" || cfg.BasicAuth.Password.Value() != "pw" {
		t.Fatalf("sample.conf decoded to %+v", cfg)
	}
}

func TestConfig(t *testing.T) {
	plugintest.CheckConfigs(t, func() *Config { return &Config{VHost: "/", Measure: sources.MeasureCount} }, []plugintest.ConfigCase{
		{Text: "url: http://127.0.0.1:15672\nqueue: q"},
		{Text: "url: https://mq.example.com/rabbitmq/\nvhost: shop/eu\nqueue: q"},
		{Text: "url: http://h:15672/api/queues/%2F/q\nqueue: q", Want: "not an endpoint"},
		{Text: "url: amqp://u:hunter2@h:5672\nqueue: q", Want: "want an http:// or https:// URL"},
		{Text: "url: http://h:15672", Want: `missing required key "queue"`},
		{Text: "url: http://h:15672\nvhost: ''\nqueue: q", Want: "must not be empty"},
		{Text: "url: http://h:15672\nqueue: q\nbasic_auth: {password: x}", Want: `missing required key "username"`},
		{Text: "url: http://h:15672\nqueue: q\nmeasure: oldest_age"},
		{Text: "url: http://h:15672\nqueue: q\nmeasure: head", Want: `test.yaml:3:10: q.measure: "head" is not a measure (use count or oldest_age)`},
	}, "hunter2")
}

// TestResponseShapes covers the fallbacks for fields a broker may leave out; the real
// broker below only ever sends them all.
func TestResponseShapes(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       float64
		wantErr    string
	}{
		{"messages", `{"messages": 12, "messages_ready": 2, "messages_unacknowledged": 10}`, 12, ""},
		{"no total", `{"messages_ready": 5, "messages_unacknowledged": 4}`, 9, ""},
		{"ready only", `{"messages_ready": 5}`, 5, ""},
		{"no stats yet", `{"name": "orders", "vhost": "/"}`, 0, "no message counts yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotPath string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotPath = r.URL.EscapedPath()
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			src, _ := New(&Config{URL: srv.URL + "/", VHost: "/", Queue: "orders"}, sources.Deps{})
			v, err := src.Value(context.Background())
			if gotPath != "/api/queues/%2F/orders" {
				t.Errorf("requested %s", gotPath)
			}
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

// TestBroker runs against a real RabbitMQ node: messages published over AMQP, some left
// ready and some delivered without ack, must all be counted.
func TestBroker(t *testing.T) {
	mq := testenv.StartRabbitMQ(t)
	const vhost, password = "shop/eu", "s3cret-pass"
	mq.API(t, http.MethodPut, "/api/vhosts/"+url.PathEscape(vhost), "")
	mq.API(t, http.MethodPut, "/api/permissions/"+url.PathEscape(vhost)+"/guest", `{"configure":".*","write":".*","read":".*"}`)
	mq.API(t, http.MethodPut, "/api/users/scaler", `{"password":"`+password+`","tags":"monitoring"}`)
	mq.API(t, http.MethodPut, "/api/permissions/%2F/scaler", `{"configure":"^$","write":"^$","read":".*"}`)

	// Default vhost: 10 published, 3 delivered and held without ack, 7 ready.
	load(t, mq.AMQPURL, "orders", 10, 3)
	// A vhost and a queue with slashes in their names.
	load(t, mq.AMQPURL+url.PathEscape(vhost), "jobs/high", 5, 2)
	waitStats(t, mq, "/", "orders", 7, 3)
	waitStats(t, mq, vhost, "jobs/high", 3, 2)

	guest := &httpsrc.BasicAuth{Username: "guest", Password: configs.NewSecret("guest")}
	scaler := &httpsrc.BasicAuth{Username: "scaler", Password: configs.NewSecret(password)}
	wrong := &httpsrc.BasicAuth{Username: "scaler", Password: configs.NewSecret("wrong-" + password)}
	withUser := func(user, pass string) string {
		u, _ := url.Parse(mq.ManagementURL)
		u.User = url.UserPassword(user, pass)
		return u.String()
	}
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    float64
		wantErr string
	}{
		{"ready and unacked", Config{URL: mq.ManagementURL, VHost: "/", Queue: "orders", BasicAuth: guest}, 10, ""},
		{"default credentials", Config{URL: mq.ManagementURL, VHost: "/", Queue: "orders"}, 10, ""},
		{"monitoring user", Config{URL: mq.ManagementURL + "/", VHost: "/", Queue: "orders", BasicAuth: scaler}, 10, ""},
		{"credentials in url", Config{URL: withUser("scaler", password), VHost: "/", Queue: "orders"}, 10, ""},
		{"slashes in names", Config{URL: mq.ManagementURL, VHost: vhost, Queue: "jobs/high", BasicAuth: guest}, 5, ""},
		{"wrong password", Config{URL: mq.ManagementURL, VHost: "/", Queue: "orders", BasicAuth: wrong}, 0,
			`401 Unauthorized: user "scaler" was refused: Login failed`},
		{"wrong password in url", Config{URL: withUser("scaler", "wrong-"+password), VHost: "/", Queue: "orders"}, 0,
			`user "scaler" was refused`},
		{"missing queue", Config{URL: mq.ManagementURL, VHost: "/", Queue: "invoices", BasicAuth: guest}, 0,
			`rabbitmq: queue "invoices" in vhost "/": not found`},
		{"missing queue in vhost", Config{URL: mq.ManagementURL, VHost: vhost, Queue: "orders", BasicAuth: guest}, 0,
			`rabbitmq: queue "orders" in vhost "shop/eu": not found`},
		{"missing vhost", Config{URL: mq.ManagementURL, VHost: "shop/us", Queue: "orders", BasicAuth: guest}, 0,
			`rabbitmq: vhost "shop/us" not found`},
		{"no access to vhost", Config{URL: mq.ManagementURL, VHost: vhost, Queue: "jobs/high", BasicAuth: scaler}, 0,
			"User not authorised to access virtual host"},
		{"unreachable", Config{URL: fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), VHost: "/", Queue: "orders", BasicAuth: scaler}, 0,
			"connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := New(&tc.cfg, sources.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer sources.Close(src)
			v, err := sources.Read(context.Background(), src, 5*time.Second)
			if tc.wantErr == "" {
				if err != nil || v != tc.want {
					t.Fatalf("value = %v, %v; want %v", v, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want error containing %q, got %v, %v", tc.wantErr, v, err)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("error leaks the password: %v", err)
			}
			var se *httpsrc.StatusError
			if tc.name == "wrong password" && (!errors.As(err, &se) || se.Code != http.StatusUnauthorized) {
				t.Fatalf("errors.As(StatusError) should find the 401: %v", err)
			}
		})
	}

	t.Run("oldest age", func(t *testing.T) { testOldestAge(t, mq) })
}

// load declares queue on the broker at amqpURL, publishes total messages, and takes
// unacked of them with manual acknowledgement, holding them unacknowledged until the test
// ends.
func load(t *testing.T, amqpURL, queue string, total, unacked int) {
	t.Helper()
	ch := channel(t, amqpURL)
	declare(t, ch, queue, nil)
	publish(t, ch, queue, make([]time.Time, total)...) // no timestamps
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Prefetch caps what the broker pushes: exactly `unacked` messages go out unacked.
	if err := ch.Qos(unacked, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	for range unacked {
		select {
		case <-deliveries:
		case <-ctx.Done():
			t.Fatal("no delivery")
		}
	}
}

// waitStats waits until the management API reports the queue's counts: statistics are
// collected periodically (every 500ms in the test broker), not on every publish.
func waitStats(t *testing.T, mq *testenv.RabbitMQ, vhost, queue string, ready, unacked float64) {
	t.Helper()
	src, _ := New(&Config{URL: mq.ManagementURL, VHost: vhost, Queue: queue}, sources.Deps{})
	defer sources.Close(src)
	s := src.(*source)
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, err := s.client.FetchJSON(context.Background())
		var q queueInfo
		if err == nil {
			err = json.Unmarshal(body, &q)
		}
		if err == nil && q.MessagesReady != nil && q.MessagesUnacknowledged != nil &&
			*q.MessagesReady == ready && *q.MessagesUnacknowledged == unacked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s/%s: stats did not reach ready=%v unacked=%v: %+v %v", vhost, queue, ready, unacked, q, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
