// Package rabbitmq reads the depth of a RabbitMQ queue from the management HTTP API:
// messages ready for delivery plus messages delivered and not yet acknowledged, or the
// age of the message at the head of the queue.
package rabbitmq

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/sources"
	httpsrc "github.com/autoscalerd/autoscalerd/sources/http"
)

//go:embed sample.conf
var sample string

// Config is the `rabbitmq` query kind.
type Config struct {
	// URL is the management API's base, e.g. http://rabbit:15672 (plus any path prefix).
	URL   string `yaml:"url" required:"true"`
	VHost string `yaml:"vhost"`
	Queue string `yaml:"queue" required:"true"`
	// BasicAuth defaults to guest/guest, RabbitMQ's own default user, which the broker
	// only accepts from loopback: fine next to a dev broker, never in production.
	BasicAuth *httpsrc.BasicAuth `yaml:"basic_auth"`
	TLS       configs.TLS        `yaml:"tls"`
	// Measure is count (messages) or oldest_age (seconds since the timestamp property of
	// the message at the head of the queue).
	Measure string `yaml:"measure"`
}

func init() {
	sources.Register("rabbitmq", sample, func() *Config { return &Config{VHost: "/", Measure: sources.MeasureCount} }, New)
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	if ch.Has("url") {
		if err := httpsrc.CheckURL(c.URL); err != nil {
			ch.Errorf("url", "%v", err)
		} else if u, _ := url.Parse(c.URL); u.RawQuery != "" || strings.Contains(u.Path, "/api/") {
			ch.Errorf("url", "give the management API's base (e.g. http://rabbit:15672), not an endpoint: the queue path is added from vhost and queue")
		}
	}
	if ch.Has("vhost") && c.VHost == "" {
		ch.Errorf("vhost", `must not be empty (the default vhost is "/")`)
	}
	if ch.Has("queue") && c.Queue == "" {
		ch.Errorf("queue", "must not be empty")
	}
	sources.CheckMeasure(ch, c.Measure)
}

type source struct {
	client     *httpsrc.Client
	vhostProbe *httpsrc.Client // asked only after a 404, to tell a missing vhost from a missing queue
	vhost      string
	queue      string
	user       string
	defaulted  bool // guest/guest, because nothing was configured
	age        bool
	now        func() time.Time
}

// New returns the source for cfg. It does no I/O.
func New(cfg *Config, deps sources.Deps) (sources.Source, error) {
	base := strings.TrimRight(cfg.URL, "/")
	auth, defaulted := cfg.BasicAuth, false
	if auth == nil && !hasUserinfo(cfg.URL) {
		auth, defaulted = &httpsrc.BasicAuth{Username: "guest", Password: configs.NewSecret("guest")}, true
	}
	user := ""
	if auth != nil {
		user = auth.Username
	} else if u, err := url.Parse(cfg.URL); err == nil && u.User != nil {
		user = u.User.Username()
	}
	// PathEscape turns "/" into %2F: the default vhost is "/" and names may contain
	// slashes, and the API takes each as one path segment.
	queuePath := base + "/api/queues/" + url.PathEscape(cfg.VHost) + "/" + url.PathEscape(cfg.Queue)
	vhostPath := base + "/api/vhosts/" + url.PathEscape(cfg.VHost)
	ep := func(u string) httpsrc.Endpoint {
		return httpsrc.Endpoint{URL: u, Method: http.MethodGet, Auth: httpsrc.Auth{BasicAuth: auth}, TLS: cfg.TLS}
	}
	return &source{
		client:     httpsrc.NewClient(ep(queuePath), deps.Logger),
		vhostProbe: httpsrc.NewClient(ep(vhostPath), deps.Logger),
		vhost:      cfg.VHost,
		queue:      cfg.Queue,
		user:       user,
		defaulted:  defaulted,
		age:        cfg.Measure == sources.MeasureOldestAge,
		now:        time.Now,
	}, nil
}

func hasUserinfo(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User != nil
}

// queueInfo is the part of GET /api/queues/{vhost}/{queue} we read. Pointers tell a
// missing field (statistics not collected yet) from zero.
type queueInfo struct {
	Messages               *float64 `json:"messages"`
	MessagesReady          *float64 `json:"messages_ready"`
	MessagesUnacknowledged *float64 `json:"messages_unacknowledged"`
	// HeadMessageTimestamp is the timestamp property (seconds since the epoch) of the
	// message at the head of the queue. The broker sends "" (or nothing) when it has none.
	HeadMessageTimestamp json.RawMessage `json:"head_message_timestamp"`
}

func (s *source) Value(ctx context.Context) (float64, error) {
	body, err := s.client.FetchJSON(ctx)
	if err != nil {
		return 0, s.describe(ctx, err)
	}
	var q queueInfo
	if err := json.Unmarshal(body, &q); err != nil {
		return 0, fmt.Errorf("%s: GET %s: unexpected response: %w", s.name(), s.client.URL(), err)
	}
	if s.age {
		return s.headAge(q)
	}
	return s.messages(q)
}

// messages is the queue's depth: ready plus unacknowledged.
func (s *source) messages(q queueInfo) (float64, error) {
	switch {
	case q.Messages != nil:
		return *q.Messages, nil
	case q.MessagesReady != nil || q.MessagesUnacknowledged != nil:
		var v float64
		for _, p := range []*float64{q.MessagesReady, q.MessagesUnacknowledged} {
			if p != nil {
				v += *p
			}
		}
		return v, nil
	}
	// A queue declared a moment ago has no statistics until the next collection
	// (collect_statistics_interval, 5s by default); guessing 0 could scale a busy pool in.
	return 0, fmt.Errorf("%s: no message counts yet (the management plugin has not collected statistics for it; retry next tick)", s.name())
}

// headAge is the age of the message at the head of the queue, from its timestamp
// property: the oldest message the queue holds (a queue is FIFO). RabbitMQ counts a
// message delivered and not yet acknowledged as still in the queue (3.10, tested), so
// this is the age of the oldest message of the same work `messages` counts.
//
// No message is an age of 0. Messages without a timestamp at the head are an error, not
// 0: a missing age must not look like an empty queue.
func (s *source) headAge(q queueInfo) (float64, error) {
	n, err := s.messages(q)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	var ts *float64 // null, "" and no field at all are the same: no timestamp
	if err := json.Unmarshal(q.HeadMessageTimestamp, &ts); err != nil || ts == nil {
		return 0, fmt.Errorf("%s: %g messages but no head_message_timestamp: the message at the head was published without the timestamp property "+
			"(publishers must set it), or the queue type does not report it (quorum and stream queues); use measure: count", s.name(), n)
	}
	return sources.AgeSeconds(s.now(), time.Unix(int64(*ts), 0)), nil
}

func (s *source) name() string {
	return fmt.Sprintf("rabbitmq: queue %q in vhost %q", s.queue, s.vhost)
}

// describe turns an API failure into a message that says which thing is wrong.
func (s *source) describe(ctx context.Context, err error) error {
	var se *httpsrc.StatusError
	if !errors.As(err, &se) {
		return fmt.Errorf("rabbitmq: %w", err)
	}
	switch se.Code {
	case http.StatusNotFound:
		// The API answers 404 for a missing vhost and a missing queue alike; ask which.
		if _, verr := s.vhostProbe.FetchJSON(ctx); errors.As(verr, &se) && se.Code == http.StatusNotFound {
			return sources.Reword(err, "rabbitmq: vhost %q not found (at %s)", s.vhost, s.vhostProbe.URL())
		}
		return sources.Reword(err, "%s: not found", s.name())
	case http.StatusUnauthorized:
		// The broker says why in the body: "Login failed" for a wrong user or password,
		// "Not management user" for a missing tag, an access message for a vhost.
		why := fmt.Sprintf("user %q was refused", s.user)
		if reason := apiReason(se.Body); reason != "" {
			why += ": " + reason
		}
		if s.defaulted {
			why += " (basic_auth is not set, so guest/guest was tried; guest only works from localhost)"
		}
		return sources.Reword(err, "rabbitmq: GET %s: %s: %s", se.URL, se.Status, why)
	case http.StatusForbidden:
		return sources.Reword(err, "%s: user %q has no access to vhost %q: %v", s.name(), s.user, s.vhost, err)
	}
	return fmt.Errorf("rabbitmq: %w", err)
}

// apiReason picks the reason out of an error body such as
// {"error":"not_authorized","reason":"Login failed"}.
func apiReason(body string) string {
	var e struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}
	if json.Unmarshal([]byte(body), &e) != nil {
		return ""
	}
	if e.Reason != "" {
		return e.Reason
	}
	return e.Error
}

// Close drops idle connections.
func (s *source) Close() error {
	return errors.Join(s.client.Close(), s.vhostProbe.Close())
}
