package process

import (
	"fmt"
	"syscall"

	"github.com/autoscalerd/autoscalerd/targets/drain"
)

// stopSignals are the signals a program may reasonably treat as "stop". SIGSTOP and
// friends are left out: they pause a process, and the stop would always end in SIGKILL.
var stopSignals = map[string]syscall.Signal{
	"SIGHUP":   syscall.SIGHUP,
	"SIGINT":   syscall.SIGINT,
	"SIGQUIT":  syscall.SIGQUIT,
	"SIGABRT":  syscall.SIGABRT,
	"SIGKILL":  syscall.SIGKILL,
	"SIGUSR1":  syscall.SIGUSR1,
	"SIGUSR2":  syscall.SIGUSR2,
	"SIGALRM":  syscall.SIGALRM,
	"SIGTERM":  syscall.SIGTERM,
	"SIGWINCH": syscall.SIGWINCH,
}

// parseSignal accepts a signal name with or without the SIG prefix, in any case
// ("SIGTERM", "TERM", "sigint").
func parseSignal(s string) (syscall.Signal, error) {
	if sig, ok := drain.LookupSignal(s, stopSignals); ok {
		return sig, nil
	}
	return 0, fmt.Errorf("%q is not a stop signal (use one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGABRT, SIGKILL; the SIG prefix is optional)", s)
}

// signalName is the conventional name of a signal, for logs.
func signalName(sig syscall.Signal) string { return drain.NameIn(sig, stopSignals) }
