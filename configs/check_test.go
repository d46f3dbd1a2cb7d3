package configs

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type checked struct {
	Name  string `yaml:"name"`
	Other string `yaml:"other"`
}

func (c *checked) CheckConfig(ch *Check) {
	if ch.Has("name") && c.Name == "" {
		ch.Errorf("name", "must not be empty")
	}
	if ch.Has("other") && c.Other == "" {
		ch.Errorf("other", "must not be empty")
	}
}

// TestCheckSkipsFailedFields checks that a field whose value failed to decode gets only
// the decoding error, not a second one derived from the zero value left behind, while
// the other fields are still checked.
func TestCheckSkipsFailedFields(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte("name: ${UNSET}\nother: ''\n"), &root); err != nil {
		t.Fatal(err)
	}
	var errs Errors
	d := NewDecoder("c.yaml", &errs, func(string) (string, bool) { return "", false })
	d.Decode(&root, "c", &checked{})
	got := errs.Error()
	want := "c.yaml:1:7: c.name: environment variable UNSET is not set (give a default with ${UNSET:-value})\n" +
		"c.yaml:2:8: c.other: must not be empty"
	if got != want {
		t.Errorf("errors:\n%s\nwant:\n%s", got, want)
	}
	if strings.Count(got, "c.name") != 1 {
		t.Errorf("c.name reported %d times", strings.Count(got, "c.name"))
	}
}
