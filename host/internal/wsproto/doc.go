// Package wsproto is the WebSocket protocol as the relay speaks it in
// message mode, towards each side as a conforming RFC 6455 endpoint: a
// frame reader that assembles messages and refuses every violation with the
// close code RFC 6455 names (1002 framing, 1007 invalid UTF-8 in text and
// close reasons, 1009 too big), a frame writer, and permessage-deflate
// (RFC 7692): negotiation on both ends of a session, inflating with or
// without context takeover, deflating without it.
//
// It knows nothing of sockets or of the relay: it reads from an io.Reader
// and writes to an io.Writer.
package wsproto
