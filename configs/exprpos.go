package configs

import (
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// PosAt returns the file position of the rune at offset in Src; an offset just past the
// end is the position after the last rune. Expressions may span lines (a | or > block,
// a folded plain scalar), so a column inside Src is not a file column: the decoder maps
// every rune to where it is written. Where the file says something other than Src (an
// escape sequence, a ${VAR}), positions from there on are unknown and PosAt returns Pos,
// the start of the expression.
func (e Expr) PosAt(offset int) Pos {
	if len(e.at) == 0 && e.Inline && offset >= 0 {
		p := e.Pos // no file text to map against (an Expr built in a test)
		p.Col += offset
		return p
	}
	if offset < 0 || len(e.at) == 0 {
		return e.Pos
	}
	if offset >= len(e.at) {
		if !e.whole || offset > len(e.at) {
			return e.Pos
		}
		offset = len(e.at) // just past the end: one column after the last rune
	}
	for j := min(offset, len(e.at)-1); j >= 0; j-- {
		if e.at[j].Line != 0 {
			p := e.at[j]
			p.Col += offset - j
			return p
		}
	}
	return e.Pos
}

// setSource gives the decoder the file's text, so expressions can be mapped rune by rune.
func (d *Decoder) setSource(data []byte) {
	d.lines = splitLines(data)
}

// lineBreaks turns every YAML line break (CRLF, a lone CR) into LF, so that line numbers
// counted here agree with yaml.v3's on files written on any system.
var lineBreaks = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// splitLines splits a file into lines the way YAML counts them.
func splitLines(data []byte) []string {
	return strings.Split(lineBreaks.Replace(string(data)), "\n")
}

// mapRunes aligns value, the decoded text of scalar node n, with the file. It returns the
// position of each rune of value (zero for whitespace, which folding and indentation
// change), stopping where the file's text departs from value; whole is true when it
// reached the end.
func (d *Decoder) mapRunes(n *yaml.Node, value string) (at []Pos, whole bool) {
	if d.lines == nil || n.Line < 1 || n.Line > len(d.lines) {
		return nil, false
	}
	line, col := n.Line, n.Column-1 // col: 0-based index into the line's runes
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		line, col = n.Line+1, 0 // the text starts below the | or > indicator
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		col++
	}
	var text []rune
	if line <= len(d.lines) {
		text = []rune(d.lines[line-1])
	}
	vr := []rune(value)
	at = make([]Pos, 0, len(vr))
	for _, r := range vr {
		if unicode.IsSpace(r) {
			at = append(at, Pos{})
			continue
		}
		// Skip the file's whitespace and line breaks up to the next character.
		for col >= len(text) || text[col] == ' ' || text[col] == '\t' {
			if col < len(text) {
				col++
				continue
			}
			if line >= len(d.lines) {
				return at, false
			}
			line, col = line+1, 0
			text = []rune(d.lines[line-1])
		}
		switch {
		case n.Style == yaml.DoubleQuotedStyle && text[col] == '\\' && col+1 < len(text) && text[col+1] == r:
			col++ // \" or \\
		case n.Style == yaml.SingleQuotedStyle && r == '\'' && text[col] == '\'' && col+1 < len(text) && text[col+1] == '\'':
			col++ // ''
		}
		if text[col] != r {
			return at, false
		}
		at = append(at, Pos{File: d.file, Line: line, Col: col + 1})
		col++
	}
	return at, true
}
