//go:build unix && !linux

package process

import "syscall"

// sysProcAttr puts each child in its own process group. Outside Linux there is no
// parent-death signal: children outlive a daemon that is killed with SIGKILL.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
