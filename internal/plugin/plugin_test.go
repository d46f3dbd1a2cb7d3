package plugin

import (
	"errors"
	"strings"
	"testing"
)

type testConfig struct{ N int }

type testDeps struct{ Add int }

const testClass Class = "test"

func TestRegistry(t *testing.T) {
	build := func(c *testConfig, d testDeps) (int, error) {
		if c.N < 0 {
			return 0, errors.New("negative")
		}
		return c.N + d.Add, nil
	}
	Register(testClass, "b", "b: {}\n", func() *testConfig { return &testConfig{N: 1} }, build)
	Register(testClass, "a", "a: {}\n", func() *testConfig { return &testConfig{N: 2} }, build)

	if got := strings.Join(Names(testClass), ","); got != "a,b" {
		t.Fatalf("Names = %s, want a,b", got)
	}
	if len(Names(Query)) != 0 {
		t.Fatalf("a test kind leaked into another class: %v", Names(Query))
	}
	if s, ok := Sample(testClass, "b"); !ok || s != "b: {}\n" {
		t.Fatalf("Sample = %q, %v", s, ok)
	}
	c1, _ := NewConfig(testClass, "a")
	c2, _ := NewConfig(testClass, "a")
	if c1 == c2 || c1.(*testConfig).N != 2 {
		t.Fatalf("NewConfig must return a fresh config with its defaults, got %p %p %+v", c1, c2, c1)
	}
	if _, ok := NewConfig(testClass, "zzz"); ok {
		t.Fatal("NewConfig of an unknown kind")
	}

	c1.(*testConfig).N = 40
	if v, err, ok := Build[testDeps, int](testClass, "a", c1, testDeps{Add: 2}); !ok || err != nil || v != 42 {
		t.Fatalf("Build = %v, %v, %v; want 42", v, err, ok)
	}
	c1.(*testConfig).N = -1
	if _, err, ok := Build[testDeps, int](testClass, "a", c1, testDeps{}); !ok || err == nil {
		t.Fatalf("Build of a bad config: %v, %v", err, ok)
	}
	if _, _, ok := Build[testDeps, int](testClass, "zzz", c1, testDeps{}); ok {
		t.Fatal("Build of an unknown kind")
	}

	mustPanic(t, "registered twice", func() { Register(testClass, "a", "", func() *testConfig { return nil }, build) })
	mustPanic(t, "other deps", func() { _, _, _ = Build[string, int](testClass, "a", c1, "") })
}

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		r := recover()
		if s, _ := r.(string); !strings.Contains(s, want) {
			t.Fatalf("panic %v, want one saying %q", r, want)
		}
	}()
	f()
}
