package decisionlog

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupCommit: important records written at once share fsyncs, and none is
// acknowledged before an fsync that began after it was written has ended.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	var syncs atomic.Int64
	var mu sync.Mutex
	durable := int64(0) // the file size that the last fsync to end had begun with
	syncFile = func(f *os.File) error {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond) // a slow disk
		err = f.Sync()
		syncs.Add(1)
		mu.Lock()
		durable = max(durable, st.Size())
		mu.Unlock()
		return err
	}
	t.Cleanup(func() { syncFile = (*os.File).Sync })
	l := open(t, dir, Options{})
	const writers = 200
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			r := rec(fmt.Sprintf("p%03d", i), i, "up")
			if err := l.Append(r); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			d := durable
			mu.Unlock()
			file, err := os.ReadFile(path(dir, 1))
			if err != nil {
				errs <- err
				return
			}
			at := bytes.Index(file, []byte(`"policy":"`+r.Policy+`"`))
			end := at + bytes.IndexByte(file[at:], '\n') + 1
			if at < 0 || int64(end) > d {
				errs <- fmt.Errorf("%s acknowledged with its record at bytes %d..%d, past the durable %d", r.Policy, at, end, d)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := checkLines(t, dir); n != writers {
		t.Fatalf("%d lines, want %d", n, writers)
	}
	if n := syncs.Load(); n > writers/4 {
		t.Fatalf("%d fsyncs for %d records written at once: not grouped", n, writers)
	}
	t.Logf("%d records, %d fsyncs", writers, syncs.Load())
}
