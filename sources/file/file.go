// Package file reads a number from a file: manual overrides, and values written by
// another program.
package file

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/internal/shared"
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

type source struct {
	path string
	log  *slog.Logger
	conn *shared.Conn[*watcher]

	mu sync.Mutex
	w  *watcher // conn's, once it opened
	e  *watched // this path's record in w
}

// New returns the source for cfg.
func New(cfg *Config, deps sources.Deps) (sources.Source, error) {
	return &source{path: cfg.Path, log: deps.Log(), conn: shared.New(deps.Shared, shared.Spec[*watcher]{
		Key:   "file:inotify",
		Open:  func(context.Context) (*watcher, error) { return newWatcher() },
		Close: (*watcher).close,
	})}, nil
}

// watch returns the daemon's watcher and this path's record in it, or nil when inotify
// cannot be had (the file is then read every time).
func (s *source) watch(ctx context.Context) (*watcher, *watched) {
	if s.w != nil {
		return s.w, s.e
	}
	w, err := s.conn.Get(ctx)
	if err != nil {
		return nil, nil
	}
	s.w, s.e = w, w.hold(s.path)
	return s.w, s.e
}

// Current implements sources.Current: the value read last, while no change has been made
// to the file since.
func (s *source) Current(ctx context.Context) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, e := s.watch(ctx)
	if w == nil {
		return 0, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.currentLocked(e, now())
}

func (s *source) Value(ctx context.Context) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start := now()
	w, e := s.watch(ctx)
	if w == nil {
		return s.read()
	}
	w.mu.Lock()
	if v, ok := w.currentLocked(e, start); ok {
		w.mu.Unlock()
		return v, nil
	}
	if f := e.flight; f != nil && f.gen == e.gen { // no change since that read began
		w.mu.Unlock()
		select {
		case <-f.done:
			return f.v, f.err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	watched, why := w.armLocked(e, start)
	var f *flight
	if watched {
		f = &flight{gen: e.gen, done: make(chan struct{})}
		e.flight = f
	}
	w.mu.Unlock()
	if why != "" {
		s.log.Info("file: not watched for changes; read on every evaluation", "path", s.path, "why", why)
	}
	v, err := s.read()
	if f == nil {
		return v, err
	}
	w.mu.Lock()
	f.v, f.err = v, err
	close(f.done)
	if e.flight == f {
		e.flight = nil
	}
	if err == nil && e.gen == f.gen { // no change was made while it was read (else: read again next time)
		e.have, e.value, e.readGen, e.at = true, v, f.gen, start
	}
	w.mu.Unlock()
	return v, err
}

// Close implements io.Closer: the path's watch goes with its last query.
func (s *source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		s.w.release(s.e)
		s.w, s.e = nil, nil
	}
	return s.conn.Close()
}

// localFS says the path is on a filesystem of this machine's own kernel.
func localFS(path string) bool {
	var fs unix.Statfs_t
	if unix.Statfs(path, &fs) != nil {
		return false
	}
	switch uint32(fs.Type) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC,
		unix.RAMFS_MAGIC, unix.OVERLAYFS_SUPER_MAGIC, unix.F2FS_SUPER_MAGIC:
		return true
	}
	return false
}

// now and readFile are the clock and the read, for the tests.
var (
	now      = time.Now
	readFile = readSmall
)

func (s *source) read() (float64, error) {
	b, err := readFile(s.path)
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
// Only regular files are read (symbolic links are followed). The open is non-blocking, and
// its fstat refuses anything else before a read: opening a named pipe for reading
// otherwise waits, without end and deaf to the context, for a writer to appear, and that
// froze the policy. A device such as /dev/zero would be read up to maxSize for nothing.
// Both are refused before any read. (An open that hangs in the kernel, on a dead NFS
// server, cannot be interrupted from user space at all: the engine's query timeout
// abandons it.)
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
	if err := regular(path, st.Mode); err != nil { // the path may name anything
		return nil, err
	}
	buf := make([]byte, 0, max(64, min(st.Size+1, maxSize)))
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
		if int64(len(buf)) == st.Size { // all the fstat saw: no read for the end of file
			return buf, nil
		}
	}
}

func regular(path string, mode uint32) error {
	if kind := mode & unix.S_IFMT; kind != unix.S_IFREG {
		return fmt.Errorf("%s: %s, not a regular file", path, fileKind(kind))
	}
	return nil
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
