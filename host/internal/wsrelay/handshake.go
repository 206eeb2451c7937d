package wsrelay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/sluiceproxy/sluice/host/internal/upstream"
	"github.com/sluiceproxy/sluice/host/internal/wsproto"
)

// The opening handshakes are the relay's own (package wsproto), not a
// library's: it must pass the client's extension offers to the upstream
// and the answer back untouched in raw mode, and negotiate
// permessage-deflate with each side on its own terms in message mode.

// handshakes is what the two handshakes leave for the relay.
type handshakes struct {
	clientSock, upSock *sock
	leftover           []byte // bytes the upstream sent right behind its 101
	// inflate is, in message mode, what each side compresses (nil: it
	// does not, or the session runs without compression).
	inflate [2]*wsproto.Inflater
}

// errRefused says the upstream answered the handshake with another status
// than 101.
var errRefused = errors.New("wsrelay: upstream refused the handshake")

// errExtensions says the upstream accepted extensions it was not offered,
// or permessage-deflate parameters the offer did not allow.
var errExtensions = errors.New("wsrelay: upstream answered with extensions it was not offered")

// handshake dials the upstream, then upgrades the client. When either
// fails it answers the client, fills st and returns no client socket.
func handshake(w http.ResponseWriter, r *http.Request, p *Params, st *Stats, message bool) handshakes {
	target, opt, log := p.Target, p.Options, p.Log
	offers := r.Header["Sec-Websocket-Extensions"]
	var upOffer, clientAnswer string
	var out handshakes
	if opt.Compression {
		if message {
			var ok bool
			if clientAnswer, out.inflate[sideClient], ok = wsproto.AcceptDeflate(offers, opt.ContextTakeover); !ok {
				clientAnswer = ""
			}
			upOffer = wsproto.OfferDeflate(opt.ContextTakeover)
		} else {
			// Raw mode: the two sides negotiate end to end.
			upOffer = strings.Join(offers, ", ")
		}
	}
	up, err := dialUpstream(r, p, upOffer)
	if err == nil {
		answer := up.resp.Header["Sec-Websocket-Extensions"]
		switch {
		case upOffer == "" && len(answer) > 0:
			err = errExtensions
		case message && upOffer != "":
			var ok bool
			if out.inflate[sideUpstream], ok = wsproto.AcceptedDeflate(answer, opt.ContextTakeover); !ok {
				err = errExtensions
			}
		case !message:
			clientAnswer = strings.Join(answer, ", ")
		}
		if err != nil {
			up.sock.Close()
		}
	}
	if err != nil {
		if errors.Is(err, errRefused) {
			// The upstream answered, and said no: relay its answer.
			st.Status = relayRefusal(w, up, opt)
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

	cs, err := acceptClient(w, r, clientAnswer, responseHeader(up.resp.Header))
	if err != nil {
		st.Status = http.StatusBadRequest // or 500 when the connection could not be hijacked
		up.sock.Close()
		log.Debug("wsrelay: websocket client upgrade failed", "err", err)
		return handshakes{}
	}
	st.Status = http.StatusSwitchingProtocols
	out.clientSock, out.upSock, out.leftover = cs, up.sock, up.leftover
	return out
}

// validKey reports whether a Sec-WebSocket-Key is 16 bytes in base64.
func validKey(k string) bool {
	b, err := base64.StdEncoding.DecodeString(k)
	return err == nil && len(b) == 16
}

// acceptClient hijacks the client's connection and writes the 101 answer:
// the chosen extensions, and the upstream's headers the client should see
// (the subprotocol, cookies, custom headers).
func acceptClient(w http.ResponseWriter, r *http.Request, extensions string, hdr http.Header) (*sock, error) {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not an HTTP/1.1 connection: nothing was written yet.
		http.Error(w, "wsrelay: the connection cannot be upgraded", http.StatusInternalServerError)
		return nil, err
	}
	if brw.Reader.Buffered() > 0 {
		// RFC 6455 4.1: a client waits for the answer before it sends.
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"))
		c.Close()
		return nil, errors.New("wsrelay: client sent data before the handshake completed")
	}
	b := wsproto.AppendSwitching(nil, r.Header.Get("Sec-Websocket-Key"), extensions, hdr)
	c.SetWriteDeadline(time.Now().Add(writeWait))
	if _, err := c.Write(b); err != nil {
		c.Close()
		return nil, err
	}
	c.SetWriteDeadline(time.Time{})
	return newSock(c), nil
}

// maxAnswerHead bounds the status line and headers of the upstream's
// answer to the handshake.
const maxAnswerHead = 64 << 10

// upstreamConn is an upstream connection after its handshake: the socket,
// the answer, and the bytes read past it.
type upstreamConn struct {
	sock     *sock
	resp     *http.Response
	leftover []byte
}

// dialUpstream dials the upstream and runs its handshake, offering
// extensions when not empty. A refusal returns errRefused with the
// response, whose body is still to be read from the open socket.
func dialUpstream(r *http.Request, p *Params, extensions string) (upstreamConn, error) {
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

	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "wss" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	// The upstream's own dialer: its connect_timeout, keep-alive and TLS
	// settings, as for HTTP requests.
	dial := p.Dialer
	if dial == nil {
		dial = new(upstream.Dialer) // the zero Dialer has no connect timeout
	}
	var c net.Conn
	var err error
	if u.Scheme == "wss" {
		c, err = dial.DialTLSContext(dctx, "tcp", addr)
	} else {
		c, err = dial.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return upstreamConn{}, err
	}
	// The handshake's reads and writes end with dctx.
	if dl, ok := dctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	unblock := context.AfterFunc(dctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer unblock()

	key := wsproto.NewKey()
	host := u.Host
	if h := hdr.Get("Host"); h != "" {
		host = h
		hdr.Del("Host")
	}
	var req bytes.Buffer
	req.WriteString("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n")
	if len(protos) > 0 {
		req.WriteString("Sec-WebSocket-Protocol: " + strings.Join(protos, ", ") + "\r\n")
	}
	if extensions != "" {
		req.WriteString("Sec-WebSocket-Extensions: " + extensions + "\r\n")
	}
	hdr.Write(&req)
	req.WriteString("\r\n")
	fail := func(err error) (upstreamConn, error) {
		c.Close()
		if dctx.Err() != nil {
			return upstreamConn{}, dctx.Err()
		}
		return upstreamConn{}, err
	}
	if _, err := c.Write(req.Bytes()); err != nil {
		return fail(err)
	}
	// The answer's head is bounded like a request's headers: a hostile
	// upstream cannot grow it without end within the handshake timeout.
	lr := &io.LimitedReader{R: c, N: maxAnswerHead}
	br := bufio.NewReader(lr)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return fail(err)
	}
	lr.N = math.MaxInt64 // a refusal's body is bounded by time (relayRefusal)
	s := newSock(c)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// The body is read by relayRefusal, under its own deadline.
		return upstreamConn{sock: s, resp: resp}, errRefused
	}
	if err := wsproto.CheckAnswer(resp, key); err != nil {
		return fail(err)
	}
	c.SetDeadline(time.Time{})
	out := upstreamConn{sock: s, resp: resp}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		out.leftover = append([]byte(nil), b...)
	}
	return out, nil
}

// relayRefusal sends the upstream's refusal of the handshake to the client:
// status, headers and the whole body. It returns the status sent.
func relayRefusal(w http.ResponseWriter, up upstreamConn, opt Options) int {
	defer up.sock.Close()
	limit := opt.HandshakeTimeout
	if limit <= 0 {
		limit = replyLimit
	}
	up.sock.SetDeadline(time.Now().Add(limit))
	resp := up.resp
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
// without the handshake's own (which dialUpstream writes), and the
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
// acceptClient writes the handshake headers itself.
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
