package plugins

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Deadlines without wazero's watcher. See RATIONALE.md, "The deadline".
//
// wazero stops a runaway guest only with WithCloseOnContextDone, which costs
// every call a watcher goroutine (about 1 µs on an idle machine, 7-10 µs on
// a loaded one) and every loop iteration an exit to Go (~130 ns, where the
// loop itself takes 1 ns). Instead, instrument rewrites the module before it
// is compiled: at the start of every function and of every loop body it
// decrements a counter (a global it adds) and, every tickEvery steps, calls
// a host function (tickModule.tickName, an import it adds) that checks the
// call's deadline in Go and traps the guest when it has passed. A call that
// never reaches that check (no loop, no call: straight-line code) ends on
// its own.
//
// The rewrite shifts the index of every defined function by one (the new
// import comes before them) in the code, exports, the start function,
// element segments, constant expressions and the name section; it drops
// the DWARF sections, whose code offsets it would invalidate, and the label
// names. A module it cannot follow is refused.

const (
	tickModule = "sluice_deadline"
	tickName   = "tick"
	// tickEvery is how many function entries and loop iterations run
	// between two deadline checks: about 5-50 µs of guest code.
	tickEvery = 4096
)

var errInstrument = errors.New("cannot be instrumented for deadlines")

func splitSections(bin []byte) ([]section, error) {
	if len(bin) < 8 || !bytes.Equal(bin[:4], []byte("\x00asm")) {
		return nil, fmt.Errorf("%w: not a WebAssembly module", errInstrument)
	}
	var out []section
	p := bin[8:]
	for len(p) > 0 {
		size, n := uleb(p[1:])
		if n == 0 || uint64(len(p)-1-n) < size {
			return nil, fmt.Errorf("%w: malformed section", errInstrument)
		}
		out = append(out, section{p[0], p[1+n : 1+n+int(size)]})
		p = p[1+n+int(size):]
	}
	return out, nil
}

// sectionOrder is where each known section id goes in a module.
var sectionOrder = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

// instrumenter holds what the rewrite needs across sections.
type instrumenter struct {
	importedFuncs uint64
	tickFunc      uint64 // index of the added import
	budget        uint64 // index of the added global
}

func (ins *instrumenter) fn(idx uint64) uint64 {
	if idx >= ins.importedFuncs {
		return idx + 1
	}
	return idx
}

// instrument returns bin rewritten as described above.
func instrument(bin []byte) ([]byte, error) {
	secs, err := splitSections(bin)
	if err != nil {
		return nil, err
	}
	ins := &instrumenter{}
	var types, imports, globals uint64
	for _, s := range secs {
		r := &codeReader{b: s.body}
		switch s.id {
		case 1:
			types = r.uleb()
		case 2:
			imports = r.count()
			for i := uint64(0); i < imports && !r.bad; i++ {
				r.name()
				r.name()
				switch kind := r.byte(); kind {
				case 0: // function
					r.uleb()
					ins.importedFuncs++
				case 1: // table
					r.skip(1)
					r.limits()
				case 2: // memory
					r.limits()
				case 3: // global
					r.skip(2)
					globals++
				case 4: // tag
					r.skip(1)
					r.uleb()
				default:
					return nil, fmt.Errorf("%w: unknown import kind %d", errInstrument, kind)
				}
			}
		case 6:
			globals += r.uleb()
		}
		if r.bad {
			return nil, fmt.Errorf("%w: malformed section %d", errInstrument, s.id)
		}
	}
	ins.tickFunc = ins.importedFuncs
	ins.budget = globals

	var out [][2]any // id, body
	add := func(id byte, body []byte) { out = append(out, [2]any{id, body}) }
	have := map[byte]bool{}
	for _, s := range secs {
		have[s.id] = true
	}
	// Sections the rewrite adds when the module has none of them.
	missing := func(before byte) {
		for _, id := range []byte{1, 2, 6} {
			if !have[id] && sectionOrder[id] < sectionOrder[before] {
				have[id] = true
				add(id, ins.newSection(id, types))
			}
		}
	}
	for _, s := range secs {
		if s.id != 0 {
			missing(s.id)
		}
		body, err := ins.rewrite(s, types)
		if err != nil {
			return nil, fmt.Errorf("%w: section %d: %v", errInstrument, s.id, err)
		}
		if body != nil {
			add(s.id, body)
		}
	}
	missing(255)

	res := append([]byte(nil), bin[:8]...)
	for _, s := range out {
		body := s[1].([]byte)
		res = append(res, s[0].(byte))
		res = append(res, ulebBytes(uint64(len(body)))...)
		res = append(res, body...)
	}
	return res, nil
}

// newSection makes a type, import or global section holding only what the
// rewrite adds.
func (ins *instrumenter) newSection(id byte, types uint64) []byte {
	switch id {
	case 1:
		return append([]byte{1}, tickType...)
	case 2:
		return append([]byte{1}, ins.tickImport(types)...)
	}
	return append([]byte{1}, budgetGlobal...)
}

// tickType is the function type () -> ().
var tickType = []byte{0x60, 0, 0}

// budgetGlobal is (global (mut i32) (i32.const tickEvery)).
var budgetGlobal = append(append([]byte{0x7f, 0x01, 0x41}, slebBytes(tickEvery)...), 0x0b)

func (ins *instrumenter) tickImport(typeIdx uint64) []byte {
	b := append(ulebBytes(uint64(len(tickModule))), tickModule...)
	b = append(b, ulebBytes(uint64(len(tickName)))...)
	b = append(b, tickName...)
	b = append(b, 0)
	return append(b, ulebBytes(typeIdx)...)
}

// rewrite returns a section's new body (nil: drop the section).
func (ins *instrumenter) rewrite(s section, types uint64) ([]byte, error) {
	r := &codeReader{b: s.body}
	var w []byte
	vec := func(extra uint64) { w = append(w, ulebBytes(r.uleb()+extra)...) }
	switch s.id {
	case 0:
		name := r.name()
		switch {
		case strings.HasPrefix(name, ".debug"):
			return nil, nil
		case name == "name":
			return ins.rewriteNames(s.body)
		}
		return s.body, nil
	case 1: // types: append () -> ()
		vec(1)
		w = append(w, r.b[r.i:]...)
		return append(w, tickType...), nil
	case 2: // imports: append the tick function
		vec(1)
		w = append(w, r.b[r.i:]...)
		return append(w, ins.tickImport(types)...), nil
	case 6: // globals: shift ref.func in initialisers, append the budget
		n := r.count()
		w = append(w, ulebBytes(n+1)...)
		for i := uint64(0); i < n && !r.bad; i++ {
			start := r.i
			r.skip(2) // type, mutability
			w = append(w, r.b[start:r.i]...)
			w = ins.expr(r, w)
		}
		return append(w, budgetGlobal...), r.err()
	case 7: // exports
		n := r.count()
		w = append(w, ulebBytes(n)...)
		for i := uint64(0); i < n && !r.bad; i++ {
			start := r.i
			r.name()
			kind := r.byte()
			w = append(w, r.b[start:r.i]...)
			idx := r.uleb()
			if kind == 0 {
				idx = ins.fn(idx)
			}
			w = append(w, ulebBytes(idx)...)
		}
		return w, r.err()
	case 8: // start
		return ulebBytes(ins.fn(r.uleb())), r.err()
	case 9:
		return ins.rewriteElements(r)
	case 10:
		return ins.rewriteCode(r)
	case 4: // tables: an initialiser expression could name a function
		n := r.count()
		for i := uint64(0); i < n && !r.bad; i++ {
			if r.i < len(r.b) && r.b[r.i] == 0x40 {
				return nil, errors.New("table initialisers are not supported")
			}
			r.skip(1)
			r.limits()
		}
		return s.body, r.err()
	}
	return s.body, nil
}

// expr copies a constant expression up to its end, shifting ref.func.
func (ins *instrumenter) expr(r *codeReader, w []byte) []byte {
	for !r.bad {
		start := r.i
		op := r.byte()
		switch op {
		case 0x0b:
			return append(w, op)
		case 0xd2:
			w = append(w, op)
			w = append(w, ulebBytes(ins.fn(r.uleb()))...)
			continue
		case 0x41, 0x42:
			r.sleb()
		case 0x23:
			r.uleb()
		case 0xd0:
			r.skip(1)
		case 0x43:
			r.skip(4)
		case 0x44:
			r.skip(8)
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constants
		case 0xfd:
			if r.uleb() != 12 { // v128.const
				r.bad = true
				return w
			}
			r.skip(16)
		default:
			r.bad = true
			return w
		}
		w = append(w, r.b[start:r.i]...)
	}
	return w
}

func (ins *instrumenter) rewriteElements(r *codeReader) ([]byte, error) {
	n := r.count()
	w := ulebBytes(n)
	for i := uint64(0); i < n && !r.bad; i++ {
		flags := r.uleb()
		w = append(w, ulebBytes(flags)...)
		if flags > 7 {
			return nil, fmt.Errorf("unknown element segment kind %d", flags)
		}
		if flags&2 != 0 && flags&1 == 0 { // explicit table index
			w = append(w, ulebBytes(r.uleb())...)
		}
		if flags&1 == 0 { // active: an offset expression
			w = ins.expr(r, w)
		}
		if flags&3 != 0 { // elemkind or reftype
			w = append(w, r.byte())
		}
		count := r.count()
		w = append(w, ulebBytes(count)...)
		for j := uint64(0); j < count && !r.bad; j++ {
			if flags&4 != 0 {
				w = ins.expr(r, w)
			} else {
				w = append(w, ulebBytes(ins.fn(r.uleb()))...)
			}
		}
	}
	return w, r.err()
}

// check is the code inserted at function entry and at each loop start:
//
//	global.get $budget
//	i32.eqz
//	if
//	  call $tick
//	  i32.const tickEvery
//	  global.set $budget
//	end
//	global.get $budget
//	i32.const 1
//	i32.sub
//	global.set $budget
func (ins *instrumenter) check() []byte {
	g := ulebBytes(ins.budget)
	b := append([]byte{0x23}, g...)
	b = append(b, 0x45, 0x04, 0x40, 0x10)
	b = append(b, ulebBytes(ins.tickFunc)...)
	b = append(b, 0x41)
	b = append(b, slebBytes(tickEvery)...)
	b = append(b, 0x24)
	b = append(b, g...)
	b = append(b, 0x0b, 0x23)
	b = append(b, g...)
	b = append(b, 0x41, 0x01, 0x6b, 0x24)
	return append(b, g...)
}

func (ins *instrumenter) rewriteCode(r *codeReader) ([]byte, error) {
	n := r.count()
	w := ulebBytes(n)
	check := ins.check()
	for i := uint64(0); i < n && !r.bad; i++ {
		size := r.uleb()
		if r.bad || uint64(len(r.b)-r.i) < size {
			return nil, errMalformed
		}
		body, err := ins.rewriteBody(r.b[r.i:r.i+int(size)], check)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		r.i += int(size)
		w = append(w, ulebBytes(uint64(len(body)))...)
		w = append(w, body...)
	}
	return w, r.err()
}

// rewriteBody copies one function body with the check inserted at its
// start and after every loop instruction, and function indices shifted.
func (ins *instrumenter) rewriteBody(fn []byte, check []byte) ([]byte, error) {
	r := &codeReader{b: fn}
	groups := r.count()
	for i := uint64(0); i < groups && !r.bad; i++ {
		r.uleb()
		r.skip(1)
	}
	w := make([]byte, 0, len(fn)+len(fn)/8+len(check))
	w = append(w, fn[:r.i]...)
	w = append(w, check...)
	for !r.bad && r.i < len(r.b) {
		start := r.i
		op := r.b[r.i]
		r.i++
		switch {
		case op == 0x10 || op == 0x12 || op == 0xd2: // call, return_call, ref.func
			w = append(w, op)
			w = append(w, ulebBytes(ins.fn(r.uleb()))...)
			continue
		case op == 0x03: // loop
			r.sleb()
			w = append(w, fn[start:r.i]...)
			w = append(w, check...)
			continue
		}
		if !r.instruction(op) {
			return nil, fmt.Errorf("unknown instruction 0x%02x at offset %d", op, start)
		}
		w = append(w, fn[start:r.i]...)
	}
	if r.bad {
		return nil, errMalformed
	}
	return w, nil
}

// rewriteNames shifts function indices in the name section's function and
// local names and drops the label names (the inserted checks add labels).
func (ins *instrumenter) rewriteNames(body []byte) ([]byte, error) {
	r := &codeReader{b: body}
	start := r.i
	r.name()
	w := append([]byte(nil), body[start:r.i]...)
	for !r.bad && r.i < len(r.b) {
		id := r.byte()
		size := r.uleb()
		if r.bad || uint64(len(r.b)-r.i) < size {
			return nil, errMalformed
		}
		sub := r.b[r.i : r.i+int(size)]
		r.i += int(size)
		var out []byte
		switch id {
		case 1, 2: // function names, local names: keyed by function index
			sr := &codeReader{b: sub}
			n := sr.count()
			out = ulebBytes(n)
			for j := uint64(0); j < n && !sr.bad; j++ {
				out = append(out, ulebBytes(ins.fn(sr.uleb()))...)
				from := sr.i
				if id == 1 {
					sr.name()
				} else {
					m := sr.count()
					for k := uint64(0); k < m && !sr.bad; k++ {
						sr.uleb()
						sr.name()
					}
				}
				out = append(out, sub[from:sr.i]...)
			}
			if sr.bad {
				return nil, errMalformed
			}
		case 3:
			continue
		default:
			out = sub
		}
		w = append(w, id)
		w = append(w, ulebBytes(uint64(len(out)))...)
		w = append(w, out...)
	}
	return w, r.err()
}

func ulebBytes(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func slebBytes(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
