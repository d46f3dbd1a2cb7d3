package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReadOnlyWhenChanged: a file untouched for settle is not opened again while a stat
// says it is the same file, and is read again as soon as anything about it changes, or
// after reuse.
func TestReadOnlyWhenChanged(t *testing.T) {
	dir := t.TempDir()
	if !localFS(dir) { // the temporary directory may be on a network or FUSE mount: tmpfs is local
		shm, err := os.MkdirTemp("/dev/shm", "filesource")
		if err != nil || !localFS(shm) {
			t.Fatalf("neither %s nor /dev/shm is on a filesystem the source trusts for reuse (%v)", dir, err)
		}
		t.Cleanup(func() { os.RemoveAll(shm) })
		dir = shm
	}
	path := filepath.Join(dir, "depth")
	var clock time.Time
	write := func(text string) { // and the clock is the time of the write
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		clock = time.Now()
	}
	reads := 0
	readFile = func(p string) ([]byte, error) { reads++; return readSmall(p) }
	now = func() time.Time { return clock }
	t.Cleanup(func() { readFile, now = readSmall, time.Now })
	src := &source{path: path}
	value := func(want float64, wantReads int) {
		t.Helper()
		v, err := src.Value(context.Background())
		if err != nil || v != want {
			t.Fatalf("value %v, %v; want %v", v, err, want)
		}
		if reads != wantReads {
			t.Fatalf("%d reads, want %d", reads, wantReads)
		}
	}

	write("12\n")
	value(12, 1)
	value(12, 2) // written just now: a second write may share its times, so it is read again
	clock = clock.Add(settle)
	value(12, 3) // settled: this read is kept
	value(12, 3)
	clock = clock.Add(time.Second)
	value(12, 3)

	write("13\n") // in place, the same size
	value(13, 4)
	clock = clock.Add(settle)
	value(13, 5)
	value(13, 5)

	tmp := filepath.Join(dir, "tmp") // replaced by a rename, as config management does
	os.WriteFile(tmp, []byte("14\n"), 0o644)
	os.Rename(tmp, path)
	clock = time.Now()
	value(14, 6)

	clock = clock.Add(settle)
	value(14, 7)
	clock = clock.Add(reuse) // kept no longer than reuse
	value(14, 8)
	value(14, 8)

	os.Remove(path) // gone: an error, and nothing kept
	if _, err := src.Value(context.Background()); err == nil {
		t.Fatal("no error for a removed file")
	}
	write("14\n")
	value(14, 9)
}
