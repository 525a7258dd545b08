package edgehost

import (
	"bytes"
	"errors"
	"fmt"
)

// Deadlines without wazero's CloseOnContextDone.
//
// wazero enforces context deadlines (RuntimeConfig.WithCloseOnContextDone)
// by making every loop back-edge of the guest leave the compiled code for Go
// to check whether the module was closed. Go's wasm output runs nearly all
// its code inside loops (each function is a loop around a jump table of
// resume points), so that check cost the Go edge 2–3× everywhere: a
// sampling step took 112 ms of CPU with it and 40 ms without.
//
// instrument instead rewrites a module so that every loop header counts
// down a private i32 global and, once every pollInterval iterations, calls
// the host import pollModule.pollName. The host function returns non-zero
// when the call's context is done, and the guest then executes
// `unreachable`; classify reports the deadline (it looks at the context
// before the trap). The common path is a load, a decrement, a store and a
// branch, with no exit to Go.
//
// The call out is also what makes this safe. wazero's compiled code is not
// a Go safe point: a guest loop that never leaves it would stall a garbage
// collection's stop-the-world (and with it every goroutine of the host,
// including the timer that would end the call). An earlier version polled
// an interrupt global set by such a timer and deadlocked exactly so. Calling
// into Go every pollInterval iterations bounds that stall to microseconds.
//
// Adding an import shifts the index of every function the module defines,
// so instrument renumbers calls, ref.func, exports, the start function,
// element segments and the name section. It decodes the WebAssembly 2.0
// instruction set, SIMD included. Modules it does not understand (other
// opcodes, an import of pollModule) return an error and run under
// CloseOnContextDone as before.

const (
	// pollModule and pollName name the host function instrumented modules
	// import: () → i32, non-zero when the current call must stop.
	pollModule = "edgeseek_interrupt"
	pollName   = "poll"
	// pollInterval is how many loop iterations run between two polls: a
	// few hundred microseconds of Go-compiled guest code, far below any
	// deadline, and a negligible cost per iteration.
	pollInterval = 1 << 14
)

// globalExportPrefix starts the names under which instrument exports the
// module's mutable globals, so that an instance can be snapshotted and
// restored (see Snapshot).
const globalExportPrefix = "edgeseek_global_"

func globalExportName(idx uint32) string { return fmt.Sprintf("%s%d", globalExportPrefix, idx) }

// errNotInstrumentable is wrapped by instrument's errors.
var errNotInstrumentable = errors.New("module cannot be instrumented")

// Section ids of the WebAssembly binary format.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secDataCount = 12
)

// sectionOrder is the position a non-custom section must take in a module.
func sectionOrder(id byte) int {
	switch id {
	case 13: // tag (exception handling) sits between memory and global
		return 6
	case secGlobal, secExport, secStart, secElement:
		return int(id) + 1
	case secDataCount:
		return 11
	case secCode:
		return 12
	case 11: // data
		return 13
	}
	return int(id)
}

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

// name reads a length-prefixed UTF-8 name.
func (r *wreader) name() []byte {
	n := int(r.u32())
	start := r.off
	r.skip(n)
	if r.err != nil {
		return nil
	}
	return r.b[start:r.off]
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendS32 appends a signed LEB128.
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}

// appendToVec returns a copy of the vector vec (count, items, then
// anything after them) with item added as its last element.
func appendToVec(vec []byte, item []byte) ([]byte, error) {
	r := &wreader{b: vec}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	out := appendU32(nil, n+1)
	out = append(out, vec[r.off:]...)
	return append(out, item...), nil
}

// section is one section of a module: its id and payload.
type section struct {
	id   byte
	data []byte
}

// funcMap renumbers function indices after the poll import is inserted at
// index at (the first index of the module's own functions).
type funcMap struct{ at uint32 }

func (m funcMap) of(f uint32) uint32 {
	if f >= m.at {
		return f + 1
	}
	return f
}

// instrument returns a copy of the module wasm that imports
// pollModule.pollName and polls it from every loop header (see above).
func instrument(wasm []byte) ([]byte, error) {
	out, _, err := instrumentModule(wasm)
	return out, err
}

// instrumentModule is instrument that also returns the names under which
// the module's mutable globals are exported.
func instrumentModule(wasm []byte) ([]byte, []string, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:8], []byte("\x00asm\x01\x00\x00\x00")) {
		return nil, nil, fmt.Errorf("%w: not a version 1 module", errNotInstrumentable)
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
		return nil, nil, r.err
	}
	var types, funcImports, globalImports, globals uint32
	var mutable []uint32 // the module's own mutable globals
	for _, s := range secs {
		sr := &wreader{b: s.data}
		switch s.id {
		case secType:
			types = sr.u32()
		case secImport:
			f, g, err := countImports(s.data)
			if err != nil {
				return nil, nil, err
			}
			funcImports, globalImports = f, g
		case secExport:
			if bytes.Contains(s.data, []byte(globalExportPrefix)) {
				return nil, nil, fmt.Errorf("%w: it exports a name starting with %s", errNotInstrumentable, globalExportPrefix)
			}
		}
		if sr.err != nil {
			return nil, nil, sr.err
		}
	}
	for _, s := range secs {
		if s.id == secGlobal {
			var err error
			if globals, mutable, err = mutableGlobals(s.data, globalImports); err != nil {
				return nil, nil, err
			}
		}
	}
	fm := funcMap{at: funcImports}
	counter := globalImports + globals
	// Exports of the mutable globals, for snapshots (see Snapshot).
	var newExports [][]byte
	var globalNames []string
	for _, g := range mutable {
		globalNames = append(globalNames, globalExportName(g))
		e := appendName(nil, globalExportName(g))
		newExports = append(newExports, appendU32(append(e, 0x03), g))
	}
	// The new type () → i32, the poll import and the counter global.
	newType := []byte{0x60, 0x00, 0x01, 0x7f}
	newImport := appendName(appendName(nil, pollModule), pollName)
	newImport = append(newImport, 0x00)
	newImport = appendU32(newImport, types)
	newGlobal := appendS32([]byte{0x7f, 0x01, 0x41}, pollInterval)
	newGlobal = append(newGlobal, 0x0b)
	added := []section{{secType, newType}, {secImport, newImport}, {secGlobal, newGlobal}}
	if len(newExports) > 0 {
		added = append(added, section{secExport, nil})
	}
	done := map[byte]bool{}

	out := append([]byte(nil), wasm[:8]...)
	emit := func(id byte, data []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(data)))
		out = append(out, data...)
	}
	// emitMissing writes the sections the module lacks whose place comes
	// before order.
	emitMissing := func(order int) {
		for _, a := range added {
			if !done[a.id] && sectionOrder(a.id) < order {
				if a.id == secExport {
					emit(a.id, bytes.Join(append([][]byte{appendU32(nil, uint32(len(newExports)))}, newExports...), nil))
				} else {
					emit(a.id, append([]byte{1}, a.data...))
				}
				done[a.id] = true
			}
		}
	}
	for _, s := range secs {
		if s.id != secCustom {
			emitMissing(sectionOrder(s.id))
		}
		var data []byte
		var err error
		switch s.id {
		case secType:
			data, err = appendToVec(s.data, newType)
		case secImport:
			data, err = appendToVec(s.data, newImport)
		case secGlobal:
			if data, err = remapGlobals(s.data, fm); err == nil {
				data, err = appendToVec(data, newGlobal)
			}
		case secExport:
			data, err = remapExports(s.data, fm, newExports)
		case secStart:
			sr := &wreader{b: s.data}
			data = appendU32(nil, fm.of(sr.u32()))
			err = sr.err
		case secElement:
			data, err = remapElements(s.data, fm)
		case secCode:
			data, err = instrumentCode(s.data, fm, counter)
		case secCustom:
			data = remapNameSection(s.data, fm)
		default:
			data = s.data
		}
		if err != nil {
			return nil, nil, err
		}
		if s.id == secType || s.id == secImport || s.id == secGlobal || s.id == secExport {
			done[s.id] = true
		}
		if data != nil {
			emit(s.id, data)
		}
	}
	emitMissing(1 << 30)
	return out, globalNames, nil
}

// countImports returns how many functions and globals the import section
// imports. A module that already imports from pollModule is refused.
func countImports(b []byte) (funcs, globals uint32, err error) {
	r := &wreader{b: b}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		if string(r.name()) == pollModule {
			r.fail("it already imports from %s", pollModule)
		}
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // function: type index
			r.u32()
			funcs++
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
	return funcs, globals, r.err
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

// remapConstExpr copies a constant expression up to and including its end,
// renumbering ref.func.
func remapConstExpr(r *wreader, out []byte, fm funcMap) []byte {
	for r.err == nil {
		start := r.off
		op := r.byte()
		switch op {
		case 0x0b:
			return append(out, op)
		case 0xd2:
			out = appendU32(append(out, op), fm.of(r.u32()))
		case 0x02, 0x03, 0x04:
			r.fail("block in a constant expression")
		default:
			skipImmediates(r, op)
			out = append(out, r.b[start:r.off]...)
		}
	}
	return out
}

// remapGlobals renumbers ref.func in the global section's initializers.
func remapGlobals(b []byte, fm funcMap) ([]byte, error) {
	r := &wreader{b: b}
	n := r.u32()
	out := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		out = append(out, r.byte(), r.byte()) // valtype, mutability
		out = remapConstExpr(r, out, fm)
	}
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes in the global section", len(b)-r.off)
	}
	return out, r.err
}

// mutableGlobals returns how many globals the global section defines and
// the indices of the mutable ones (imported globals come first).
func mutableGlobals(b []byte, imported uint32) (n uint32, mutable []uint32, err error) {
	r := &wreader{b: b}
	n = r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.byte() // valtype
		if r.byte() == 0x01 {
			mutable = append(mutable, imported+i)
		}
		remapConstExpr(r, nil, funcMap{})
	}
	return n, mutable, r.err
}

// remapExports renumbers exported functions and appends extra exports.
func remapExports(b []byte, fm funcMap, extra [][]byte) ([]byte, error) {
	r := &wreader{b: b}
	n := r.u32()
	out := appendU32(nil, n+uint32(len(extra)))
	for i := uint32(0); i < n && r.err == nil; i++ {
		nm := r.name()
		kind := r.byte()
		idx := r.u32()
		if kind == 0x00 {
			idx = fm.of(idx)
		}
		out = append(appendU32(out, uint32(len(nm))), nm...)
		out = appendU32(append(out, kind), idx)
	}
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes in the export section", len(b)-r.off)
	}
	for _, e := range extra {
		out = append(out, e...)
	}
	return out, r.err
}

// remapElements renumbers the functions of element segments, in all eight
// encodings (flags 0–7: active/passive/declarative, function indices or
// expressions, implicit or explicit table).
func remapElements(b []byte, fm funcMap) ([]byte, error) {
	r := &wreader{b: b}
	n := r.u32()
	out := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		flags := r.u32()
		if flags > 7 {
			r.fail("element segment flags %d", flags)
			break
		}
		out = appendU32(out, flags)
		if flags&2 != 0 && flags&1 == 0 { // explicit table index
			out = appendU32(out, r.u32())
		}
		if flags&1 == 0 { // active: offset expression
			out = remapConstExpr(r, out, fm)
		}
		if flags&3 != 0 { // elemkind or reftype byte
			out = append(out, r.byte())
		}
		m := r.u32()
		out = appendU32(out, m)
		for j := uint32(0); j < m && r.err == nil; j++ {
			if flags&4 != 0 {
				out = remapConstExpr(r, out, fm)
			} else {
				out = appendU32(out, fm.of(r.u32()))
			}
		}
	}
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes in the element section", len(b)-r.off)
	}
	return out, r.err
}

// remapNameSection renumbers the function, local and label names of a
// "name" custom section; other custom sections are returned as they are.
// A name section it cannot parse is dropped (nil): names only decorate
// stack traces.
func remapNameSection(b []byte, fm funcMap) []byte {
	r := &wreader{b: b}
	if string(r.name()) != "name" || r.err != nil {
		return b
	}
	out := append([]byte(nil), b[:r.off]...)
	for r.off < len(b) && r.err == nil {
		id := r.byte()
		size := int(r.u32())
		end := r.off + size
		if r.err != nil || size > len(b)-r.off {
			return nil
		}
		sub := b[r.off:end]
		if id >= 1 && id <= 3 { // function names; local and label names
			sr := &wreader{b: sub}
			n := sr.u32()
			data := appendU32(nil, n)
			for i := uint32(0); i < n && sr.err == nil; i++ {
				data = appendU32(data, fm.of(sr.u32()))
				start := sr.off
				if id == 1 {
					sr.name()
				} else {
					for m := sr.u32(); m > 0 && sr.err == nil; m-- {
						sr.u32()
						sr.name()
					}
				}
				data = append(data, sub[start:sr.off]...)
			}
			if sr.err != nil || sr.off != len(sub) {
				return nil
			}
			sub = data
		}
		out = appendU32(append(out, id), uint32(len(sub)))
		out = append(out, sub...)
		r.off = end
	}
	if r.err != nil {
		return nil
	}
	return out
}

// pollCheck is the code instrumentCode puts after each loop's block type:
//
//	global.get $counter
//	i32.eqz
//	if
//	  call $poll
//	  if unreachable end
//	  i32.const pollInterval
//	  global.set $counter
//	end
//	global.get $counter
//	i32.const 1
//	i32.sub
//	global.set $counter
func pollCheck(poll, counter uint32) []byte {
	c := appendU32([]byte{0x23}, counter)
	c = append(c, 0x45, 0x04, 0x40, 0x10)
	c = appendU32(c, poll)
	c = append(c, 0x04, 0x40, 0x00, 0x0b, 0x41)
	c = appendS32(c, pollInterval)
	c = appendU32(append(c, 0x24), counter)
	c = append(c, 0x0b, 0x23)
	c = appendU32(c, counter)
	c = append(c, 0x41, 0x01, 0x6b, 0x24)
	return appendU32(c, counter)
}

// instrumentCode rewrites the code section: function indices renumbered
// (call, return_call, ref.func) and pollCheck after every loop's block
// type.
func instrumentCode(b []byte, fm funcMap, counter uint32) ([]byte, error) {
	check := pollCheck(fm.at, counter)
	r := &wreader{b: b}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(b)+len(b)/4), n)
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
			switch op := fr.byte(); op {
			case 0x10, 0x12, 0xd2: // call, return_call, ref.func
				body = appendU32(append(body, op), fm.of(fr.u32()))
			case 0x03: // loop
				skipBlockType(fr)
				body = append(body, b[start:fr.off]...)
				body = append(body, check...)
			default:
				skipImmediates(fr, op)
				body = append(body, b[start:fr.off]...)
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
	case op == 0xfd: // SIMD (fixed-width, and relaxed up to 0x113)
		switch sub := r.u32(); {
		case sub <= 0x0b || sub == 0x5c || sub == 0x5d: // loads, store, load_zero
			skipMemarg(r)
		case sub == 0x0c || sub == 0x0d: // v128.const, i8x16.shuffle
			r.skip(16)
		case sub >= 0x15 && sub <= 0x22: // extract_lane, replace_lane
			r.byte()
		case sub >= 0x54 && sub <= 0x5b: // load_lane, store_lane
			skipMemarg(r)
			r.byte()
		case sub <= 0x113: // no immediates
		default:
			r.fail("opcode 0xfd %d", sub)
		}
	default:
		r.fail("opcode %#x", op)
	}
}
