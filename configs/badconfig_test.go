package configs_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/policy"

	// Every kind an operator can write, so each kind's own checks are in the corpus.
	// compose, swarm and docker_stats are listed on their own while sources/all and
	// targets/all do not import them yet.
	_ "github.com/autoscalerd/autoscalerd/sources/all"
	_ "github.com/autoscalerd/autoscalerd/sources/docker_stats"
	_ "github.com/autoscalerd/autoscalerd/targets/all"
	_ "github.com/autoscalerd/autoscalerd/targets/compose"
	_ "github.com/autoscalerd/autoscalerd/targets/swarm"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err with the messages the code prints now")

// testEnv is the whole environment the corpus sees, so results do not depend on the
// machine: ${VAR} resolves only from here.
var testEnv = map[string]string{
	"AUTOSCALERD_TEST_TOKEN": "s3cret-token",
	"AUTOSCALERD_TEST_EMPTY": "",
	"QUEUE_DIR":              "/var/lib/queue",
}

func lookupTestEnv(k string) (string, bool) {
	v, ok := testEnv[k]
	return v, ok
}

// validate loads a file the way `autoscalerd validate` does (configs.Load, then
// policy.Compile) and returns the error it would print, or nil.
func validate(t *testing.T, path string) error {
	t.Helper()
	cfg, err := configs.Load(path, configs.Options{LookupEnv: lookupTestEnv})
	if err == nil {
		_, err = policy.Compile(cfg)
	}
	if err == nil {
		return nil
	}
	var errs configs.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("%s: error is a %T, not configs.Errors, so it has no position: %v", path, err, err)
	}
	for _, e := range errs {
		if e.Pos.File == "" {
			t.Errorf("%s: error without a file name: %v", path, e)
		}
	}
	return err
}

// TestBadConfigs loads every testdata/bad/*.yaml, each holding one mistake, and compares
// what validate prints with the .err file next to it. Run with -update after changing a
// message, then read the diff as an operator would.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 45 {
		t.Fatalf("only %d bad configs in testdata/bad; the corpus has at least 45", len(files))
	}
	// File names in messages read as `autoscalerd validate -c NAME.yaml` prints them.
	t.Chdir("testdata/bad")
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			err := validate(t, name)
			if err == nil {
				t.Fatalf("%s loads without error; it should fail", name)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(name, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s:\ngot:\n%s\nwant (%s):\n%s", name, got, golden, want)
			}
		})
	}
}

// TestGoodConfigs loads every testdata/good/*.yaml, which must be valid.
func TestGoodConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no good configs in testdata/good")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			if err := validate(t, f); err != nil {
				t.Fatalf("%s:\n%v", f, err)
			}
		})
	}
}
