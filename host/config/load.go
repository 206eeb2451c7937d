package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// FieldError is one problem in a config file, located by key and line.
type FieldError struct {
	File string
	// Line is the 1-based line of the key (or of its table), 0 when unknown.
	Line int
	// Key is the key path, such as "route[2].upstream"; empty for a problem
	// with the file as a whole.
	Key string
	Msg string
}

// Error returns "config: proxy.toml:12: route[2].upstream: <problem>".
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one config file, in line order.
type Errors []*FieldError

// Error returns one problem per line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads and parses the config file at path.
//
// # Errors
//
// An error reading the file, or an Errors value listing every problem.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// rawFile defers decoding of each table, so a type error in one [[route]]
// is reported with its index and does not hide problems in the others.
type rawFile struct {
	Server    toml.Primitive   `toml:"server"`
	Admin     toml.Primitive   `toml:"admin"`
	Upstreams []toml.Primitive `toml:"upstream"`
	Routes    []toml.Primitive `toml:"route"`
	Plugins   []toml.Primitive `toml:"plugin"`
}

// Parse decodes data, a proxy.toml named name in error messages, applies
// defaults and validates it.
//
// # Errors
//
// An Errors value listing every problem found: TOML syntax (which stops
// parsing), unknown keys, wrong types, bad values and broken references.
func Parse(data []byte, name string) (*Config, error) {
	p := &parser{file: name}
	var raw rawFile
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: name, Line: pe.Position.Line, Msg: pe.Message}}
		}
		return nil, Errors{{File: name, Msg: cleanTOMLError(err)}}
	}
	p.md = &md
	p.keys = scanKeys(string(data))

	cfg := &Config{}
	bad := map[string]bool{} // tables that failed to decode: not validated further
	p.decode("server", raw.Server, &cfg.Server, bad)
	p.decode("admin", raw.Admin, &cfg.Admin, bad)
	cfg.Upstreams = make([]Upstream, len(raw.Upstreams))
	for i := range raw.Upstreams {
		p.decode(fmt.Sprintf("upstream[%d]", i), raw.Upstreams[i], &cfg.Upstreams[i], bad)
	}
	cfg.Routes = make([]Route, len(raw.Routes))
	for i := range raw.Routes {
		p.decode(fmt.Sprintf("route[%d]", i), raw.Routes[i], &cfg.Routes[i], bad)
	}
	cfg.Plugins = make([]Plugin, len(raw.Plugins))
	for i := range raw.Plugins {
		p.decode(fmt.Sprintf("plugin[%d]", i), raw.Plugins[i], &cfg.Plugins[i], bad)
	}

	// Unknown keys. The scanner knows each occurrence with its index and
	// line; the toml package knows which plain keys were never decoded.
	undecoded := map[string]bool{}
	for _, k := range md.Undecoded() {
		// A plugin's config is free-form: the filter validates it.
		if len(k) > 2 && k[0] == "plugin" && k[1] == "config" {
			continue
		}
		undecoded[k.String()] = true
	}
	reported := map[string]bool{}
	for _, k := range p.keys.keys {
		if undecoded[k.plain] && !undecoded[parentPlain(k.plain)] && !reported[k.path] && !bad[sectionOf(k.path)] {
			reported[k.path], reported[k.plain] = true, true
			p.errAt(k.path, k.line, "unknown key %q", lastPiece(k.plain))
		}
	}
	// Keys the scanner cannot see (inside inline tables): report them under
	// every occurrence of their parent that really holds them.
	for _, k := range md.Undecoded() {
		plain := k.String()
		if !undecoded[plain] || reported[plain] || undecoded[parentPlain(plain)] {
			continue
		}
		for _, parent := range p.keys.keys {
			if parent.plain == parentPlain(plain) && !bad[sectionOf(parent.path)] && hasKey(parent.path, lastPiece(plain), data) {
				p.errAt(parent.path+"."+lastPiece(plain), parent.line, "unknown key %q", lastPiece(plain))
			}
		}
	}

	p.defaults(cfg)
	p.validate(cfg, bad)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	return cfg, nil
}

type parser struct {
	file string
	md   *toml.MetaData
	keys *keyIndex
	errs Errors
}

func (p *parser) errf(key, format string, args ...any) {
	p.errAt(key, p.keys.line(key), format, args...)
}

func (p *parser) errAt(key string, line int, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{File: p.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

var lastKeyRE = regexp.MustCompile(`\(last key "((?:[^"\\]|\\.)*)"\): `)

// decode decodes one table; a failure is reported against the key the toml
// package was decoding, re-spelled with the table's index.
func (p *parser) decode(path string, prim toml.Primitive, v any, bad map[string]bool) {
	err := p.md.PrimitiveDecode(prim, v)
	if err == nil {
		return
	}
	bad[path] = true
	var lastKey, msg string
	var pe toml.ParseError
	if errors.As(err, &pe) {
		lastKey, msg = pe.LastKey, pe.Message
	} else {
		msg = err.Error()
		if m := lastKeyRE.FindStringSubmatchIndex(msg); m != nil {
			lastKey = msg[m[2]:m[3]]
			msg = msg[m[1]:]
		}
		msg = cleanTOMLError(errors.New(msg))
	}
	key := path
	// lastKey is plain ("route.upstream"); swap its table part for path.
	table := strings.TrimRight(path, "]0123456789")
	table = strings.TrimSuffix(table, "[")
	if lastKey == table {
		key = path
	} else if strings.HasPrefix(lastKey, table+".") {
		key = path + lastKey[len(table):]
	}
	p.errf(key, "%s", msg)
}

// sectionOf is the section an indexed key path belongs to, as decode names
// it in bad: "route[1]" for "route[1].match[0].header", "server" for
// "server.websocket.idle_timeout". A section that failed to decode was
// decoded only in part (the toml package stops at the first wrong value,
// in no set order), so its undecoded keys are not reported as unknown.
func sectionOf(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		if path[i] == '[' {
			if j := strings.IndexByte(path, ']'); j > i {
				return path[:j+1]
			}
		}
		return path[:i]
	}
	return path
}

func cleanTOMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "toml: ")
	if i := strings.Index(s, "): "); strings.HasPrefix(s, "line ") && i > 0 {
		s = s[i+3:]
	}
	return s
}

// hasKey reports whether the table at the indexed path holds key.
func hasKey(path, key string, data []byte) bool {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return false
	}
	var cur any = doc
	for _, piece := range strings.Split(path, ".") {
		idx := -1
		if i := strings.IndexByte(piece, '['); i > 0 {
			idx, _ = strconv.Atoi(strings.TrimSuffix(piece[i+1:], "]"))
			piece = piece[:i]
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		cur = m[strings.Trim(piece, `"`)]
		if idx >= 0 {
			arr, ok := cur.([]map[string]any)
			if !ok || idx >= len(arr) {
				return false
			}
			cur = arr[idx]
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return false
	}
	_, ok = m[key]
	return ok
}

func parentPlain(plain string) string {
	if i := strings.LastIndexByte(plain, '.'); i > 0 {
		return plain[:i]
	}
	return ""
}

func lastPiece(plain string) string {
	if i := strings.LastIndexByte(plain, '.'); i >= 0 {
		return plain[i+1:]
	}
	return plain
}

// defaults fills in every value the file left out. A key the file sets
// explicitly is kept even when zero, so "0s" can mean "off" where the field
// says so.
func (p *parser) defaults(c *Config) {
	set := p.keys.defined
	s := &c.Server
	if s.Listen == "" {
		s.Listen = "127.0.0.1:8080"
	}
	durDefault(&s.ReadHeaderTimeout, 10*time.Second, set("server.read_header_timeout"))
	durDefault(&s.IdleTimeout, 120*time.Second, set("server.idle_timeout"))
	durDefault(&s.ShutdownGrace, 10*time.Second, false)
	durDefault(&s.ReloadGrace, 5*time.Second, set("server.reload_grace"))
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 64 << 10
	}
	ws := &s.WebSocket
	if ws.MaxMessageSize == 0 {
		ws.MaxMessageSize = 1 << 20
	}
	durDefault(&ws.PingInterval, 30*time.Second, set("server.websocket.ping_interval"))
	durDefault(&ws.HandshakeTimeout, 10*time.Second, false)

	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		k := fmt.Sprintf("upstream[%d].", i)
		if u.Balance == "" {
			u.Balance = "round_robin"
		}
		durDefault(&u.ConnectTimeout, 5*time.Second, false)
		durDefault(&u.ResponseTimeout, 30*time.Second, false)
		if u.MaxIdleConns == 0 && !set(k+"max_idle_conns") {
			u.MaxIdleConns = 256
		}
		if u.PassiveFailures == 0 && !set(k+"passive_failures") {
			u.PassiveFailures = 3
		}
		durDefault(&u.PassiveEjectFor, 10*time.Second, false)
		h := &u.Health
		durDefault(&h.Interval, 5*time.Second, false)
		durDefault(&h.Timeout, 2*time.Second, false)
		if h.HealthyThreshold == 0 {
			h.HealthyThreshold = 2
		}
		if h.UnhealthyThreshold == 0 {
			h.UnhealthyThreshold = 3
		}
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		r.Host = strings.ToLower(strings.TrimSpace(r.Host))
		if r.PathPrefix == "" {
			r.PathPrefix = "/"
		}
		if r.Name == "" {
			h := r.Host
			if h == "" {
				h = "*"
			}
			r.Name = h + r.PathPrefix
		}
		if r.Redirect != "" && r.Status == 0 {
			r.Status = 302
		}
	}
	for i := range c.Plugins {
		c.Plugins[i] = c.Plugins[i].WithDefaults()
	}
}

// durDefault sets d to def when it is zero and the file did not set it
// explicitly (explicit is true only for keys where zero means "off").
func durDefault(d *Duration, def time.Duration, explicit bool) {
	if d.Duration == 0 && !explicit {
		d.Duration = def
	}
}

// checkAddr reports whether addr is a valid "host:port" listen address.
func (p *parser) checkAddr(key, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.errf(key, "bad address %q: want \"host:port\"", addr)
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.errf(key, "bad address %q: port must be a number from 0 to 65535", addr)
		return false
	}
	return true
}

func isLoopback(addr string) bool {
	h, _, _ := net.SplitHostPort(addr)
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func checkTarget(t string) string {
	u, err := url.Parse(t)
	switch {
	case err != nil:
		return "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "scheme must be http or https"
	case u.Host == "" || u.Hostname() == "":
		return "missing host"
	case u.User != nil:
		return "credentials in a target URL are not supported"
	case u.RawQuery != "" || u.Fragment != "":
		return "a target must not have a query or fragment"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return "bad port"
		}
	}
	return ""
}

var hostRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$`)

func checkHost(h string) string {
	switch {
	case h == "" || h == "*":
		return ""
	case strings.HasPrefix(h, "*."):
		if !hostRE.MatchString(h[2:]) {
			return "want a host name, \"*.domain\" or \"*\""
		}
		return ""
	case strings.Contains(h, ":"):
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			return ""
		}
		return "must not include a port (routing ignores the port)"
	case net.ParseIP(h) != nil, hostRE.MatchString(h):
		return ""
	}
	return "want a host name, \"*.domain\" or \"*\""
}
