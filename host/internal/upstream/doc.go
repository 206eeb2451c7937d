// Package upstream is how the proxy talks HTTP to the targets of one
// [[upstream]]: a purpose-built HTTP/1.1 client with a pool of keep-alive
// connections per target for http:// targets, an http.Transport for
// https:// ones, and the dial that both use (connect_timeout, TCP
// keep-alive, the error that marks an unreachable target).
//
// The proxy hands it a request already prepared for the target (package
// host does the routing, the filters and the forwarding headers) and gets
// back the response, whose body gives the connection back to the pool once
// read to the end. See host/RATIONALE.md, "HTTP path", for why it is not
// http.Transport.
package upstream
