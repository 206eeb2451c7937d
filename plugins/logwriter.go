package plugins

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
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
	stream string
	level  slog.Level
}

func newLineWriter(logger *slog.Logger, stream string, level slog.Level) *lineWriter {
	return &lineWriter{logger: logger, stream: stream, level: level}
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
	w.logger.Log(context.Background(), w.level, string(bytes.TrimRight(line, "\r")), "stream", w.stream)
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
