//go:build unix && !linux

package process

import (
	"errors"
	"syscall"
)

// groupRunning reports whether any process is left in group pgid (zombies included).
func groupRunning(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}
