package engine_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoscalerd/autoscalerd/engine"
	"github.com/autoscalerd/autoscalerd/policy"
)

// TestStoreRoundTrip: what Save writes, Load reads back exactly.
func TestStoreRoundTrip(t *testing.T) {
	store, err := engine.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	want := policy.State{LastAction: t0, LastDirection: policy.Up, LastUp: t0, Expected: 4, Known: true, Failures: 2, Paused: true, LastTick: t0.Add(time.Minute),
		Recs:    []policy.Rec{{T: t0, V: 4}, {T: t0.Add(30 * time.Second), V: 2}},
		Samples: map[string][]policy.Sample{"cpu": {{T: t0, V: 55.5}}}}
	if err := store.Save("p", want, true); err != nil {
		t.Fatal(err)
	}
	got, err := store.Load("p")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(want)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("state changed through the store:\n got: %s\nwant: %s", b, a)
	}
}

func TestMissingOrCorruptState(t *testing.T) {
	dir := t.TempDir()
	store, err := engine.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load("p"); !engine.IsNotExist(err) {
		t.Errorf("missing file: %v, want not-exist", err)
	}
	cases := []struct{ content, want string }{
		{`{"version":1,"state":{"expected":`, "is corrupt"},
		{"\x00\x01garbage", "is corrupt"},
		{`{"version":7,"state":{}}`, "unknown version 7"},
	}
	for _, c := range cases {
		if err := os.WriteFile(filepath.Join(dir, "p.json"), []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := store.Load("p")
		if err == nil || engine.IsNotExist(err) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Join(dir, "p.json")) {
			t.Errorf("%q: %v, want an error naming the file with %q", c.content, err, c.want)
		}
	}
}

// TestSaveIsAtomic checks that Save, durable or not, leaves no temporary files and
// replaces the old state.
func TestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	store, err := engine.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := store.Save("p", policy.State{Known: true, Expected: i}, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Load("p")
	if err != nil || st.Expected != 2 {
		t.Fatalf("load: %+v, %v", st, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state_dir holds %v, want only p.json", names)
	}
}
