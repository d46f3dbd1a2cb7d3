package daemon

import (
	"encoding/json"
	"errors"
	"github.com/autoscalerd/autoscalerd/engine"
	"net/http"
	"strings"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.handlePage)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", d.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/policies", d.handlePolicies)
	mux.HandleFunc("GET /v1/policies/{name}", d.handlePolicy)
	mux.HandleFunc("GET /v1/policies/{name}/decisions", d.handleDecisions)
	mux.HandleFunc("GET /v1/decisions", d.handleDecisions)
	mux.HandleFunc("POST /v1/policies/{name}/pause", d.action(d.handlePause(true)))
	mux.HandleFunc("POST /v1/policies/{name}/resume", d.action(d.handlePause(false)))
	mux.HandleFunc("POST /v1/reload", d.action(d.handleReload))
	return d.guard(mux)
}

// auth guards the POST endpoints with the api_token when the daemon listens beyond
// loopback (the config check refuses to start without a token then).
func (d *Daemon) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cfg := d.config()
		if !configs.IsLoopback(cfg.Listen) || cfg.APIToken.IsSet() {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || !tokenMatches(got, cfg.APIToken.Value()) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="autoscalerd"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
				return
			}
		}
		next(w, r)
	}
}

func (d *Daemon) handleReady(w http.ResponseWriter, _ *http.Request) {
	if !d.loaded.Load() {
		http.Error(w, "configuration not loaded\n", http.StatusServiceUnavailable)
		return
	}
	if d.role() == "follower" {
		w.Write([]byte("follower: standing by for the leader lock\n"))
		return
	}
	if why := d.engine.Unready(); len(why) > 0 {
		http.Error(w, "not ready: "+strings.Join(why, "; ")+"\n", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

// policyView is a policy in the API, with this daemon's HA role.
type policyView struct {
	engine.Status
	Role string `json:"role,omitempty"`
}

type policyDetail struct {
	policyView
	Decisions []engine.DecisionView `json:"decisions"`
}

func (d *Daemon) handlePolicies(w http.ResponseWriter, _ *http.Request) {
	role := d.role()
	out := []policyView{}
	for _, s := range d.engine.Statuses() {
		out = append(out, policyView{Status: s, Role: role})
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) handlePolicy(w http.ResponseWriter, r *http.Request) {
	s, ds, _, ok := d.engine.Detail(r.PathValue("name"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such policy: " + r.PathValue("name")})
		return
	}
	out := policyDetail{policyView: policyView{Status: s, Role: d.role()}, Decisions: []engine.DecisionView{}}
	for i := len(ds) - 1; i >= 0; i-- { // newest first
		out.Decisions = append(out.Decisions, engine.View(ds[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) handlePause(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := d.engine.SetPaused(name, paused); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, engine.ErrNoPolicy) {
				code = http.StatusNotFound
			}
			writeJSON(w, code, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": name, "paused": paused})
	}
}

func (d *Daemon) handleReload(w http.ResponseWriter, r *http.Request) {
	if err := d.Reload(r.Context()); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"reloaded": false, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reloaded": true, "time": time.Now().UTC()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
