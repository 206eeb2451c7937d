package plugins

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Limits on the shape of a function, checked before compiling. wazero's
// optimising compiler takes time superlinear in a function's nesting depth
// and in the size of its br_tables (measured here: 4,000 nested loops 0.36 s,
// 100,000 nested blocks in a 300 KB module several minutes; one br_table of
// 100,000 targets 4.6 s), and it cannot be interrupted inside one function.
// Compilers stay far below these limits: the deepest function of a Go 1.26
// build nests 549 levels (the resume-point blocks of its runtime), its
// largest br_table has as many targets, and its largest body is 50 KB; TinyGo
// and Rust builds nest a few dozen levels. A loop counts two levels, since
// instrument puts an if block in each loop body. With these limits one
// function compiles in about a second on a slow core, and the compile
// deadline, which wazero checks between functions, does the rest.
const (
	maxNesting      = 2048
	maxBrTable      = 8192
	maxFunctionBody = 1 << 20
)

var errMalformed = errors.New("malformed code section")

// readModule reads a module file, refusing one larger than limit without
// reading it whole.
func readModule(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bin, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(bin)) > limit {
		return nil, errTooLarge(limit)
	}
	return bin, nil
}

func errTooLarge(limit int64) error {
	return fmt.Errorf("the module is larger than max_module_size (%s)", sizeString(uint64(limit)))
}

// shape is what checkShape measured of one function.
type shape struct {
	depth   int // deepest nesting of block, loop, if and try_table
	brTable int // most targets of one br_table
}

// checkShape reads the code section of a module and refuses a function that
// is too large, nests too deep or has too large a br_table, without
// compiling anything. It follows only the instruction stream (opcodes and
// their immediates); a malformed section is left for wazero to report.
func checkShape(bin []byte) error {
	if len(bin) < 8 {
		return nil
	}
	p := bin[8:]
	for len(p) > 0 {
		id := p[0]
		size, n := uleb(p[1:])
		if n == 0 || uint64(len(p)-1-n) < size {
			return nil
		}
		body := p[1+n : 1+n+int(size)]
		p = p[1+n+int(size):]
		if id != 10 { // the code section
			continue
		}
		count, n := uleb(body)
		if n == 0 {
			return nil
		}
		body = body[n:]
		for i := uint64(0); i < count; i++ {
			size, n := uleb(body)
			if n == 0 || uint64(len(body)-n) < size {
				return nil
			}
			fn := body[n : n+int(size)]
			body = body[n+int(size):]
			if len(fn) > maxFunctionBody {
				return fmt.Errorf("function %d has a body of %s, over the limit of %s",
					i, sizeString(uint64(len(fn))), sizeString(maxFunctionBody))
			}
			sh, err := functionShape(fn)
			switch {
			case sh.depth > maxNesting && err != nil:
				return fmt.Errorf("function %d: %v, and what follows could nest deeper than %d levels", i, err, maxNesting)
			case sh.depth > maxNesting:
				return fmt.Errorf("function %d nests %d levels deep, over the limit of %d", i, sh.depth, maxNesting)
			case sh.brTable > maxBrTable:
				return fmt.Errorf("function %d has a br_table of %d targets, over the limit of %d", i, sh.brTable, maxBrTable)
			}
		}
		return nil
	}
	return nil
}

// functionShape measures one function body (locals, then instructions).
// When it meets an instruction it does not know, it reports as depth the
// worst the rest of the body could nest (two bytes per level) with an error,
// so an unknown instruction cannot hide a deep nest.
func functionShape(fn []byte) (shape, error) {
	var sh shape
	r := codeReader{b: fn}
	groups := r.count()
	for i := uint64(0); i < groups && !r.bad; i++ {
		r.uleb()  // count
		r.skip(1) // type
	}
	// A loop weighs two levels: instrument adds an if block in its body.
	depth, weights := 0, make([]byte, 0, 64)
	for !r.bad && r.i < len(r.b) {
		op := r.b[r.i]
		r.i++
		switch op {
		case 0x02, 0x04, 0x1f: // block, if, try_table
			depth++
			weights = append(weights, 1)
		case 0x03: // loop
			depth += 2
			weights = append(weights, 2)
		case 0x0b: // end
			if n := len(weights); n > 0 {
				depth -= int(weights[n-1])
				weights = weights[:n-1]
			}
		case 0x0e: // br_table
			n, _ := uleb(r.b[r.i:])
			sh.brTable = max(sh.brTable, int(min(n, 1<<30)))
		}
		if !r.instruction(op) {
			sh.depth = max(sh.depth, depth+(len(r.b)-r.i)/2)
			return sh, fmt.Errorf("unknown instruction 0x%02x at offset %d", op, r.i-1)
		}
		sh.depth = max(sh.depth, depth)
	}
	if r.bad {
		return sh, errMalformed
	}
	return sh, nil
}

// codeReader walks a function body; bad is set when it runs past the end.
type codeReader struct {
	b   []byte
	i   int
	bad bool
}

func (r *codeReader) byte() byte {
	if r.i >= len(r.b) {
		r.bad = true
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *codeReader) skip(n int) {
	if len(r.b)-r.i < n {
		r.bad, r.i = true, len(r.b)
		return
	}
	r.i += n
}

func (r *codeReader) uleb() uint64 {
	v, n := uleb(r.b[min(r.i, len(r.b)):])
	if n == 0 {
		r.bad, r.i = true, len(r.b)
		return 0
	}
	r.i += n
	return v
}

// sleb skips a signed LEB128 number (block types, constants).
func (r *codeReader) sleb() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.bad = true
}

// instruction skips the immediates of the instruction whose opcode op was
// just read, and reports false when it does not know op.
func (r *codeReader) instruction(op byte) bool {
	switch {
	case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
		r.sleb()
	case op == 0x1f: // try_table
		r.sleb()
		n := r.uleb()
		for i := uint64(0); i < n && !r.bad; i++ {
			if r.byte() < 2 {
				r.uleb() // tag
			}
			r.uleb() // label
		}
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0a, op == 0x0b, op == 0x0f,
		op == 0x1a, op == 0x1b, op == 0xd1,
		op >= 0x45 && op <= 0xc4:
	case op == 0x08, op == 0x0c, op == 0x0d, op == 0x10, op == 0x12,
		op >= 0x20 && op <= 0x26, op == 0xd2:
		r.uleb()
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect
		r.uleb()
		r.uleb()
	case op == 0x0e: // br_table
		n := r.uleb()
		for i := uint64(0); i <= n && !r.bad; i++ {
			r.uleb()
		}
	case op == 0x1c: // select t*
		r.skip(int(min(r.uleb(), uint64(len(r.b)))))
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f, op == 0x40, op == 0xd0: // memory.size, memory.grow, ref.null
		r.skip(1)
	case op == 0x41 || op == 0x42:
		r.sleb()
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xfc:
		r.prefixFC()
	case op == 0xfd:
		r.prefixFD()
	case op == 0xfe:
		if r.uleb() == 0x03 { // atomic.fence
			r.skip(1)
		} else {
			r.memarg()
		}
	default:
		return false
	}
	return true
}

// count reads the length of a vector, capped at the bytes left (every
// element takes at least one), so that a forged length cannot make a loop
// over it run long.
func (r *codeReader) count() uint64 {
	return min(r.uleb(), uint64(len(r.b)-min(r.i, len(r.b))))
}

// name skips a length-prefixed name and returns it.
func (r *codeReader) name() string {
	n := r.uleb()
	if r.bad || uint64(len(r.b)-r.i) < n {
		r.bad, r.i = true, len(r.b)
		return ""
	}
	r.i += int(n)
	return string(r.b[r.i-int(n) : r.i])
}

// limits skips table or memory limits (flags, minimum, maximum if flagged).
func (r *codeReader) limits() {
	flags := r.byte()
	r.uleb()
	if flags&1 != 0 {
		r.uleb()
	}
}

func (r *codeReader) err() error {
	if r.bad {
		return errMalformed
	}
	return nil
}

func (r *codeReader) memarg() {
	r.uleb() // alignment (and memory index flag)
	r.uleb() // offset
}

// prefixFC follows the 0xfc instructions: saturating truncations, bulk
// memory and table operations.
func (r *codeReader) prefixFC() {
	switch sub := r.uleb(); {
	case sub <= 7:
	case sub == 8: // memory.init
		r.uleb()
		r.skip(1)
	case sub == 10: // memory.copy
		r.skip(2)
	case sub == 11: // memory.fill
		r.skip(1)
	case sub == 12, sub == 14: // table.init, table.copy
		r.uleb()
		r.uleb()
	default: // data.drop, elem.drop, table.grow/size/fill
		r.uleb()
	}
}

// prefixFD follows the SIMD instructions.
func (r *codeReader) prefixFD() {
	switch sub := r.uleb(); {
	case sub <= 11 || sub == 92 || sub == 93: // loads, store, load zero
		r.memarg()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		r.skip(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.skip(1)
	case sub >= 84 && sub <= 91: // load and store lane
		r.memarg()
		r.skip(1)
	}
}
