package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/autoscalerd/autoscalerd/configs"
)

// printErrors writes a configuration's errors one per line (FILE:LINE:COL: PATH: message),
// each followed, as compilers do, by its source line and a caret under the column. Lines
// of context start with a space, so `grep -v '^ '` gives the plain list back.
func printErrors(w io.Writer, err error) {
	var errs configs.Errors
	if !errors.As(err, &errs) {
		fmt.Fprintln(w, err)
		return
	}
	files := map[string][]string{}
	for _, e := range errs {
		fmt.Fprintln(w, e.Error())
		if line, ok := sourceLine(files, e.Pos); ok {
			fmt.Fprintf(w, "    %s\n    %s^\n", line, caretPad(line, e.Pos.Col))
		}
	}
}

// sourceLine returns line pos.Line of pos.File, reading each file once.
func sourceLine(files map[string][]string, pos configs.Pos) (string, bool) {
	if pos.File == "" || pos.Line < 1 {
		return "", false
	}
	lines, seen := files[pos.File]
	if !seen {
		if b, err := os.ReadFile(pos.File); err == nil && len(b) < 16<<20 {
			lines = strings.Split(string(b), "\n")
		}
		files[pos.File] = lines
	}
	if pos.Line > len(lines) {
		return "", false
	}
	line := strings.TrimRight(lines[pos.Line-1], "\r")
	if strings.TrimSpace(line) == "" || len(line) > 300 {
		return "", false
	}
	return line, true
}

// caretPad is the whitespace that puts a caret under column col (1-based, in characters)
// of line, keeping its tabs so the caret lines up however tabs are shown.
func caretPad(line string, col int) string {
	var b strings.Builder
	i := 1
	for _, r := range line {
		if i >= col {
			break
		}
		if r == '\t' {
			b.WriteRune('\t')
		} else {
			b.WriteByte(' ')
		}
		i++
	}
	return b.String()
}
