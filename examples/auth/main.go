// Command auth is a Sluice filter that lets a request through only with a
// valid bearer token: one of a static list, or an HS256 JWT signed with a
// shared secret. It guards plain HTTP requests and WebSocket upgrades alike.
//
// Browsers cannot set headers on a WebSocket handshake, so on upgrades the
// token may also come in a query parameter (?access_token=...) or as an
// entry of Sec-WebSocket-Protocol ("bearer.<token>"). Whichever way it came,
// the filter strips the credential before the request goes upstream and
// forwards the user's name in X-User instead.
//
// See README.md for the config keys.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/sluiceproxy/sluice/examples/internal/tinyjson"
	sluice "github.com/sluiceproxy/sluice/sdk/go"
)

// settings is the config, checked and with defaults applied.
type settings struct {
	tokens      [][]byte
	staticUser  string
	secret      []byte
	leeway      time.Duration
	queryParam  string
	subprotocol string
	userHeader  string
	challenge   string
}

var cfg settings

func configure(raw []byte) error {
	c, err := tinyjson.NewConfig(raw, "auth: config")
	if err != nil {
		return err
	}
	s := settings{
		staticUser:  c.String("static_user", "static"),
		secret:      []byte(c.String("jwt_secret", "")),
		queryParam:  c.String("query_param", "access_token"),
		subprotocol: c.String("subprotocol_prefix", "bearer."),
		userHeader:  c.String("user_header", "X-User"),
	}
	tokens := c.Strings("tokens")
	realm := c.String("realm", "sluice")
	leeway := c.Value("leeway")
	if err := c.Done(); err != nil {
		return err
	}
	for _, t := range tokens {
		if t == "" {
			return errors.New("auth: config: tokens: empty token")
		}
		s.tokens = append(s.tokens, []byte(t))
	}
	if len(s.tokens) == 0 && len(s.secret) == 0 {
		return errors.New("auth: config: set tokens, jwt_secret or both")
	}
	if strings.ContainsAny(realm, "\"\\\r\n") {
		return errors.New("auth: config: realm must not contain quotes, backslashes or newlines")
	}
	if !validSubject(s.userHeader) || strings.ContainsAny(s.userHeader, " :") || s.userHeader == "" {
		return errors.New("auth: config: user_header is not a header name")
	}
	s.challenge = `Bearer realm="` + realm + `", error="invalid_token"`
	switch leeway.Kind {
	case tinyjson.Missing:
	case tinyjson.Number:
		s.leeway = time.Duration(leeway.Num * float64(time.Second))
	case tinyjson.String:
		d, err := time.ParseDuration(leeway.Str)
		if err != nil {
			return errors.New("auth: config: leeway: " + err.Error())
		}
		s.leeway = d
	default:
		return errors.New(`auth: config: leeway must be seconds or a duration like "30s"`)
	}
	if s.leeway < 0 {
		return errors.New("auth: config: leeway must not be negative")
	}
	cfg = s
	jwtCache = map[uint64]verified{} // verified with another secret, maybe
	return nil
}

func init() {
	sluice.OnConfigure(configure)
	// on_request_headers runs for every request, WebSocket upgrades
	// included (before on_upgrade), so one handler guards both.
	sluice.OnRequestHeaders(authenticate)
}

func main() {}

// carrier is where a token came from.
type carrier int

const (
	fromHeader carrier = iota
	fromQuery
	fromSubprotocol
)

var authBuf []byte

func authenticate(req sluice.Request) sluice.Action {
	h := req.Header()
	upgrade := isUpgrade(h)

	// The header is read into a reused buffer: the common case (a token in
	// Authorization, valid or cached) allocates nothing, which keeps
	// TinyGo's garbage collector off the request path.
	authBuf, _ = h.AppendValue(authBuf[:0], "Authorization")
	token, ok := bearer(authBuf)
	from := fromHeader
	var query string
	if !ok && upgrade && cfg.queryParam != "" {
		query = req.Query()
		var t string
		t, ok = queryToken(query, cfg.queryParam)
		token, from = []byte(t), fromQuery
	}
	var protocols []string
	if !ok && upgrade && cfg.subprotocol != "" {
		protocols = subprotocols(h)
		for _, p := range protocols {
			if t, found := strings.CutPrefix(p, cfg.subprotocol); found && t != "" {
				token, ok, from = []byte(t), true, fromSubprotocol
				break
			}
		}
	}
	if !ok {
		return deny("missing bearer token")
	}
	user, err := validate(token, sluice.Now())
	if err != nil {
		return deny(err.Error())
	}

	// Strip the credential: the upstream learns who, not how.
	h.Remove("Authorization")
	switch from {
	case fromQuery:
		req.SetQuery(removeParam(query, cfg.queryParam))
	case fromSubprotocol:
		var rest []string
		for _, p := range protocols {
			if !strings.HasPrefix(p, cfg.subprotocol) {
				rest = append(rest, p)
			}
		}
		if len(rest) == 0 {
			h.Remove("Sec-WebSocket-Protocol")
		} else {
			h.Set("Sec-WebSocket-Protocol", strings.Join(rest, ", "))
		}
	}
	h.Set(cfg.userHeader, user)
	return sluice.Continue
}

// deny answers 401 the way RFC 6750 describes, with a JSON body for API
// clients.
func deny(description string) sluice.Action {
	body := `{"error":"invalid_token","error_description":"` + description + `"}`
	return sluice.Respond(401, []string{
		"Content-Type", "application/json",
		"WWW-Authenticate", cfg.challenge,
		"Cache-Control", "no-store",
	}, []byte(body))
}

func isUpgrade(h sluice.Header) bool {
	for _, v := range h.Values("Upgrade") {
		if strings.EqualFold(strings.TrimSpace(v), "websocket") {
			return true
		}
	}
	return false
}

// bearer extracts the token of an "Authorization: Bearer <token>" value;
// the scheme is case-insensitive.
func bearer(v []byte) ([]byte, bool) {
	const scheme = "bearer "
	if len(v) <= len(scheme) {
		return nil, false
	}
	for i := 0; i < len(scheme); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != scheme[i] {
			return nil, false
		}
	}
	t := v[len(scheme):]
	for len(t) > 0 && (t[0] == ' ' || t[0] == '\t') {
		t = t[1:]
	}
	for len(t) > 0 && (t[len(t)-1] == ' ' || t[len(t)-1] == '\t') {
		t = t[:len(t)-1]
	}
	return t, len(t) > 0
}

// queryToken finds param in a raw query and returns its unescaped value.
func queryToken(query, param string) (string, bool) {
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != param {
			continue
		}
		t, err := url.QueryUnescape(v)
		if err != nil || t == "" {
			return "", false
		}
		return t, true
	}
	return "", false
}

// removeParam removes every occurrence of param from a raw query and keeps
// the rest byte for byte.
func removeParam(query, param string) string {
	var b strings.Builder
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		if k, _, _ := strings.Cut(kv, "="); k == param {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv)
	}
	return b.String()
}

// subprotocols lists the entries of every Sec-WebSocket-Protocol header.
func subprotocols(h sluice.Header) []string {
	var out []string
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

var (
	errInvalid = errors.New("invalid token")
	errExpired = errors.New("token expired")
	errNotYet  = errors.New("token not valid yet")
)

// validate returns the user a token stands for.
func validate(token []byte, now time.Time) (string, error) {
	for _, t := range cfg.tokens {
		if subtle.ConstantTimeCompare(t, token) == 1 {
			return cfg.staticUser, nil
		}
	}
	if len(cfg.secret) == 0 {
		return "", errInvalid
	}
	return validateJWT(token, now)
}

var b64 = base64.RawURLEncoding

// verified is what a JWT with a good signature says.
type verified struct {
	token          []byte
	sub            string
	exp, nbf       float64
	hasExp, hasNbf bool
}

// jwtCache remembers the JWTs this instance verified, so a client that
// sends the same token on every request costs a lookup instead of an HMAC
// and two JSON decodes. Times are still checked on every request. The cache
// is per instance and bounded: when full it starts over.
//
// It is keyed by a hash computed eight bytes at a time rather than by the
// token string: inside the proxy every loop iteration of a guest pays for a
// cancellation check, and the map's own string hashing and comparing walk a
// ~200-byte token byte by byte.
var jwtCache = map[uint64]verified{}

const jwtCacheSize = 512

// validateJWT checks an HS256 JWT's signature, exp and nbf (with leeway)
// and returns its subject.
func validateJWT(token []byte, now time.Time) (string, error) {
	key := hash64(token)
	v, ok := jwtCache[key]
	if !ok || !equal64(v.token, token) {
		var err error
		if v, err = verifyJWT(string(token)); err != nil {
			return "", err
		}
		if len(jwtCache) >= jwtCacheSize {
			jwtCache = map[uint64]verified{}
		}
		jwtCache[key] = v
	}
	if v.hasExp && now.Add(-cfg.leeway).After(unix(v.exp)) {
		return "", errExpired
	}
	if v.hasNbf && now.Add(cfg.leeway).Before(unix(v.nbf)) {
		return "", errNotYet
	}
	return v.sub, nil
}

// verifyJWT checks an HS256 JWT's signature and claim types.
func verifyJWT(token string) (verified, error) {
	dot := strings.LastIndexByte(token, '.')
	if dot < 0 {
		return verified{}, errInvalid
	}
	signed, sig64 := token[:dot], token[dot+1:]
	head64, claims64, found := strings.Cut(signed, ".")
	if !found { // a dot inside claims64 fails base64 decoding below
		return verified{}, errInvalid
	}

	head, err := decodePart(head64)
	if err != nil {
		return verified{}, err
	}
	// Only HS256: never "none", never an algorithm the token picks for us.
	if alg := head.Get("alg"); alg.Kind != tinyjson.String || alg.Str != "HS256" {
		return verified{}, errors.New("unsupported JWT algorithm")
	}
	sig, err := b64.DecodeString(sig64)
	if err != nil {
		return verified{}, errInvalid
	}
	mac := hmac.New(sha256.New, cfg.secret)
	mac.Write([]byte(signed))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return verified{}, errors.New("bad JWT signature")
	}

	claims, err := decodePart(claims64)
	if err != nil {
		return verified{}, err
	}
	var v verified
	for _, c := range []struct {
		name string
		val  *float64
		has  *bool
	}{{"exp", &v.exp, &v.hasExp}, {"nbf", &v.nbf, &v.hasNbf}} {
		switch n := claims.Get(c.name); n.Kind {
		case tinyjson.Missing:
		case tinyjson.Number:
			*c.val, *c.has = n.Num, true
		default:
			return verified{}, errInvalid
		}
	}
	sub := claims.Get("sub")
	if sub.Kind != tinyjson.String || sub.Str == "" {
		return verified{}, errors.New("token has no subject")
	}
	if !validSubject(sub.Str) {
		return verified{}, errors.New("token subject is not a valid header value")
	}
	v.token, v.sub = []byte(token), sub.Str
	return v, nil
}

// hash64 is an FNV-style hash of s that mixes eight bytes per step.
func hash64(s []byte) uint64 {
	h := uint64(14695981039346656037)
	for len(s) >= 8 {
		h = (h ^ le64(s)) * 1099511628211
		h ^= h >> 29
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// equal64 compares a and b eight bytes per step.
func equal64(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for len(a) >= 8 {
		if le64(a) != le64(b) {
			return false
		}
		a, b = a[8:], b[8:]
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func le64(s []byte) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// decodePart decodes a JWT part: base64url JSON that must be an object.
func decodePart(part string) (tinyjson.Value, error) {
	b, err := b64.DecodeString(part)
	if err != nil {
		return tinyjson.Value{}, errInvalid
	}
	v, err := tinyjson.Parse(b)
	if err != nil || v.Kind != tinyjson.Object {
		return tinyjson.Value{}, errInvalid
	}
	return v, nil
}

func unix(secs float64) time.Time {
	return time.Unix(0, int64(secs*float64(time.Second)))
}

// validSubject reports whether sub can go in a header value as it is.
func validSubject(sub string) bool {
	for i := 0; i < len(sub); i++ {
		if c := sub[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
