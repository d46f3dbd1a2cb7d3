// Package nats reads the backlog of a NATS JetStream consumer: the messages it has not
// been delivered yet, plus (by default) those delivered but not acknowledged; or how long
// the oldest of them has been in the stream.
package nats

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/sources"
)

//go:embed sample.conf
var sample string

// Config is the `nats` query kind.
type Config struct {
	// URL is one server or a comma-separated list of servers of one cluster.
	URL      string `yaml:"url" required:"true"`
	Stream   string `yaml:"stream" required:"true"`
	Consumer string `yaml:"consumer" required:"true"`
	// IncludeAckPending counts messages delivered to a worker but not acknowledged yet:
	// they are still work in flight, so by default they keep workers alive.
	IncludeAckPending bool           `yaml:"include_ack_pending"`
	Token             configs.Secret `yaml:"token"`
	User              string         `yaml:"user"`
	Password          configs.Secret `yaml:"password"`
	// Creds is a .creds file (user JWT and NKey seed), as `nsc` writes it.
	Creds string       `yaml:"creds"`
	TLS   *configs.TLS `yaml:"tls"`
	// Measure is count (the backlog) or oldest_age (seconds since the oldest message of
	// that backlog was stored).
	Measure string `yaml:"measure"`
}

func init() {
	sources.Register("nats", sample, func() *Config { return &Config{IncludeAckPending: true, Measure: sources.MeasureCount} }, New)
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	if ch.Has("url") {
		for _, u := range splitURLs(c.URL) {
			if err := checkServerURL(u); err != nil {
				ch.Errorf("url", "%v", err)
			}
		}
		if len(splitURLs(c.URL)) == 0 {
			ch.Errorf("url", "must name at least one server")
		}
	}
	for _, f := range []struct{ key, val string }{{"stream", c.Stream}, {"consumer", c.Consumer}} {
		if ch.Has(f.key) && !validName(f.val) {
			ch.Errorf(f.key, "%q is not a JetStream name (no spaces, dots, '*', '>' or path separators)", f.val)
		}
	}
	methods := 0
	for _, set := range []bool{c.Token.IsSet(), c.User != "" || c.Password.IsSet(), c.Creds != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		ch.Errorf("", "token, user/password and creds are alternatives: give one")
	}
	if (c.User == "") != !c.Password.IsSet() {
		ch.Errorf("", "user and password go together")
	}
	sources.CheckMeasure(ch, c.Measure)
}

// splitURLs splits the comma-separated server list the way nats.Connect does.
func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func checkServerURL(s string) error {
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a server URL", redact(s))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("%s: scheme %q is not one of nats, tls, ws, wss", redact(s), u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%s: no host", redact(s))
	}
	return nil
}

// validName mirrors the server's rule: names become subject tokens.
func validName(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n.*>/\\")
}

// redact hides credentials in a (comma-separated) server URL list. A user without a
// password is a token in NATS URLs, so it is hidden too.
func redact(servers string) string {
	parts := splitURLs(servers)
	for i, p := range parts {
		scheme, rest, ok := strings.Cut(p, "://")
		if !ok {
			scheme, rest = "", p
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			user, _, hasPass := strings.Cut(rest[:at], ":")
			if hasPass {
				rest = user + ":xxxxx" + rest[at:]
			} else {
				rest = "xxxxx" + rest[at:]
			}
		}
		if ok {
			p = scheme + "://" + rest
		} else {
			p = rest
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

type source struct {
	stream, consumer string
	ackPending       bool
	age              bool
	conn             *conn
}

// New returns the source for cfg. It opens nothing: the connection is made on the first
// Value and shared with every query that names the same servers and credentials.
func New(cfg *Config, deps sources.Deps) (sources.Source, error) {
	return &source{
		stream:     cfg.Stream,
		consumer:   cfg.Consumer,
		ackPending: cfg.IncludeAckPending,
		age:        cfg.Measure == sources.MeasureOldestAge,
		conn:       newConn(*cfg, deps.Log().With("nats", redact(cfg.URL)), deps.Shared),
	}, nil
}

// sharedKey identifies a connection: same servers, same identity, same TLS. Secrets go in
// as hashes so the key can be printed without leaking them.
func sharedKey(c *Config) string {
	tls := "none"
	if c.TLS != nil {
		tls = fmt.Sprintf("%+v", *c.TLS)
	}
	return strings.Join([]string{"nats", strings.Join(splitURLs(c.URL), ","),
		"token=" + sources.Fingerprint(c.Token.Value()), "user=" + c.User,
		"password=" + sources.Fingerprint(c.Password.Value()), "creds=" + c.Creds, "tls=" + tls}, "\x00")
}

func (s *source) Value(ctx context.Context) (float64, error) {
	js, err := s.conn.get(ctx)
	if err != nil {
		return 0, err
	}
	info, err := consumerInfo(ctx, js, s.stream, s.consumer)
	if err != nil {
		return 0, s.describe(err)
	}
	if s.age {
		age, err := s.oldestAge(ctx, js, info)
		if err != nil {
			return 0, s.describe(err)
		}
		return age, nil
	}
	v := float64(info.NumPending)
	if s.ackPending {
		v += float64(info.NumAckPending)
	}
	return v, nil
}

// consumerInfo asks the server for the consumer's state. The jetstream package splits
// pull and push consumers; a queue may be read by either, so try the other on a mismatch.
func consumerInfo(ctx context.Context, js jetstream.JetStream, stream, consumer string) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(ctx, stream, consumer)
	if errors.Is(err, jetstream.ErrNotPullConsumer) {
		pc, err := js.PushConsumer(ctx, stream, consumer)
		if err != nil {
			return nil, err
		}
		return pc.CachedInfo(), nil
	}
	if err != nil {
		return nil, err
	}
	return c.CachedInfo(), nil
}

// describe turns a JetStream error into one that names the consumer and reads well.
func (s *source) describe(err error) error {
	name := s.stream + "/" + s.consumer
	var api *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return sources.Reword(err, "nats: consumer %q: stream %q not found", name, s.stream)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return sources.Reword(err, "nats: consumer %q: consumer not found", name)
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return sources.Reword(err, "nats: consumer %q: JetStream is not enabled on %s (or not for this account)", name, redact(s.conn.cfg.URL))
	case errors.As(err, &api):
		return sources.Reword(err, "nats: consumer %q: %s (code %d, err_code %d)", name, api.Description, api.Code, api.ErrorCode)
	}
	return fmt.Errorf("nats: consumer %q: %w", name, err)
}

// Close releases the shared connection; the last query to release it closes it.
func (s *source) Close() error { return s.conn.lazy.Close() }

// conn is a source's hold on one connection to a NATS cluster, made on first use and
// shared with every query with the same servers and identity. After that the client
// library keeps it up: it reconnects (forever, to any server of the cluster it learnt
// about) on its own, and while it is away Value fails fast instead of queueing requests.
type conn struct {
	cfg  Config
	log  *slog.Logger
	lazy *shared.Conn[*client]
}

// client is what one dial makes.
type client struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func newConn(cfg Config, log *slog.Logger, set *shared.Set) *conn {
	c := &conn{cfg: cfg, log: log}
	c.lazy = shared.New(set, shared.Spec[*client]{
		Key:   sharedKey(&cfg),
		Open:  c.dial,
		Close: func(cl *client) error { cl.nc.Close(); return nil },
		// Closed by the library (e.g. the server refused our credentials again after a
		// reconnect): start over rather than fail forever.
		Stale: func(cl *client) bool { return cl.nc.IsClosed() },
	})
	return c
}

func (c *conn) get(ctx context.Context) (jetstream.JetStream, error) {
	cl, err := c.lazy.Get(ctx)
	if err != nil {
		return nil, err
	}
	if st := cl.nc.Status(); st != nats.CONNECTED {
		msg := fmt.Sprintf("nats %s: connection %s", redact(c.cfg.URL), strings.ToLower(st.String()))
		if err := cl.nc.LastError(); err != nil {
			return nil, fmt.Errorf("%s: %w", msg, err)
		}
		return nil, errors.New(msg)
	}
	return cl.js, nil
}

func (c *conn) dial(ctx context.Context) (*client, error) {
	nc, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats %s: %w", redact(c.cfg.URL), err)
	}
	return &client{nc: nc, js: js}, nil
}

func (c *conn) connect(ctx context.Context) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// nats.Connect takes no context: bound each server's dial and handshake so the whole
	// attempt ends within the query's timeout.
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl)/time.Duration(max(len(splitURLs(c.cfg.URL)), 1)), 50*time.Millisecond)
	}
	opts := []nats.Option{
		nats.Name("autoscalerd"),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.NoCallbacksAfterClientClose(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				c.log.Warn("nats: disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.Info("nats: reconnected", "server", nc.ConnectedUrlRedacted())
		}),
	}
	switch {
	case c.cfg.Token.IsSet():
		opts = append(opts, nats.Token(c.cfg.Token.Value()))
	case c.cfg.User != "":
		opts = append(opts, nats.UserInfo(c.cfg.User, c.cfg.Password.Value()))
	case c.cfg.Creds != "":
		opts = append(opts, nats.UserCredentials(c.cfg.Creds))
	}
	if c.cfg.TLS != nil {
		tc, err := c.cfg.TLS.Client()
		if err != nil {
			return nil, fmt.Errorf("nats %s: %w", redact(c.cfg.URL), err)
		}
		opts = append(opts, nats.Secure(tc))
	}
	nc, err := nats.Connect(c.cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: connect to %s: %w", redact(c.cfg.URL), err)
	}
	return nc, nil
}
