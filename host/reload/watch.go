package reload

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long Watch waits after the last file event before
// it reloads: long enough for an editor or a build tool to finish writing
// (several events per save), short enough to feel immediate.
const DefaultDebounce = 200 * time.Millisecond

// Watch reloads when the config file or a file it names (modules, TLS
// certificate and key) changes, until ctx is done. Events are debounced:
// the reload runs once no event has come for debounce (0 means
// DefaultDebounce).
//
// It watches the directories that hold those files, not the files: editors
// and build tools often write a temporary file and rename it over the old
// one, which replaces the inode a file watch would follow. Events are
// filtered by name, and the set of files is taken again after each reload,
// so a module the new config names is watched from then on.
//
// # Errors
//
// The watcher could not start or failed; a failed reload is not an error
// of Watch (it is logged and reported by Status).
func (r *Reloader) Watch(ctx context.Context, debounce time.Duration) error {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("reload: watch: %w", err)
	}
	defer w.Close()

	names := map[string]bool{} // absolute paths of the files that matter
	dirs := map[string]bool{}  // directories watched now
	// resolve watches the directories of the files the config names now,
	// and reports whether it added one.
	resolve := func() (added bool) {
		want := map[string]bool{}
		clear(names)
		for _, f := range r.watched() {
			for _, p := range watchNames(f) {
				names[p] = true
				want[filepath.Dir(p)] = true
			}
		}
		for d := range want {
			if !dirs[d] {
				if err := w.Add(d); err != nil {
					r.log.Warn("reload: watch: cannot watch a directory", "dir", d, "err", err)
					continue
				}
				dirs[d] = true
				added = true
			}
		}
		for d := range dirs {
			if !want[d] {
				_ = w.Remove(d)
				delete(dirs, d)
			}
		}
		return added
	}
	resolve()
	r.log.Info("watching for config and module changes", "files", len(names), "debounce", debounce)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue // touch, chmod: the content is the same
			}
			if !names[filepath.Clean(ev.Name)] {
				continue
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events: reload to be sure nothing was missed.
			r.log.Warn("reload: watch", "err", err)
			timer.Reset(debounce)
		case <-timer.C:
			if _, err := r.Reload("watch", false); errors.Is(err, ErrInProgress) {
				// Another trigger's reload read the files before this
				// event, maybe: look again once it is done.
				timer.Reset(debounce)
				continue
			}
			// A file in a directory watched only from now on may have
			// changed since the reload read it: look once more (a no-op
			// when nothing did).
			for resolve() {
				_, _ = r.Reload("watch", false)
			}
		}
	}
}

// watchNames returns the absolute path of f, and the path it resolves to
// when it is a symbolic link (a Kubernetes ConfigMap swaps a link).
func watchNames(f string) []string {
	abs, err := filepath.Abs(f)
	if err != nil {
		return nil
	}
	out := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		out = append(out, real)
	}
	return out
}
