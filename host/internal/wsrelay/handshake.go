package wsrelay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/internal/upstream"
)

// handshakes is what the two handshakes leave for the relay.
type handshakes struct {
	client, up         *websocket.Conn
	clientSock, upSock *sock
	leftover           []byte // bytes the upstream sent right behind its 101, which gorilla's reader took
}

// hijackWriter hands gorilla's Upgrade the hijacked connection wrapped in
// a sock.
type hijackWriter struct {
	http.ResponseWriter
	sock *sock
}

// Hijack hijacks the underlying connection.
func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.sock = newSock(c)
	return h.sock, brw, nil
}

// handshake dials the upstream, then upgrades the client. When either
// fails it answers the client, fills st and returns no client.
func handshake(w http.ResponseWriter, r *http.Request, p *Params, st *Stats) handshakes {
	target, opt, log := p.Target, p.Options, p.Log
	up, resp, hs, err := dialUpstream(r, p)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols && errors.Is(err, websocket.ErrBadHandshake) {
			// The upstream answered, and said no: relay its answer.
			st.Status = relayRefusal(w, resp, hs, opt)
			return handshakes{}
		}
		st.DialErr = err
		st.Status = http.StatusBadGateway
		if upstream.IsTimeout(err) {
			st.Status = http.StatusGatewayTimeout
		}
		log.Debug("wsrelay: websocket upstream unreachable", "target", target.Host, "err", err)
		http.Error(w, http.StatusText(st.Status), st.Status)
		return handshakes{}
	}

	u := clientUpgrader
	u.Error = func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
		st.Status = status
		w.Header().Set("Sec-Websocket-Version", "13")
		http.Error(w, http.StatusText(status), status)
	}
	hw := &hijackWriter{ResponseWriter: w}
	client, err := u.Upgrade(hw, r, responseHeader(resp.Header))
	if err != nil {
		if st.Status == 0 {
			st.Status = http.StatusBadRequest // hijacked, then refused by gorilla
		}
		up.Close()
		log.Debug("wsrelay: websocket client upgrade failed", "err", err)
		return handshakes{}
	}
	st.Status = http.StatusSwitchingProtocols
	out := handshakes{client: client, up: up, clientSock: hw.sock, upSock: hs, leftover: hs.leftover()}
	hs.stopRecording()
	return out
}

// leftover returns the bytes gorilla read from the upstream after the end of
// its 101 response: frames the upstream sent right after the handshake.
// (Bytes the socket read but gorilla did not take stay in the sock.)
func (s *sock) leftover() []byte {
	rd := bytes.NewReader(s.hs.rec)
	br := bufio.NewReader(rd)
	if _, err := http.ReadResponse(br, nil); err != nil {
		return nil
	}
	n := rd.Len() + br.Buffered()
	if n == 0 {
		return nil
	}
	return append([]byte(nil), s.hs.rec[len(s.hs.rec)-n:]...)
}

// dialUpstream dials the upstream and runs its handshake. On success it
// returns gorilla's Conn, the 101 response and the socket, still recording.
// On a refusal it returns the response with websocket.ErrBadHandshake, and
// the socket (still open) from which the whole response can be read again.
func dialUpstream(r *http.Request, p *Params) (*websocket.Conn, *http.Response, *sock, error) {
	ctx, opt := p.Context, p.Options
	u := targetURL(p.Target, r.URL)
	hdr, protos := upstreamHeader(p.Header)

	// The dial stops when the client's request or the proxy's context ends.
	dctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := afterFunc(ctx, cancel)
	defer stop()
	if opt.HandshakeTimeout > 0 {
		var cancelT context.CancelFunc
		dctx, cancelT = context.WithTimeout(dctx, opt.HandshakeTimeout)
		defer cancelT()
	}

	var hs *sock
	wrap := func(c net.Conn) net.Conn {
		hs = newSock(c)
		hs.hs = &recording{recording: true, holdClose: true}
		return hs
	}
	dial := p.Dialer
	if dial == nil {
		dial = new(upstream.Dialer) // the zero Dialer has no connect timeout
	}
	d := upstreamDialer
	d.Subprotocols = protos
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return wrap(c), nil
	}
	d.NetDialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial.DialTLSContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return wrap(c), nil
	}

	conn, resp, err := d.DialContext(dctx, u.String(), hdr)
	if err != nil {
		if hs != nil && !(resp != nil && errors.Is(err, websocket.ErrBadHandshake)) {
			hs.stopRecording()
			hs.Close()
			hs.release()
			hs = nil
		}
		return nil, resp, hs, err
	}
	return conn, resp, hs, nil
}

// relayRefusal sends the upstream's refusal of the handshake to the client:
// status, headers and the whole body. It returns the status sent.
func relayRefusal(w http.ResponseWriter, gresp *http.Response, hs *sock, opt Options) int {
	resp := gresp
	if hs != nil {
		defer func() {
			hs.stopRecording()
			hs.Close()
			hs.release()
		}()
		limit := opt.HandshakeTimeout
		if limit <= 0 {
			limit = replyLimit
		}
		hs.SetReadDeadline(time.Now().Add(limit))
		// Read the response again from its first byte: what gorilla read,
		// then the rest of the socket (what the sock holds first).
		hs.hs.recording = false
		br := bufio.NewReader(io.MultiReader(bytes.NewReader(hs.hs.rec), hs))
		if again, err := http.ReadResponse(br, nil); err == nil {
			resp = again
		}
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		if upstream.IsHopByHop(k) {
			continue
		}
		h[k] = append([]string(nil), vs...)
	}
	for _, k := range upstream.ConnectionTokens(resp.Header) {
		h.Del(k)
	}
	if resp.ContentLength >= 0 && resp.Header.Get("Content-Length") != "" {
		h.Set("Content-Length", resp.Header.Get("Content-Length"))
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	return resp.StatusCode
}

// targetURL maps the target's base URL and the request's path and query to
// the upstream's ws:// or wss:// URL.
func targetURL(target, req *url.URL) *url.URL {
	u := *target
	switch u.Scheme {
	case "https", "wss":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	u.Path = joinPath(target.Path, req.Path)
	rp := joinPath(target.EscapedPath(), req.EscapedPath())
	if rp != u.Path {
		u.RawPath = rp
	} else {
		u.RawPath = ""
	}
	switch {
	case target.RawQuery == "":
		u.RawQuery = req.RawQuery
	case req.RawQuery == "":
		u.RawQuery = target.RawQuery
	default:
		u.RawQuery = target.RawQuery + "&" + req.RawQuery
	}
	return &u
}

func joinPath(a, b string) string {
	switch {
	case a == "" || a == "/":
		if b == "" {
			return "/"
		}
		return b
	case b == "" || b == "/":
		return a
	}
	return strings.TrimSuffix(a, "/") + "/" + strings.TrimPrefix(b, "/")
}

// upstreamHeader returns the headers to send upstream with canonical keys,
// without the ones gorilla sets itself (and refuses twice), and the
// subprotocols the client offered, in order.
func upstreamHeader(in http.Header) (http.Header, []string) {
	out := make(http.Header, len(in))
	var protos []string
	for k, vs := range in {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		switch ck {
		case "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
			"Sec-Websocket-Extensions", "Sec-Websocket-Accept":
			continue
		case "Sec-Websocket-Protocol":
			for _, v := range vs {
				for _, p := range strings.Split(v, ",") {
					if p = strings.TrimSpace(p); p != "" {
						protos = append(protos, p)
					}
				}
			}
			continue
		}
		out[ck] = append(out[ck], vs...)
	}
	return out, protos
}

// responseHeader picks the headers of the upstream's 101 response that the
// client should see too (Set-Cookie, the chosen subprotocol, custom headers);
// gorilla writes the handshake headers itself.
func responseHeader(in http.Header) http.Header {
	out := make(http.Header, len(in))
	conn := upstream.ConnectionTokens(in)
	for k, vs := range in {
		if upstream.IsHopByHop(k) {
			continue
		}
		switch k {
		case "Sec-Websocket-Accept", "Sec-Websocket-Extensions", "Sec-Websocket-Version", "Content-Length":
			continue
		}
		skip := false
		for _, t := range conn {
			if strings.EqualFold(t, k) {
				skip = true
			}
		}
		if !skip {
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}
