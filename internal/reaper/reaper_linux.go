package reaper

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func setSubreaper(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, uintptr(v), 0, 0, 0)
}

// minSweepGap spaces the sweeps SIGCHLD triggers: with many exec queries children exit
// many times a second, and one sweep catches every orphan there is.
const minSweepGap = 200 * time.Millisecond

// sweepEvery is the sweep without a SIGCHLD: adopting an orphan signals nothing, and an
// orphan that cannot be attributed should not wait for some child to exit.
const sweepEvery = 2 * time.Second

func watch(ctx context.Context) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		case <-tick.C:
		}
		Sweep()
		select {
		case <-ctx.Done():
			return
		case <-time.After(minSweepGap):
		}
	}
}

// sweepOnce kills the orphans that must go and reaps those that exited. It reports
// whether it reaped any: their children are the daemon's now, for another pass.
func sweepOnce() bool {
	reaped := false
	for _, pid := range children() {
		if direct[pid] {
			continue // waited for by whoever started it
		}
		switch state(pid) {
		case 'Z', 'X':
			reaped = reap(pid) || reaped
			continue
		case 0:
			continue // gone meanwhile
		}
		if token, ok := ownerOf(pid); ok {
			if _, live := owners[token]; live {
				continue
			}
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
		// SIGKILL takes effect at once unless the process sleeps in the kernel (a dead NFS
		// mount); then a later SIGCHLD brings it to a later sweep.
		for range 50 {
			if reap(pid) {
				reaped = true
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return reaped
}

func reap(pid int) bool {
	var ws syscall.WaitStatus
	got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	return err == nil && got == pid
}

// children lists the process's children, across all its threads: the kernel hands an
// orphan to one thread of the subreaper.
func children() []int {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(field); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// state is the process state letter from /proc/PID/stat (R, S, D, Z, ...), 0 if gone.
func state(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces and parentheses
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// ownerOf reads the owner token from a process's environment (as it was at exec).
func ownerOf(pid int) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return "", false
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(ownerEnv+"=")); ok {
			return string(v), true
		}
	}
	return "", false
}
