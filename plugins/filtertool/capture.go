package filtertool

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/sluiceproxy/sluice/plugins"
)

// LogLine is one line a filter logged (through the log host function or
// its stdout and stderr).
type LogLine struct {
	Level   string `json:"level"`
	Message string `json:"message"`
	// Stream is "stdout" or "stderr" for WASI output, empty for log.
	Stream string `json:"stream,omitempty"`
}

// hookFailedMsg is the message the plugins package logs for a failed hook
// call; its "error" attribute is the cause.
const hookFailedMsg = "plugins: hook failed"

// logCapture is a slog.Handler that keeps what the loader and the guest log
// while a sample runs. The loader logs a failed hook call with its cause;
// the capture keeps that apart from the guest's own lines.
type logCapture struct {
	mu      sync.Mutex
	lines   []LogLine
	dropped int // lines past maxCapturedLines
	failure string
}

// maxCapturedLines bounds what one hook call's log keeps: a filter that
// logs in a loop must not make the tool's memory grow without limit.
const maxCapturedLines = 1000

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	line := LogLine{Level: levelName(r.Level), Message: r.Message}
	var cause string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "stream":
			line.Stream = a.Value.String()
		case "error":
			cause = a.Value.String()
		}
		return true
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Message == hookFailedMsg {
		c.failure = cause
		return nil
	}
	if len(c.lines) < maxCapturedLines {
		c.lines = append(c.lines, line)
	} else {
		c.dropped++
	}
	return nil
}

func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }

// take returns and clears what was captured since the last take: the
// lines kept, how many more were dropped, and the cause of a failed call.
func (c *logCapture) take() ([]LogLine, int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines, dropped, failure := c.lines, c.dropped, c.failure
	c.lines, c.dropped, c.failure = nil, 0, ""
	return lines, dropped, failure
}

func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// SharedOp is one write a filter made to its shared (cross-connection)
// state.
type SharedOp struct {
	// Op is "set", "delete" or "add".
	Op  string `json:"op"`
	Key string `json:"key"`
	// Value is what set stored, or the counter's new value after add.
	Value string `json:"value,omitempty"`
	// Delta is what add added.
	Delta int64 `json:"delta,omitempty"`
	// TTL is the expiry given, "" for none.
	TTL string `json:"ttl,omitempty"`
}

// recordingStore is the shared store of a run: the plugins package's
// MemoryStore, with every write recorded so the report can show it.
type recordingStore struct {
	*plugins.MemoryStore
	mu  sync.Mutex
	ops []SharedOp
}

func (s *recordingStore) record(op SharedOp, ttl time.Duration) {
	if ttl > 0 {
		op.TTL = ttl.String()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ops) < maxCapturedLines {
		s.ops = append(s.ops, op)
	}
}

// Set implements plugins.SharedStore.
func (s *recordingStore) Set(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	err := s.MemoryStore.Set(ctx, ns, key, value, ttl)
	if err == nil {
		s.record(SharedOp{Op: "set", Key: key, Value: string(value)}, ttl)
	}
	return err
}

// Delete implements plugins.SharedStore.
func (s *recordingStore) Delete(ctx context.Context, ns, key string) error {
	err := s.MemoryStore.Delete(ctx, ns, key)
	if err == nil {
		s.record(SharedOp{Op: "delete", Key: key}, 0)
	}
	return err
}

// Add implements plugins.SharedStore.
func (s *recordingStore) Add(ctx context.Context, ns, key string, delta int64, ttl time.Duration) (int64, error) {
	n, err := s.MemoryStore.Add(ctx, ns, key, delta, ttl)
	if err == nil {
		s.record(SharedOp{Op: "add", Key: key, Delta: delta, Value: strconv.FormatInt(n, 10)}, ttl)
	}
	return n, err
}

// take returns and clears the writes recorded since the last take.
func (s *recordingStore) take() []SharedOp {
	s.mu.Lock()
	defer s.mu.Unlock()
	ops := s.ops
	s.ops = nil
	return ops
}

var _ plugins.SharedStore = (*recordingStore)(nil)
