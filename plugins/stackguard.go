package plugins

import (
	"bytes"
	"errors"
	"fmt"
)

// The stack guard bounds a guest's call stack by rewriting its module before
// compilation. wazero's compiler grows a call stack (a Go slice per exported
// function) by doubling until it passes 50MB, and offers no setting to stop
// it earlier: a three-line recursive function makes one call hold 80MiB, a
// pool of them gigabytes. So every function the module defines gets a
// wrapper that adds the function's frame estimate to a counter (a mutable
// global the guard adds), traps with unreachable when the counter passes
// the plugin's stack_limit, calls the original body and takes the estimate
// off again. The wrappers take the original functions' indices and the
// bodies move to new indices, so calls, exports, tables, ref.func and the
// start function all go through a wrapper without any renumbering; the
// bodies themselves are copied byte for byte.
//
// The frame estimate is an upper bound of what wazero's compiler keeps in a
// frame: 16 bytes (the largest value, a v128) for each parameter and local,
// and for each value the body can have on its operand stack, which is at
// most one per two bytes of code (every instruction that pushes a value
// without popping one has an immediate) times the most results a call can
// push, plus the frame's fixed part. See RATIONALE.md, "The call stack".
//
// A leaf — a function whose body has none of the call opcodes' bytes
// anywhere, immediates included, so it certainly calls nothing — keeps its
// plain body: it adds one frame on top of the stack and no more, so the
// guard reserves room for the largest leaf frame below the limit instead.
// Leaves are the small helpers compilers call most (memory copies, field
// accessors), so this removes most of the guard's cost from typical guests.
//
// A guest that traps, runs out of time or misuses the ABI is discarded, so
// a counter left high by a trap is never seen again. A WebAssembly exception
// that unwinds past a wrapper skips its decrement: the counter then only
// overstates the stack, and the guest traps early rather than late.

// stackGlobalExport is the name under which the guard exports its counter,
// so the host can tell a stack overflow from another trap.
const stackGlobalExport = "sluice_stack_used"

// frameFixed is the part of a frame the estimate adds to every function:
// return address, frame pointer, saved registers, the wrapper's own frame.
const frameFixed = 128

// section is one section of a module binary.
type section struct {
	id   byte
	body []byte
}

// guardStack returns bin with the stack guard for a budget of limit bytes,
// and the counter value past which the guard traps (limit less the room
// kept for a leaf frame).
func guardStack(bin []byte, limit uint32) ([]byte, uint32, error) {
	if len(bin) < 8 || !bytes.Equal(bin[:4], []byte("\x00asm")) {
		return nil, 0, errors.New("not a WebAssembly binary")
	}
	var secs []section
	for p := bin[8:]; len(p) > 0; {
		id := p[0]
		size, n := uleb(p[1:])
		if n == 0 || uint64(len(p)-1-n) < size {
			return nil, 0, errors.New("malformed section header")
		}
		secs = append(secs, section{id: id, body: p[1+n : 1+n+int(size)]})
		p = p[1+n+int(size):]
	}
	m, err := parseForGuard(secs)
	if err != nil {
		return nil, 0, err
	}
	if len(m.funcTypes) == 0 {
		return bin, limit, nil // nothing runs guest code
	}
	return m.rewrite(bin[:8], secs, limit)
}

// guardModule is what the guard reads from a module.
type guardModule struct {
	params     []uint32 // params of each type
	maxResults uint32   // the most results any type has
	importFns  uint32
	importGlbs uint32
	globals    uint32   // defined globals
	funcTypes  []uint32 // type of each defined function
	bodies     [][]byte // each defined function's body (locals and code)
}

func parseForGuard(secs []section) (*guardModule, error) {
	m := &guardModule{}
	for _, s := range secs {
		r := &reader{b: s.body}
		switch s.id {
		case 1: // types
			for range r.count() {
				if r.byte() != 0x60 {
					return nil, errors.New("type section: not a function type")
				}
				np := r.count()
				r.skip(int(np))
				nr := r.count()
				r.skip(int(nr))
				m.params = append(m.params, np)
				m.maxResults = max(m.maxResults, nr)
			}
		case 2: // imports
			for range r.count() {
				r.skip(int(r.count())) // module
				r.skip(int(r.count())) // name
				switch r.byte() {
				case 0: // function
					r.count()
					m.importFns++
				case 1: // table
					r.byte()
					r.limits()
				case 2: // memory
					r.limits()
				case 3: // global
					r.byte()
					r.byte()
					m.importGlbs++
				case 4: // tag
					r.byte()
					r.count()
				default:
					return nil, errors.New("import section: unknown import kind")
				}
			}
		case 3: // functions
			for range r.count() {
				m.funcTypes = append(m.funcTypes, r.count())
			}
		case 6: // globals
			m.globals = r.count()
		case 7: // exports
			for range r.count() {
				if string(r.take(int(r.count()))) == stackGlobalExport {
					return nil, fmt.Errorf("exports %s, a name the host reserves", stackGlobalExport)
				}
				r.byte()
				r.count()
			}
		case 10: // code
			for range r.count() {
				size := r.count()
				m.bodies = append(m.bodies, r.take(int(size)))
			}
		}
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, r.err)
		}
	}
	if len(m.funcTypes) != len(m.bodies) {
		return nil, errors.New("function and code sections disagree")
	}
	for _, t := range m.funcTypes {
		if int(t) >= len(m.params) {
			return nil, errors.New("function of an unknown type")
		}
	}
	return m, nil
}

// frameEstimate is the estimate of one frame of a function with the given
// parameters and body (see the comment at the top of this file).
func (m *guardModule) frameEstimate(params uint32, body []byte) uint64 {
	r := &reader{b: body}
	locals := uint64(params)
	for range r.count() {
		locals += uint64(r.count())
		r.byte()
	}
	operands := uint64(len(body)+1) / 2 * uint64(max(m.maxResults, 1))
	return frameFixed + 16*(locals+operands)
}

// isLeaf reports whether body certainly makes no call: none of the bytes of
// call, call_indirect, return_call and return_call_indirect appears in it.
func isLeaf(body []byte) bool {
	for _, c := range body {
		if c >= 0x10 && c <= 0x13 {
			return false
		}
	}
	return true
}

// rewrite assembles the guarded module.
func (m *guardModule) rewrite(header []byte, secs []section, limit uint32) ([]byte, uint32, error) {
	n := uint32(len(m.funcTypes))
	// Leaves run unwrapped when the largest of them fits well under the
	// limit; the others then trap that much earlier.
	frames := make([]uint64, n)
	leaf := make([]bool, n)
	var maxLeaf uint64
	for i, t := range m.funcTypes {
		frames[i] = m.frameEstimate(m.params[t], m.bodies[i])
		if leaf[i] = isLeaf(m.bodies[i]); leaf[i] {
			maxLeaf = max(maxLeaf, frames[i])
		}
	}
	check := limit
	if maxLeaf <= uint64(limit)/4 {
		check = limit - uint32(maxLeaf)
	} else {
		clear(leaf)
	}
	global := m.importGlbs + m.globals
	out := append([]byte{}, header...)
	globalDone := false
	addGlobal := func() {
		if globalDone {
			return
		}
		globalDone = true
		// (global (mut i32) (i32.const 0))
		out = appendSection(out, 6, appendULEB(nil, 1), []byte{0x7f, 0x01, 0x41, 0x00, 0x0b})
	}
	for _, s := range secs {
		switch s.id {
		case 3:
			r := &reader{b: s.body}
			cnt := r.count()
			rest := s.body[r.off:]
			body := appendULEB(nil, uint64(cnt+n))
			body = append(body, rest...)
			for _, t := range m.funcTypes {
				body = appendULEB(body, uint64(t))
			}
			out = appendSection(out, 3, body)
			continue
		case 6:
			r := &reader{b: s.body}
			cnt := r.count()
			out = appendSection(out, 6, appendULEB(nil, uint64(cnt+1)), s.body[r.off:], []byte{0x7f, 0x01, 0x41, 0x00, 0x0b})
			globalDone = true
			continue
		case 7, 8, 9, 10, 11, 12:
			addGlobal()
		}
		switch s.id {
		case 7:
			r := &reader{b: s.body}
			cnt := r.count()
			entry := appendULEB(nil, uint64(len(stackGlobalExport)))
			entry = append(entry, stackGlobalExport...)
			entry = append(entry, 0x03)
			entry = appendULEB(entry, uint64(global))
			out = appendSection(out, 7, appendULEB(nil, uint64(cnt+1)), s.body[r.off:], entry)
		case 10:
			body := appendULEB(nil, uint64(2*n))
			for i, t := range m.funcTypes {
				if leaf[i] {
					// The body stays at its index; the copy below is a stub.
					body = appendULEB(body, uint64(len(m.bodies[i])))
					body = append(body, m.bodies[i]...)
					continue
				}
				wrapper := m.wrapper(global, m.importFns+n+uint32(i), m.params[t], frames[i], check)
				body = appendULEB(body, uint64(len(wrapper)))
				body = append(body, wrapper...)
			}
			for i, b := range m.bodies {
				if leaf[i] {
					// Never called: a leaf keeps its body at its own index.
					b = []byte{0x00, 0x00, 0x0b} // no locals, unreachable
				}
				body = appendULEB(body, uint64(len(b)))
				body = append(body, b...)
			}
			out = appendSection(out, 10, body)
		default:
			out = appendSection(out, s.id, s.body)
		}
	}
	addGlobal()
	return out, check, nil
}

// wrapper is the body that counts a call of function callee against the
// budget: counter += w; if counter > limit trap; call; counter -= w.
func (m *guardModule) wrapper(global, callee, params uint32, w uint64, limit uint32) []byte {
	// An estimate over the whole budget traps at once; clamping keeps it an
	// i32 constant.
	w = min(w, uint64(limit)+1)
	b := []byte{0x00} // no locals
	b = append(b, 0x23)
	b = appendULEB(b, uint64(global))
	b = append(b, 0x41)
	b = appendSLEB(b, int64(w))
	b = append(b, 0x6a, 0x24) // i32.add, global.set
	b = appendULEB(b, uint64(global))
	b = append(b, 0x23)
	b = appendULEB(b, uint64(global))
	b = append(b, 0x41)
	b = appendSLEB(b, int64(limit))
	b = append(b, 0x4b, 0x04, 0x40, 0x00, 0x0b) // i32.gt_u, if, unreachable, end
	for i := range params {
		b = append(b, 0x20)
		b = appendULEB(b, uint64(i))
	}
	b = append(b, 0x10)
	b = appendULEB(b, uint64(callee))
	b = append(b, 0x23)
	b = appendULEB(b, uint64(global))
	b = append(b, 0x41)
	b = appendSLEB(b, int64(w))
	b = append(b, 0x6b, 0x24) // i32.sub, global.set
	b = appendULEB(b, uint64(global))
	return append(b, 0x0b)
}

func appendSection(out []byte, id byte, parts ...[]byte) []byte {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	out = append(out, id)
	out = appendULEB(out, uint64(size))
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func appendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// reader reads the parts of a section; the first problem sticks in err and
// makes every later read return zero.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errors.New("truncated or malformed")
	}
	r.off = len(r.b)
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) count() uint32 {
	v, n := uleb(r.b[r.off:])
	if n == 0 || v > 1<<32-1 {
		r.fail()
		return 0
	}
	r.off += n
	return uint32(v)
}

func (r *reader) skip(n int) { r.take(n) }

func (r *reader) take(n int) []byte {
	if n < 0 || n > len(r.b)-r.off {
		r.fail()
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) limits() {
	flags := r.byte()
	r.count64()
	if flags&1 != 0 {
		r.count64()
	}
}

func (r *reader) count64() {
	_, n := uleb(r.b[r.off:])
	if n == 0 {
		r.fail()
		return
	}
	r.off += n
}
