package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)

func rec(policy string, i int, action string) Record {
	return Record{Time: t0.Add(time.Duration(i) * time.Second), Policy: policy, Action: action, From: i, To: i + 1,
		Min: 1, Max: 20, Reason: fmt.Sprintf("queued=%d → scale", i*100)}
}

func open(t *testing.T, dir string, o Options) *Log {
	t.Helper()
	o.Dir = dir
	if o.MaxSize == 0 {
		o.MaxSize = 1 << 20
	}
	if o.MaxFiles == 0 {
		o.MaxFiles = 4
	}
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func froms(rs []Record) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.From
	}
	return out
}

func TestAppendAndQuery(t *testing.T) {
	dir := t.TempDir()
	// Every other hold is picked by the sample.
	n := 0
	l := open(t, dir, Options{HoldSample: 0.5, Rand: func() float64 { n++; return float64(n%2) * 0.9 }})
	for i := range 20 {
		action := "hold"
		if i%5 == 0 {
			action = "up"
		}
		if err := l.Append(rec("workers", i, action)); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(rec("other", i, "down")); err != nil {
			t.Fatal(err)
		}
	}
	failed := rec("workers", 30, "hold")
	failed.Failed, failed.Error = true, "scale failed: docker: connection refused"
	if err := l.Append(failed); err != nil {
		t.Fatal(err)
	}

	all, err := l.Query(Query{Policy: "workers", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// 4 ups, 16 holds of which half sampled, and the failed one.
	if len(all) != 4+8+1 {
		t.Fatalf("got %d records: %v", len(all), froms(all))
	}
	for i, r := range all {
		if r.Policy != "workers" {
			t.Errorf("record of %q", r.Policy)
		}
		if r.Action == "hold" && !r.Failed && !r.Sampled {
			t.Errorf("hold %d not marked sampled", r.From)
		}
		if i > 0 && r.Time.Before(all[i-1].Time) {
			t.Errorf("not oldest first: %v", froms(all))
		}
	}
	if last := all[len(all)-1]; !last.Failed || last.Error == "" {
		t.Errorf("the failed decision: %+v", last)
	}

	got, err := l.Query(Query{Policy: "other", Since: t0.Add(5 * time.Second), Until: t0.Add(14 * time.Second), Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(froms(got)) != "[12 13 14]" {
		t.Errorf("since/until/limit: got %v, want the newest three in range [12 13 14]", froms(got))
	}
}

func TestHoldSampleZeroAndOne(t *testing.T) {
	for _, c := range []struct {
		sample float64
		want   int
	}{{0, 0}, {1, 10}} {
		l := open(t, t.TempDir(), Options{HoldSample: c.sample})
		for i := range 10 {
			if err := l.Append(rec("p", i, "hold")); err != nil {
				t.Fatal(err)
			}
		}
		got, err := l.Query(Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want {
			t.Errorf("hold_sample %v: %d records, want %d", c.sample, len(got), c.want)
		}
	}
}

func TestRotationBoundsTheDisk(t *testing.T) {
	dir := t.TempDir()
	const maxSize, maxFiles = 4 << 10, 3
	l := open(t, dir, Options{MaxSize: maxSize, MaxFiles: maxFiles})
	for i := range 500 {
		if err := l.Append(rec("workers", i, "up")); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "decisions.*.jsonl"))
	if len(files) != maxFiles {
		t.Errorf("%d files, want %d", len(files), maxFiles)
	}
	var total int64
	for _, f := range files {
		st, _ := os.Stat(f)
		if st.Size() > maxSize {
			t.Errorf("%s is %d bytes, over max_size %d", f, st.Size(), maxSize)
		}
		total += st.Size()
	}
	if total > maxSize*maxFiles {
		t.Errorf("%d bytes on disk, over %d", total, maxSize*maxFiles)
	}
	// The newest records, across the file boundary, in order and without gaps.
	got, err := l.Query(Query{Policy: "workers", Limit: 60})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 60 || got[0].From != 440 || got[59].From != 499 {
		t.Fatalf("got %d records %v", len(got), froms(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].From != got[i-1].From+1 {
			t.Fatalf("gap: %v", froms(got))
		}
	}
	// A range that lies in the middle file only; the reader prunes by the files' spans
	// (cached for the closed files) and still finds exactly the range.
	oldest, err := Read(dir, Query{Limit: 1})
	if err != nil || len(oldest) != 1 {
		t.Fatal(oldest, err)
	}
	for range 2 { // the second time from the cached spans
		mid, err := l.Query(Query{Policy: "workers", Since: t0.Add(450 * time.Second), Until: t0.Add(455 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(froms(mid)) != "[450 451 452 453 454 455]" {
			t.Errorf("range: %v", froms(mid))
		}
	}
	// A new Log continues at the highest file.
	l.Close()
	l2 := open(t, dir, Options{MaxSize: maxSize, MaxFiles: maxFiles})
	if err := l2.Append(rec("workers", 500, "down")); err != nil {
		t.Fatal(err)
	}
	got, _ = l2.Query(Query{Limit: 2})
	if fmt.Sprint(froms(got)) != "[499 500]" {
		t.Errorf("after reopening: %v", froms(got))
	}
}

// A torn last line (the daemon killed mid-write) is skipped by readers and cut off by
// Open, so the next record starts on a line of its own.
func TestTornLastLine(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{})
	for i := range 3 {
		if err := l.Append(rec("workers", i, "up")); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	file := path(dir, 1)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-12-02T02:00:03Z","policy":"workers","action":"up","fr`)
	f.Close()

	got, err := Read(dir, Query{})
	if err != nil || fmt.Sprint(froms(got)) != "[0 1 2]" {
		t.Fatalf("reading with a torn line: %v %v", froms(got), err)
	}
	l = open(t, dir, Options{})
	if err := l.Append(rec("workers", 3, "up")); err != nil {
		t.Fatal(err)
	}
	got, err = l.Query(Query{})
	if err != nil || fmt.Sprint(froms(got)) != "[0 1 2 3]" {
		t.Fatalf("after repair: %v %v", froms(got), err)
	}
	checkLines(t, dir)
}

// Garbage inside a file (a disk error, an operator's editor) costs the lines it hits,
// never the daemon's start or the rest of the log.
func TestGarbageLinesAreSkipped(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(path(dir, 1), []byte("not json\n\x00\x00\x00\n"+string(mustJSON(rec("p", 7, "up")))+"\n"+string(bytes.Repeat([]byte("x"), 300<<10))+"\n"), 0o640)
	l := open(t, dir, Options{})
	if err := l.Append(rec("p", 8, "up")); err != nil {
		t.Fatal(err)
	}
	got, err := l.Query(Query{Policy: "p"})
	if err != nil || fmt.Sprint(froms(got)) != "[7 8]" {
		t.Fatalf("%v %v", froms(got), err)
	}
}

func mustJSON(r Record) []byte {
	b, _ := json.Marshal(r)
	return b
}

// checkLines asserts every line of every file is a whole record.
func checkLines(t *testing.T, dir string) int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "decisions.*.jsonl"))
	n := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s does not end with a newline", file)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Errorf("%s: line %q: %v", file, sc.Text(), err)
			}
			n++
		}
	}
	return n
}

const childEnv = "DECISIONLOG_TEST_CHILD_DIR"

// TestKillChild is the writer of TestSurvivesKill: run by itself it does nothing.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("helper process for TestSurvivesKill")
	}
	l, err := Open(Options{Dir: dir, MaxSize: 64 << 10, MaxFiles: 50, HoldSample: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	for i := 0; ; i++ {
		action := "hold" // batched fsync
		if i%10 == 0 {
			action = "up" // fsync on each
		}
		r := rec("workers", i, action)
		r.Reason = string(bytes.Repeat([]byte("a long reason chain → "), 10)) + strconv.Itoa(i)
		if err := l.Append(r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
	}
}

// TestSurvivesKill SIGKILLs a process in the middle of appending (and rotating), then
// checks the files: whole records, numbered without a gap, and a log that opens and
// takes more.
func TestSurvivesKill(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the helper process")
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$")
		cmd.Env = append(os.Environ(), childEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it write a few files' worth, a different amount each round.
		deadline := time.Now().Add(30 * time.Second)
		for {
			files, _ := filepath.Glob(filepath.Join(dir, "decisions.*.jsonl"))
			if len(files) >= 2+round {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the writer made no progress: %s", stderr.String())
			}
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("the writer was not killed: %v %s", err, stderr.String())
		}

		// Readers cope before any repair...
		before, err := Read(dir, Query{Limit: MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		// ...and Open repairs the tail.
		l, err := Open(Options{Dir: dir, MaxSize: 64 << 10, MaxFiles: 50})
		if err != nil {
			t.Fatalf("open after kill: %v", err)
		}
		if err := l.Append(rec("workers", -1, "down")); err != nil {
			t.Fatal(err)
		}
		l.Close()
		lines := checkLines(t, dir)
		after, err := Read(dir, Query{Limit: MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before)+1 || lines != len(after) {
			t.Errorf("%d records before repair, %d after plus one appended, %d lines", len(before), len(after), lines)
		}
		for i, r := range after[:len(after)-1] {
			if r.From != i {
				t.Fatalf("record %d has number %d: a record was lost in the middle", i, r.From)
			}
		}
		t.Logf("round %d: %d records survived the kill", round, len(before))
	}
}

func BenchmarkQueryNewest(b *testing.B) {
	dir := b.TempDir()
	l, err := Open(Options{Dir: dir, MaxSize: 4 << 20, MaxFiles: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.o.HoldSample = 0
	for i := range 40000 {
		p := "p" + strconv.Itoa(i%20)
		r := rec(p, i, "up")
		line, _ := json.Marshal(r)
		l.f.Write(append(line, '\n')) // skip the per-record fsync: this is about reading
		l.size += int64(len(line) + 1)
		if l.size > l.o.MaxSize {
			l.rotateLocked()
		}
	}
	b.ResetTimer()
	for range b.N {
		got, err := l.Query(Query{Policy: "p3", Since: t0.Add(30000 * time.Second), Limit: 100})
		if err != nil || len(got) != 100 {
			b.Fatal(len(got), err)
		}
	}
}
