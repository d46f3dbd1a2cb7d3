package daemon

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"slices"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/decisionlog"
	"github.com/autoscalerd/autoscalerd/engine"
	"html/template"
	"net/http"
	"strconv"
	"time"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>autoscalerd</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:sans-serif;margin:1.5em;background:#f6f7f9;color:#222}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1em;margin:0 0 1em 0;max-width:960px;box-sizing:border-box}
.nums span{display:inline-block;margin-right:1.5em}.nums b{font-size:1.4em}
.badge{background:#eee;border-radius:3px;padding:1px 6px;margin-left:.5em;font-size:.8em}
.warn{background:#ffe9b3}.err{color:#b00020;overflow-wrap:anywhere}.reason{font-family:monospace;font-size:.85em;white-space:pre-wrap;overflow-wrap:anywhere}
h2{margin:.2em 0}.muted{color:#777}
.head{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:.5em}
button{font-size:1em;padding:.3em 1em;border:1px solid #888;border-radius:4px;background:#fafafa;cursor:pointer}
svg{max-width:100%;height:auto}svg.chart{display:block}svg.chart-narrow{display:none}
.ranges a{padding:.1em .5em;border:1px solid #ccc;border-radius:3px;text-decoration:none}.ranges a.on{background:#333;color:#fff}
table.decisions{border-collapse:collapse;width:100%;font-size:.85em}
table.decisions td{border-top:1px solid #eee;padding:.25em .4em;vertical-align:top}
table.decisions td.reason{width:100%}
@media (max-width:600px){svg.chart-wide{display:none}svg.chart-narrow{display:block}body{margin:.5em}.nums span{margin-right:.8em}table.decisions td.when{white-space:normal}}
</style></head><body>
<h1>autoscalerd <span class="muted" style="font-size:.5em">{{.Version}}{{if .Role}} · {{.Role}}{{end}}</span></h1>
<p class="ranges">Chart: {{range .Ranges}}<a href="?range={{.Name}}"{{if eq .Name $.Range}} class="on" aria-current="true"{{end}}>{{.Name}}</a> {{end}}</p>
{{if .ReloadError}}<p class="err">Last reload failed (the previous configuration keeps running): {{.ReloadError}}</p>{{end}}
{{range .Cards}}<div class="card" id="policy-{{.S.Name}}" data-policy="{{.S.Name}}">
<div class="head"><h2>{{.S.Name}}{{if .S.Paused}}<span class="badge warn">paused</span>{{end}}{{if .S.DryRun}}<span class="badge">dry run</span>{{end}}</h2>
{{if .S.Paused}}<button data-action="resume" data-policy="{{.S.Name}}">Resume</button>{{else}}<button data-action="pause" data-policy="{{.S.Name}}">Pause</button>{{end}}</div>
<div class="muted">{{.S.Target}} · every {{.S.Interval}}</div>
<p class="err action-error" hidden></p>
<p class="nums"><span>current <b>{{.S.Current}}</b></span><span>desired <b>{{if .S.Desired}}{{.S.Desired}}{{else}}–{{end}}</b></span><span>min <b>{{.S.Min}}</b></span><span>max <b>{{.S.Max}}</b></span>
{{range $k, $v := .Queries}}<span>{{$k}} <b>{{$v}}</b></span>{{end}}</p>
{{with .S.LastDecision}}<p>Last decision {{.Time.Format "15:04:05"}}: <b>{{.Action}}</b> {{.From}}→{{.To}}</p><p class="reason">{{.Reason}}</p>{{end}}
{{if .S.LastError}}<p class="err">{{.S.LastError}}</p>{{end}}
{{with .S.Draining}}<p>Draining:</p><ul>{{range .}}<li>replica {{.Replica}}: <b>{{.State}}</b> for {{.Seconds}}s <span class="muted">({{.Reason}})</span></li>{{end}}</ul>{{end}}
{{.Chart}}{{if .ChartNote}}<p class="muted">{{.ChartNote}}</p>{{end}}
{{if .Decisions}}<details{{if $.OpenDecisions}} open{{end}}><summary>Recent decisions ({{.Source}})</summary>
<table class="decisions">{{range .Decisions}}<tr><td class="when">{{.Time.Local.Format "Jan 2 15:04:05"}}</td><td><b>{{.Action}}</b>{{if .Failed}} <span class="badge warn">failed</span>{{end}}{{if .Sampled}} <span class="badge">sampled</span>{{end}}</td><td>{{.From}}→{{.To}}</td><td class="reason">{{.Reason}}{{if .Error}}<br><span class="err">{{.Error}}</span>{{end}}</td></tr>{{end}}</table></details>{{end}}
</div>{{else}}<p>No policies configured.</p>{{end}}
<p class="muted">JSON: <a href="/v1/policies">/v1/policies</a> · <a href="/v1/decisions">/v1/decisions</a> · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></p>
<script nonce="{{.Nonce}}">
"use strict";
// The page never holds the API token: when the daemon wants one, the page asks for it
// and keeps it in this tab's sessionStorage.
const tokenRequired = {{.TokenRequired}};
const tokenKey = "autoscalerd-api-token";
let busy = false;
async function act(button) {
  const card = button.closest(".card"), out = card.querySelector(".action-error");
  let token = sessionStorage.getItem(tokenKey);
  if (tokenRequired && !token) {
    token = prompt("API token (kept in this tab only):");
    if (!token) return;
  }
  busy = true;
  button.disabled = true;
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const headers = {};
      if (token) headers["Authorization"] = "Bearer " + token;
      const resp = await fetch("/v1/policies/" + encodeURIComponent(button.dataset.policy) + "/" + button.dataset.action, {method: "POST", headers});
      if (resp.status === 401) {
        sessionStorage.removeItem(tokenKey);
        token = prompt("The daemon refused the token. API token:");
        if (!token) return;
        continue;
      }
      if (!resp.ok) {
        let msg = resp.status + " " + resp.statusText;
        try { msg = (await resp.json()).error || msg; } catch (e) {}
        out.textContent = button.dataset.action + " failed: " + msg;
        out.hidden = false;
        return;
      }
      if (token) sessionStorage.setItem(tokenKey, token);
      location.reload();
      return;
    }
  } catch (e) {
    out.textContent = button.dataset.action + " failed: " + e;
    out.hidden = false;
  } finally {
    busy = false;
    button.disabled = false;
  }
}
for (const b of document.querySelectorAll("button[data-action]")) b.addEventListener("click", () => act(b));
// Refresh every 10 s, but not under an operator's click.
setInterval(() => { if (!busy && !document.querySelector("details[open]")) location.reload(); }, 10000);
</script>
</body></html>`))

type card struct {
	S         engine.Status
	Queries   map[string]string
	Chart     template.HTML
	ChartNote string
	Decisions []decisionlog.Record // newest first
	Source    string
}

// pageDecisions is how many recent decisions a card lists.
const pageDecisions = 10

func (d *Daemon) handlePage(w http.ResponseWriter, r *http.Request) {
	var cards []card
	rangeName, window := chartRange(r.URL.Query().Get("range"))
	now := time.Now()
	for _, s := range d.engine.Statuses() {
		_, decisions, memory, _ := d.engine.Detail(s.Name)
		points, actions, note := d.chartData(s, memory, decisions, window, now)
		c := card{S: s, Queries: map[string]string{}, ChartNote: note}
		for q, v := range s.Queries {
			if v == nil {
				c.Queries[q] = "error"
			} else {
				c.Queries[q] = formatValue(*v)
			}
		}
		c.Chart = template.HTML(policyChart(s, points, actions)) // chart.SVG escapes every text it draws
		c.Decisions, c.Source = d.pageDecisions(s.Name)
		cards = append(cards, c)
	}
	reloadErr, _ := d.lastReloadErr.Load().(string)
	var buf bytes.Buffer
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	n := base64.RawURLEncoding.EncodeToString(nonce[:])
	cfg := d.config()
	data := map[string]any{"Cards": cards, "Version": d.opts.Version, "Role": d.role(), "ReloadError": reloadErr,
		"Nonce": n, "TokenRequired": !configs.IsLoopback(cfg.Listen) || cfg.APIToken.IsSet(),
		"OpenDecisions": r.URL.Query().Get("decisions") == "open", "Ranges": chartRanges, "Range": rangeName}
	if err := pageTmpl.Execute(&buf, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Only the page's own script runs: text that got past the escaping (it should not)
	// still could not execute.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+n+"'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY") // frame-ancestors for browsers that predate CSP 2
	w.Write(buf.Bytes())
}

// pageDecisions returns a policy's recent decisions for its card, newest first: from the
// decision log when there is one, else from memory.
func (d *Daemon) pageDecisions(name string) ([]decisionlog.Record, string) {
	q := decisionlog.Query{Policy: name, Limit: pageDecisions}
	var recs []decisionlog.Record
	source := "decision log"
	if dl := d.obs.dlog; dl != nil {
		var err error
		if recs, err = dl.Query(q); err != nil {
			d.log.Warn("status page: reading the decision log", "err", err)
		}
	} else {
		source = "memory"
		recs = d.recentDecisions(q)
	}
	slices.Reverse(recs)
	return recs, source
}

func formatValue(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
