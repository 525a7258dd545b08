package edgehost

import (
	"bytes"
	"errors"
	"fmt"
)

// Deadlines without wazero's CloseOnContextDone.
//
// wazero enforces context deadlines (RuntimeConfig.WithCloseOnContextDone)
// by making every loop back-edge of the guest call out of the compiled code
// into Go to check whether the module was closed. Go's wasm output runs
// nearly all its code inside loops (each function is a loop around a jump
// table of resume points), so that check cost the Go edge 2–3× everywhere:
// a sampling step took 112 ms of CPU with it and 40 ms without.
//
// instrument instead rewrites a module so that every loop header reads an
// exported mutable i32 global, interruptExport, and executes `unreachable`
// when it is non-zero: one load and one branch, no exit to Go. The host
// sets the global from another goroutine when a call's deadline passes; the
// guest traps at its next loop iteration, and classify reports the deadline
// (it looks at the context before the trap). Modules the rewriter does not
// understand (opcodes outside the core set it decodes, a start section, a
// name clash) return an error and run under CloseOnContextDone as before.

// interruptExport names the global that instrument adds and exports.
const interruptExport = "edgeseek_interrupt"

// errNotInstrumentable is wrapped by instrument's errors.
var errNotInstrumentable = errors.New("module cannot be instrumented")

// Section ids of the WebAssembly binary format.
const (
	secCustom    = 0
	secImport    = 2
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secCode      = 10
	secDataCount = 12
)

// wreader reads the WebAssembly binary encoding.
type wreader struct {
	b   []byte
	off int
	err error
}

func (r *wreader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errNotInstrumentable}, args...)...)
	}
	r.off = len(r.b)
}

func (r *wreader) byte() byte {
	if r.off >= len(r.b) {
		r.fail("truncated at byte %d", r.off)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// u32 reads an unsigned LEB128 of at most 5 bytes.
func (r *wreader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail("LEB128 too long at byte %d", r.off)
	return 0
}

// sleb skips a signed LEB128 of at most max bytes.
func (r *wreader) sleb(max int) {
	for range max {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail("LEB128 too long at byte %d", r.off)
}

func (r *wreader) skip(n int) {
	if n < 0 || n > len(r.b)-r.off {
		r.fail("truncated at byte %d", r.off)
		return
	}
	r.off += n
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}

// section is one section of a module: its id and payload.
type section struct {
	id   byte
	data []byte
}

// instrument returns a copy of the module wasm with the interrupt check at
// every loop header and the exported global interruptExport (see above).
func instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:8], []byte("\x00asm\x01\x00\x00\x00")) {
		return nil, fmt.Errorf("%w: not a version 1 module", errNotInstrumentable)
	}
	r := &wreader{b: wasm, off: 8}
	var secs []section
	for r.off < len(r.b) && r.err == nil {
		id := r.byte()
		n := r.u32()
		start := r.off
		r.skip(int(n))
		if r.err == nil {
			secs = append(secs, section{id, wasm[start:r.off]})
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	importedGlobals, ownGlobals := uint32(0), uint32(0)
	hasGlobal, hasExport := false, false
	for _, s := range secs {
		switch s.id {
		case secStart:
			// A start function runs inside InstantiateModule, before the
			// host could arm the interrupt.
			return nil, fmt.Errorf("%w: it has a start function", errNotInstrumentable)
		case secImport:
			g, err := countImportedGlobals(s.data)
			if err != nil {
				return nil, err
			}
			importedGlobals = g
		case secGlobal:
			hasGlobal = true
			sr := &wreader{b: s.data}
			ownGlobals = sr.u32()
			if sr.err != nil {
				return nil, sr.err
			}
		case secExport:
			hasExport = true
			if bytes.Contains(s.data, []byte(interruptExport)) {
				return nil, fmt.Errorf("%w: it already exports %s", errNotInstrumentable, interruptExport)
			}
		}
	}
	gidx := importedGlobals + ownGlobals
	// (global (mut i32) (i32.const 0))
	newGlobal := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b}
	newExport := appendName(nil, interruptExport)
	newExport = append(newExport, 0x03)
	newExport = appendU32(newExport, gidx)

	out := append([]byte(nil), wasm[:8]...)
	emit := func(id byte, data []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(data)))
		out = append(out, data...)
	}
	// after reports whether a section with this id comes after the global
	// (or export) section in the required order.
	afterGlobal := func(id byte) bool {
		return id == secExport || id == secStart || id == 9 || id == secDataCount || id == secCode || id == 11
	}
	afterExport := func(id byte) bool { return id != secExport && afterGlobal(id) }
	for _, s := range secs {
		if !hasGlobal && s.id != secCustom && afterGlobal(s.id) {
			emit(secGlobal, append([]byte{1}, newGlobal...))
			hasGlobal = true
		}
		if !hasExport && s.id != secCustom && afterExport(s.id) {
			emit(secExport, append([]byte{1}, newExport...))
			hasExport = true
		}
		switch s.id {
		case secGlobal:
			sr := &wreader{b: s.data}
			n := sr.u32()
			data := appendU32(nil, n+1)
			data = append(data, s.data[sr.off:]...)
			emit(secGlobal, append(data, newGlobal...))
		case secExport:
			sr := &wreader{b: s.data}
			n := sr.u32()
			data := appendU32(nil, n+1)
			data = append(data, s.data[sr.off:]...)
			emit(secExport, append(data, newExport...))
		case secCode:
			code, err := instrumentCode(s.data, gidx)
			if err != nil {
				return nil, err
			}
			emit(secCode, code)
		default:
			emit(s.id, s.data)
		}
	}
	if !hasGlobal {
		emit(secGlobal, append([]byte{1}, newGlobal...))
	}
	if !hasExport {
		emit(secExport, append([]byte{1}, newExport...))
	}
	return out, nil
}

// countImportedGlobals returns how many globals the import section imports.
func countImportedGlobals(b []byte) (uint32, error) {
	r := &wreader{b: b}
	n := r.u32()
	globals := uint32(0)
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.skip(int(r.u32())) // module
		r.skip(int(r.u32())) // name
		switch kind := r.byte(); kind {
		case 0x00: // function: type index
			r.u32()
		case 0x01: // table: reftype, limits
			r.byte()
			skipLimits(r)
		case 0x02: // memory: limits
			skipLimits(r)
		case 0x03: // global: valtype, mutability
			r.byte()
			r.byte()
			globals++
		default:
			r.fail("import kind %#x", kind)
		}
	}
	return globals, r.err
}

func skipLimits(r *wreader) {
	flags := r.byte()
	if flags > 1 {
		r.fail("limits flags %#x (shared or 64-bit memory)", flags)
		return
	}
	r.u32()
	if flags == 1 {
		r.u32()
	}
}

// instrumentCode rewrites the code section: after each loop's block type
// it inserts `global.get gidx; if; unreachable; end`.
func instrumentCode(b []byte, gidx uint32) ([]byte, error) {
	check := []byte{0x23}
	check = appendU32(check, gidx)
	check = append(check, 0x04, 0x40, 0x00, 0x0b)

	r := &wreader{b: b}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(b)+len(b)/8), n)
	var body []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := int(r.u32())
		end := r.off + size
		if size < 0 || end > len(b) {
			r.fail("function body %d overruns the section", i)
			break
		}
		fr := &wreader{b: b[:end], off: r.off}
		// Locals: a vector of (count, valtype).
		for nl := fr.u32(); nl > 0 && fr.err == nil; nl-- {
			fr.u32()
			fr.byte()
		}
		body = append(body[:0], b[r.off:fr.off]...)
		for fr.off < end && fr.err == nil {
			start := fr.off
			op := fr.byte()
			isLoop := op == 0x03
			skipImmediates(fr, op)
			body = append(body, b[start:fr.off]...)
			if isLoop {
				body = append(body, check...)
			}
		}
		if fr.err != nil {
			return nil, fr.err
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
		r.off = end
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes in the code section", errNotInstrumentable, len(b)-r.off)
	}
	return out, nil
}

// skipBlockType skips a block type: 0x40, a value type, or a type index
// (a signed LEB128 of at most 33 bits).
func skipBlockType(r *wreader) {
	if r.off >= len(r.b) {
		r.fail("truncated block type")
		return
	}
	switch c := r.b[r.off]; {
	case c == 0x40 || (c >= 0x7b && c <= 0x7f) || c == 0x70 || c == 0x6f:
		r.off++
	default:
		r.sleb(5)
	}
}

// skipMemarg skips a memory access's alignment and offset.
func skipMemarg(r *wreader) {
	if align := r.u32(); align >= 64 {
		r.fail("multi-memory access")
		return
	}
	r.u32()
}

// skipImmediates skips the immediates of opcode op: the core instruction
// set with sign extension, non-trapping conversions, bulk memory,
// reference types and tail calls. Other opcodes (SIMD, threads, exception
// handling, GC) make the module fall back to CloseOnContextDone.
func skipImmediates(r *wreader, op byte) {
	switch {
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x1a || op == 0x1b || op == 0xd1:
	case op >= 0x45 && op <= 0xc4:
	case op == 0x02 || op == 0x03 || op == 0x04:
		skipBlockType(r)
	case op == 0x0c || op == 0x0d || op == 0x10 || op == 0x12 || (op >= 0x20 && op <= 0x26) || op == 0xd2:
		r.u32()
	case op == 0x0e:
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x11 || op == 0x13:
		r.u32()
		r.u32()
	case op == 0x1c:
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.byte()
		}
	case op >= 0x28 && op <= 0x3e:
		skipMemarg(r)
	case op == 0x3f || op == 0x40:
		r.u32()
	case op == 0x41:
		r.sleb(5)
	case op == 0x42:
		r.sleb(10)
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xd0:
		r.byte()
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7:
		case sub == 8 || sub == 10 || sub == 12 || sub == 14:
			r.u32()
			r.u32()
		case sub == 9 || sub == 11 || sub == 13 || (sub >= 15 && sub <= 17):
			r.u32()
		default:
			r.fail("opcode 0xfc %d", sub)
		}
	default:
		r.fail("opcode %#x", op)
	}
}
