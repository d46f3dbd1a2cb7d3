// Command testworker is the process inside the Docker test images (built FROM scratch, so
// it must be static: CGO_ENABLED=0). It stands in for a real worker:
//
//	testworker [serve] [-burn]   log "start", serve HTTP on :8080, exit 0 on SIGTERM
//	testworker get URL           print the body of GET URL (a curl for scratch images)
//	testworker post URL          POST to URL; exit 0 on a 2xx answer (a quiet.exec in a container)
//	testworker busy URL          GET URL, a {"busy": bool} answer: exit 0 busy, 1 idle (a busy.exec)
//	testworker pgjobs [init]     work jobs from a Postgres task table (init: create it; see pgjobs.go)
//
// HTTP: GET / answers with the hostname; GET /burn?seconds=N spins one core for N seconds.
// With -burn (or BURN=1) it spins one core from the start until it stops, for CPU tests.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "get" {
		os.Exit(get(args[1:]))
	}
	if len(args) > 0 && args[0] == "post" {
		os.Exit(post(args[1:]))
	}
	if len(args) > 0 && args[0] == "busy" {
		os.Exit(busyExit(args[1:]))
	}
	if len(args) > 0 && args[0] == "pgjobs" {
		os.Exit(pgJobs(args[1:]))
	}
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	os.Exit(serve(args))
}

func get(args []string) int  { return fetch(http.MethodGet, args) }
func post(args []string) int { return fetch(http.MethodPost, args) }

// fetch makes the request, prints the answer's body and exits 0 on a 2xx answer.
func fetch(method string, args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: testworker %s URL\n", strings.ToLower(method))
		return 2
	}
	req, err := http.NewRequest(method, args[0], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(os.Stdout, resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}

// busyExit answers a busy.exec the way the drain reads it: 0 busy, 1 idle, 2 (an error,
// counted as busy) when the worker cannot be asked.
func busyExit(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: testworker busy URL")
		return 2
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer resp.Body.Close()
	var v struct {
		Busy *bool `json:"busy"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Busy == nil {
		fmt.Fprintln(os.Stderr, "no {\"busy\": bool} answer")
		return 2
	}
	if *v.Busy {
		return 0
	}
	return 1
}

func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	burnAll := fs.Bool("burn", os.Getenv("BURN") == "1", "spin one core until stopped")
	addr := fs.String("listen", ":8080", "HTTP address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	host, _ := os.Hostname()
	// Unbuffered stdout lines are what the tests read through `docker logs`.
	fmt.Printf("testworker: start hostname=%s pid=%d\n", host, os.Getpid())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *burnAll {
		go burn(ctx, 0)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, host)
	})
	mux.HandleFunc("GET /burn", func(w http.ResponseWriter, r *http.Request) {
		secs, err := strconv.ParseFloat(r.URL.Query().Get("seconds"), 64)
		if err != nil || secs <= 0 {
			http.Error(w, "seconds must be a positive number", http.StatusBadRequest)
			return
		}
		go burn(ctx, time.Duration(secs*float64(time.Second)))
		fmt.Fprintln(w, "burning")
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()

	select {
	case err := <-errc:
		fmt.Printf("testworker: http: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	fmt.Println("testworker: got SIGTERM, stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Printf("testworker: shutdown: %v\n", err)
	}
	fmt.Println("testworker: stopped cleanly")
	return 0
}

// burn spins until ctx ends or d passes (d == 0: until ctx ends).
func burn(ctx context.Context, d time.Duration) {
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	x := 1
	for i := 0; ; i++ {
		x = x*31 + i
		if i%1_000_000 == 0 {
			if ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) {
				_ = x
				return
			}
		}
	}
}
