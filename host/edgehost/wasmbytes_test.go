package edgehost_test

// Hand-assembled minimal WebAssembly modules for containment tests: they
// export the mandatory ABI functions and an edge_sample whose body is
// given in raw bytecode.

func uleb(v uint64) []byte {
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

func sleb(v int64) []byte {
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

func section(id byte, content []byte) []byte {
	return append(append([]byte{id}, uleb(uint64(len(content)))...), content...)
}

func vec(items ...[]byte) []byte {
	b := uleb(uint64(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func name(s string) []byte { return append(uleb(uint64(len(s))), s...) }

func body(code ...byte) []byte {
	b := append([]byte{0x00}, code...) // no locals
	return append(uleb(uint64(len(b))), b...)
}

// plugin returns a module exporting memory (minPages), edge_abi_version
// (returning version), edge_alloc (returning 1024), edge_free (no-op) and
// edge_sample with the given bytecode body (without the final end).
func plugin(version int64, minPages uint64, sample []byte) []byte {
	return pluginImporting(nil, version, minPages, sample)
}

// pluginImporting is plugin with the given function imports of type
// () -> i32 (module, name pairs) before its own functions.
func pluginImporting(imports [][2]string, version int64, minPages uint64, sample []byte) []byte {
	const (
		i32 = 0x7f
		i64 = 0x7e
	)
	types := section(1, vec(
		[]byte{0x60, 0x00, 0x01, i32},           // 0: () -> i32
		[]byte{0x60, 0x01, i32, 0x01, i32},      // 1: (i32) -> i32
		[]byte{0x60, 0x01, i32, 0x00},           // 2: (i32) -> ()
		[]byte{0x60, 0x02, i32, i32, 0x01, i64}, // 3: (i32, i32) -> i64
	))
	var imps [][]byte
	for _, im := range imports {
		imps = append(imps, append(append(name(im[0]), name(im[1])...), 0x00, 0))
	}
	n := byte(len(imports)) // defined functions come after the imports
	funcs := section(3, vec([]byte{0}, []byte{1}, []byte{2}, []byte{3}))
	mem := section(5, vec(append([]byte{0x00}, uleb(minPages)...)))
	exports := section(7, vec(
		append(name("memory"), 0x02, 0),
		append(name("edge_abi_version"), 0x00, n),
		append(name("edge_alloc"), 0x00, n+1),
		append(name("edge_free"), 0x00, n+2),
		append(name("edge_sample"), 0x00, n+3),
	))
	code := section(10, vec(
		body(append(append([]byte{0x41}, sleb(version)...), 0x0b)...),
		body(append(append([]byte{0x41}, sleb(1024)...), 0x0b)...),
		body(0x0b),
		body(append(append([]byte{}, sample...), 0x0b)...),
	))
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	sections := [][]byte{types, funcs, mem, exports, code}
	if len(imps) > 0 {
		sections = append([][]byte{types, section(2, vec(imps...))}, sections[1:]...)
	}
	for _, s := range sections {
		out = append(out, s...)
	}
	return out
}

var (
	// trapBody executes unreachable.
	trapBody = []byte{0x00}
	// loopBody spins forever: loop br 0 end unreachable.
	loopBody = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x00}
	// growBody grows memory by 256 pages until memory.grow fails, then traps:
	// loop (i32.const 256; memory.grow; i32.const -1; i32.ne; br_if 0) end unreachable.
	growBody = []byte{0x03, 0x40, 0x41, 0x80, 0x02, 0x40, 0x00, 0x41, 0x7f, 0x47, 0x0d, 0x00, 0x0b, 0x00}
)
