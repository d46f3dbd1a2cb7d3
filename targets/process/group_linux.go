package process

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// groupRunning reports whether a process of group pgid still runs. Zombies do not count:
// a grandchild the replica left behind becomes init's zombie when it exits, and an init
// that reaps slowly (or never, when autoscalerd is PID 1 of a container without an init)
// must not hold every stop up until stop_timeout.
func groupRunning(pgid int) bool {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return false // the common case, without reading /proc
	}
	d, err := os.Open("/proc")
	if err != nil {
		return true
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return true
	}
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		if state, pgrp, ok := parseStat(b); ok && pgrp == pgid && state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

// parseStat returns the state and process group from the contents of /proc/PID/stat.
func parseStat(b []byte) (state byte, pgrp int, ok bool) {
	// The command name is in parentheses and may itself contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:]) // state ppid pgrp ...
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	pgrp, err := strconv.Atoi(string(f[2]))
	return f[0][0], pgrp, err == nil
}
