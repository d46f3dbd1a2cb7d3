package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/autoscalerd/autoscalerd/sources/all"
	_ "github.com/autoscalerd/autoscalerd/targets/all"
)

// TestValidateShowsEveryMistakeWithItsLine: a typo'd key, a bad duration and a misspelled
// query name come out together, each with its source line and a caret under the column.
func TestValidateShowsEveryMistakeWithItsLine(t *testing.T) {
	src, err := os.ReadFile("../configs/testdata/bad/all-at-once.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "autoscalerd.yaml")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := Main([]string{"validate", "-c", path, "--state-dir", t.TempDir()}, &out, &errOut)
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d\n%s", code, exitInvalid, errOut.String())
	}
	want := []string{
		path + `:7:5: policies[0]: unknown key "intervall" (did you mean "interval"?)`,
		"        intervall: 15s",
		"        ^",
		path + `:8:21: policies[0].cooldown.up: "30" is not a duration (use 30s)`,
		"        cooldown: { up: 30, down: 5m }",
		"                        ^",
		path + `:12:20: policies[0].replicas: unknown name queud`,
		"        replicas: ceil(queud / 100)",
		"                       ^",
	}
	lines := strings.Split(strings.TrimRight(errOut.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), errOut.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, lines[i], w)
		}
	}
}
