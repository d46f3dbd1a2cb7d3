package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/autoscalerd/autoscalerd/policy"
	"io/fs"
	"os"
	"path/filepath"
)

// Store keeps each policy's State in state_dir as <policy>.json, written atomically
// (temp file, rename) so a crash never leaves a half-written file.
type Store struct {
	dir string
}

// NewStore creates dir if needed and checks that it is writable.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("state_dir %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &Store{dir: dir}, nil
}

// Dir is the directory the store writes to.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(name string) string { return filepath.Join(s.dir, name+".json") }

// stateFile is the on-disk form; Version lets a later release migrate old files.
type stateFile struct {
	Version int          `json:"version"`
	State   policy.State `json:"state"`
}

// Load returns the saved state of a policy. A missing file is fs.ErrNotExist; a corrupt
// one is an error naming the file. Either way the caller starts from an empty State,
// which is cautious: no scale-down until a full cooldown.down of history is seen.
func (s *Store) Load(name string) (policy.State, error) {
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		return policy.State{}, err
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return policy.State{}, fmt.Errorf("state file %s is corrupt: %w", s.path(name), err)
	}
	if f.Version != 1 {
		return policy.State{}, fmt.Errorf("state file %s has unknown version %d", s.path(name), f.Version)
	}
	return f.State, nil
}

// Save writes a policy's state atomically. A durable save is also fsynced before the
// rename, so it survives the machine losing power: what a restart must not lose (an
// action, which starts a cooldown; a pause; a clean stop). The periodic saves of the
// windows' history are not: with thousands of policies their fsyncs were a sixth of the
// daemon's CPU, and the worst a power cut can do to one is an unreadable file, from which
// the policy starts cautious, as without a file.
func (s *Store) Save(name string, st policy.State, durable bool) error {
	b, err := json.Marshal(stateFile{Version: 1, State: st})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	_, werr := tmp.Write(b)
	var serr error
	if durable {
		serr = tmp.Sync()
	}
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path(name)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// IsNotExist reports whether a Load error means there was no saved state.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
