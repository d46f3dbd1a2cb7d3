// Command fakehatchet stands in for Hatchet's REST API in the compose-sidecar example: it
// serves the task-stats endpoint autoscalerd's `hatchet` query reads, with queue depths
// you set by hand.
//
//	GET  /api/v1/tenants/{tenant}/task-stats   {"<task>": {"queued": {"total": N}, "running": {"total": M}}, ...}
//	POST /queued?task=process-order&n=250     set a task's queued count
//
// When FAKE_HATCHET_TOKEN is set, task-stats wants it as the bearer token, like Hatchet.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

type counts struct {
	Queued  total `json:"queued"`
	Running total `json:"running"`
}

type total struct {
	Total int `json:"total"`
}

func main() {
	addr := flag.String("listen", ":8080", "HTTP address")
	flag.Parse()
	token := os.Getenv("FAKE_HATCHET_TOKEN")

	var mu sync.Mutex
	tasks := map[string]*counts{"process-order": {}, "send-email": {}}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/tenants/{tenant}/task-stats", func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"errors":[{"description":"unauthorized"}]}`, http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(tasks)
	})
	mux.HandleFunc("POST /queued", func(w http.ResponseWriter, r *http.Request) {
		task := r.URL.Query().Get("task")
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if task == "" || err != nil || n < 0 {
			http.Error(w, "want ?task=NAME&n=COUNT", http.StatusBadRequest)
			return
		}
		mu.Lock()
		if tasks[task] == nil {
			tasks[task] = &counts{}
		}
		tasks[task].Queued.Total = n
		mu.Unlock()
		log.Printf("task %s: %d queued", task, n)
		fmt.Fprintf(w, "task %s: %d queued\n", task, n)
	})
	log.Printf("fake Hatchet API on %s", *addr)
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
