// Package plugintest holds checks shared by every source and target folder's tests.
package plugintest

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
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

// Value reads src once, as the engine would with a generous query timeout (10s).
func Value(t testing.TB, src interface {
	Value(context.Context) (float64, error)
}) (float64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return src.Value(ctx)
}

// SyncBuffer is a log sink a test reads while the code under test writes to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ErrorSays fails the test unless err is an error whose text contains every string of
// want and none of never (secrets that must not leak into messages).
func ErrorSays(t testing.TB, err error, want []string, never ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error, want one")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not contain %q", err, w)
		}
	}
	for _, n := range never {
		if strings.Contains(err.Error(), n) {
			t.Errorf("error %q\ncontains %q, which must not appear", err, n)
		}
	}
}
