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
	"sync"
	"time"

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

type source struct {
	path string

	mu sync.Mutex
	// The last value read, and the file it was read from; valid while ok.
	seen   fileID
	value  float64
	readAt time.Time
	ok     bool
}

// New returns the source for cfg.
func New(cfg *Config, _ sources.Deps) (sources.Source, error) { return &source{path: cfg.Path}, nil }

// A file's value is read again only when the file may have changed. Reading costs an
// open, an fstat, a read and a close; a stat alone says whether the file is the one read
// last time: the same inode of the same size, modified (mtime) and changed (ctime, which
// every write, rename onto the path or metadata change sets, and no program can set back)
// at the same instants. Those instants are the kernel's coarse clock, so two writes a few
// milliseconds apart can share one; a value is therefore kept only when the file had not
// been touched for settle before it was read (any later write has a later time), only on
// the local filesystems whose times come from this machine's clock (not NFS or FUSE, whose
// server may lag it and whose attributes may be cached), and never longer than reuse.
const (
	settle = time.Second
	reuse  = 10 * time.Second
)

// fileID is what a stat says of the file a value came from.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
}

func idOf(st *unix.Stat_t) fileID {
	return fileID{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
}

func (s *source) Value(ctx context.Context) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start := now()
	var st unix.Stat_t
	if err := unix.Stat(s.path, &st); err != nil {
		s.ok = false
		return 0, fmt.Errorf("file: %w", &os.PathError{Op: "stat", Path: s.path, Err: err})
	}
	if err := regular(s.path, st.Mode); err != nil {
		s.ok = false
		return 0, fmt.Errorf("file: %w", err)
	}
	id := idOf(&st)
	if s.ok && id == s.seen && start.Sub(s.readAt) < reuse {
		return s.value, nil
	}
	s.ok = false
	v, err := s.read()
	if err != nil {
		return 0, err
	}
	if settled(id, start) && localFS(s.path) {
		s.seen, s.value, s.readAt, s.ok = id, v, start, true
	}
	return v, nil
}

// settled says the file had not been written or changed for settle at now.
func settled(id fileID, now time.Time) bool {
	return now.UnixNano()-max(id.mtime.Nano(), id.ctime.Nano()) >= int64(settle)
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
// Only regular files are read (symbolic links are followed). Value's stat refuses anything
// else without opening it, and the open is non-blocking besides, in case the path is
// replaced in between: opening a named pipe for reading otherwise waits, without end and
// deaf to the context, for a writer to appear, and that froze the policy. A device such as
// /dev/zero would be read up to maxSize for nothing. Both are refused before any read. (An open that hangs
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
	if err := regular(path, st.Mode); err != nil { // the path may have been replaced since the stat
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
