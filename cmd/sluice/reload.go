package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/reload"
	"github.com/sluiceproxy/sluice/plugins"
)

// serve runs the proxy for the config at path until ctx is done, reloading
// it on SIGHUP, on POST /reload and, when watch is set, on file changes.
//
// One plugins.Loader serves every generation: its compilation cache and its
// modules, keyed by content hash, make a reload that keeps a module reuse it
// instead of compiling it again. The reload.Reloader does the rest (see
// host/RATIONALE.md, "Reload").
func serve(ctx context.Context, path string, watch bool, log *slog.Logger) error {
	loader := plugins.NewLoader(plugins.LoaderOptions{Logger: log, BaseDir: filepath.Dir(path)})
	defer loader.Close()
	r, err := reload.New(path, loaderBuilder(loader), host.Options{Logger: log})
	if err != nil {
		return err
	}
	defer r.Close()

	var wg sync.WaitGroup
	defer wg.Wait() // before r.Close and loader.Close: no reload runs past them
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-bg.Done():
				return
			case <-hup:
				_, _ = r.Reload("SIGHUP", false)
			}
		}
	}()
	if watch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Watch(bg, 0); err != nil {
				log.Error("file watcher stopped: reload with SIGHUP or POST /reload", "err", err)
			}
		}()
	}
	err = r.Proxy().Run(ctx)
	cancel()
	return err
}

// loaderBuilder builds each generation's chains with loader, from the
// module bytes the Reloader read. The Set it returns as the Closer is
// closed by the proxy once that generation is retired and drained.
func loaderBuilder(loader *plugins.Loader) reload.Builder {
	return func(cfg *config.Config, modules map[string][]byte) (reload.Built, error) {
		set, err := loader.LoadModules(context.Background(), cfg, modules)
		if err != nil {
			return reload.Built{}, err
		}
		return reload.Built{Chains: host.Chains{Routes: set.Chains(), Closer: set}, Modules: set.Modules()}, nil
	}
}
