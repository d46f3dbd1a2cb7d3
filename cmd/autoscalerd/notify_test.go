package main_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotify runs the daemon as systemd would for a Type=notify unit with a
// watchdog, and reads what it tells the notify socket: READY, WATCHDOG pings, RELOADING
// then READY around a SIGHUP, STOPPING on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	cfg := filepath.Join(dir, "autoscalerd.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, e2eConfig, "3600.75", 2, "http://127.0.0.1:1/unreachable"), 0o644)
	cmd := exec.Command(binary(t), "run", "-c", cfg, "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "state"))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	expect := func(what string) string {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, what) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %q on the notify socket", what)
			}
		}
	}
	expect("READY=1")
	expect("WATCHDOG=1")
	expect("WATCHDOG=1")
	cmd.Process.Signal(syscall.SIGHUP)
	if m := expect("RELOADING=1"); !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING without MONOTONIC_USEC: %q", m)
	}
	expect("READY=1")
	cmd.Process.Signal(syscall.SIGTERM)
	expect("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}
