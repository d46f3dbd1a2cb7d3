package daemon

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchFiles asks for a reload when the main file or a *.yaml in policy_dir changes.
// Directories are watched rather than files, because editors and config management
// replace files by renaming over them. Bursts of events collapse into one reload.
func (d *Daemon) watchFiles(ctx context.Context) {
	cfg := d.config()
	if cfg.File == "" {
		return
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.log.Warn("cannot watch the configuration files; reload with SIGHUP or POST /v1/reload", "err", err)
		return
	}
	defer w.Close()
	mainFile, _ := filepath.Abs(cfg.File)
	_ = w.Add(filepath.Dir(mainFile))
	policyDir := ""
	if cfg.PolicyDir != "" {
		policyDir = cfg.PolicyDir
		if !filepath.IsAbs(policyDir) {
			policyDir = filepath.Join(filepath.Dir(mainFile), policyDir)
		}
		_ = w.Add(policyDir)
	}
	relevant := func(name string) bool {
		abs, _ := filepath.Abs(name)
		if abs == mainFile {
			return true
		}
		ext := filepath.Ext(name)
		return policyDir != "" && filepath.Dir(abs) == policyDir && (ext == ".yaml" || ext == ".yml") && !strings.HasPrefix(filepath.Base(name), ".")
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if relevant(ev.Name) && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 {
				debounce.Reset(500 * time.Millisecond)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			d.log.Warn("watching configuration files", "err", err)
		case <-debounce.C:
			d.log.Info("configuration file changed: reloading")
			d.requestReload()
		}
	}
}
