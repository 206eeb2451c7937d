package config

import (
	"strconv"
	"strings"
)

// keyIndex maps the key paths of a TOML document to the lines they appear
// on. The toml package reports key positions without array indexes (every
// [[route]] shares "route.upstream"), so this small scanner walks the lines
// itself and names keys the way errors do: "route[2].upstream".
//
// It understands table headers, array-of-table headers, dotted and quoted
// keys, and values spanning lines (arrays, inline tables, multi-line
// strings). It runs only on input the toml package already accepted, so it
// need not diagnose bad syntax.
type keyIndex struct {
	lines map[string]int // indexed path → line of first appearance
	keys  []indexedKey   // every key in document order
}

type indexedKey struct {
	path  string // "route[2].upstream"
	plain string // "route.upstream", as toml.Key.String() spells it
	line  int
}

func scanKeys(data string) *keyIndex {
	ix := &keyIndex{lines: make(map[string]int)}
	arrays := map[string]int{} // plain path of an array of tables → current index
	var table []string         // current table, plain pieces
	var cont valueState        // a value that continues on the next line

	for n, line := range strings.Split(data, "\n") {
		lineNo := n + 1
		if cont.open() {
			cont.feed(line)
			continue
		}
		s := strings.TrimSpace(line)
		if s == "" || s[0] == '#' {
			continue
		}
		if strings.HasPrefix(s, "[[") {
			pieces, _ := parseKey(s[2:])
			plain := joinPlain(pieces)
			arrays[plain]++
			for k := range arrays { // nested arrays restart under a new element
				if strings.HasPrefix(k, plain+".") {
					delete(arrays, k)
				}
			}
			table = pieces
			ix.add(indexPath(pieces, arrays), plain, lineNo)
			continue
		}
		if s[0] == '[' {
			pieces, _ := parseKey(s[1:])
			table = pieces
			ix.add(indexPath(pieces, arrays), joinPlain(pieces), lineNo)
			continue
		}
		pieces, rest := parseKey(s)
		rest = strings.TrimSpace(rest)
		if len(pieces) == 0 || !strings.HasPrefix(rest, "=") {
			continue
		}
		full := append(append([]string(nil), table...), pieces...)
		// Register the dotted parents too (a.b.c = 1 defines a and a.b).
		for i := len(table) + 1; i <= len(full); i++ {
			ix.add(indexPath(full[:i], arrays), joinPlain(full[:i]), lineNo)
		}
		cont = valueState{}
		cont.feed(rest[1:])
	}
	return ix
}

func (ix *keyIndex) add(path, plain string, line int) {
	if _, ok := ix.lines[path]; !ok {
		ix.lines[path] = line
	}
	ix.keys = append(ix.keys, indexedKey{path, plain, line})
}

// line returns the line of path, or of its nearest ancestor that the scanner
// saw (a key inside an inline table, an element of an array), or 0.
func (ix *keyIndex) line(path string) int {
	for path != "" {
		if l, ok := ix.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

// defined reports whether the document sets path (or something under it).
func (ix *keyIndex) defined(path string) bool {
	_, ok := ix.lines[path]
	return ok
}

// indexPath spells pieces with the current index of every array of tables
// on the way: upstream[1].health.path.
func indexPath(pieces []string, arrays map[string]int) string {
	var b strings.Builder
	for i, p := range pieces {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteKey(p))
		if n, ok := arrays[joinPlain(pieces[:i+1])]; ok {
			b.WriteString("[" + strconv.Itoa(n-1) + "]")
		}
	}
	return b.String()
}

func joinPlain(pieces []string) string {
	q := make([]string, len(pieces))
	for i, p := range pieces {
		q[i] = quoteKey(p)
	}
	return strings.Join(q, ".")
}

// quoteKey quotes a key piece the way toml.Key.String does.
func quoteKey(p string) string {
	if p == "" {
		return `""`
	}
	for _, r := range p {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return strconv.Quote(p)
		}
	}
	return p
}

// parseKey reads a dotted key (bare, "basic" or 'literal' pieces) from the
// start of s and returns its pieces and what follows.
func parseKey(s string) ([]string, string) {
	var pieces []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return pieces, s
		}
		switch s[0] {
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return pieces, ""
			}
			v, err := strconv.Unquote(s[:end+1])
			if err != nil {
				v = s[1:end]
			}
			pieces = append(pieces, v)
			s = s[end+1:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return pieces, ""
			}
			pieces = append(pieces, s[1:end+1])
			s = s[end+2:]
		default:
			end := 0
			for end < len(s) && (s[end] >= 'A' && s[end] <= 'Z' || s[end] >= 'a' && s[end] <= 'z' ||
				s[end] >= '0' && s[end] <= '9' || s[end] == '_' || s[end] == '-') {
				end++
			}
			if end == 0 {
				return pieces, s
			}
			pieces = append(pieces, s[:end])
			s = s[end:]
		}
		t := strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(t, ".") {
			return pieces, s
		}
		s = t[1:]
	}
}

// valueState follows a value across lines: open brackets and multi-line
// strings.
type valueState struct {
	depth int
	str   string // the open multi-line string delimiter, `"""` or `'''`
}

func (v *valueState) open() bool { return v.depth > 0 || v.str != "" }

func (v *valueState) feed(s string) {
	for i := 0; i < len(s); i++ {
		if v.str != "" {
			if v.str == `"""` && s[i] == '\\' {
				i++
				continue
			}
			if strings.HasPrefix(s[i:], v.str) {
				i += 2
				v.str = ""
			}
			continue
		}
		switch c := s[i]; c {
		case '#':
			return
		case '[', '{':
			v.depth++
		case ']', '}':
			v.depth--
		case '"', '\'':
			if strings.HasPrefix(s[i:], `"""`) || strings.HasPrefix(s[i:], `'''`) {
				v.str = s[i : i+3]
				i += 2
				continue
			}
			// A one-line string: skip to its end.
			for i++; i < len(s) && s[i] != c; i++ {
				if c == '"' && s[i] == '\\' {
					i++
				}
			}
		}
	}
}
