package configs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/engine"
	"github.com/autoscalerd/autoscalerd/policy"
)

// FuzzLoad feeds arbitrary bytes to the loader, with every kind registered. Whatever the
// input, loading must not panic, and every mistake must come back as a configs.Errors
// entry that names its file, with a line inside the file when it has one. What loads
// must compile and build (engine.Resolve, as validate does) or fail the same way.
//
//	go test -run '^$' -fuzz FuzzLoad -fuzztime 3m ./configs/
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"testdata/bad/*.yaml", "testdata/bad/*.d/*.yaml", "testdata/good/*.yaml", "testdata/good/*/*.yaml"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := policy.Parse("fuzz.yaml", data, configs.Options{LookupEnv: lookupTestEnv})
		if err == nil {
			// Building every plugin from what loaded must not panic either.
			err = engine.Resolve(context.Background(), cfg).Err()
		}
		if err == nil {
			return
		}
		var errs configs.Errors
		if !errors.As(err, &errs) {
			t.Fatalf("error is a %T, not configs.Errors: %v", err, err)
		}
		if len(errs) == 0 {
			t.Fatal("an empty configs.Errors is not an error")
		}
		// YAML breaks lines at LF, CRLF and a lone CR.
		lines := len(strings.Split(strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data)), "\n"))
		for _, e := range errs {
			switch {
			case e.Pos.File == "":
				t.Errorf("error without a file name: %v", e)
			case e.Msg == "":
				t.Errorf("error without a message: %v", e)
			case e.Pos.File == "fuzz.yaml" && (e.Pos.Line < 0 || e.Pos.Line > lines || e.Pos.Line > 0 && e.Pos.Col < 1):
				t.Errorf("position outside the %d-line file: %v", lines, e)
			}
		}
	})
}
