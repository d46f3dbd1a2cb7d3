// Package prometheus reads one number from a PromQL instant query: queue depths exported
// by workers, consumer lag from an exporter, anything Prometheus already scrapes.
package prometheus

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/sources"
)

//go:embed sample.conf
var sample string

// Config is the `prometheus` query kind.
type Config struct {
	Address     string                    `yaml:"address" required:"true"`
	Query       string                    `yaml:"query" required:"true"`
	Headers     map[string]configs.Secret `yaml:"headers"`
	BearerToken configs.Secret            `yaml:"bearer_token"`
	BasicAuth   *BasicAuth                `yaml:"basic_auth"`
	// EmptyAs is the value of an empty result; unset, an empty result is an error,
	// because "no series" more often means a typo or a dead exporter than zero work.
	EmptyAs *float64    `yaml:"empty_as"`
	TLS     configs.TLS `yaml:"tls"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username string         `yaml:"username" required:"true"`
	Password configs.Secret `yaml:"password"`
}

func init() {
	sources.Register("prometheus", sample, func() *Config { return &Config{} }, New)
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	if ch.Has("address") {
		u, err := url.Parse(c.Address)
		switch {
		case err != nil:
			// url.Error quotes the whole address, credentials included: keep only its cause.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			ch.Errorf("address", "not a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			ch.Errorf("address", "%q is not an http(s) URL (e.g. http://prometheus:9090)", redactURL(u))
		case u.Host == "":
			ch.Errorf("address", "%q has no host (e.g. http://prometheus:9090)", redactURL(u))
		}
	}
	if ch.Has("query") && strings.TrimSpace(c.Query) == "" {
		ch.Errorf("query", "must not be empty")
	}
	if c.EmptyAs != nil && *c.EmptyAs < 0 {
		ch.Errorf("empty_as", "must not be negative")
	}
	if c.BearerToken.IsSet() && c.BasicAuth != nil {
		ch.Errorf("bearer_token", "give bearer_token or basic_auth, not both")
	}
	for name := range c.Headers {
		if strings.TrimSpace(name) == "" || strings.ContainsAny(name, " :\t\r\n") {
			ch.Errorf("headers", "%q is not a header name", name)
		}
		if strings.EqualFold(name, "Authorization") && (c.BearerToken.IsSet() || c.BasicAuth != nil) {
			ch.Errorf("headers", "sets Authorization, which bearer_token or basic_auth also sets; keep one")
		}
	}
}

type source struct {
	cfg    *Config
	where  string // the address without credentials, for messages
	logger *slog.Logger
	conn   *shared.Conn[client]
}

// client is the API client and the transport under it, whose idle connections Close drops.
type client struct {
	api v1.API
	tr  *http.Transport
}

// New returns the source for cfg. The HTTP client is built on first use, so that
// `validate` reads no CA file and opens no connection; it is the query's own (its
// credentials and headers are).
func New(cfg *Config, deps sources.Deps) (sources.Source, error) {
	s := &source{cfg: cfg, where: "<unparseable address>", logger: deps.Log()}
	if u, err := url.Parse(cfg.Address); err == nil {
		s.where = redactURL(u)
	}
	s.conn = shared.New(nil, shared.Spec[client]{
		Open:  s.open,
		Close: func(c client) error { c.tr.CloseIdleConnections(); return nil },
	})
	return s, nil
}

// open builds the client; a failure (a missing CA file) is retried on the next Value.
func (s *source) open(context.Context) (client, error) {
	tlsCfg, err := s.cfg.TLS.Client()
	if err != nil {
		return client{}, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	c, err := api.NewClient(api.Config{Address: s.cfg.Address, RoundTripper: &auth{cfg: s.cfg, next: tr}})
	if err != nil {
		return client{}, err
	}
	return client{api: v1.NewAPI(c), tr: tr}, nil
}

func (s *source) Value(ctx context.Context) (float64, error) {
	c, err := s.conn.Get(ctx)
	if err != nil {
		return 0, s.errorf("%w", err)
	}
	promAPI := c.api
	// A zero time lets the server use its own clock: no clock skew between us and it.
	val, warnings, _, err := promAPI.Query(ctx, s.cfg.Query, time.Time{})
	if err != nil {
		var apiErr *v1.Error
		if errors.As(err, &apiErr) && apiErr.Type == v1.ErrClient && (strings.HasSuffix(apiErr.Msg, " 401") || strings.HasSuffix(apiErr.Msg, " 403")) {
			return 0, s.errorf("query `%s`: %w (check bearer_token, basic_auth and headers)", s.cfg.Query, err)
		}
		return 0, s.errorf("query `%s`: %w", s.cfg.Query, err)
	}
	if len(warnings) > 0 {
		// Warnings (e.g. a partial response from a federated setup) do not invalidate
		// the number; they are worth a look when debugging, not an alert every tick.
		s.logger.Debug("prometheus query returned warnings", "address", s.where, "query", s.cfg.Query, "warnings", []string(warnings))
	}
	v, err := s.one(val)
	if err != nil {
		return 0, s.errorf("query `%s`: %w", s.cfg.Query, err)
	}
	return v, nil
}

// one extracts the single sample a query must return.
func (s *source) one(val model.Value) (float64, error) {
	switch v := val.(type) {
	case *model.Scalar:
		return float64(v.Value), nil
	case model.Vector:
		switch len(v) {
		case 0:
			if s.cfg.EmptyAs != nil {
				return *s.cfg.EmptyAs, nil
			}
			return 0, errors.New("no data (set empty_as: 0 if an empty result means zero)")
		case 1:
			return float64(v[0].Value), nil
		}
		return 0, fmt.Errorf("returned %d series, want exactly one (aggregate them, e.g. sum(...)): %s", len(v), labelSets(v, 3))
	case model.Matrix:
		return 0, fmt.Errorf("returned a range vector (%d series); use an instant vector, e.g. drop the [range] or wrap it in rate() or max_over_time()", len(v))
	case *model.String:
		return 0, fmt.Errorf("returned the string %q, not a number", v.Value)
	case nil:
		return 0, errors.New("returned no result")
	}
	return 0, fmt.Errorf("returned an unexpected %s result", val.Type())
}

// labelSets lists the first n series' label sets, so the operator sees which labels to
// aggregate away.
func labelSets(v model.Vector, n int) string {
	var parts []string
	for i, smp := range v {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(v)-n))
			break
		}
		parts = append(parts, smp.Metric.String())
	}
	return strings.Join(parts, ", ")
}

func (s *source) errorf(format string, args ...any) error {
	err := fmt.Errorf("prometheus %s: "+format, append([]any{s.where}, args...)...)
	return sources.Redact(err, s.secrets()...)
}

// secrets are the values to keep out of messages, in every form a server might echo them:
// a basic-auth password also travels base64-encoded in the Authorization header.
func (s *source) secrets() []string {
	out := append(sources.URLUserinfoForms(s.cfg.Address), s.cfg.BearerToken.Value())
	if b := s.cfg.BasicAuth; b != nil {
		out = append(out, sources.BasicAuthForms(b.Username, b.Password.Value())...)
	}
	for name, v := range s.cfg.Headers {
		if sources.HeaderIsSecret(name) {
			out = append(out, v.Value())
		}
	}
	return out
}

// Close drops idle keep-alive connections.
func (s *source) Close() error { return s.conn.Close() }

// auth adds the configured headers and credentials to every request.
type auth struct {
	cfg  *Config
	next http.RoundTripper
}

func (a *auth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range a.cfg.Headers {
		req.Header.Set(k, v.Value())
	}
	switch {
	case a.cfg.BearerToken.IsSet():
		req.Header.Set("Authorization", "Bearer "+a.cfg.BearerToken.Value())
	case a.cfg.BasicAuth != nil:
		req.SetBasicAuth(a.cfg.BasicAuth.Username, a.cfg.BasicAuth.Password.Value())
	}
	return a.next.RoundTrip(req)
}

func redactURL(u *url.URL) string { return u.Redacted() }
