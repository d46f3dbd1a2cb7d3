// Package redis reads the length of a Redis work queue: a list (LPUSH/BRPOP), a stream
// (with or without a consumer group), a sorted set (delayed jobs) or a set.
package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/sources"
)

//go:embed sample.conf
var sample string

// Config is the `redis` query kind.
type Config struct {
	Address string `yaml:"address"`
	// URL is redis://[user:password@]host:port/db or rediss:// for TLS. It is a secret
	// because it may carry the password.
	URL      configs.Secret `yaml:"url"`
	Password configs.Secret `yaml:"password"`
	DB       int            `yaml:"db"`
	Key      string         `yaml:"key" required:"true"`
	Type     string         `yaml:"type"`
	Group    string         `yaml:"group"`
	// Measure is count (the length or backlog) or oldest_age (streams only: seconds since
	// the oldest entry not yet acknowledged was added).
	Measure string `yaml:"measure"`
}

// types are the key types a query can measure, with the command that measures each.
var types = []string{"auto", "list", "stream", "zset", "set"}

func init() {
	sources.Register("redis", sample, func() *Config { return &Config{Type: "auto", Measure: sources.MeasureCount} }, New)
	// go-redis prints dial failures with the standard logger, outside the daemon's log
	// and once per retry. Every failure already reaches the engine as the query's error.
	redis.SetLogger(quiet{})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	switch {
	case c.Address == "" && !c.URL.IsSet():
		ch.Errorf("", "needs address (host:port) or url (redis://...)")
	case c.Address != "" && c.URL.IsSet():
		ch.Errorf("url", "give address or url, not both")
	case c.URL.IsSet() && !c.URL.Offline(): // a placeholder (validate without the secret) has nothing to check
		opts, err := redis.ParseURL(c.URL.Value())
		if err != nil {
			ch.Errorf("url", "%v", redactURLError(err, c.URL.Value()))
			break
		}
		if ch.Has("db") {
			ch.Errorf("db", "put the database in the url instead (redis://host:6379/%d)", c.DB)
		}
		if opts.Password != "" && c.Password.IsSet() {
			ch.Errorf("password", "the url has a password already; give it once")
		}
	case strings.Contains(c.Address, "://"):
		ch.Errorf("address", "%q is a URL; use url: for URLs, address: for host:port", redactedURL(c.Address))
	}
	if c.DB < 0 {
		ch.Errorf("db", "must not be negative")
	}
	if ch.Has("key") && c.Key == "" {
		ch.Errorf("key", "must not be empty")
	}
	if !slices.Contains(types, c.Type) {
		ch.Errorf("type", "%q is not a type a query can measure (use %s)", c.Type, strings.Join(types, ", "))
	}
	if c.Group != "" && c.Type != "auto" && c.Type != "stream" {
		ch.Errorf("group", "consumer groups belong to streams; this key has type: %s", c.Type)
	}
	sources.CheckMeasure(ch, c.Measure)
	if c.Measure == sources.MeasureOldestAge && c.Type != "auto" && c.Type != "stream" {
		ch.Errorf("measure", "oldest_age needs a stream (its entry IDs hold the time each was added); this key has type: %s", c.Type)
	}
}

type source struct {
	opts   *redis.Options
	key    string
	typ    string
	group  string
	age    bool
	where  string // host:port/db, for messages
	secret []string
	client *shared.Conn[*redis.Client]
}

// New returns the source for cfg. The client is opened (or joined) on first use.
func New(cfg *Config, deps sources.Deps) (sources.Source, error) {
	opts := &redis.Options{Addr: cfg.Address, DB: cfg.DB}
	if cfg.URL.IsSet() && !cfg.URL.Offline() {
		var err error
		if opts, err = redis.ParseURL(cfg.URL.Value()); err != nil {
			return nil, redactURLError(err, cfg.URL.Value())
		}
	}
	if cfg.Password.IsSet() {
		opts.Password = cfg.Password.Value()
	}
	// The engine's per-query timeout is the deadline; without this go-redis would use its
	// own 3s socket timeouts instead.
	opts.ContextTimeoutEnabled = true
	// go-redis announces itself with CLIENT SETINFO on every new connection; servers
	// before 7.2 reject it, a wasted round trip.
	opts.DisableIdentity = true
	s := &source{
		opts: opts, key: cfg.Key, typ: cfg.Type, group: cfg.Group,
		age:    cfg.Measure == sources.MeasureOldestAge,
		where:  fmt.Sprintf("%s/%d", opts.Addr, opts.DB),
		secret: []string{cfg.URL.Value(), opts.Password},
	}
	if s.typ == "" {
		s.typ = "auto"
	}
	s.client = shared.New(deps.Shared, shared.Spec[*redis.Client]{
		Key: s.sharedKey(),
		Open: func(context.Context) (*redis.Client, error) {
			return redis.NewClient(opts), nil // connects on first command
		},
		Close: (*redis.Client).Close,
	})
	return s, nil
}

// sharedKey tells clients apart: same server and database, same credentials, same TLS.
func (s *source) sharedKey() string {
	return fmt.Sprintf("redis:%s/%d/%s/%s/tls=%t", s.opts.Addr, s.opts.DB, s.opts.Username, sources.Fingerprint(s.opts.Password), s.opts.TLSConfig != nil)
}

func (s *source) Value(ctx context.Context) (float64, error) {
	c, err := s.client.Get(ctx)
	if err != nil {
		return 0, s.errorf("%w", err)
	}
	if s.age {
		age, err := s.oldestAge(ctx, c)
		if err != nil {
			return 0, s.errorf("key %q: %w", s.key, err)
		}
		return age, nil
	}
	n, err := s.length(ctx, c)
	if err != nil {
		return 0, s.errorf("key %q: %w", s.key, err)
	}
	return float64(n), nil
}

// keyType asks Redis for the key's type and checks it is one the query can measure:
// "none" for a missing key.
func (s *source) keyType(ctx context.Context, c *redis.Client) (string, error) {
	actual, err := c.Type(ctx, s.key).Result()
	if err != nil {
		return "", err
	}
	if actual == "none" {
		return actual, nil
	}
	if s.typ != "auto" && actual != s.typ {
		return "", fmt.Errorf("is a %s, not a %s", actual, s.typ)
	}
	if s.group != "" && actual != "stream" {
		return "", fmt.Errorf("is a %s; group %q needs a stream", actual, s.group)
	}
	return actual, nil
}

// length asks Redis for the key's type, then measures it with the matching command.
func (s *source) length(ctx context.Context, c *redis.Client) (int64, error) {
	actual, err := s.keyType(ctx, c)
	if err != nil {
		return 0, err
	}
	switch actual {
	case "none":
		return 0, nil // an empty queue: Redis deletes a list, set or zset when it empties
	case "list":
		return c.LLen(ctx, s.key).Result()
	case "stream":
		if s.group != "" {
			return s.groupBacklog(ctx, c)
		}
		return c.XLen(ctx, s.key).Result()
	case "zset":
		return c.ZCard(ctx, s.key).Result()
	case "set":
		return c.SCard(ctx, s.key).Result()
	}
	return 0, fmt.Errorf("is a %s, not a list, stream, zset or set", actual)
}

func (s *source) errorf(format string, args ...any) error {
	return sources.Redact(fmt.Errorf("redis %s: "+format, append([]any{s.where}, args...)...), s.secret...)
}

// Close gives the client back; the last query using it closes it.
func (s *source) Close() error { return s.client.Close() }

// redactURLError keeps a URL's password out of a parse error.
func redactURLError(err error, raw string) error {
	var secrets []string
	if u, perr := url.Parse(raw); perr == nil && u.User != nil {
		p, _ := u.User.Password()
		secrets = append(secrets, p)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // it quotes the whole URL
	}
	return sources.Redact(err, append(secrets, raw)...)
}

// redactedURL is raw without its password, for messages.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}

// parseID splits a stream entry ID ("1700000000000-3") for comparison.
func parseID(id string) (ms, seq uint64, err error) {
	a, b, _ := strings.Cut(id, "-")
	if ms, err = strconv.ParseUint(a, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad stream ID %q", id)
	}
	if b != "" {
		if seq, err = strconv.ParseUint(b, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("bad stream ID %q", id)
		}
	}
	return ms, seq, nil
}

// compareIDs orders two stream entry IDs like Redis does.
func compareIDs(a, b string) (int, error) {
	ams, aseq, err := parseID(a)
	if err != nil {
		return 0, err
	}
	bms, bseq, err := parseID(b)
	if err != nil {
		return 0, err
	}
	switch {
	case ams != bms:
		if ams < bms {
			return -1, nil
		}
		return 1, nil
	case aseq < bseq:
		return -1, nil
	case aseq > bseq:
		return 1, nil
	}
	return 0, nil
}
