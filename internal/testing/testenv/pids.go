package testenv

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ProcessGone reports whether pid has exited: no /proc entry, or a zombie not reaped yet
// (in a container whose init does not reap, orphans stay zombies; they run nothing).
func ProcessGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// WaitGone fails the test unless every pid exits within timeout.
func WaitGone(t testing.TB, timeout time.Duration, pids ...int) {
	t.Helper()
	waitFor(t, timeout, "still running", ProcessGone, pids)
}

// WaitReaped fails the test unless every pid exits and is reaped within timeout: not even
// a zombie remains. Use it where the test process is the one that must reap (a subreaper).
func WaitReaped(t testing.TB, timeout time.Duration, pids ...int) {
	t.Helper()
	waitFor(t, timeout, "not reaped (still running or a zombie)", func(pid int) bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		return os.IsNotExist(err)
	}, pids)
}

func waitFor(t testing.TB, timeout time.Duration, what string, gone func(int) bool, pids []int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, pid := range pids {
			if !gone(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v %s %s later", alive, what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
