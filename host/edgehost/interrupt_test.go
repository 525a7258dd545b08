package edgehost

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// tinyModule is (module (func) (global i32 (i32.const 7)) (export "f" (func 0)))
// with the given code body bytes (locals vector included, final end
// included) and extra sections after the function section.
func tinyModule(code []byte, extra ...byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, 1, 4, 1, 0x60, 0, 0) // type: () -> ()
	m = append(m, 3, 2, 1, 0)          // func 0: type 0
	m = append(m, extra...)
	m = append(m, 6, 6, 1, 0x7f, 0x00, 0x41, 0x07, 0x0b) // global 0: const i32 7
	m = append(m, 7, 5, 1, 1, 'f', 0x00, 0x00)           // export "f" func 0
	body := append([]byte{byte(len(code))}, code...)
	m = append(m, 10, byte(len(body)+1), 1)
	return append(m, body...)
}

func sect(id byte, data []byte) []byte {
	return append(appendU32([]byte{id}, uint32(len(data))), data...)
}

func TestInstrumentInsertsPollAfterEveryLoop(t *testing.T) {
	// locals: none; loop (block type empty) br 0 end; loop i32 ... end end
	code := []byte{0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x03, 0x7f, 0x41, 0x01, 0x0b, 0x1a, 0x0b}
	got, err := instrument(tinyModule(code))
	if err != nil {
		t.Fatal(err)
	}
	// The poll import becomes function 0, f function 1; the counter is
	// global 1.
	check := []byte{
		0x23, 0x01, 0x45, 0x04, 0x40, // global.get 1; i32.eqz; if
		0x10, 0x00, 0x04, 0x40, 0x00, 0x0b, // call 0; if unreachable end
		0x41, 0x80, 0x80, 0x01, 0x24, 0x01, 0x0b, // i32.const 16384; global.set 1; end
		0x23, 0x01, 0x41, 0x01, 0x6b, 0x24, 0x01, // global.get 1; i32.const 1; i32.sub; global.set 1
	}
	wantCode := []byte{0x00, 0x03, 0x40}
	wantCode = append(wantCode, check...)
	wantCode = append(wantCode, 0x0c, 0x00, 0x0b, 0x03, 0x7f)
	wantCode = append(wantCode, check...)
	wantCode = append(wantCode, 0x41, 0x01, 0x0b, 0x1a, 0x0b)
	want := []byte("\x00asm\x01\x00\x00\x00")
	want = append(want, sect(1, []byte{2, 0x60, 0, 0, 0x60, 0, 1, 0x7f})...)
	imp := appendName(appendName([]byte{1}, pollModule), pollName)
	want = append(want, sect(2, append(imp, 0x00, 0x01))...)
	want = append(want, 3, 2, 1, 0)
	want = append(want, sect(6, []byte{2, 0x7f, 0x00, 0x41, 0x07, 0x0b, 0x7f, 0x01, 0x41, 0x80, 0x80, 0x01, 0x0b})...)
	want = append(want, sect(7, []byte{1, 1, 'f', 0x00, 0x01})...)
	want = append(want, sect(10, append([]byte{1, byte(len(wantCode))}, wantCode...))...)
	if !bytes.Equal(got, want) {
		t.Fatalf("instrument:\n got %x\nwant %x", got, want)
	}
}

// renumberModule imports env.seven and defines add1 (i32 → i32) and run
// (→ i32), which calls seven directly, add1 directly and through a table
// filled by an active element segment, takes ref.func of add1, and loops
// three times; a name section names all three functions and run's local.
//
//	run = add1(add1(seven())) + loop count (3) = 9 + 3 = 12
func renumberModule() []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, sect(1, []byte{2, 0x60, 0, 1, 0x7f, 0x60, 1, 0x7f, 1, 0x7f})...)
	m = append(m, sect(2, append(appendName(appendName([]byte{1}, "env"), "seven"), 0x00, 0x00))...)
	m = append(m, sect(3, []byte{2, 1, 0})...)          // add1: type 1, run: type 0
	m = append(m, sect(4, []byte{1, 0x70, 0x00, 1})...) // table funcref min 1
	m = append(m, sect(7, []byte{1, 3, 'r', 'u', 'n', 0x00, 2})...)
	m = append(m, sect(9, []byte{1, 0x00, 0x41, 0x00, 0x0b, 1, 1})...) // table[0] = add1
	add1 := []byte{0x00, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x0b}
	run := []byte{
		0x01, 0x01, 0x7f, // one i32 local: the loop counter
		0x10, 0x00, // call seven
		0x10, 0x01, // call add1
		0x41, 0x00, 0x11, 0x01, 0x00, // i32.const 0; call_indirect type 1 table 0
		0xd2, 0x01, 0x1a, // ref.func add1; drop
		0x03, 0x40, // loop
		0x20, 0x00, 0x41, 0x01, 0x6a, 0x22, 0x00, // local.get 0; +1; local.tee 0
		0x41, 0x03, 0x48, 0x0d, 0x00, // i32.const 3; i32.lt_s; br_if 0
		0x0b,
		0x20, 0x00, 0x6a, 0x0b, // + local 0
	}
	code := []byte{2, byte(len(add1))}
	code = append(code, add1...)
	code = append(append(code, byte(len(run))), run...)
	m = append(m, sect(10, code)...)
	// name section: function names (1) and local names (2).
	fnames := []byte{3, 0}
	fnames = appendName(fnames, "seven")
	fnames = appendName(append(fnames, 1), "add1")
	fnames = appendName(append(fnames, 2), "run")
	lnames := appendName([]byte{1, 2, 1, 0}, "count")
	names := appendName(nil, "name")
	names = append(append(names, 1), appendU32(nil, uint32(len(fnames)))...)
	names = append(names, fnames...)
	names = append(append(names, 2), appendU32(nil, uint32(len(lnames)))...)
	names = append(names, lnames...)
	return append(m, sect(0, names)...)
}

func TestInstrumentRenumbersFunctions(t *testing.T) {
	ctx := context.Background()
	polls := 0
	run := func(wasm []byte, withPoll bool) (uint64, string) {
		t.Helper()
		rt := wazero.NewRuntime(ctx)
		defer rt.Close(ctx)
		_, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().
			WithGoFunction(api.GoFunc(func(_ context.Context, s []uint64) { s[0] = 7 }), nil, []api.ValueType{api.ValueTypeI32}).
			Export("seven").Instantiate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if withPoll {
			_, err = rt.NewHostModuleBuilder(pollModule).NewFunctionBuilder().
				WithGoFunction(api.GoFunc(func(_ context.Context, s []uint64) { polls++; s[0] = 0 }), nil, []api.ValueType{api.ValueTypeI32}).
				Export(pollName).Instantiate(ctx)
			if err != nil {
				t.Fatal(err)
			}
		}
		cm, err := rt.CompileModule(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig())
		if err != nil {
			t.Fatal(err)
		}
		res, err := mod.ExportedFunction("run").Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res[0], cm.ExportedFunctions()["run"].Name()
	}
	orig := renumberModule()
	want, wantName := run(orig, false)
	if want != 12 || wantName != "run" {
		t.Fatalf("the test module returns %d (named %q), want 12 (run)", want, wantName)
	}
	iw, err := instrument(orig)
	if err != nil {
		t.Fatal(err)
	}
	got, gotName := run(iw, true)
	if got != want || gotName != wantName {
		t.Fatalf("instrumented module returns %d named %q, want %d named %q", got, gotName, want, wantName)
	}
	if polls != 0 {
		t.Fatalf("%d polls for 3 loop iterations, want none (one every %d)", polls, pollInterval)
	}
}

// simdModule exports run (→ i32), which stores an i32x4 in memory and loops
// five times over SIMD operations with every kind of immediate (memarg,
// 16 constant bytes, a shuffle's 16 lane bytes, a lane index, memarg and a
// lane), then returns lane 0 of the final vector read back with
// v128.load32_zero.
func simdModule() []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, sect(1, []byte{1, 0x60, 0, 1, 0x7f})...)
	m = append(m, sect(3, []byte{1, 0})...)
	m = append(m, sect(5, []byte{1, 0x00, 0x01})...) // memory, 1 page
	m = append(m, sect(7, []byte{1, 3, 'r', 'u', 'n', 0x00, 0})...)
	i32x4 := func(a, b, c, d byte) []byte { return []byte{a, 0, 0, 0, b, 0, 0, 0, c, 0, 0, 0, d, 0, 0, 0} }
	var body []byte
	add := func(b ...byte) { body = append(body, b...) }
	add(0x02, 0x01, 0x7b, 0x01, 0x7f) // locals: one v128, one i32
	add(0x41, 0x00, 0xfd, 0x0c)       // i32.const 0; v128.const 1 2 3 4
	add(i32x4(1, 2, 3, 4)...)
	add(0xfd, 0x0b, 0x04, 0x00)                                                 // v128.store align=16 offset=0
	add(0x03, 0x40)                                                             // loop
	add(0x41, 0x00, 0xfd, 0x00, 0x04, 0x00, 0x41, 0x00, 0xfd, 0x00, 0x04, 0x00) // two v128.load
	add(0xfd, 0x0d, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11)       // i8x16.shuffle: swap lanes pairwise
	add(0xfd, 0x0c)
	add(i32x4(1, 10, 100, 0)...)
	add(0xfd, 0xae, 0x01, 0x21, 0x00)                                                 // i32x4.add; local.set 0
	add(0x41, 0x00, 0x20, 0x00, 0xfd, 0x0b, 0x04, 0x00)                               // store it back
	add(0x41, 0x04, 0x20, 0x00, 0xfd, 0x56, 0x02, 0x00, 0x02)                         // v128.load32_lane offset 0 lane 2 from address 4
	add(0xfd, 0x1b, 0x02, 0x1a)                                                       // i32x4.extract_lane 2; drop
	add(0x20, 0x01, 0x41, 0x01, 0x6a, 0x22, 0x01, 0x41, 0x05, 0x48, 0x0d, 0x00, 0x0b) // count to 5
	add(0x41, 0x00, 0xfd, 0x5c, 0x02, 0x00, 0xfd, 0x1b, 0x00, 0x0b)                   // v128.load32_zero; extract_lane 0
	code := append([]byte{1}, appendU32(nil, uint32(len(body)))...)
	return append(m, sect(10, append(code, body...))...)
}

// TestInstrumentSIMD: a module with SIMD instructions of every immediate
// kind is instrumented (so it gets cheap deadlines) and computes the same.
func TestInstrumentSIMD(t *testing.T) {
	ctx := context.Background()
	run := func(wasm []byte) uint64 {
		t.Helper()
		rt := wazero.NewRuntime(ctx)
		defer rt.Close(ctx)
		_, err := rt.NewHostModuleBuilder(pollModule).NewFunctionBuilder().
			WithGoFunction(api.GoFunc(func(_ context.Context, s []uint64) { s[0] = 0 }), nil, []api.ValueType{api.ValueTypeI32}).
			Export(pollName).Instantiate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mod, err := rt.Instantiate(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		res, err := mod.ExportedFunction("run").Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	orig := simdModule()
	want := run(orig)
	// Lanes 0 and 1 swap and grow by 1 and 10 each round: after five
	// rounds lane 0 is 1+10+1+10+1 + 2 (odd count of swaps) = 25.
	if want != 25 {
		t.Fatalf("the test module returns %d, want 25", want)
	}
	iw, err := instrument(orig)
	if err != nil {
		t.Fatalf("instrument: %v", err)
	}
	if got := run(iw); got != want {
		t.Fatalf("instrumented module returns %d, want %d", got, want)
	}
}

func TestInstrumentRefuses(t *testing.T) {
	pollImport := sect(2, append(appendName(appendName([]byte{1}, pollModule), pollName), 0x00, 0x00))
	for _, tc := range []struct {
		name string
		wasm []byte
	}{
		{"unknown SIMD opcode", tinyModule([]byte{0x00, 0xfd, 0x80, 0x04, 0x0b})},
		{"truncated v128.const", tinyModule([]byte{0x00, 0xfd, 0x0c, 0x0b})},
		{"truncated body", tinyModule([]byte{0x00, 0x03})},
		{"not wasm", []byte("hello, world")},
		{"imports the poll module", append(append([]byte("\x00asm\x01\x00\x00\x00"), sect(1, []byte{1, 0x60, 0, 1, 0x7f})...), pollImport...)},
	} {
		if _, err := instrument(tc.wasm); !errors.Is(err, errNotInstrumentable) {
			t.Errorf("%s: err = %v, want errNotInstrumentable", tc.name, err)
		}
	}
}

func TestInstrumentEmbedded(t *testing.T) {
	if len(embedded) < 8 {
		t.Skip("embedded edge.wasm is a placeholder: run wasm/build.sh")
	}
	got, err := instrument(embedded)
	if err != nil {
		t.Fatalf("the Go edge must be instrumentable: %v", err)
	}
	if len(got) <= len(embedded) {
		t.Fatalf("instrumented module has %d bytes, original %d", len(got), len(embedded))
	}
}
