// Package testenv finds and starts the real components integration tests run against.
//
// Under CI=true a missing component fails the test; elsewhere the test is skipped with a
// message saying how to get the component (usually: run .ci/run once, which installs it).
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing fails (CI) or skips (elsewhere) the test because a component is not available.
func Missing(t testing.TB, component, how string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is not available (CI=true, so this fails instead of skipping): %s", component, how)
	}
	t.Skipf("%s is not available; %s", component, how)
}

// LookPath returns the path of an executable, or fails/skips the test via Missing.
func LookPath(t testing.TB, name, how string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, how)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitTCP waits until addr accepts connections or timeout passes.
func WaitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not accept connections within %s: %w", addr, timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
