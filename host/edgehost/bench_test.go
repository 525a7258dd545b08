package edgehost_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/edgeseek/edgeseek/host/edgehost"
	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/edge"
)

// benchTokenizer returns $EDGESEEK_TOKENIZER (a real tokenizer.json, e.g.
// DeepSeek-V3/V4's) or the small test tokenizer.
func benchTokenizer(b *testing.B) []byte {
	if p := os.Getenv("EDGESEEK_TOKENIZER"); p != "" {
		tj, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		return tj
	}
	return testTokenizer(b)
}

var benchText = strings.Repeat(corpus+"Go, WebAssembly & DeepSeek-V4: 1234567 tokens/s? ", 256)

// benchPair returns a native edge and a wazero instance with the same
// session loaded.
func benchPair(b *testing.B) (*edge.Edge, protocol.Handle, *edgehost.Instance, protocol.Handle) {
	ctx := context.Background()
	r := newRuntime(b, edgehost.Config{CallTimeout: time.Minute})
	in := goEdge(b, r)
	tj := benchTokenizer(b)
	native := edge.New()
	var ni, wi protocol.SessionInfo
	if err := nativeCall(b, native, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: tj}, &ni); err != nil {
		b.Fatal(err)
	}
	if err := in.Invoke(ctx, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: tj}, &wi); err != nil {
		b.Fatal(err)
	}
	return native, ni.Handle, in, wi.Handle
}

func BenchmarkTokenize(b *testing.B) {
	ctx := context.Background()
	native, nh, in, wh := benchPair(b)
	b.Run("native", func(b *testing.B) {
		b.SetBytes(int64(len(benchText)))
		for b.Loop() {
			var rep protocol.IDsReply
			if err := nativeCall(b, native, protocol.FnTokenize, &protocol.TextRequest{Handle: nh, Text: benchText}, &rep); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wazero", func(b *testing.B) {
		b.SetBytes(int64(len(benchText)))
		for b.Loop() {
			var rep protocol.IDsReply
			if err := in.Invoke(ctx, protocol.FnTokenize, &protocol.TextRequest{Handle: wh, Text: benchText}, &rep); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSampleTopP is one sampling step over V4's 129,280 logits with
// temperature 0.8 and top-p 0.95, through the ABI (msgpack included).
func BenchmarkSampleTopP(b *testing.B) {
	ctx := context.Background()
	native := edge.New()
	in := goEdge(b, newRuntime(b, edgehost.Config{}))
	// The same module under wazero's CloseOnContextDone, for comparison.
	slow := goEdge(b, newRuntime(b, edgehost.Config{CloseOnContextDone: true}))
	logits := randLogits(129280, 5)
	f32, f16 := edge.EncodeF32(logits), protocol.EncodeFloat16(logits)
	params := &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.8, TopP: 0.95, Seed: 1}}
	var nh, wh, sh protocol.HandleReply
	nativeCall(b, native, protocol.FnSamplerNew, params, &nh)
	if err := in.Invoke(ctx, protocol.FnSamplerNew, params, &wh); err != nil {
		b.Fatal(err)
	}
	if err := slow.Invoke(ctx, protocol.FnSamplerNew, params, &sh); err != nil {
		b.Fatal(err)
	}
	for _, enc := range []struct {
		name     string
		f32, f16 []byte
	}{{"f32", f32, nil}, {"f16", nil, f16}} {
		b.Run("native-"+enc.name, func(b *testing.B) {
			for b.Loop() {
				var rep protocol.SampleReply
				if err := nativeCall(b, native, protocol.FnSample, &protocol.SampleRequest{Handle: nh.Handle, F32: enc.f32, F16: enc.f16}, &rep); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("wazero-"+enc.name, func(b *testing.B) {
			for b.Loop() {
				var rep protocol.SampleReply
				if err := in.Invoke(ctx, protocol.FnSample, &protocol.SampleRequest{Handle: wh.Handle, F32: enc.f32, F16: enc.f16}, &rep); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("wazero-closeondone-"+enc.name, func(b *testing.B) {
			for b.Loop() {
				var rep protocol.SampleReply
				if err := slow.Invoke(ctx, protocol.FnSample, &protocol.SampleRequest{Handle: sh.Handle, F32: enc.f32, F16: enc.f16}, &rep); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSessionNew loads the tokenizer (tokenizer.json parsing and
// table building), natively and in wazero.
func BenchmarkSessionNew(b *testing.B) {
	ctx := context.Background()
	tj := benchTokenizer(b)
	b.Run("native", func(b *testing.B) {
		for b.Loop() {
			var rep protocol.SessionInfo
			if err := nativeCall(b, edge.New(), protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: tj}, &rep); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wazero", func(b *testing.B) {
		in := goEdge(b, newRuntime(b, edgehost.Config{CallTimeout: 5 * time.Minute}))
		for b.Loop() {
			var rep protocol.SessionInfo
			if err := in.Invoke(ctx, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: tj}, &rep); err != nil {
				b.Fatal(err)
			}
			in.Invoke(ctx, protocol.FnRelease, &protocol.HandleRequest{Handle: rep.Handle}, &protocol.Empty{})
		}
	})
}

// BenchmarkCompile compiles the embedded Go edge in a fresh runtime:
// without a cache, with a warm in-memory cache and with a warm disk cache.
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	compile := func(b *testing.B, c edgehost.Config) {
		r, err := edgehost.New(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close(ctx)
		if _, err := r.CompileEmbedded(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("nocache", func(b *testing.B) {
		for b.Loop() {
			compile(b, edgehost.Config{Cache: wazero.NewCompilationCache()})
		}
	})
	b.Run("memcache", func(b *testing.B) {
		cache := wazero.NewCompilationCache()
		compile(b, edgehost.Config{Cache: cache})
		b.ResetTimer()
		for b.Loop() {
			compile(b, edgehost.Config{Cache: cache})
		}
	})
	b.Run("diskcache", func(b *testing.B) {
		dir := b.TempDir()
		compile(b, edgehost.Config{CacheDir: dir})
		b.ResetTimer()
		for b.Loop() {
			compile(b, edgehost.Config{CacheDir: dir})
		}
	})
}

// BenchmarkInstantiate is the per-session cost: instantiate the compiled
// Go edge (runs _initialize) and close it.
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	r := newRuntime(b, edgehost.Config{})
	m, err := r.CompileEmbedded(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		in, err := m.Instantiate(ctx)
		if err != nil {
			b.Fatal(err)
		}
		in.Close(ctx)
	}
}

// BenchmarkSampleCPlugin is one top-k (k = 40, temperature 0.8) step over
// 129,280 logits in the example C plugin, for comparison with the Go edge.
func BenchmarkSampleCPlugin(b *testing.B) {
	ctx := context.Background()
	r := newRuntime(b, edgehost.Config{})
	m, err := r.CompileFile(ctx, pluginPath)
	if err != nil {
		b.Fatal(err)
	}
	in, err := m.Instantiate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close(ctx)
	var h protocol.HandleReply
	if err := in.Invoke(ctx, protocol.FnSamplerNew, &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.8, TopK: 40, Seed: 1}}, &h); err != nil {
		b.Fatal(err)
	}
	f32 := edge.EncodeF32(randLogits(129280, 5))
	for b.Loop() {
		var rep protocol.SampleReply
		if err := in.Invoke(ctx, protocol.FnSample, &protocol.SampleRequest{Handle: h.Handle, F32: f32}, &rep); err != nil {
			b.Fatal(err)
		}
	}
}
