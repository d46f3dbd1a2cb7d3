package daemon

import (
	"io"
	"log/slog"

	"github.com/autoscalerd/autoscalerd/configs"
)

func levelOf(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// newLogger builds the daemon's logger; level can change on reload.
func newLogger(w io.Writer, c configs.Log, level *slog.LevelVar) *slog.Logger {
	level.Set(levelOf(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
