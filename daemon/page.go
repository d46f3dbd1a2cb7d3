package daemon

import (
	"bytes"
	"github.com/autoscalerd/autoscalerd/engine"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/autoscalerd/autoscalerd/chart"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>autoscalerd</title>
<meta http-equiv="refresh" content="10">
<style>
body{font-family:sans-serif;margin:1.5em;background:#f6f7f9;color:#222}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1em;margin:0 0 1em 0;max-width:960px}
.nums span{display:inline-block;margin-right:1.5em}.nums b{font-size:1.4em}
.badge{background:#eee;border-radius:3px;padding:1px 6px;margin-left:.5em;font-size:.8em}
.warn{background:#ffe9b3}.err{color:#b00020}.reason{font-family:monospace;font-size:.85em;white-space:pre-wrap}
h2{margin:.2em 0}.muted{color:#777}
</style></head><body>
<h1>autoscalerd <span class="muted" style="font-size:.5em">{{.Version}}{{if .Role}} · {{.Role}}{{end}}</span></h1>
{{if .ReloadError}}<p class="err">Last reload failed (the previous configuration keeps running): {{.ReloadError}}</p>{{end}}
{{range .Cards}}<div class="card">
<h2>{{.S.Name}}{{if .S.Paused}}<span class="badge warn">paused</span>{{end}}{{if .S.DryRun}}<span class="badge">dry run</span>{{end}}</h2>
<div class="muted">{{.S.Target}} · every {{.S.Interval}}</div>
<p class="nums"><span>current <b>{{.S.Current}}</b></span><span>desired <b>{{if .S.Desired}}{{.S.Desired}}{{else}}–{{end}}</b></span><span>min <b>{{.S.Min}}</b></span><span>max <b>{{.S.Max}}</b></span>
{{range $k, $v := .Queries}}<span>{{$k}} <b>{{$v}}</b></span>{{end}}</p>
{{with .S.LastDecision}}<p>Last decision {{.Time.Format "15:04:05"}}: <b>{{.Action}}</b> {{.From}}→{{.To}}</p><p class="reason">{{.Reason}}</p>{{end}}
{{if .S.LastError}}<p class="err">{{.S.LastError}}</p>{{end}}
{{with .S.Draining}}<p>Draining:</p><ul>{{range .}}<li>replica {{.Replica}}: <b>{{.State}}</b> for {{.Seconds}}s <span class="muted">({{.Reason}})</span></li>{{end}}</ul>{{end}}
{{.Chart}}
</div>{{else}}<p>No policies configured.</p>{{end}}
<p class="muted">JSON: <a href="/v1/policies">/v1/policies</a> · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></p>
</body></html>`))

type card struct {
	S       engine.Status
	Queries map[string]string
	Chart   template.HTML
}

func (d *Daemon) handlePage(w http.ResponseWriter, _ *http.Request) {
	var cards []card
	for _, s := range d.engine.Statuses() {
		_, _, points, _ := d.engine.Detail(s.Name)
		c := card{S: s, Queries: map[string]string{}}
		for q, v := range s.Queries {
			if v == nil {
				c.Queries[q] = "error"
			} else {
				c.Queries[q] = formatValue(*v)
			}
		}
		c.Chart = template.HTML(policyChart(s, points)) // chart.SVG escapes every text it draws
		cards = append(cards, c)
	}
	reloadErr, _ := d.lastReloadErr.Load().(string)
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, map[string]any{"Cards": cards, "Version": d.opts.Version, "Role": d.role(), "ReloadError": reloadErr}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// policyChart draws the last hour: query values, desired and actual replicas.
func policyChart(s engine.Status, points []engine.ChartPoint) string {
	c := chart.Chart{XLabel: "time ago", Width: 900, Height: 220, XFormat: chart.Seconds}
	queries := make([]chart.Series, len(s.QueryOrder))
	for i, q := range s.QueryOrder {
		queries[i] = chart.Series{Name: q, Right: true}
	}
	desired := chart.Series{Name: "desired", Step: true}
	replicas := chart.Series{Name: "replicas", Step: true}
	now := time.Now()
	for _, p := range points {
		c.X = append(c.X, -now.Sub(p.Time).Seconds())
		for i := range queries {
			v := math.NaN()
			if i < len(p.Values) {
				v = p.Values[i]
			}
			queries[i].Values = append(queries[i].Values, v)
		}
		dv := float64(p.Desired)
		if p.Desired < 0 {
			dv = math.NaN()
		}
		desired.Values = append(desired.Values, dv)
		replicas.Values = append(replicas.Values, float64(p.Replicas))
	}
	c.Series = append(queries, desired, replicas)
	var buf bytes.Buffer
	_ = chart.SVG(&buf, c)
	return buf.String()
}

func formatValue(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
