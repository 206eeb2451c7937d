package plugins

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// maxLogLine bounds one guest log record, so a guest that writes without
// newlines cannot make the host buffer grow without limit.
const maxLogLine = 8 << 10

// lineWriter turns a guest's WASI stdout or stderr into log records, one per
// line, tagged with the plugin's name (carried by logger) and the stream.
// Each instance has its own pair, so lines of two instances never mix.
type lineWriter struct {
	mu     sync.Mutex
	buf    []byte
	logger *slog.Logger
	limit  *logLimiter
	stream string
	level  slog.Level
}

func newLineWriter(logger *slog.Logger, limit *logLimiter, stream string, level slog.Level) *lineWriter {
	return &lineWriter{logger: logger, limit: limit, stream: stream, level: level}
}

// Write implements io.Writer for wazero's fd_write.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLogLine - len(w.buf)
			if len(p) < room {
				w.buf = append(w.buf, p...)
				break
			}
			w.buf = append(w.buf, p[:room]...)
			w.emit()
			p = p[room:]
			continue
		}
		w.buf = append(w.buf, p[:i]...)
		w.emit()
		p = p[i+1:]
	}
	return n, nil
}

// emit logs the buffered line (truncated to maxLogLine) and empties it.
// The caller holds w.mu.
func (w *lineWriter) emit() {
	line := w.buf
	if len(line) > maxLogLine {
		line = line[:maxLogLine]
	}
	if w.limit.allow(w.logger) {
		w.logger.Log(context.Background(), w.level, string(bytes.TrimRight(line, "\r")), "stream", w.stream)
	}
	w.buf = w.buf[:0]
}

// Flush logs a last line that did not end with a newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit()
	}
}

// logLimiter is a plugin's log_rate: a token bucket of rate lines a second
// with a burst of as many, shared by the log host function and every
// instance's stdout and stderr. Lines over the rate are dropped; the next
// line that passes is preceded by one record that says how many were lost,
// and Stats.LogDropped counts them all. A guest in a logging loop thus costs
// the proxy a bounded number of records a second, whatever it writes.
type logLimiter struct {
	mu      sync.Mutex
	rate    float64
	tokens  float64
	last    int64 // monotonic ns of the last refill
	pending uint64
	dropped atomic.Uint64
}

func newLogLimiter(rate int) logLimiter {
	return logLimiter{rate: float64(rate), tokens: float64(rate), last: monoNow()}
}

// allow reports whether one more line may be logged now. When lines were
// dropped since the last one that passed, it first logs how many.
func (l *logLimiter) allow(logger *slog.Logger) bool {
	l.mu.Lock()
	now := monoNow()
	l.tokens = min(l.rate, l.tokens+l.rate*float64(now-l.last)/float64(time.Second))
	l.last = now
	if l.tokens < 1 {
		l.pending++
		l.mu.Unlock()
		l.dropped.Add(1)
		return false
	}
	l.tokens--
	lost := l.pending
	l.pending = 0
	l.mu.Unlock()
	if lost > 0 {
		logger.Warn("plugins: guest log lines dropped over log_rate", "dropped", lost, "log_rate", int(l.rate))
	}
	return true
}
