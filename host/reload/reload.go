package reload

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/config"
)

// Builder builds the filter chains of one generation from its config. It
// runs off the request path while the previous generation serves, and must
// be all or nothing: on error it has released whatever it built.
//
// modules maps each [[plugin]]'s name to the bytes of its module file as
// the Reloader read and fingerprinted them; a Builder compiles those bytes
// rather than reading the file again, so that what is pinned, compiled and
// reported is one read.
//
// The host knows nothing about how filters run; the command that wires the
// proxy passes a Builder backed by the WebAssembly loader.
type Builder func(cfg *config.Config, modules map[string][]byte) (Built, error)

// Built is what a Builder made for one generation.
type Built struct {
	// Chains are the chains of the routes and what releases them
	// (compiled modules, instances, runtimes) once the generation is
	// retired and drained.
	Chains host.Chains
	// Modules maps each plugin to the sha256 (hex) of the module bytes it
	// compiled, for Status. Nil means the Reloader reports its own sums of
	// the bytes it passed.
	Modules map[string]string
}

// Reloader owns a Proxy and replaces its generation when proxy.toml or a
// file it references changes: on Reload (SIGHUP, the admin endpoint POST
// /reload) and, with Watch, on file events.
//
// A reload reads the config file and every module, certificate and key file
// it names, and fingerprints their bytes. The same fingerprint as the
// generation serving is a no-op; the same fingerprint as the last failed
// attempt re-reports that failure without building again (pass force to
// build anyway, for failures outside the files, such as a port that was
// busy). Otherwise it parses and validates the config, calls the Builder
// and Proxy.Apply; only when all succeed does the proxy switch. Any failure
// keeps the old generation serving, is logged with the file and line or
// the plugin and module, and shows in Status until a reload succeeds.
type Reloader struct {
	path  string
	build Builder
	log   *slog.Logger
	proxy *host.Proxy

	// mu is held by the reload in progress. A second trigger does not wait
	// for it (a reload can take as long as compile_timeout): it returns
	// ErrInProgress at once.
	mu     sync.Mutex
	closed bool
	// fp is the fingerprint of the generation serving; failedFP that of the
	// last attempt that failed (empty after a success).
	fp, failedFP string
	// files are the files the current (or last parsed) config depends on:
	// the config itself, modules, certificate and key.
	files []string

	stMu sync.Mutex
	st   Status
	// filters is the filter set of the serving generation (the Builder's
	// Closer), which the status page asks to describe itself; under stMu.
	filters io.Closer
}

// Status is what GET /reload (and GET /status) on the admin listener
// reports.
type Status struct {
	// Config is the path of the config file.
	Config string `json:"config"`
	// Generation numbers the configs the proxy has served, from 1; LoadedAt
	// is when the current one was swapped in.
	Generation uint64    `json:"generation"`
	LoadedAt   time.Time `json:"loaded_at"`
	// Modules maps each plugin of the current generation to the sha256 of
	// its module file.
	Modules map[string]string `json:"modules,omitempty"`
	// Reloads counts successful swaps, Failures failed attempts.
	Reloads  uint64 `json:"reloads"`
	Failures uint64 `json:"failures"`
	// LastAttempt is when the last reload was triggered, by LastTrigger
	// ("watch", "SIGHUP", "admin", ...), with LastResult "loaded",
	// "unchanged" or "failed" after LastDuration (trigger to swap).
	LastAttempt  *time.Time `json:"last_attempt,omitempty"`
	LastTrigger  string     `json:"last_trigger,omitempty"`
	LastResult   string     `json:"last_result,omitempty"`
	LastDuration string     `json:"last_duration,omitempty"`
	// LastError is why the last attempt failed; empty once a reload
	// succeeds or the files are back to what serves.
	LastError string `json:"last_error,omitempty"`
	// InProgress is set while a reload runs, since InProgressSince, by
	// InProgressTrigger.
	InProgress        bool       `json:"in_progress,omitempty"`
	InProgressSince   *time.Time `json:"in_progress_since,omitempty"`
	InProgressTrigger string     `json:"in_progress_trigger,omitempty"`
}

// ErrInProgress is what Reload returns when another reload is running: the
// trigger is not queued behind it (POST /reload answers 409 Conflict).
var ErrInProgress = errors.New("reload: a reload is already in progress")

// The results a reload reports.
const (
	Loaded    = "loaded"
	Unchanged = "unchanged"
	Failed    = "failed"
)

// New loads the config at path, builds its chains with build (nil:
// no filters), creates the Proxy and registers GET /reload, POST /reload
// and GET /status on its admin listener. Relative module paths in the
// config are relative to the config file's directory.
//
// # Errors
//
// Reading, parsing or validating the config, or building its chains or the
// proxy.
func New(path string, build Builder, opts host.Options) (*Reloader, error) {
	if build == nil {
		build = func(*config.Config, map[string][]byte) (Built, error) { return Built{}, nil }
	}
	r := &Reloader{path: path, build: build, log: opts.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	in, err := r.read()
	if err != nil {
		return nil, err
	}
	b, err := build(in.cfg, in.moduleBytes)
	in.moduleBytes = nil
	if err != nil {
		return nil, err
	}
	p, err := host.New(in.cfg, b.Chains, opts)
	if err != nil {
		if b.Chains.Closer != nil {
			b.Chains.Closer.Close()
		}
		return nil, err
	}
	if b.Modules != nil {
		in.modules = b.Modules
	}
	r.proxy, r.fp, r.files, r.filters = p, in.fp, in.files, b.Chains.Closer
	num, at := p.Generation()
	r.st = Status{Config: path, Generation: num, LoadedAt: at, Modules: in.modules}
	p.HandleAdmin("GET /reload", http.HandlerFunc(r.serveStatus))
	p.HandleAdmin("GET /status", http.HandlerFunc(r.serveStatus))
	p.HandleAdmin("POST /reload", http.HandlerFunc(r.serveReload))
	r.handlePage()
	return r, nil
}

// Proxy returns the proxy the Reloader feeds.
func (r *Reloader) Proxy() *host.Proxy { return r.proxy }

// Status returns the reload status.
func (r *Reloader) Status() Status {
	r.stMu.Lock()
	defer r.stMu.Unlock()
	st := r.st
	return st
}

// Close stops further reloads (they report an error) and closes the proxy,
// which releases the current generation's chains. Call it after Run has
// returned; generations retired earlier release themselves when drained.
func (r *Reloader) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return r.proxy.Close()
}

// Reload builds a new generation from the files and swaps it in, unless
// they are what serves already (result Unchanged) or what failed
// last time (Failed again, without building), and force is false.
// trigger names the cause in logs and the status. It returns the status
// after the attempt and, when it failed, the error.
func (r *Reloader) Reload(trigger string, force bool) (Status, error) {
	start := time.Now()
	if !r.mu.TryLock() {
		st := r.Status()
		r.log.Warn("reload: another reload is in progress; this trigger is not queued",
			"trigger", trigger, "running", st.InProgressTrigger)
		return st, ErrInProgress
	}
	defer r.mu.Unlock()
	if r.closed {
		return r.Status(), errors.New("reload: the proxy is closed")
	}
	r.stMu.Lock()
	r.st.InProgress, r.st.InProgressSince, r.st.InProgressTrigger = true, &start, trigger
	r.stMu.Unlock()
	result, modules, err := r.reloadLocked(force)
	took := time.Since(start)
	r.stMu.Lock()
	st := &r.st
	st.InProgress, st.InProgressSince, st.InProgressTrigger = false, nil, ""
	st.LastAttempt, st.LastTrigger, st.LastResult, st.LastDuration = &start, trigger, result, took.String()
	switch result {
	case Loaded:
		st.Reloads++
		st.Generation, st.LoadedAt = r.proxy.Generation()
		st.Modules, st.LastError = modules, ""
	case Unchanged:
		st.LastError = ""
	case Failed:
		st.Failures++
		st.LastError = err.Error()
	}
	out := *st
	r.stMu.Unlock()
	r.proxy.Metrics().Reload(result, took)

	switch result {
	case Loaded:
		r.log.Info("reloaded", "generation", out.Generation, "trigger", trigger, "took", took)
	case Unchanged:
		r.log.Debug("reload: nothing changed", "trigger", trigger)
	case Failed:
		r.log.Error("reload failed: the previous config keeps serving", "trigger", trigger, "err", err)
	}
	return out, err
}

func (r *Reloader) reloadLocked(force bool) (string, map[string]string, error) {
	in, err := r.read()
	if in != nil && len(in.files) > 0 {
		r.files = in.files // watch what the new config names, even if it fails
	}
	if in != nil && !force {
		switch in.fp {
		case r.fp:
			r.failedFP = ""
			return Unchanged, nil, nil
		case r.failedFP:
			if err == nil {
				err = errors.New(r.Status().LastError)
			}
			return Failed, nil, err
		}
	}
	if err != nil {
		if in != nil {
			r.failedFP = in.fp
		}
		return Failed, nil, err
	}
	b, err := r.build(in.cfg, in.moduleBytes)
	in.moduleBytes = nil
	if err != nil {
		r.failedFP = in.fp
		return Failed, nil, err
	}
	if _, err := r.proxy.Apply(in.cfg, b.Chains); err != nil {
		if b.Chains.Closer != nil {
			b.Chains.Closer.Close()
		}
		r.failedFP = in.fp
		return Failed, nil, err
	}
	r.fp, r.failedFP = in.fp, ""
	r.stMu.Lock()
	r.filters = b.Chains.Closer
	r.stMu.Unlock()
	if b.Modules != nil {
		return Loaded, b.Modules, nil
	}
	return Loaded, in.modules, nil
}

// reloadInput is what a reload read from disk.
type reloadInput struct {
	cfg     *config.Config // nil when the config did not parse
	fp      string         // fingerprint of every file's bytes
	files   []string       // the files the config depends on
	modules map[string]string
	// moduleBytes holds each plugin's module as read for the fingerprint,
	// handed to the Builder so the module is read once.
	moduleBytes map[string][]byte
}

// read reads and parses the config and fingerprints it with the files it
// names. A config that does not parse is fingerprinted by its bytes alone;
// a file that cannot be read fails the reload (naming it) and is part of
// the fingerprint as missing, so it is retried when it appears.
func (r *Reloader) read() (*reloadInput, error) {
	data, err := os.ReadFile(r.path)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(r.path))
	h.Write([]byte{0})
	h.Write(data)
	in := &reloadInput{files: []string{r.path}}
	cfg, err := config.Parse(data, r.path)
	if err != nil {
		in.fp = hex.EncodeToString(h.Sum(nil))
		in.files = nil // keep watching what the last good config named
		return in, err
	}
	in.cfg = cfg
	in.modules = make(map[string]string, len(cfg.Plugins))
	in.moduleBytes = make(map[string][]byte, len(cfg.Plugins))
	var firstErr error
	add := func(what, path string, limit int64) ([]byte, string) {
		in.files = append(in.files, path)
		b, err := readFile(path, limit)
		if err != nil {
			fmt.Fprintf(h, "\x00%s\x00missing", path)
			if firstErr == nil {
				firstErr = fmt.Errorf("reload: %s: %w", what, err)
			}
			return nil, ""
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(h, "\x00%s\x00%x", path, sum)
		return b, hex.EncodeToString(sum[:])
	}
	dir := filepath.Dir(r.path)
	for _, pc := range cfg.Plugins {
		path := pc.Module
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		b, sum := add(fmt.Sprintf("plugin %q", pc.Name), path, int64(pc.MaxModuleSize))
		in.modules[pc.Name] = sum
		if b != nil {
			in.moduleBytes[pc.Name] = b
		}
	}
	if s := cfg.Server; s.TLSCert != "" {
		add("server.tls_cert", s.TLSCert, 0)
		add("server.tls_key", s.TLSKey, 0)
	}
	in.fp = hex.EncodeToString(h.Sum(nil))
	return in, firstErr
}

// readFile reads a file, refusing one larger than limit (when positive)
// without reading more than limit+1 bytes of it.
func readFile(path string, limit int64) ([]byte, error) {
	if limit <= 0 {
		return os.ReadFile(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than max_module_size (%s)", path, config.Size(limit))
	}
	return b, nil
}

// watched returns the files the current config depends on.
func (r *Reloader) watched() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.files...)
	sort.Strings(out)
	return out
}

func (r *Reloader) serveStatus(w http.ResponseWriter, _ *http.Request) {
	writeStatus(w, http.StatusOK, r.Status())
}

// serveReload is POST /reload: it reloads at once and answers with the
// status, 200 when the proxy serves the files as they are now, 422 when
// they were refused and 409 at once when another reload is in progress.
// ?force=1 rebuilds even unchanged or failed files.
func (r *Reloader) serveReload(w http.ResponseWriter, req *http.Request) {
	force := req.URL.Query().Get("force")
	st, err := r.Reload("admin", force == "1" || force == "true")
	code := http.StatusOK
	switch {
	case errors.Is(err, ErrInProgress):
		code = http.StatusConflict
	case err != nil:
		code = http.StatusUnprocessableEntity
	}
	writeStatus(w, code, st)
}

func writeStatus(w http.ResponseWriter, code int, st Status) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}
