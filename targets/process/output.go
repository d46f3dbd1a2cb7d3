package process

import (
	"bufio"
	"context"
	"io"
	"log/slog"
)

// maxLine caps one log record: a longer line (a stack dump without newlines, binary
// junk) is split into several records instead of being held in memory whole.
const maxLine = 16 << 10

// readLines calls emit for every line read from r, without its line ending (\n or \r\n),
// until r ends or fails. A last line without a newline is emitted too; a line longer than
// maxLine comes out in maxLine pieces.
func readLines(r io.Reader, emit func(line string)) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		// ReadLine returns either a line (piece) or an error, never both.
		line, _, err := br.ReadLine()
		if err != nil {
			return
		}
		emit(string(line))
	}
}

// logOutput writes a child's output stream to the daemon's log, one Info record per line.
// The message carries the [policy.n] prefix so text logs read like the terminal of a
// process manager; replica and stream are attributes so JSON logs can be filtered.
func logOutput(log *slog.Logger, r io.Reader, prefix string, replica int, stream string) {
	attrs := []slog.Attr{slog.Int("replica", replica), slog.String("stream", stream)}
	readLines(r, func(line string) {
		msg := prefix
		if line != "" {
			msg += " " + line
		}
		log.LogAttrs(context.Background(), slog.LevelInfo, msg, attrs...)
	})
}
