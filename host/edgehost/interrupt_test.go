package edgehost

import (
	"bytes"
	"errors"
	"testing"
)

// tinyModule is (module (global i32 (i32.const 7)) (func (loop br 0)) (export "f" (func 0)))
// with the given code body bytes (locals vector included, final end included).
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

func TestInstrumentInsertsCheckAfterEveryLoop(t *testing.T) {
	// locals: none; loop (block type empty) br 0 end; loop i32 ... end end
	code := []byte{0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x03, 0x7f, 0x41, 0x01, 0x0b, 0x1a, 0x0b}
	got, err := instrument(tinyModule(code))
	if err != nil {
		t.Fatal(err)
	}
	check := []byte{0x23, 0x01, 0x04, 0x40, 0x00, 0x0b} // global.get 1; if; unreachable; end
	wantCode := []byte{0x00, 0x03, 0x40}
	wantCode = append(wantCode, check...)
	wantCode = append(wantCode, 0x0c, 0x00, 0x0b, 0x03, 0x7f)
	wantCode = append(wantCode, check...)
	wantCode = append(wantCode, 0x41, 0x01, 0x0b, 0x1a, 0x0b)
	want := []byte("\x00asm\x01\x00\x00\x00")
	want = append(want, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0)
	want = append(want, 6, 11, 2, 0x7f, 0x00, 0x41, 0x07, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b)
	exp := append([]byte{2, 1, 'f', 0x00, 0x00, byte(len(interruptExport))}, interruptExport...)
	exp = append(exp, 0x03, 0x01)
	want = append(want, 7, byte(len(exp)))
	want = append(want, exp...)
	body := append([]byte{byte(len(wantCode))}, wantCode...)
	want = append(want, 10, byte(len(body)+1), 1)
	want = append(want, body...)
	if !bytes.Equal(got, want) {
		t.Fatalf("instrument:\n got %x\nwant %x", got, want)
	}
}

func TestInstrumentRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		wasm []byte
	}{
		{"SIMD opcode", tinyModule([]byte{0x00, 0xfd, 0x0c, 0x0b})},
		{"start section", tinyModule([]byte{0x00, 0x0b}, 8, 1, 0)},
		{"truncated body", tinyModule([]byte{0x00, 0x03})},
		{"not wasm", []byte("hello, world")},
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
