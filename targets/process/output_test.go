package process

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", maxLine)
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"lines", "a\nb\n", []string{"a", "b"}},
		{"no final newline", "a\nb", []string{"a", "b"}},
		{"crlf", "a\r\nb\r\n", []string{"a", "b"}},
		{"blank lines kept", "a\n\nb\n", []string{"a", "", "b"}},
		{"long line split", long + "yz\nnext\n", []string{long, "yz", "next"}},
		{"invalid utf-8 passes", "\xff\xfe\n", []string{"\xff\xfe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			readLines(strings.NewReader(tc.in), func(l string) { got = append(got, l) })
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestLogOutputFormats pins what child output looks like in both daemon log formats.
func TestLogOutputFormats(t *testing.T) {
	timeRE := regexp.MustCompile(`time=\S+ |"time":"[^"]+",`)
	for _, tc := range []struct {
		format string
		want   string
	}{
		{"text", `level=INFO msg="[workers.2] took job 17" replica=2 stream=stdout
level=INFO msg=[workers.2] replica=2 stream=stdout
level=INFO msg="[workers.2] panic: boom" replica=2 stream=stdout
`},
		{"json", `{"level":"INFO","msg":"[workers.2] took job 17","replica":2,"stream":"stdout"}
{"level":"INFO","msg":"[workers.2]","replica":2,"stream":"stdout"}
{"level":"INFO","msg":"[workers.2] panic: boom","replica":2,"stream":"stdout"}
`},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var buf bytes.Buffer
			var h slog.Handler = slog.NewTextHandler(&buf, nil)
			if tc.format == "json" {
				h = slog.NewJSONHandler(&buf, nil)
			}
			logOutput(slog.New(h), strings.NewReader("took job 17\n\npanic: boom"), "[workers.2]", 2, "stdout")
			got := timeRE.ReplaceAllString(buf.String(), "")
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			if tc.format == "json" {
				for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
					if !json.Valid([]byte(line)) {
						t.Errorf("not JSON: %s", line)
					}
				}
			}
		})
	}
}
