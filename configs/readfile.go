package configs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Size caps for the files a load reads. A config with 10,000 policies is about 2 MiB; a
// secret is a token or a password. Anything larger is the wrong file (a log, a disk
// image, /dev/zero) and would otherwise be read whole into memory.
const (
	MaxConfigFile = 16 << 20 // the main file and each policy_dir file
	MaxSecretFile = 64 << 10 // each { file: ... } secret
)

// ReadFile reads the regular file at path, of at most limit bytes. Symbolic links are
// followed; what they lead to must be a regular file too. Devices, named pipes, sockets
// and directories are refused without blocking: the file is opened non-blocking, so a
// FIFO with no writer cannot hang a load (or the running daemon's reload). Errors name
// the path.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("is %s, not a regular file", fileKind(info.Mode()))}
	}
	if info.Size() > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: tooLarge(limit)}
	}
	// The size can grow between the stat and the read: the limit holds for the read too.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: tooLarge(limit)}
	}
	return b, nil
}

func tooLarge(limit int64) error {
	if limit >= 1<<20 {
		return fmt.Errorf("larger than %d MiB", limit>>20)
	}
	return fmt.Errorf("larger than %d KiB", limit>>10)
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// pathCause returns the cause of a *fs.PathError, for messages that name the path
// already.
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
