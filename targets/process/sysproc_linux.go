package process

import "syscall"

// sysProcAttr puts each child in its own process group, so a stop reaches whatever it
// started too, and asks the kernel to SIGKILL it when its parent goes away: even a
// SIGKILLed daemon leaves no workers behind. Pdeathsig is bound to the OS thread that
// forks, which is why children are only started from the spawner's locked thread.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
