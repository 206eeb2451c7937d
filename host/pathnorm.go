package host

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// slashPolicy is what a request path with an encoded slash or a backslash
// gets ([server] escaped_slashes).
type slashPolicy uint8

const (
	slashesReject slashPolicy = iota // 400
	slashesKeep                      // kept encoded: data, not a separator
	slashesDecode                    // turned into "/" before normalization
)

func parseSlashPolicy(s string) slashPolicy {
	switch s {
	case "keep":
		return slashesKeep
	case "decode":
		return slashesDecode
	}
	return slashesReject
}

// pathRules are the normalization settings of one generation.
type pathRules struct {
	slashes slashPolicy
	merge   bool
}

var (
	errPathNotOrigin   = errors.New("host: the request target must be a path starting with /")
	errPathBadEscape   = errors.New("host: malformed percent-encoding in the request path")
	errPathSlash       = errors.New("host: encoded slash or backslash in the request path")
	errPathNUL         = errors.New("host: NUL in the request path")
	errPathNotAbsolute = errors.New("host: absolute-form request target with an unsupported scheme")
)

// normalizePath returns the normalized form of raw, the path of a request
// target as the client wrote it (no query), in which routes match, filters
// look and upstreams are addressed. It is the RFC 3986 §6.2.2 syntax-based
// normalization that Envoy's normalize_path and nginx's location matching
// do, applied in this order:
//
//  1. percent-decoding of unreserved characters (ALPHA DIGIT - . _ ~),
//     so %2e is a dot and %41 an A; other escapes are kept, their hex
//     upper-cased; bytes that may not appear in a path are encoded;
//  2. encoded slashes and backslashes (%2F, %5C, a literal \) are
//     rejected, kept as data or decoded, per rules.slashes;
//  3. dot-segment removal (RFC 3986 §5.2.4): /a/./b → /a/b, /a/b/../c →
//     /a/c, and ".." never climbs above the root;
//  4. with rules.merge, runs of slashes become one: //a///b → /a/b.
//
// NUL (%00) is refused: C upstreams would end the path there. The result
// is in escaped form. A path that is already normal is returned as it is,
// without allocating.
func normalizePath(raw string, rules pathRules) (string, error) {
	if raw == "" || raw[0] != '/' {
		return "", errPathNotOrigin
	}
	if isNormalPath(raw, rules.merge) {
		return raw, nil
	}
	// Step 1 and 2: one pass that produces the escaped form with only the
	// escapes that must stay.
	var b strings.Builder
	b.Grow(len(raw) + 8)
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return "", errPathBadEscape
			}
			v := unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
			switch {
			case v == 0:
				return "", errPathNUL
			case v == '/' || v == '\\':
				if err := escapedSlash(&b, v, rules.slashes); err != nil {
					return "", err
				}
			case isUnreserved(v):
				b.WriteByte(v)
			default:
				writeEscape(&b, v)
			}
		case c == '\\':
			if err := escapedSlash(&b, c, rules.slashes); err != nil {
				return "", err
			}
		case c == '/' || isPathChar(c):
			b.WriteByte(c)
		default:
			writeEscape(&b, c)
		}
	}
	return removeDotSegments(b.String(), rules.merge), nil
}

// escapedSlash applies the escaped-slash policy to an encoded "/" or a
// backslash (encoded or not).
func escapedSlash(b *strings.Builder, v byte, p slashPolicy) error {
	switch p {
	case slashesKeep:
		writeEscape(b, v)
	case slashesDecode:
		b.WriteByte('/')
	default:
		return errPathSlash
	}
	return nil
}

// removeDotSegments removes "." and ".." segments (RFC 3986 §5.2.4) and,
// with merge, empty ones, keeping a trailing slash. p starts with "/".
func removeDotSegments(p string, merge bool) string {
	segs := strings.Split(p[1:], "/")
	out := segs[:0]
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		case "":
			if !merge || last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// isNormalPath reports whether p needs no work: no escapes, no
// backslashes, no byte that must be encoded, no dot segment and, with
// merge, no empty segment. Every request pays for this scan; most stop
// here.
func isNormalPath(p string, merge bool) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '/' {
			if i+1 < len(p) {
				switch p[i+1] {
				case '/':
					if merge {
						return false
					}
				case '.':
					// "/." starts a dot segment only if followed by the
					// end, "/" or another "."; be conservative.
					return false
				}
			}
			continue
		}
		if !isPathChar(c) {
			return false
		}
	}
	return true
}

// isPathChar reports whether c may appear as itself in a path segment
// (RFC 3986 pchar without "%"): unreserved, sub-delims, ":" and "@".
func isPathChar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func writeEscape(b *strings.Builder, c byte) {
	const digits = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(digits[c>>4])
	b.WriteByte(digits[c&15])
}

// rawRequestPath returns the path of r's request target as the client
// wrote it, without the query. An origin-form target ("/a?b") is taken as
// it is; an absolute-form one ("http://host/a?b", which clients send to
// forward proxies) only with the scheme of the connection it came on, and
// its authority is what r.Host holds (RFC 9112 §3.2.2). Anything else
// ("*", an authority alone) is refused.
func rawRequestPath(r *http.Request) (string, error) {
	uri := r.RequestURI
	if uri == "" && r.URL != nil {
		uri = r.URL.RequestURI() // not from the server (tests, HTTP/2 edge cases)
	}
	if strings.HasPrefix(uri, "/") {
		if i := strings.IndexByte(uri, '?'); i >= 0 {
			uri = uri[:i]
		}
		return uri, nil
	}
	u := r.URL
	if u == nil || u.Host == "" || u.Scheme == "" {
		return "", errPathNotOrigin
	}
	if !strings.EqualFold(u.Scheme, scheme(r)) || len(uri) < len(u.Scheme)+3 {
		return "", errPathNotAbsolute
	}
	rest := uri[len(u.Scheme)+3:]
	i := strings.IndexAny(rest, "/?")
	if i < 0 || rest[i] == '?' {
		return "/", nil
	}
	rest = rest[i:]
	if j := strings.IndexByte(rest, '?'); j >= 0 {
		rest = rest[:j]
	}
	return rest, nil
}

// setPath makes u's path the normalized, escaped path p.
func setPath(u *url.URL, p string) {
	dec, err := url.PathUnescape(p)
	if err != nil {
		dec = p // cannot happen: p is well-formed
	}
	// RawPath keeps the escapes that must stay (an encoded "?" or a kept
	// %2F); url.URL uses it whenever it encodes Path.
	u.Path, u.RawPath = dec, p
}
