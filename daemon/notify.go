package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// systemd Type=notify support. Every call is a no-op when NOTIFY_SOCKET is unset.

func notifyReady(log *slog.Logger) {
	if _, err := sd.SdNotify(false, sd.SdNotifyReady); err != nil {
		log.Warn("sd_notify READY", "err", err)
	}
}

// notifyReloading tells systemd a reload started; READY=1 ends it.
func notifyReloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	usec := ts.Sec*1_000_000 + ts.Nsec/1000
	_, _ = sd.SdNotify(false, fmt.Sprintf("%s\nMONOTONIC_USEC=%d", sd.SdNotifyReloading, usec))
}

func notifyStopping() { _, _ = sd.SdNotify(false, sd.SdNotifyStopping) }

// watchdog pings systemd at half the WatchdogSec interval while ctx lives and the engine
// shows progress: wedged lists what is stuck, and while it lists anything there is no
// ping, so systemd restarts a daemon whose loop hangs.
func watchdog(ctx context.Context, log *slog.Logger, wedged func() []string) {
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	silent := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if stuck := wedged(); len(stuck) > 0 {
				if !silent {
					log.Error("no progress: not pinging the systemd watchdog", "stuck", strings.Join(stuck, "; "))
					silent = true
				}
				continue
			}
			if silent {
				log.Info("progress again: pinging the systemd watchdog")
				silent = false
			}
			if _, err := sd.SdNotify(false, sd.SdNotifyWatchdog); err != nil {
				log.Warn("sd_notify WATCHDOG", "err", err)
			}
		}
	}
}
