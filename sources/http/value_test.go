package httpsrc

import (
	"testing"

	"github.com/tidwall/gjson"
)

func TestModifiers(t *testing.T) {
	tests := []struct {
		json, path string
		want       string // the modifier's raw JSON output
	}{
		{`[1, 2, 3.5]`, `@sum`, `6.5`},
		{`[1, "2", " 3 "]`, `@sum`, `6`},
		{`{"a": 4, "b": 6}`, `@sum`, `10`},
		{`[]`, `@sum`, `0`},
		{`{}`, `@values.#.queued.total|@sum`, `0`},
		{`7`, `@sum`, `7`},
		{`[3, 9, 1]`, `@max`, `9`},
		{`[3, 9, 1]`, `@min`, `1`},
		{`[-2, -5]`, `@max`, `-2`},
		{`{"x": [5, 2]}`, `x|@min`, `2`},
		{`[1e20, 1e20]`, `@sum`, `2e+20`},
		{`[]`, `@max`, `"@max: no values to take the max of"`},
		{`[]`, `@min`, `"@min: no values to take the min of"`},
		{`[1, null]`, `@sum`, `"@sum: element 1 is null, not a number"`},
		{`[1, [2]]`, `@sum`, `"@sum: element 1 is an array of 1 elements, not a number"`},
		{`{"a": 1, "b": true}`, `@max`, `"@max: b is true, not a number"`},
		{`"x"`, `@sum`, `"@sum: want an array of numbers, got \"x\""`},
	}
	for _, tt := range tests {
		if got := gjson.Get(tt.json, tt.path).Raw; got != tt.want {
			t.Errorf("%s on %s = %s, want %s", tt.path, tt.json, got, tt.want)
		}
	}
}

func TestNumber(t *testing.T) {
	tests := []struct {
		json    string
		want    float64
		wantErr string
	}{
		{`12`, 12, ""},
		{`"12.5"`, 12.5, ""},
		{`"1e3"`, 1000, ""},
		{`"twelve"`, 0, `"twelve" is not a number`},
		{`false`, 0, `false is not a number`},
		{`null`, 0, `null is not a number`},
		{`{"a":1}`, 0, `an object is not a number`},
	}
	for _, tt := range tests {
		got, err := Number(gjson.Parse(tt.json))
		switch {
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("Number(%s) error = %v, want %q", tt.json, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("Number(%s) = %v, %v; want %v", tt.json, got, err, tt.want)
		}
	}
}
