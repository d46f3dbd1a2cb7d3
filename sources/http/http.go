// Package httpsrc is the `http` query kind: a number from a JSON HTTP API, picked out of
// the response with a GJSON path. Its Client is also the HTTP layer of kinds built on an
// HTTP API (hatchet), so TLS, limits, error messages and redaction live in one place.
package httpsrc

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/sources"
)

//go:embed sample.conf
var sample string

// Config is the `http` query kind.
type Config struct {
	Endpoint `yaml:",inline"`
	// Value is a GJSON path (https://github.com/tidwall/gjson/blob/master/SYNTAX.md).
	Value string `yaml:"value" required:"true"`
}

func init() {
	sources.Register("http", sample, func() *Config {
		return &Config{Endpoint: Endpoint{Method: http.MethodGet}}
	}, New)
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	c.Endpoint.CheckConfig(ch)
	if ch.Has("value") && strings.TrimSpace(c.Value) == "" {
		ch.Errorf("value", "must not be empty (a GJSON path such as data.queued)")
	}
}

type source struct {
	client *Client
	path   string
}

// New returns the source for cfg. It does no I/O.
func New(cfg *Config, deps sources.Deps) (sources.Source, error) {
	return &source{client: NewClient(cfg.Endpoint, deps.Logger), path: cfg.Value}, nil
}

func (s *source) Value(ctx context.Context) (float64, error) {
	body, err := s.client.FetchJSON(ctx)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden) {
			return 0, fmt.Errorf("http: %w (check bearer_token, basic_auth or the headers)", err)
		}
		return 0, fmt.Errorf("http: %w", err)
	}
	v, err := lookup(body, s.path)
	if err != nil {
		return 0, fmt.Errorf("http: %s %s: %s", s.client.ep.Method, s.client.URL(), s.client.Scrub(err.Error()))
	}
	return v, nil
}

// Close drops the source's idle connections.
func (s *source) Close() error { return s.client.Close() }
