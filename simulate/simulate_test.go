package simulate_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/autoscalerd/autoscalerd/simulate"
	_ "github.com/autoscalerd/autoscalerd/sources/file"
	"github.com/autoscalerd/autoscalerd/targets"
	_ "github.com/autoscalerd/autoscalerd/targets/process"
)

var update = flag.Bool("update", false, "rewrite golden files")

// simTarget is a target kind that exists only so test configs load; simulate never
// touches a target.
type simTarget struct {
	Name string `yaml:"name"`
}

func (s *simTarget) TargetKey() string { return s.Name }

func init() {
	targets.Register("sim", "", func() *simTarget { return &simTarget{} }, func(*simTarget, targets.Deps) (targets.Target, error) {
		return nil, nil
	})
}

func loadPolicy(t testing.TB, dir string) *policy.Policy {
	t.Helper()
	cfg, err := configs.Load(filepath.Join(dir, "autoscalerd.yaml"), configs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := policy.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

func replay(t testing.TB, dir string) []simulate.Tick {
	t.Helper()
	p := loadPolicy(t, dir)
	f, err := os.Open(filepath.Join(dir, "trace.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := simulate.ReadTrace(f, "trace.csv")
	if err != nil {
		t.Fatal(err)
	}
	ticks, err := simulate.Run(p, tr, simulate.Options{StartReplicas: -1})
	if err != nil {
		t.Fatal(err)
	}
	return ticks
}

// TestGolden replays every testdata directory and compares with its golden output.
func TestGolden(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*")
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			p := loadPolicy(t, dir)
			ticks := replay(t, dir)
			var buf bytes.Buffer
			if err := simulate.WriteCSV(&buf, p, ticks); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(dir, "want.csv")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./simulate -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("output differs from %s (go test ./simulate -update rewrites it):\n%s", golden, buf.String())
			}
		})
	}
}

// TestSeedScenario checks the numbers of the NATS HPA seed directly, independent of the
// golden file: depths 0, 2000, 5000, 20000, 50000, 80000 give 2, 2, 5, 20, 50, 50, and
// after the depth drops the count holds for 5 minutes before it falls.
func TestSeedScenario(t *testing.T) {
	ticks := replay(t, "testdata/nats-hpa")
	at := func(sec int) simulate.Tick {
		for _, tk := range ticks {
			if int(tk.Offset.Seconds()) == sec {
				return tk
			}
		}
		t.Fatalf("no tick at %ds", sec)
		return simulate.Tick{}
	}
	for _, c := range []struct{ sec, want int }{{0, 2}, {60, 2}, {120, 5}, {180, 20}, {240, 50}, {300, 50}} {
		if got := at(c.sec).Replicas; got != c.want {
			t.Errorf("t=%ds: replicas %d, want %d (%s)", c.sec, got, c.want, at(c.sec).Decision.Reason)
		}
	}
	// The depth drops to 0 at 360 s. The last scale-up was at 240 s, and desired stays at
	// 2 from 360 s: nothing may fall before 360+300 s.
	for _, tk := range ticks {
		sec := int(tk.Offset.Seconds())
		if sec >= 360 && sec < 660 && tk.Replicas != 50 {
			t.Fatalf("t=%ds: replicas %d, want 50 held for the 5m down window (%s)", sec, tk.Replicas, tk.Decision.Reason)
		}
	}
	if got := at(660).Replicas; got != 2 {
		t.Errorf("t=660s: replicas %d, want 2 once the 5m window has passed (%s)", got, at(660).Decision.Reason)
	}
	_ = strconv.Itoa
}
