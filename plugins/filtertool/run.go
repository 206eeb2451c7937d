package filtertool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/plugins"
)

// routeName is the name of the one route a run builds; filters read it as
// the route property.
const routeName = "filter"

// Result is what running a sample through a filter produced, hook by hook.
type Result struct {
	Module string `json:"module"`
	SHA256 string `json:"sha256"`
	// Hooks are the hook points the filter handles.
	Hooks []string `json:"hooks"`
	// Configure is what the filter logged while it was configured.
	Configure []LogLine `json:"configure_logs,omitempty"`
	// Calls are the hook calls made, in order.
	Calls []*Call `json:"calls"`
	// Failure is the first failed hook call (a trap, a timeout, ABI misuse,
	// or no instance), which ends the run; nil when none failed.
	Failure *Failure `json:"failure,omitempty"`
}

// Failure is a failed hook call.
type Failure struct {
	Hook string `json:"hook"`
	// Kind is "trap", "timeout", "misuse" or "error".
	Kind  string `json:"kind"`
	Cause string `json:"cause"`
}

// Call is one hook call and everything it did.
type Call struct {
	// Hook is the hook's name without its prefix: "request_headers",
	// "upgrade", "response_headers", "message", "close".
	Hook string `json:"hook"`
	// Message is the index in Sample.Messages of the message a message hook
	// saw, with its direction and type.
	Message   *int   `json:"message,omitempty"`
	Direction string `json:"direction,omitempty"`
	Binary    bool   `json:"binary,omitempty"`
	// Action is "continue" or "respond" (HTTP hooks), "pass", "drop" or
	// "close" (message hook), "" for close, "failed" when the call failed.
	Action string `json:"action"`
	// Changes lists what the hook changed in the request or response.
	Changes []Change `json:"changes,omitempty"`
	// Reply is the local response of a "respond".
	Reply *Reply `json:"reply,omitempty"`
	// Payload is the message's payload after the hook, when it changed.
	Payload *string `json:"payload,omitempty"`
	// Inject lists the messages the hook injected.
	Inject []Injected `json:"inject,omitempty"`
	// CloseCode and CloseReason are those of a "close".
	CloseCode   int    `json:"close_code,omitempty"`
	CloseReason string `json:"close_reason,omitempty"`
	// Logs are the lines the filter logged during the call, the first
	// 1000 of them; LogsDropped counts the others.
	Logs        []LogLine `json:"logs,omitempty"`
	LogsDropped int       `json:"logs_dropped,omitempty"`
	// State lists the per-request or per-connection keys the call changed.
	State []Change `json:"state,omitempty"`
	// Shared lists the writes to the plugin's shared state.
	Shared []SharedOp `json:"shared,omitempty"`
	// Duration is the wall time of the call, waiting for an instance
	// included, as the hook deadline counts it.
	Duration time.Duration `json:"duration_ns"`
	// Failure is set when the call failed.
	Failure *Failure `json:"failure,omitempty"`

	// after is the exchange as the hook left it (HTTP hooks), and state
	// the request's or session's state, for `filter test`.
	after, state map[string]string
	// forwarded is the message payload as the hook left it.
	forwarded string
}

// Change is one value a hook changed: a header, the method, the path, a
// state key... Before or After is nil when the value was absent.
type Change struct {
	What   string  `json:"what"`
	Before *string `json:"before"`
	After  *string `json:"after"`
}

// Reply is a local response.
type Reply struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	Body   string      `json:"body"`
}

// Injected is a message a filter injected.
type Injected struct {
	Direction string `json:"direction"`
	Binary    bool   `json:"binary,omitempty"`
	Payload   string `json:"payload"`
}

// Runner runs samples through one module, loaded by the plugins package
// exactly as the proxy loads it. Each Run builds a new plugin (a fresh
// instance, configured, and empty shared state), so runs do not see each
// other; the module is compiled once.
type Runner struct {
	pc     config.Plugin
	loader *plugins.Loader
	logs   *logCapture
	store  *recordingStore
	sum    string
	// keep is a Set that holds the compiled module for the Runner's life,
	// so each Run instantiates it without compiling it again (a Go
	// module takes seconds to compile). Nil when the plugin's own config
	// is refused; each Run then compiles.
	keep *plugins.Set
}

// NewRunner prepares a Runner for the [[plugin]] pc (its module path
// absolute or relative to the working directory).
func NewRunner(pc config.Plugin) (*Runner, error) {
	if pc.Name == "" {
		pc.Name = "filter"
	}
	pc = pc.WithDefaults()
	// One instance: a run makes one call at a time, and a failed call's
	// instance is replaced as the proxy would replace it.
	pc.PoolSize = 1
	bin, err := os.ReadFile(pc.Module)
	if err != nil {
		return nil, fmt.Errorf("filtertool: %w", err)
	}
	sum := sha256.Sum256(bin)
	r := &Runner{pc: pc, logs: &logCapture{}, sum: hex.EncodeToString(sum[:])}
	r.store = &recordingStore{MemoryStore: plugins.NewMemoryStore(0)}
	r.loader = plugins.NewLoader(plugins.LoaderOptions{Logger: slog.New(r.logs), Shared: r.store})
	if set, _, err := r.load(context.Background(), nil); err == nil {
		r.keep = set
	}
	return r, nil
}

// Close releases the compiled module and the shared store.
func (r *Runner) Close() error {
	var err error
	if r.keep != nil {
		err = r.keep.Close()
	}
	return errors.Join(err, r.loader.Close(), r.store.Close())
}

// load builds a Set with the plugin, with config cfg (nil: the plugin's),
// and returns its chain.
func (r *Runner) load(ctx context.Context, cfg map[string]any) (*plugins.Set, filter.Chain, error) {
	pc := r.pc
	if cfg != nil {
		pc.Config = cfg
	}
	set, err := r.loader.Load(ctx, &config.Config{
		Plugins: []config.Plugin{pc},
		Routes:  []config.Route{{Name: routeName, Plugins: []string{pc.Name}}},
	})
	if err != nil {
		return nil, nil, err
	}
	return set, set.Chains()[routeName], nil
}

// Run runs s through the filter, calling its hooks in the order the proxy
// does: request headers; then, for an upgrade, the upgrade hook, each
// message and the close hook, or else the response hook when s has a
// response. A local response ends the exchange, as a close verdict ends the
// session; a failed call ends the run. cfg replaces the plugin's config
// when not nil.
//
// # Errors
//
// A module the loader refuses. A failing hook call is not an error: it is
// Result.Failure.
func (r *Runner) Run(ctx context.Context, s *Sample, cfg map[string]any) (*Result, error) {
	r.logs.take()
	r.store.take()
	set, chain, err := r.load(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if r.keep == nil {
		// The plugin's own config was refused, so nothing holds the
		// compiled module yet: this Set does from now on, since the
		// loader releases a module with the last Set that uses it and the
		// next run would compile it again.
		r.keep = set
	} else {
		defer set.Close()
	}
	res := &Result{Module: r.pc.Module, SHA256: r.sum, Hooks: []string{}, Calls: []*Call{}}
	res.Configure, _, _ = r.logs.take()
	hooks := chain.Hooks()
	for _, h := range hookOrder {
		if hooks.Has(h.set) {
			res.Hooks = append(res.Hooks, h.name)
		}
	}
	c := &call{r: r, set: set, res: res}
	c.stats = set.Stats()[0]
	drive(c, chain, hooks, s)
	return res, nil
}

// hookOrder names the hook points in the order the proxy reaches them.
var hookOrder = []struct {
	set  filter.HookSet
	name string
}{
	{filter.HookRequestHeaders, "request_headers"},
	{filter.HookUpgrade, "upgrade"},
	{filter.HookResponseHeaders, "response_headers"},
	{filter.HookMessage, "message"},
	{filter.HookClose, "close"},
}

// drive makes the hook calls of one sample, as the proxy would.
func drive(c *call, chain filter.Chain, hooks filter.HookSet, s *Sample) {
	req := s.Request.Clone(context.Background())
	if req.Header.Get("X-Request-Id") == "" {
		// The proxy gives every request an ID before filters run.
		req.Header.Set("X-Request-Id", "filter-run")
	}
	x := &filter.Exchange{Request: req, Route: routeName, ClientAddr: s.ClientAddr, Scheme: s.Scheme}
	if x.ClientAddr == "" {
		x.ClientAddr = "127.0.0.1:40000"
	}
	if x.Scheme == "" {
		x.Scheme = "http"
	}
	req.RemoteAddr = x.ClientAddr
	upgrade := len(s.Messages) > 0
	if hooks.Has(filter.HookRequestBody) && !upgrade {
		x.RequestBody = append([]byte(nil), s.RequestBody...)
	}
	if hooks.Has(filter.HookRequestHeaders) {
		if !c.http("request_headers", x, chain.OnRequestHeaders) {
			return
		}
	}
	if upgrade {
		if hooks.Has(filter.HookUpgrade) {
			if !c.http("upgrade", x, chain.OnUpgrade) {
				return
			}
		}
		sess := &filter.Session{ID: req.Header.Get("X-Request-Id"), Route: routeName, Upgrade: req, ClientAddr: x.ClientAddr, State: x.State}
		c.session(chain, hooks, sess, s.Messages)
		return
	}
	if s.Response != nil && hooks.Has(filter.HookResponseHeaders) {
		x.Status = s.Response.Status
		x.ResponseHeader = s.Response.Header.Clone()
		if x.ResponseHeader == nil {
			x.ResponseHeader = http.Header{}
		}
		if hooks.Has(filter.HookResponseBody) {
			x.ResponseBody = append([]byte(nil), s.Response.Body...)
		}
		c.http("response_headers", x, chain.OnResponseHeaders)
	}
}

// session runs the message hooks on each message, then the close hook.
func (c *call) session(chain filter.Chain, hooks filter.HookSet, sess *filter.Session, msgs []Message) {
	if hooks.Has(filter.HookMessage) {
		for i, m := range msgs {
			if !c.message(chain, sess, i, m) {
				break
			}
		}
	}
	if c.res.Failure == nil && hooks.Has(filter.HookClose) {
		c.run("close", &sess.State, nil, func() { chain.OnClose(sess) })
	}
}
