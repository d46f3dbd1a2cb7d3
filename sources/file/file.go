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
	"golang.org/x/sys/unix"
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
	b, err := readSmall(s.path)
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

// maxSize bounds what is read: a number needs a few bytes, and a huge file here is a
// mistake (the wrong path), not a value.
const maxSize = 64 << 10

// readSmall reads a small file with plain open/read/close system calls. os.ReadFile also
// stats the file and registers it with the runtime poller; with a thousand policies
// reading files every second those extra calls were a measurable share of the daemon's CPU.
func readSmall(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 64)
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= maxSize {
				return nil, fmt.Errorf("%s: larger than %d KiB, not a number", path, maxSize>>10)
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
