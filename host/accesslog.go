package host

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/internal/wsrelay"
)

// accessRecord collects what the access log line says about one request.
type accessRecord struct {
	id         string
	route      string
	target     string
	replied    bool // a filter answered
	websocket  bool
	clientGone bool
	err        error
	// status and bytes, for WebSockets, which bypass the logWriter.
	status int
	bytes  int64
	ws     *wsrelay.Stats

	// wsLog is set while a WebSocket session runs on past its handler.
	wsLog *wsLogState
}

// wsLogState carries the access log line of a WebSocket session that
// outlives its handler. The line waits for two halves, the handler's return
// (logAccess, which copies the record and brings the request's start) and
// the session's end (wsLogDone, which brings the stats); whichever comes
// last writes it, and only then does the session stop counting for
// shutdown. The atomic count orders what each half stored before it.
type wsLogState struct {
	pending atomic.Int32
	req     *http.Request // the session's copy of the request
	rec     accessRecord  // the handler's record, as it returned
	start   time.Time
	ws      wsrelay.Stats
}

// wsLogDone is the session's half of its access log line.
func (p *Proxy) wsLogDone(wl *wsLogState) { p.wsLogHalf(wl) }

// wsLogHalf brings one half of a session's log line; the second writes it
// and ends the session's count for shutdown.
func (p *Proxy) wsLogHalf(wl *wsLogState) {
	if wl.pending.Add(-1) != 0 {
		return
	}
	p.wsLogWrite(wl)
	p.sessionFinished()
}

// wsLogWrite writes a session's access log line.
func (p *Proxy) wsLogWrite(wl *wsLogState) {
	rec := &wl.rec
	rec.ws = &wl.ws
	rec.bytes = wl.ws.Bytes[0] + wl.ws.Bytes[1]
	p.writeAccess(context.Background(), wl.req, 0, 0, rec, wl.start)
}

// logWriter records the status and size of a response for the access log.
// It passes Flush through (streaming) and unwraps for http.ResponseController.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *logWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client at once.
func (w *logWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logAccess writes one structured line per request, and per WebSocket
// session when it ends.
//
// A WebSocket session that outlives its handler is logged when it ends:
// here, the handler only hands the request over.
func (p *Proxy) logAccess(r *http.Request, lw *logWriter, rec *accessRecord, start time.Time) {
	if wl := rec.wsLog; wl != nil {
		// A copy: the handler's state, rec included, is released now.
		wl.rec, wl.start = *rec, start
		wl.rec.wsLog = nil
		p.wsLogHalf(wl)
		return
	}
	p.writeAccess(r.Context(), r, lw.status, lw.bytes, rec, start)
}

// writeAccess writes the access log line; status and size are the
// logWriter's, which a WebSocket's own record overrides.
func (p *Proxy) writeAccess(ctx context.Context, r *http.Request, status int, size int64, rec *accessRecord, start time.Time) {
	if !p.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	if rec.websocket && rec.status != 0 {
		status, size = rec.status, rec.bytes
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", rec.route),
		slog.String("upstream", rec.target),
		slog.Int("status", status),
		slog.Int64("bytes", size),
		slog.Duration("duration", time.Since(start)),
		slog.String("request_id", rec.id),
		slog.String("client", r.RemoteAddr),
	)
	if rec.replied {
		attrs = append(attrs, slog.Bool("filter_reply", true))
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("error", rec.err.Error()))
	}
	msg := "access"
	if ws := rec.ws; ws != nil {
		msg = "websocket"
		attrs = append(attrs,
			slog.Int64("messages_in", ws.Messages[filter.ClientToUpstream]),
			slog.Int64("messages_out", ws.Messages[filter.UpstreamToClient]),
			slog.Int64("bytes_in", ws.Bytes[filter.ClientToUpstream]),
			slog.Int64("bytes_out", ws.Bytes[filter.UpstreamToClient]),
			slog.Int("close_code", ws.CloseCode),
			slog.String("close_by", ws.CloseBy),
		)
	}
	p.log.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
}
