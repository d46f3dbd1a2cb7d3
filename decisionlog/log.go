// Package decisionlog keeps a durable record of a daemon's scaling decisions under
// state_dir, so that "why were we at 3 workers at 02:10 last night?" has an answer after
// a restart.
//
// What is recorded: every decision that changed the replica count, every failed one
// (a scale that errored, a target that could not be reached), and a random sample of the
// holds (decision_log.hold_sample, default 1 in 100): holds are most ticks and say
// little one by one, but a sample keeps the shape of quiet periods.
//
// Format: JSON lines (one Record per line) in state_dir/decisions/decisions.NNNNNN.jsonl.
// The highest number is the file being written; when it would grow past max_size the
// next number starts, and the oldest files beyond max_files are deleted. The disk use is
// thus bounded by max_size × max_files.
//
// Durability: each record is written with a single write(2) on a file opened O_APPEND,
// so a process killed at any point (kill -9, OOM) leaves whole lines plus at most one
// torn last line. Open cuts a torn last line off; readers skip any line that does not
// parse. Nothing in the files can stop the daemon from starting. Against power loss, a
// record that changed or failed to change something is fsynced before Append returns;
// sampled holds are fsynced in a batch at most a second later (SyncEvery), which is
// what losing them on a power cut costs. The fsyncs are group commits: records that
// arrive while one fsync runs are written at once and made durable together by the next,
// so a thousand policies deciding at once wait for two fsyncs, not for a thousand one
// after another.
package decisionlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Record is one logged decision.
type Record struct {
	Time   time.Time `json:"time"`
	Policy string    `json:"policy"`
	// Action is up, down or hold, as in a decision; paused and resumed mark operator
	// actions.
	Action  string `json:"action"`
	From    int    `json:"from"`
	To      int    `json:"to"`
	Desired *int   `json:"desired,omitempty"`
	Min     int    `json:"min"`
	Max     int    `json:"max"`
	Reason  string `json:"reason"`
	// Failed marks a decision that could not be carried out, or a tick whose target
	// could not be reached; Error says why. A hold whose queries or expression failed
	// is not Failed (it is sampled like other holds) but carries the Error.
	Failed bool   `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	// Values are the query values of the tick; nil for a query that failed.
	Values map[string]*float64 `json:"values,omitempty"`
	// Sampled marks a hold kept by the hold sample: the holds in between are not logged.
	Sampled bool `json:"sampled,omitempty"`
	// Repeat marks a dry-run action that is the one of the tick before (the target never
	// follows a dry run): sampled like a hold.
	Repeat bool `json:"repeat,omitempty"`
}

// Important reports whether r is always logged: it changed something or failed to.
func (r Record) Important() bool {
	return (r.Action != "hold" && !r.Repeat) || r.Failed
}

// Options configure a Log.
type Options struct {
	// Dir is the log's directory (state_dir/decisions).
	Dir string
	// MaxSize is the size at which the active file is rotated; MaxFiles how many files
	// are kept, the active one included.
	MaxSize  int64
	MaxFiles int
	// HoldSample is the fraction of holds recorded, 0 to 1.
	HoldSample float64
	// SyncEvery bounds how long a sampled hold stays unsynced. Default 1s.
	SyncEvery time.Duration
	Logger    *slog.Logger
	// Rand returns a number in [0, 1) for the hold sample; tests make it deterministic.
	Rand func() float64
}

// SubDir is the log's directory under state_dir.
const SubDir = "decisions"

// DirIn returns the log's directory under stateDir.
func DirIn(stateDir string) string { return filepath.Join(stateDir, SubDir) }

const (
	prefix = "decisions."
	suffix = ".jsonl"
)

// Log appends records to the files in its directory. It is safe for concurrent use.
type Log struct {
	o   Options
	log *slog.Logger

	mu   sync.Mutex
	f    *os.File
	seq  int
	size int64
	// wrote counts the records written, synced those known to be on disk; syncing says
	// an fsync runs (without mu), and synced tells its waiters when it is over.
	wrote, synced uint64
	syncing       bool
	syncDone      *sync.Cond
	closed        bool
	files         map[int]span // time span of each closed file, for queries
	timer         *time.Timer
}

// span is the time range a file's records cover.
type span struct{ first, last time.Time }

// Open opens (creating it if need be) the log in o.Dir and repairs a torn last line.
func Open(o Options) (*Log, error) {
	if o.MaxSize <= 0 || o.MaxFiles < 2 {
		return nil, fmt.Errorf("decision log: max_size must be positive and max_files at least 2")
	}
	if o.SyncEvery <= 0 {
		o.SyncEvery = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	l := &Log{o: o, log: o.Logger, files: map[int]span{}}
	l.syncDone = sync.NewCond(&l.mu)
	seqs, err := list(o.Dir)
	if err != nil {
		return nil, err
	}
	seq := 1
	if len(seqs) > 0 {
		seq = seqs[len(seqs)-1]
	}
	if err := repair(path(o.Dir, seq), l.log); err != nil {
		return nil, err
	}
	if err := l.openLocked(seq); err != nil {
		return nil, err
	}
	l.pruneLocked()
	return l, nil
}

func path(dir string, seq int) string {
	return filepath.Join(dir, fmt.Sprintf("%s%06d%s", prefix, seq, suffix))
}

// list returns the sequence numbers of the log's files, ascending.
func list(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	var seqs []int
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		num, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			seqs = append(seqs, n)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// repair cuts a torn last line (a write the process did not live to finish) off file.
func repair(file string, log *slog.Logger) error {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	end := st.Size()
	if end == 0 {
		return nil
	}
	// Look back for the last newline, a block at a time.
	const block = 64 << 10
	buf := make([]byte, block)
	keep := int64(0)
	for off := end; off > 0; {
		n := min(int64(block), off)
		off -= n
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("decision log: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			keep = off + int64(i) + 1
			break
		}
	}
	if keep == end {
		return nil
	}
	log.Warn("decision log: cutting off a torn last line (the daemon was killed mid-write)", "file", file, "bytes", end-keep)
	if err := f.Truncate(keep); err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	return nil
}

func (l *Log) openLocked(seq int) error {
	f, err := os.OpenFile(path(l.o.Dir, seq), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("decision log: %w", err)
	}
	l.f, l.seq, l.size = f, seq, st.Size()
	return nil
}

// Append records r if it is important or the hold sample picks it. A failure is
// returned (and the record lost) but leaves the log usable.
func (l *Log) Append(r Record) error {
	if !l.Admit(&r) {
		return nil
	}
	return l.Write(r)
}

// Admit says whether r is to be recorded: an important record always, a hold when the
// sample picks it (r is then marked Sampled). A caller that builds the costly parts of a
// record (its values) only for the records written admits first, then calls Write.
func (l *Log) Admit(r *Record) bool {
	if l == nil {
		return false
	}
	if r.Important() {
		return true
	}
	if l.o.HoldSample <= 0 || l.o.Rand() >= l.o.HoldSample {
		return false
	}
	r.Sampled = true
	return true
}

// Write records r, which Admit let through.
func (l *Log) Write(r Record) error {
	if l == nil {
		return nil
	}
	important := r.Important()
	line := append(appendRecord(make([]byte, 0, 256+len(r.Reason)), &r), '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("decision log: closed")
	}
	if l.size > 0 && l.size+int64(len(line)) > l.o.MaxSize {
		if err := l.rotateLocked(); err != nil {
			return err
		}
	}
	// One write: a kill leaves this line whole or torn at the end, never interleaved.
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	l.wrote++
	if important {
		return l.syncLocked(l.wrote)
	}
	if l.timer == nil {
		l.timer = time.AfterFunc(l.o.SyncEvery, l.syncDirty)
	}
	return nil
}

// syncLocked returns once the first upto records are on disk. It fsyncs, with mu released
// meanwhile, unless an fsync is running already: then it waits for that one, and fsyncs
// only if that one began before record upto was written. A file closed under a running
// fsync (a rotation) is closed once the fsync is over (os.File counts its users).
func (l *Log) syncLocked(upto uint64) error {
	for l.synced < upto {
		if l.syncing {
			l.syncDone.Wait()
			continue
		}
		if l.closed {
			return errors.New("decision log: closed")
		}
		l.syncing = true
		f, mark := l.f, l.wrote
		l.mu.Unlock()
		err := syncFile(f)
		l.mu.Lock()
		l.syncing = false
		l.syncDone.Broadcast()
		if err != nil {
			return fmt.Errorf("decision log: fsync: %w", err)
		}
		l.synced = max(l.synced, mark)
	}
	return nil
}

// syncFile is (*os.File).Sync; tests count and slow it.
var syncFile = (*os.File).Sync

func (l *Log) syncDirty() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	if l.closed {
		return
	}
	if err := l.syncLocked(l.wrote); err != nil {
		l.log.Warn("decision log", "err", err)
	}
}

func (l *Log) rotateLocked() error {
	// Under mu, so that no other write starts a rotation meanwhile; an fsync running
	// without mu holds the file open until it is over.
	if err := l.f.Sync(); err != nil {
		l.log.Warn("decision log: fsync before rotation", "err", err)
	}
	if err := l.f.Close(); err != nil {
		l.log.Warn("decision log: close before rotation", "err", err)
	}
	l.synced = l.wrote // or lost with the file's fsync error, which was told
	if err := l.openLocked(l.seq + 1); err != nil {
		// Keep writing where we were rather than lose every record from now on.
		if err2 := l.openLocked(l.seq); err2 != nil {
			return errors.Join(err, err2)
		}
		return err
	}
	l.pruneLocked()
	return nil
}

// pruneLocked deletes the oldest files beyond MaxFiles.
func (l *Log) pruneLocked() {
	seqs, err := list(l.o.Dir)
	if err != nil {
		l.log.Warn("decision log: listing files", "err", err)
		return
	}
	for len(seqs) > l.o.MaxFiles {
		if err := os.Remove(path(l.o.Dir, seqs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("decision log: removing the oldest file", "err", err)
			return
		}
		delete(l.files, seqs[0])
		seqs = seqs[1:]
	}
}

// Close syncs and closes the active file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	err := l.syncLocked(l.wrote)
	l.closed = true
	return errors.Join(err, l.f.Close())
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.o.Dir }

// Query reads records from the log's files; see Read.
func (l *Log) Query(q Query) ([]Record, error) {
	l.mu.Lock()
	active := l.seq
	l.mu.Unlock()
	return read(l.o.Dir, q, func(seq int) (span, bool) {
		if seq == active {
			return span{}, false // still growing
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		s, ok := l.files[seq]
		return s, ok
	}, func(seq int, s span) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if seq != l.seq {
			l.files[seq] = s
		}
	})
}
