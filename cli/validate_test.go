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

// TestValidateChecksProcessCommand: a process target whose command or dir does not exist on
// this machine is reported by validate, not discovered by failing scale-ups.
func TestValidateChecksProcessCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "autoscalerd.yaml")
	text := `policies:
  - name: w
    target: { process: { command: [/opt/nowhere/worker, --fast], dir: /opt/nowhere } }
    max: 2
    queries:
      q: { file: { path: /dev/null } }
    replicas: q
  - name: ok
    target: { process: { command: [sleep, "3600"], dir: ` + dir + ` } }
    max: 2
    queries:
      q: { file: { path: /dev/null } }
    replicas: q
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"validate", "-c", path, "--state-dir", t.TempDir()}, &out, &errOut); code != exitInvalid {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	for _, want := range []string{
		path + ":3:13: policies[0].target.process.dir: /opt/nowhere does not exist here",
		path + ":3:13: policies[0].target.process.command: /opt/nowhere/worker does not exist here",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("missing %q in:\n%s", want, errOut.String())
		}
	}
	if strings.Contains(errOut.String(), "policies[1]") {
		t.Errorf("the good policy was reported:\n%s", errOut.String())
	}
}
