package file_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/internal/testing/plugintest"
	"github.com/autoscalerd/autoscalerd/sources"
	"github.com/autoscalerd/autoscalerd/sources/file"
)

func TestReadme(t *testing.T) { plugintest.ReadmeShowsSample(t) }

func TestValue(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, content string
		want          float64
		err           string
	}{
		{"integer", "12\n", 12, ""},
		{"float with spaces", "  3.5 \n\n", 3.5, ""},
		{"empty", "\n", 0, "empty, no number"},
		{"text", "twelve", 0, `"twelve" is not a number`},
		{"long text", strings.Repeat("x", 100), 0, "…"},
		{"negative", "-1", 0, "negative"},
		{"missing", "", 0, "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			if c.name != "missing" {
				os.WriteFile(path, []byte(c.content), 0o644)
			}
			src, err := file.New(&file.Config{Path: path}, sources.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			v, err := sources.Read(context.Background(), src, 0)
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case c.err == "" && v != c.want:
				t.Fatalf("value %v, want %v", v, c.want)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

// TestChangesAreSeen: the file is read afresh on every evaluation, also when it is
// replaced by a rename (how config management writes files).
func TestChangesAreSeen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "override")
	os.WriteFile(path, []byte("1"), 0o644)
	src, _ := file.New(&file.Config{Path: path}, sources.Deps{})
	for _, want := range []float64{1, 7, 9} {
		if want == 9 {
			tmp := filepath.Join(dir, "tmp")
			os.WriteFile(tmp, []byte("9"), 0o644)
			os.Rename(tmp, path)
		} else if want == 7 {
			os.WriteFile(path, []byte("7"), 0o644)
		}
		if v, err := src.Value(context.Background()); err != nil || v != want {
			t.Fatalf("value %v, %v; want %v", v, err, want)
		}
	}
}

// TestSpecialFiles: a FIFO (with or without a writer) and devices are refused at once
// with a message naming the path, instead of blocking the policy or reading /dev/zero.
func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", link)
	read := func(path string) error {
		t.Helper()
		src, _ := file.New(&file.Config{Path: path}, sources.Deps{})
		done := make(chan error, 1)
		go func() { _, err := src.Value(context.Background()); done <- err }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("reading %s still blocked after 10s", path)
			return nil
		}
	}
	for path, want := range map[string]string{
		fifo:        fifo + ": a named pipe (FIFO), not a regular file",
		"/dev/zero": "/dev/zero: a character device, not a regular file",
		link:        link + ": a character device, not a regular file",
		dir:         dir + ": a directory, not a regular file",
	} {
		plugintest.ErrorSays(t, read(path), []string{want})
	}
	// A writer that holds the FIFO open and writes nothing changes nothing.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	plugintest.ErrorSays(t, read(fifo), []string{"named pipe"})
}
