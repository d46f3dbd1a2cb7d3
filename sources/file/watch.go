package file

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A file's value is read again only when the file may have changed, and the kernel says
// when that is: one inotify instance for the daemon (shared by every file query through
// Deps.Shared), with a watch on each file and on the directory that holds it. A write to
// the file (or a truncate, a chmod), and a file created, renamed onto or removed from its
// name in the directory, queue an event before the system call that made the change
// returns. Each read first takes the events queued so far (one non-blocking read of the
// instance, for every file at once), so a value is reused only while no change has been
// made to its file, exactly as if the file had been read again. A change no event reports
// is still seen within reuse, the longest a value is kept:
//   - a directory above the file's own replaced or renamed (only the parent is watched);
//   - a write through a shared memory mapping (the kernel reports none).
//
// Only paths whose every part is a real directory and the file a regular file are watched
// (a symbolic link on the way can be re-pointed without an event for this path), and only
// on the local filesystems whose changes this kernel makes (not NFS or FUSE, changed on
// another machine). Any other path is read on every evaluation, as is every path when
// inotify is not available (a machine out of inotify instances or watches).
const (
	reuse = 10 * time.Second
	// retry is how long a path that could not be watched is read every time before the
	// watch is tried again.
	retry = time.Minute
)

const (
	fileEvents = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_MOVE_SELF | unix.IN_DELETE_SELF | unix.IN_DONT_FOLLOW
	dirEvents  = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR
	// gone: the watched inode is no longer what the path names, or no longer watched.
	gone = unix.IN_IGNORED | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
)

// watcher is the inotify instance and what it watches. All of it is guarded by mu; the
// system calls made under it are non-blocking.
type watcher struct {
	mu     sync.Mutex
	fd     int
	buf    []byte
	paths  map[string]*watched
	byWd   map[int32][]*watched
	broken error // the instance failed: nothing it said before is trusted
}

// watched is one path, shared by the file queries that read it.
type watched struct {
	path, name string
	refs       int
	// dirWd and fileWd are the watches on the directory and on the file read last; 0 when
	// there is none (inotify numbers watches from 1).
	dirWd, fileWd int32
	// gen counts the changes seen; the value read at gen is current while gen has not
	// moved and at is within reuse.
	gen     uint64
	have    bool
	value   float64
	readGen uint64
	at      time.Time
	// why the path is not watched, and when to try again; "" when it is.
	why     string
	retryAt time.Time
	// flight is the read under way, if any: the queries of this path that find the file
	// as it was when that read began (gen unchanged) take its result instead of reading
	// too, so a change read by a thousand policies is one read.
	flight *flight
}

// flight is one read of a watched path.
type flight struct {
	gen  uint64
	done chan struct{} // closed when v and err are set
	v    float64
	err  error
}

func newWatcher() (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	return &watcher{fd: fd, buf: make([]byte, 64<<10), paths: map[string]*watched{}, byWd: map[int32][]*watched{}}, nil
}

func (w *watcher) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return unix.Close(w.fd)
}

// hold returns the shared record of path, counting one more holder.
func (w *watcher) hold(path string) *watched {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.paths[path]
	if e == nil {
		e = &watched{path: path, name: filepath.Base(path)}
		w.paths[path] = e
	}
	e.refs++
	return e
}

// release drops a holder; the last one's watches are removed.
func (w *watcher) release(e *watched) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.refs--; e.refs > 0 {
		return
	}
	delete(w.paths, e.path)
	w.unwatchLocked(e, &e.fileWd)
	w.unwatchLocked(e, &e.dirWd)
}

// unwatchLocked detaches e from the watch *wd, removing the watch when no path uses it.
func (w *watcher) unwatchLocked(e *watched, wd *int32) {
	if *wd == 0 {
		return
	}
	list := w.byWd[*wd]
	for i, x := range list {
		if x == e {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(w.byWd, *wd)
		_, _ = unix.InotifyRmWatch(w.fd, uint32(*wd)) // EINVAL when the kernel dropped it already
	} else {
		w.byWd[*wd] = list
	}
	*wd = 0
}

func (w *watcher) attachLocked(e *watched, wd *int32, n int32) {
	if *wd == n {
		return
	}
	w.unwatchLocked(e, wd)
	*wd = n
	w.byWd[n] = append(w.byWd[n], e)
}

// currentLocked returns e's value if no change was made to its file since it was read.
func (w *watcher) currentLocked(e *watched, now time.Time) (float64, bool) {
	w.drainLocked()
	if w.broken != nil || !e.have || e.readGen != e.gen || e.fileWd == 0 || e.dirWd == 0 || now.Sub(e.at) >= reuse {
		return 0, false
	}
	return e.value, true
}

// drainLocked takes every event queued so far.
func (w *watcher) drainLocked() {
	for w.broken == nil {
		n, err := unix.Read(w.fd, w.buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil:
			w.broken = fmt.Errorf("reading inotify events: %w", err)
			return
		case n < unix.SizeofInotifyEvent:
			w.broken = fmt.Errorf("reading inotify events: a short read of %d bytes", n)
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
			nameAt := off + unix.SizeofInotifyEvent
			off = nameAt + int(ev.Len)
			if off > n {
				w.broken = errors.New("reading inotify events: an event cut short")
				return
			}
			name := w.buf[nameAt:off]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			w.eventLocked(ev.Wd, ev.Mask, name)
		}
	}
}

func (w *watcher) eventLocked(wd int32, mask uint32, name []byte) {
	if mask&unix.IN_Q_OVERFLOW != 0 { // events were lost: anything may have changed
		for _, e := range w.paths {
			e.gen++
		}
		return
	}
	for _, e := range append([]*watched(nil), w.byWd[wd]...) { // unwatch edits the list
		switch {
		case wd == e.fileWd:
			e.gen++
			if mask&gone != 0 {
				w.unwatchLocked(e, &e.fileWd)
			}
		case mask&gone != 0: // the directory
			e.gen++
			w.unwatchLocked(e, &e.dirWd)
		case string(name) == e.name:
			e.gen++
		}
	}
}

// armLocked makes sure e's directory and file are watched before the file is read, so
// that any change made after the read is seen. It reports whether they are; when not,
// why says so, once per path until the watch is tried again.
func (w *watcher) armLocked(e *watched, now time.Time) (ok bool, why string) {
	if w.broken != nil {
		return false, ""
	}
	if e.why != "" && now.Before(e.retryAt) {
		return false, ""
	}
	fail := func(reason string) (bool, string) {
		w.unwatchLocked(e, &e.fileWd)
		first := e.why != reason
		e.why, e.retryAt, e.have = reason, now.Add(retry), false
		if first {
			return false, reason
		}
		return false, ""
	}
	abs, err := filepath.Abs(e.path)
	if err != nil {
		return false, ""
	}
	real, err := filepath.EvalSymlinks(abs)
	switch {
	case err != nil:
		return false, "" // missing: the read says so
	case real != abs:
		return fail("a symbolic link on its way (" + real + ")")
	case !localFS(filepath.Dir(abs)):
		return fail("not on a local filesystem")
	}
	if e.dirWd == 0 {
		wd, err := unix.InotifyAddWatch(w.fd, filepath.Dir(abs), dirEvents)
		if err != nil {
			return fail(watchFailure(err))
		}
		w.attachLocked(e, &e.dirWd, int32(wd))
	}
	wd, err := unix.InotifyAddWatch(w.fd, abs, fileEvents)
	if err != nil {
		if err == unix.ENOENT {
			w.unwatchLocked(e, &e.fileWd)
			return false, ""
		}
		return fail(watchFailure(err))
	}
	if int32(wd) != e.fileWd { // another file now has the name: what was read is not it
		w.attachLocked(e, &e.fileWd, int32(wd))
		e.gen++
	}
	e.why = ""
	return true, ""
}

func watchFailure(err error) string {
	switch err {
	case unix.ENOSPC:
		return "no inotify watch left (raise fs.inotify.max_user_watches)"
	case unix.ENOMEM:
		return "inotify: out of kernel memory"
	}
	return "inotify: " + err.Error()
}
