package file_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
