// Package plugintest holds checks shared by every source and target folder's tests.
package plugintest

import (
	"os"
	"strings"
	"testing"
)

// ReadmeShowsSample fails the test unless README.md in the current directory contains
// sample.conf verbatim inside a fenced block, so the documentation cannot drift.
func ReadmeShowsSample(t *testing.T) {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	sample, err := os.ReadFile("sample.conf")
	if err != nil {
		t.Fatalf("sample.conf: %v", err)
	}
	block := "```yaml\n" + string(sample) + "```"
	if !strings.Contains(string(readme), block) {
		t.Fatalf("README.md does not show sample.conf verbatim; paste it inside:\n%s", block)
	}
}
