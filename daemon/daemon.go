// Package daemon wires the engine to the outside world: configuration loading and
// reloading, the HTTP surface (status page, health, metrics, API), leader election,
// systemd notifications and graceful shutdown.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"github.com/autoscalerd/autoscalerd/engine"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/autoscalerd/autoscalerd/configs"
	"github.com/autoscalerd/autoscalerd/decisionlog"
	"github.com/autoscalerd/autoscalerd/ha"
	"github.com/autoscalerd/autoscalerd/internal/reaper"
	"github.com/autoscalerd/autoscalerd/notify"
	"github.com/autoscalerd/autoscalerd/policy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ConfigError is returned by Run when the configuration is invalid at start (exit code 2).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Options say where the configuration comes from.
type Options struct {
	// Load reads and checks the configuration; called at start and on every reload.
	Load func() (*configs.Config, []*policy.Policy, error)
	// Stderr receives the log.
	Stderr io.Writer
	// Version is shown on the status page.
	Version string
	// Ready, if set, is called once the daemon serves and its policies run (tests, demo).
	Ready func(addr string)
}

// Daemon is one running autoscalerd.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	level   *slog.LevelVar
	engine  *engine.Engine
	reg     *prometheus.Registry
	elector ha.Elector
	obs     *observer

	mu  sync.Mutex
	cfg *configs.Config

	reloadMu      sync.Mutex
	reloadOK      prometheus.Gauge
	reloadTime    prometheus.Gauge
	lastReloadErr atomic.Value // string
	loaded        atomic.Bool
	trigger       chan struct{}
}

// Run loads the configuration, serves HTTP and runs every policy until ctx ends.
func Run(ctx context.Context, opts Options) error {
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	// Catch SIGHUP from the start: its default action would kill the daemon.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, ps, err := opts.Load()
	if err != nil {
		return &ConfigError{Err: err}
	}
	d := &Daemon{opts: opts, cfg: cfg, trigger: make(chan struct{}, 1), level: new(slog.LevelVar)}
	d.log = newLogger(opts.Stderr, cfg.Log, d.level)
	// What exec queries and process workers abandon (setsid) comes back to the daemon,
	// which kills it: see internal/reaper.
	if stopReaper, err := reaper.Enable(); err != nil {
		d.log.Warn("cannot become a child subreaper: processes that exec queries or workers start outside their process group may outlive them", "err", err)
	} else {
		defer stopReaper()
	}
	store, err := engine.NewStore(cfg.StateDir)
	if err != nil {
		return err
	}
	d.reg = prometheus.NewRegistry()
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "autoscalerd_config_last_reload_successful", Help: "Whether the last configuration reload attempt was successful."})
	d.reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{Name: "autoscalerd_config_last_reload_success_timestamp_seconds", Help: "Timestamp of the last successful configuration reload."})
	d.reg.MustRegister(d.reloadOK, d.reloadTime)
	d.obs = &observer{log: d.log, dlog: openDecisionLog(cfg, d.log),
		notifier: notify.New(notify.Options{Logger: d.log.With("component", "notify"), Registerer: d.reg, PageURL: pageURL(cfg)})}
	defer d.obs.dlog.Close()
	defer func() {
		// After the engine's last decisions: give the sinks a moment to deliver them.
		nctx, cancel := context.WithTimeout(context.Background(), notifyGrace)
		defer cancel()
		d.obs.notifier.Close(nctx)
	}()
	if err := d.obs.notifier.Apply(cfg); err != nil {
		return err
	}
	d.engine = engine.NewEngine(engine.EngineOptions{Logger: d.log, Metrics: engine.NewMetrics(d.reg), Store: store, Observer: d.obs})
	if err := d.engine.Apply(ctx, cfg, ps); err != nil {
		return err
	}
	d.loaded.Store(true)
	// Loading a large configuration leaves garbage (YAML trees, compiler state); hand it back
	// now rather than carrying it as resident memory until the scavenger gets to it.
	debug.FreeOSMemory()
	d.reloadOK.Set(1)
	d.reloadTime.SetToCurrentTime()
	if cfg.HA.Nomad != nil {
		if d.elector, err = ha.NewNomad(cfg.HA.Nomad, d.log.With("component", "ha")); err != nil {
			return fmt.Errorf("ha: %w", err)
		}
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		d.engine.Close(context.Background())
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server stopped", "err", err)
		}
	}()
	d.log.Info("autoscalerd started", "listen", ln.Addr().String(), "policies", len(ps), "config", cfg.File, "state_dir", cfg.StateDir, "version", opts.Version)

	runCtx, stopRun := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.runEngine(runCtx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.reloadLoop(runCtx, hup)
	}()
	notifyReady(d.log)
	wg.Add(1)
	go func() {
		defer wg.Done()
		servePprof(runCtx, d.log)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchdog(runCtx, d.log, func() []string { return d.engine.Wedged(time.Now()) })
	}()
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}

	<-ctx.Done()
	d.log.Info("stopping: letting in-flight scaling actions finish")
	notifyStopping()
	stopRun()
	httpCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(httpCtx)
	wg.Wait() // in-flight scaling actions finish, each within its own timeout
	// No deadline of our own here: each target bounds its close by its own settings (a
	// process group waits stop_timeout, then kills), which a fixed cap would cut short.
	// A supervisor that wants a cap has one (systemd's TimeoutStopSec).
	d.engine.Close(context.Background())
	d.log.Info("stopped")
	return nil
}

// pageURL is the status page's address for links in notifications: page_url, else the
// listen address, with this host's name when that address is a wildcard (0.0.0.0:9090
// links nowhere).
func pageURL(cfg *configs.Config) string {
	if cfg.PageURL != "" {
		return string(cfg.PageURL)
	}
	listen := cfg.Listen
	if host, port, err := net.SplitHostPort(listen); err == nil {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			if name, err := os.Hostname(); err == nil {
				listen = net.JoinHostPort(name, port)
			}
		}
	}
	return cfg.PageURL.Or(listen)
}

// notifyGrace is how long the sinks may deliver what they hold at shutdown.
const notifyGrace = 5 * time.Second

// openDecisionLog opens the decision log under state_dir. A log that cannot be opened is
// a warning, not a reason to stop scaling: decisions then live in memory only.
func openDecisionLog(cfg *configs.Config, log *slog.Logger) *decisionlog.Log {
	if !cfg.DecisionLog.Enabled {
		return nil
	}
	l, err := decisionlog.Open(decisionlog.Options{
		Dir: decisionlog.DirIn(cfg.StateDir), MaxSize: int64(cfg.DecisionLog.MaxSize), MaxFiles: cfg.DecisionLog.MaxFiles,
		HoldSample: cfg.DecisionLog.HoldSample, Logger: log,
	})
	if err != nil {
		log.Warn("decision log unavailable; decisions are kept in memory only", "err", err)
		return nil
	}
	return l
}

// runEngine runs the policies: directly, or only while this daemon holds the HA lock.
func (d *Daemon) runEngine(ctx context.Context) {
	if d.elector == nil {
		d.engine.Run(ctx, context.WithoutCancel(ctx))
		return
	}
	err := d.elector.Run(ctx, func(lead context.Context) {
		d.log.Info("leadership acquired: evaluating policies")
		d.engine.Run(lead, lead)
		d.log.Info("leadership lost or stopping: no longer acting")
	})
	if err != nil && ctx.Err() == nil {
		d.log.Error("leader election stopped", "err", err)
	}
}

// role is "leader" or "follower" under HA, "" without it.
func (d *Daemon) role() string {
	if d.elector == nil {
		return ""
	}
	if d.elector.IsLeader() {
		return "leader"
	}
	return "follower"
}

func (d *Daemon) config() *configs.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Reload loads the configuration again and applies it. A configuration that fails to
// load, compile or build keeps the old one running.
func (d *Daemon) Reload(ctx context.Context) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	notifyReloading()
	defer notifyReady(d.log)
	cfg, ps, err := d.opts.Load()
	if err == nil {
		old := d.config()
		if cfg.Listen != old.Listen || cfg.StateDir != old.StateDir {
			d.log.Warn("listen and state_dir changes take effect at the next restart", "listen", old.Listen, "state_dir", old.StateDir)
			cfg.Listen, cfg.StateDir = old.Listen, old.StateDir
		}
		if cfg.DecisionLog != old.DecisionLog {
			d.log.Warn("decision_log changes take effect at the next restart")
			cfg.DecisionLog = old.DecisionLog
		}
		err = d.engine.Apply(ctx, cfg, ps)
		if err == nil {
			// After the engine: a sink that cannot be built (an unreadable CA file) fails
			// the reload, but the policies' new configuration is already running, so the
			// old sinks stay and the error says so.
			if nerr := d.obs.notifier.Apply(cfg); nerr != nil {
				err = fmt.Errorf("policies reloaded, but notifications keep the previous sinks: %w", nerr)
			}
		}
	}
	d.obs.config(err)
	if err != nil {
		d.reloadOK.Set(0)
		d.lastReloadErr.Store(err.Error())
		d.log.Error("reload failed; the previous configuration keeps running", "err", err)
		return err
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.level.Set(levelOf(cfg.Log.Level))
	debug.FreeOSMemory()
	d.reloadOK.Set(1)
	d.reloadTime.SetToCurrentTime()
	d.lastReloadErr.Store("")
	d.log.Info("configuration reloaded", "policies", len(ps))
	return nil
}

// reloadLoop reloads on SIGHUP and on changes to the configuration files. Triggers that
// arrive during a reload coalesce into one more reload.
func (d *Daemon) reloadLoop(ctx context.Context, hup <-chan os.Signal) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.watchFiles(ctx)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			d.log.Info("SIGHUP: reloading")
		case <-d.trigger:
		}
		if !settle(ctx, hup, d.trigger) {
			return
		}
		_ = d.Reload(ctx)
	}
}

// reloadSettle is how quiet the triggers must be before a reload starts, and
// reloadSettleMax the longest a reload waits for that: a burst of SIGHUPs or file events
// (an editor writing a file in three steps, a script sending HUP in a loop) is one reload.
const (
	reloadSettle    = 250 * time.Millisecond
	reloadSettleMax = 2 * time.Second
)

// settle absorbs further triggers until none came for reloadSettle (at most
// reloadSettleMax). It reports false when ctx ended.
func settle(ctx context.Context, hup <-chan os.Signal, trigger <-chan struct{}) bool {
	quiet := time.NewTimer(reloadSettle)
	defer quiet.Stop()
	limit := time.NewTimer(reloadSettleMax)
	defer limit.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-hup:
		case <-trigger:
		case <-quiet.C:
			return true
		case <-limit.C:
			return true
		}
		quiet.Reset(reloadSettle)
	}
}

// requestReload asks the reload loop for a reload, coalescing with one already pending.
func (d *Daemon) requestReload() {
	select {
	case d.trigger <- struct{}{}:
	default:
	}
}
