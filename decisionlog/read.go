package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Query selects records: of one policy ("" for all), with Since <= Time <= Until (zero
// for no bound), the newest Limit of them (0 for DefaultLimit).
type Query struct {
	Policy       string
	Since, Until time.Time
	Limit        int
}

// Limits on how many records one query returns.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// skew is how far records in one file may be out of time order: runners append
// concurrently, each with the time its tick started.
const skew = time.Minute

// Read returns the records q selects from the log in dir, oldest first (newest last).
// It needs no Log, so `autoscalerd history --state-dir` can read the files of a daemon
// that is stopped (or running: it reads whole lines only). Lines that do not parse (a
// torn last line) are skipped.
func Read(dir string, q Query) ([]Record, error) {
	return read(dir, q, func(int) (span, bool) { return span{}, false }, func(int, span) {})
}

func read(dir string, q Query, cached func(int) (span, bool), store func(int, span)) ([]Record, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	seqs, err := list(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var needle []byte
	if q.Policy != "" {
		name, _ := json.Marshal(q.Policy)
		needle = append([]byte(`"policy":`), name...)
	}
	var out []Record
	// Newest file first, so a query for the latest records reads one file.
	for i := len(seqs) - 1; i >= 0 && len(out) < q.Limit; i-- {
		file := path(dir, seqs[i])
		s, ok := cached(seqs[i])
		if !ok {
			s, err = readSpan(file)
			if errors.Is(err, os.ErrNotExist) {
				continue // rotated away while we listed
			}
			if err != nil {
				return nil, err
			}
			store(seqs[i], s)
		}
		if !q.Since.IsZero() && !s.last.IsZero() && s.last.Before(q.Since.Add(-skew)) {
			break // this file and every older one end before the range
		}
		if !q.Until.IsZero() && !s.first.IsZero() && s.first.After(q.Until.Add(skew)) {
			continue
		}
		recs, err := scan(file, q, needle, q.Limit-len(out))
		if err != nil {
			return nil, err
		}
		out = append(recs, out...)
	}
	return out, nil
}

// scan returns the newest n records of file that q selects, oldest first.
func scan(file string, q Query, needle []byte, n int) ([]Record, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	defer f.Close()
	ring := make([]Record, 0, min(n, 1024))
	start := 0 // index of the oldest record once the ring is full
	r := bufio.NewReaderSize(f, 256<<10)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer is no record of ours: skip to its end.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("decision log: %w", err)
		}
		complete := len(line) > 0 && line[len(line)-1] == '\n'
		if complete && (needle == nil || bytes.Contains(line, needle)) {
			var rec Record
			if json.Unmarshal(line, &rec) == nil && (q.Policy == "" || rec.Policy == q.Policy) &&
				(q.Since.IsZero() || !rec.Time.Before(q.Since)) && (q.Until.IsZero() || !rec.Time.After(q.Until)) {
				if len(ring) < n {
					ring = append(ring, rec)
				} else {
					ring[start] = rec
					start = (start + 1) % n
				}
			}
		}
		if err != nil { // EOF; a last line without a newline is torn (or being written)
			break
		}
	}
	return append(ring[start:], ring[:start]...), nil
}

// readSpan returns the times of a file's first and last whole records, reading only its
// ends.
func readSpan(file string) (span, error) {
	f, err := os.Open(file)
	if err != nil {
		return span{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return span{}, err
	}
	const chunk = 64 << 10
	head := make([]byte, min(chunk, st.Size()))
	if _, err := io.ReadFull(f, head); err != nil {
		return span{}, err
	}
	var s span
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		s.first = lineTime(head[:i])
	}
	off := max(0, st.Size()-chunk)
	tail := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(tail, off); err != nil && !errors.Is(err, io.EOF) {
		return span{}, err
	}
	tail = bytes.TrimRight(tail, "\n")
	if i := bytes.LastIndexByte(tail, '\n'); i >= 0 || off == 0 {
		s.last = lineTime(tail[i+1:])
	}
	return s, nil
}

func lineTime(line []byte) time.Time {
	var r struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal(line, &r) != nil {
		return time.Time{}
	}
	return r.Time
}

// ParseTime reads a query bound: an RFC 3339 time (2026-12-02T02:10:00Z), or a duration
// meaning that long before now (2h, 30m, 1h30m). "" is no bound.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-12-02T02:10:00Z) nor a duration before now (2h)", s)
}

// SortByTime orders records oldest first, keeping the order of equal times.
func SortByTime(rs []Record) {
	slices.SortStableFunc(rs, func(a, b Record) int { return a.Time.Compare(b.Time) })
}
