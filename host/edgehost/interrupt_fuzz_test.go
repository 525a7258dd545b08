package edgehost

import (
	"context"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
)

// FuzzInstrument: the rewriter reads third-party modules (--edge FILE), so
// no input may make it panic, and whenever it accepts a module that wazero
// compiles, wazero must compile the rewritten module too.
func FuzzInstrument(f *testing.F) {
	f.Add(tinyModule([]byte{0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b}))
	f.Add(tinyModule([]byte{0x00, 0x0b}, 8, 1, 0)) // with a start section
	f.Add(renumberModule())
	f.Add(simdModule())
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00"))
	if c, err := os.ReadFile("../../build/wasm/plugins/c-sampler.wasm"); err == nil {
		f.Add(c) // clang's output: tables, element segments, a name section
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, _, err := instrumentModule(wasm)
		if err != nil {
			return
		}
		orig, err := rt.CompileModule(ctx, wasm)
		if err != nil {
			return // invalid to begin with: what the rewriter made of it does not matter
		}
		orig.Close(ctx)
		cm, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("wazero compiles the module but not its rewrite: %v", err)
		}
		defer cm.Close(ctx)
		imports := cm.ImportedFunctions()
		found := false
		for _, d := range imports {
			if m, n, _ := d.Import(); m == pollModule && n == pollName {
				found = true
			}
		}
		if !found {
			t.Fatal("the rewrite does not import the poll function")
		}
	})
}
