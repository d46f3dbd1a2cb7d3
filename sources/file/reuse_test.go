package file

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/shared"
	"github.com/autoscalerd/autoscalerd/sources"
)

// localDir is a temporary directory on a filesystem the source watches: the test's own, or
// tmpfs when that one is a network or FUSE mount.
func localDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if localFS(dir) {
		return dir
	}
	shm, err := os.MkdirTemp("/dev/shm", "filesource")
	if err != nil || !localFS(shm) {
		t.Fatalf("neither %s nor /dev/shm is on a filesystem the source watches (%v)", dir, err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	return shm
}

// countReads counts the file reads of the test's sources, and sets their clock.
func countReads(t *testing.T) (reads *atomic.Int64, clock *atomic.Pointer[time.Time]) {
	reads, clock = &atomic.Int64{}, &atomic.Pointer[time.Time]{}
	start := time.Now()
	clock.Store(&start)
	readFile = func(p string) ([]byte, error) { reads.Add(1); return readSmall(p) }
	now = func() time.Time { return *clock.Load() }
	t.Cleanup(func() { readFile, now = readSmall, time.Now })
	return reads, clock
}

func newSource(t *testing.T, set *shared.Set, path string) *source {
	t.Helper()
	src, err := New(&Config{Path: path}, sources.Deps{Shared: set})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.(*source).Close() })
	return src.(*source)
}

// TestReadOnlyWhenChanged: the file is not opened again while no change has been made to
// it, and is read again at once, with no delay, after any write, rename onto its name,
// metadata change or removal, and after reuse.
func TestReadOnlyWhenChanged(t *testing.T) {
	dir := localDir(t)
	path := filepath.Join(dir, "depth")
	reads, clock := countReads(t)
	src := newSource(t, nil, path)
	ctx := context.Background()
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	value := func(want float64, wantReads int64) {
		t.Helper()
		v, err := src.Value(ctx)
		if err != nil || v != want {
			t.Fatalf("value %v, %v; want %v", v, err, want)
		}
		if n := reads.Load(); n != wantReads {
			t.Fatalf("%d reads, want %d", n, wantReads)
		}
	}
	current := func(want float64, ok bool) {
		t.Helper()
		if v, got := src.Current(ctx); got != ok || (ok && v != want) {
			t.Fatalf("Current %v, %v; want %v, %v", v, got, want, ok)
		}
	}

	current(0, false) // nothing read yet
	write("12\n")
	value(12, 1)
	current(12, true)
	value(12, 1)

	write("13\n") // in place, the same size, within the same clock tick as the read
	current(0, false)
	value(13, 2)
	value(13, 2)

	tmp := filepath.Join(dir, "tmp") // replaced by a rename, as config management does
	os.WriteFile(tmp, []byte("14\n"), 0o644)
	os.Rename(tmp, path)
	current(0, false)
	value(14, 3)
	value(14, 3)

	os.WriteFile(filepath.Join(dir, "other"), []byte("1"), 0o644) // another file in the directory
	value(14, 3)

	os.Chmod(path, 0o600)
	value(14, 4)

	later := clock.Load().Add(reuse) // kept no longer than reuse
	clock.Store(&later)
	current(0, false)
	value(14, 5)
	value(14, 5)

	os.Remove(path) // gone: an error (the open's), and nothing kept
	current(0, false)
	if _, err := src.Value(ctx); err == nil {
		t.Fatal("no error for a removed file")
	}
	write("15\n")
	value(15, 7)
	value(15, 7)
}

// TestNeverOlderThanAWrite: with a writer rewriting the file as fast as it can, every value
// is at least the last one whose write had returned before the read began — in place or
// by rename.
func TestNeverOlderThanAWrite(t *testing.T) {
	for _, rename := range []bool{false, true} {
		t.Run("rename="+strconv.FormatBool(rename), func(t *testing.T) {
			dir := localDir(t)
			path := filepath.Join(dir, "depth")
			os.WriteFile(path, []byte("0"), 0o644)
			src := newSource(t, nil, path)
			var written atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := int64(1); ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					text := []byte(strconv.FormatInt(k, 10))
					if rename {
						tmp := path + ".tmp"
						os.WriteFile(tmp, text, 0o644)
						os.Rename(tmp, path)
					} else {
						os.WriteFile(path, text, 0o644) // truncate then write: a read between sees it empty
					}
					written.Store(k)
				}
			}()
			deadline := time.Now().Add(2 * time.Second)
			checked, reused := 0, 0
			for time.Now().Before(deadline) {
				least := written.Load()
				v, ok := src.Current(context.Background())
				if ok {
					reused++
				} else {
					var err error
					if v, err = src.Value(context.Background()); err != nil {
						continue // the in-place writer's truncation: empty for an instant
					}
				}
				if int64(v) < least {
					close(stop)
					wg.Wait()
					t.Fatalf("value %v, but %d had been written before the read (reused: %v)", v, least, ok)
				}
				checked++
			}
			close(stop)
			wg.Wait()
			if checked < 100 {
				t.Fatalf("only %d values checked", checked)
			}
			t.Logf("%d values checked, %d of them reused", checked, reused)
		})
	}
}

// TestOneReadServesAllQueries: queries of one path share the read, also when they read a
// change at the same moment; the watches and the inotify instance go with the last of them.
func TestOneReadServesAllQueries(t *testing.T) {
	dir := localDir(t)
	path := filepath.Join(dir, "depth")
	os.WriteFile(path, []byte("7"), 0o644)
	reads, _ := countReads(t)
	set := shared.NewSet()
	var srcs []*source
	for range 50 {
		srcs = append(srcs, newSource(t, set, path))
	}
	for _, s := range srcs {
		if v, err := s.Value(context.Background()); err != nil || v != 7 {
			t.Fatalf("value %v, %v", v, err)
		}
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reads for 50 queries of one unchanged file, want 1", n)
	}

	// Changed, then read by all at once (a slot of policies): the one read under way is
	// taken by the others instead of fifty reads.
	os.WriteFile(path, []byte("8"), 0o644)
	slow := readFile
	readFile = func(p string) ([]byte, error) { time.Sleep(50 * time.Millisecond); return slow(p) }
	var wg sync.WaitGroup
	for _, s := range srcs {
		wg.Go(func() {
			if v, err := s.Value(context.Background()); err != nil || v != 8 {
				t.Errorf("value after the change %v, %v; want 8", v, err)
			}
		})
	}
	wg.Wait()
	if n := reads.Load(); n != 2 {
		t.Fatalf("%d reads in all, want 2: fifty queries reading a change at once share one read", n)
	}

	w := srcs[0].w
	for _, s := range srcs {
		s.Close()
	}
	if len(w.paths) != 0 || len(w.byWd) != 0 || set.Len() != 0 {
		t.Fatalf("after the last Close: %d paths, %d watches, %d shared values held", len(w.paths), len(w.byWd), set.Len())
	}
}

// TestSymlinkIsReadEveryTime: a path through a symbolic link can be re-pointed without an
// event for it, so it is never reused.
func TestSymlinkIsReadEveryTime(t *testing.T) {
	dir := localDir(t)
	a, b, link := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "link")
	os.WriteFile(a, []byte("1"), 0o644)
	os.WriteFile(b, []byte("2"), 0o644)
	os.Symlink(a, link)
	reads, _ := countReads(t)
	src := newSource(t, nil, link)
	for i := 1; i <= 3; i++ {
		if v, err := src.Value(context.Background()); err != nil || v != 1 {
			t.Fatalf("value %v, %v", v, err)
		}
		if n := reads.Load(); n != int64(i) {
			t.Fatalf("%d reads after %d values, want one each", n, i)
		}
	}
	if _, ok := src.Current(context.Background()); ok {
		t.Fatal("Current answered for a path through a symbolic link")
	}
	tmp := filepath.Join(dir, "tmp")
	os.Symlink(b, tmp)
	os.Rename(tmp, link)
	if v, err := src.Value(context.Background()); err != nil || v != 2 {
		t.Fatalf("after re-pointing the link: value %v, %v; want 2", v, err)
	}
}
