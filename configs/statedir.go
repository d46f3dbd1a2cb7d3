package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// CheckStateDir reports whether the daemon could keep its state in cfg.StateDir, without
// creating or writing anything (validate touches nothing): the directory, or the nearest
// parent that exists when the daemon would have to create it, must be a directory this
// process may write to, on a file system mounted read-write. The error carries the
// position of the state_dir setting.
func CheckStateDir(cfg *Config) error {
	if err := stateDirWritable(cfg.StateDir); err != nil {
		var errs Errors
		errs.Add(cfg.SettingPos("state_dir"), "state_dir", "%v", err)
		return errs
	}
	return nil
}

func stateDirWritable(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := dir; ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && p != filepath.Dir(p) {
			continue // the daemon creates it, in a parent that must be writable
		}
		if err != nil {
			return fmt.Errorf("%s: %w", dir, pathCause(err))
		}
		if !info.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
		// AT_EACCESS: the effective user, as the daemon's own writes would be. A read-only
		// mount answers EROFS even for root.
		if err := unix.Faccessat(unix.AT_FDCWD, p, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
			what := p
			if p != dir {
				what = fmt.Sprintf("%s does not exist and its parent %s", dir, p)
			}
			return fmt.Errorf("%s is not writable (%v): the daemon could not save its state (cooldowns would not survive a restart) and would refuse to start", what, err)
		}
		return nil
	}
}
