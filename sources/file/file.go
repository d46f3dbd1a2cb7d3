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

// readSmall reads a small regular file with plain open/fstat/read/close system calls.
// os.ReadFile also registers the file with the runtime poller; with a thousand policies
// reading files every second those extra calls were a measurable share of the daemon's CPU.
//
// Only regular files are read (symbolic links are followed). The open is non-blocking:
// opening a named pipe for reading otherwise waits, without end and deaf to the context,
// for a writer to appear, and that froze the policy. A device such as /dev/zero would be
// read up to maxSize for nothing. Both are refused before any read. (An open that hangs
// in the kernel, on a dead NFS server, cannot be interrupted from user space at all: the
// engine's query timeout abandons it.)
func readSmall(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if kind := st.Mode & unix.S_IFMT; kind != unix.S_IFREG {
		return nil, fmt.Errorf("%s: %s, not a regular file", path, fileKind(kind))
	}
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

func fileKind(kind uint32) string {
	switch kind {
	case unix.S_IFIFO:
		return "a named pipe (FIFO)"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return "a special file"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
