package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// servePprof serves Go's profiling endpoints on AUTOSCALERD_DEBUG_PPROF (a loopback
// HOST:PORT), for benchmarks and for finding out what a busy daemon does. It is not a
// configuration setting and not on the main listener: profiles show internals, so they are
// opt-in, loopback only, and off by default. It returns when ctx ends.
func servePprof(ctx context.Context, log *slog.Logger) {
	addr := os.Getenv("AUTOSCALERD_DEBUG_PPROF")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		log.Warn("AUTOSCALERD_DEBUG_PPROF must be a loopback HOST:PORT; not serving profiles", "addr", addr)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("serving profiles", "addr", addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("profiles", "err", err)
	}
}
