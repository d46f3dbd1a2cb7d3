// Package file reads a number from a file: manual overrides, and values written by
// another program.
package file

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/sources"
)

//go:embed sample.conf
var sample string

// Config is the `file` query kind.
type Config struct {
	Path string `yaml:"path" required:"true"`
}

func init() {
	sources.Register("file", sample, func() *Config { return &Config{} }, New)
}

// CheckConfig implements configs.Checker.
func (c *Config) CheckConfig(ch *configs.Check) {
	if ch.Has("path") && c.Path == "" {
		ch.Errorf("path", "must not be empty")
	}
}

type source struct{ path string }

// New returns the source for cfg.
func New(cfg *Config, _ sources.Deps) (sources.Source, error) { return &source{path: cfg.Path}, nil }

func (s *source) Value(ctx context.Context) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return 0, fmt.Errorf("file: %w", err)
	}
	text := strings.TrimSpace(string(b))
	if text == "" {
		return 0, fmt.Errorf("file %s: empty, no number", s.path)
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return 0, fmt.Errorf("file %s: %q is not a number", s.path, truncate(text, 40))
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
