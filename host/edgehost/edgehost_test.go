package edgehost_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/edgeseek/edgeseek/host/edgehost"
	"github.com/edgeseek/edgeseek/protocol"
	// Tests compare the module with the same code run natively; only tests
	// import wasm/ from host/.
	"github.com/edgeseek/edgeseek/wasm/edge"
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
)

const pluginPath = "../../build/wasm/plugins/c-sampler.wasm"

const corpus = "The quick brown fox jumps over the lazy dog. 🙂 héllo wörld, 你好世界! " +
	"Streaming must never emit half a character. The dog sleeps; the fox runs. "

func testTokenizer(t testing.TB) []byte {
	t.Helper()
	tj, err := tokenizer.BuildByteLevel(300, []byte(strings.Repeat(corpus, 4)), []string{"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"})
	if err != nil {
		t.Fatal(err)
	}
	return tj
}

// sharedCache keeps the Go edge compiled once for all tests (compiling the
// 4 MiB module takes seconds).
var sharedCache = wazero.NewCompilationCache()

func newRuntime(t testing.TB, c edgehost.Config) *edgehost.Runtime {
	t.Helper()
	if c.Cache == nil && c.CacheDir == "" {
		c.Cache = sharedCache
	}
	r, err := edgehost.New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func goEdge(t testing.TB, r *edgehost.Runtime) *edgehost.Instance {
	t.Helper()
	ctx := context.Background()
	m, err := r.CompileEmbedded(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in, err := m.Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(ctx) })
	return in
}

// nativeCall runs the same request through the native edge.
func nativeCall(t testing.TB, e *edge.Edge, fn string, req, rep any) error {
	t.Helper()
	b, err := protocol.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return protocol.ParseABIResponse(e.Call(fn, b), rep)
}

func randLogits(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 2))
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * 3)
	}
	return l
}

func TestGoEdgeMatchesNative(t *testing.T) {
	ctx := context.Background()
	in := goEdge(t, newRuntime(t, edgehost.Config{}))
	native := edge.New()
	tj := testTokenizer(t)
	if p := os.Getenv("EDGESEEK_TOKENIZER"); p != "" {
		// With a real tokenizer.json (slow: it loads in wazero).
		var err error
		if tj, err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	req := &protocol.SessionNew{Tokenizer: tj}
	var wi, ni protocol.SessionInfo
	if err := in.Invoke(ctx, protocol.FnSessionNew, req, &wi); err != nil {
		t.Fatal(err)
	}
	if err := nativeCall(t, native, protocol.FnSessionNew, req, &ni); err != nil {
		t.Fatal(err)
	}
	if wi != ni {
		t.Fatalf("session info wasm %+v native %+v", wi, ni)
	}
	for _, text := range []string{"The quick brown fox", "🙂 你好世界 héllo", "unseen ω\n\ttext  "} {
		var w, n protocol.IDsReply
		if err := in.Invoke(ctx, protocol.FnTokenize, &protocol.TextRequest{Handle: wi.Handle, Text: text}, &w); err != nil {
			t.Fatal(err)
		}
		nativeCall(t, native, protocol.FnTokenize, &protocol.TextRequest{Handle: ni.Handle, Text: text}, &n)
		if !reflect.DeepEqual(w.IDs, n.IDs) || len(w.IDs) == 0 {
			t.Fatalf("tokenize %q: wasm %v native %v", text, w.IDs, n.IDs)
		}
		var back protocol.TextReply
		if err := in.Invoke(ctx, protocol.FnDetokenize, &protocol.IDsRequest{Handle: wi.Handle, IDs: w.IDs}, &back); err != nil || back.Text != text {
			t.Fatalf("detokenize = %q, %v; want %q", back.Text, err, text)
		}
	}
	for _, p := range []protocol.SamplingParams{
		{Temperature: 0.9, TopP: 0.95, Seed: 1234, LogProbs: true, TopLogProbs: 3},
		{Temperature: 1.2, TopK: 50, MinP: 0.02, Seed: 99, RepetitionPenalty: 1.1},
	} {
		var ws, ns protocol.HandleReply
		if err := in.Invoke(ctx, protocol.FnSamplerNew, &protocol.SamplerNew{Params: p}, &ws); err != nil {
			t.Fatal(err)
		}
		nativeCall(t, native, protocol.FnSamplerNew, &protocol.SamplerNew{Params: p}, &ns)
		var hist []int32
		for step := range 16 {
			logits := randLogits(4096, uint64(step))
			var w, n protocol.SampleReply
			if err := in.Invoke(ctx, protocol.FnSample, &protocol.SampleRequest{Handle: ws.Handle, F32: edge.EncodeF32(logits), History: hist}, &w); err != nil {
				t.Fatal(err)
			}
			nativeCall(t, native, protocol.FnSample, &protocol.SampleRequest{Handle: ns.Handle, F32: edge.EncodeF32(logits), History: hist}, &n)
			if !reflect.DeepEqual(w, n) {
				t.Fatalf("step %d: wasm %+v native %+v", step, w, n)
			}
			hist = append(hist, w.ID)
		}
	}
	// An error answered by the module leaves the instance usable.
	var rep protocol.IDsReply
	err := in.Invoke(ctx, protocol.FnTokenize, &protocol.TextRequest{Handle: 4242, Text: "x"}, &rep)
	var pe *protocol.Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Message, "not a live session") {
		t.Fatalf("bad handle error = %v", err)
	}
	if raw, err := in.Call(ctx, protocol.FnTokenize, []byte{0xc1}); err != nil || raw[0] != protocol.ABIStatusError {
		t.Fatalf("garbage request: %x, %v", raw, err)
	}
	if err := in.Invoke(ctx, protocol.FnTokenize, &protocol.TextRequest{Handle: wi.Handle, Text: "ok"}, &rep); err != nil || in.Err() != nil {
		t.Fatalf("instance unusable after answered errors: %v %v", err, in.Err())
	}
}

func TestContainment(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, edgehost.Config{MemoryLimitPages: 1024, CallTimeout: 2 * time.Second})
	healthy := goEdge(t, r)
	var info protocol.SessionInfo
	if err := healthy.Invoke(ctx, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: testTokenizer(t)}, &info); err != nil {
		t.Fatal(err)
	}
	sampleReq := &protocol.SampleRequest{Handle: 1, F32: edge.EncodeF32([]float32{1, 2})}
	tests := []struct {
		name     string
		wasm     []byte
		stage    string // where it fails: compile, instantiate or call
		want     error
		contains string
	}{
		{"trap", plugin(1, 1, trapBody), "call", edgehost.ErrModuleFailed, "trapped: wasm error: unreachable"},
		{"infinite loop", plugin(1, 1, loopBody), "call", edgehost.ErrModuleFailed, "exceeded its 2s deadline"},
		{"memory exhaustion", plugin(1, 1, growBody), "call", edgehost.ErrModuleFailed, "trapped: wasm error: unreachable"}, // grows until refused, then traps
		{"memory exhaustion reports memory", plugin(1, 1, growBody), "call", edgehost.ErrModuleFailed, "of 1024 pages)"},
		{"huge initial memory", plugin(1, 8192, trapBody), "compile", nil, "memory"},
		{"wrong ABI version", plugin(7, 1, trapBody), "instantiate", edgehost.ErrABI, "ABI version 7"},
		{"not wasm", []byte("hello"), "compile", nil, "compile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			check := func(stage string, err error) bool {
				t.Helper()
				if stage != tc.stage {
					if err != nil {
						t.Fatalf("%s failed early: %v", stage, err)
					}
					return false
				}
				if err == nil {
					t.Fatalf("%s succeeded, want an error", stage)
				}
				t.Logf("%s error: %.300s", stage, err)
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("%s error %v does not wrap %v", stage, err, tc.want)
				}
				if !strings.Contains(err.Error(), tc.contains) {
					t.Fatalf("%s error %q does not mention %q", stage, err, tc.contains)
				}
				return true
			}
			m, err := r.Compile(ctx, tc.name, tc.wasm)
			if check("compile", err) {
				return
			}
			in, err := m.Instantiate(ctx)
			if check("instantiate", err) {
				return
			}
			var rep protocol.SampleReply
			err = in.Invoke(ctx, protocol.FnSample, sampleReq, &rep)
			check("call", err)
			if in.Err() == nil {
				t.Fatal("instance not marked failed")
			}
			if err2 := in.Invoke(ctx, protocol.FnSample, sampleReq, &rep); !errors.Is(err2, edgehost.ErrModuleFailed) {
				t.Fatalf("second call = %v, want the recorded failure", err2)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("containment took %v", d)
			}
		})
		// The host goes on: the healthy instance still works.
		var ids protocol.IDsReply
		if err := healthy.Invoke(ctx, protocol.FnTokenize, &protocol.TextRequest{Handle: info.Handle, Text: "the fox"}, &ids); err != nil || len(ids.IDs) == 0 {
			t.Fatalf("after %s: healthy instance failed: %v", tc.name, err)
		}
	}
}

func TestGoEdgeOutOfMemory(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, edgehost.Config{MemoryLimitPages: 512}) // 32 MiB
	in := goEdge(t, r)
	// A 40 MiB request cannot fit: the guest's runtime dies with "out of
	// memory"; only this instance fails.
	_, err := in.Call(ctx, protocol.FnTokenize, make([]byte, 40<<20))
	if !errors.Is(err, edgehost.ErrModuleFailed) {
		t.Fatalf("error = %v, want ErrModuleFailed", err)
	}
	t.Logf("error: %.300s", err)
	if !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("error %q does not say out of memory", err)
	}
	other := goEdge(t, r)
	var info protocol.SessionInfo
	if err := other.Invoke(ctx, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: testTokenizer(t)}, &info); err != nil {
		t.Fatalf("a fresh instance failed after another ran out of memory: %v", err)
	}
}

func TestCPluginSampler(t *testing.T) {
	if _, err := os.Stat(pluginPath); err != nil {
		t.Fatalf("%v: run wasm/build.sh first", err)
	}
	ctx := context.Background()
	r := newRuntime(t, edgehost.Config{})
	pm, err := r.CompileFile(ctx, pluginPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pm.Functions(), []string{protocol.FnRelease, protocol.FnSample, protocol.FnSamplerNew}; !slices.Equal(got, want) {
		t.Fatalf("plugin functions = %v, want %v", got, want)
	}
	pin, err := pm.Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chain := edgehost.NewChain(pin, goEdge(t, r))
	defer chain.Close(ctx)
	if chain.Owner(protocol.FnSample) != pin || chain.Owner(protocol.FnTokenize) == pin {
		t.Fatal("chain routes sampling away from the plugin or tokenizing to it")
	}
	var info protocol.SessionInfo
	if err := chain.Invoke(ctx, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: testTokenizer(t)}, &info); err != nil {
		t.Fatal(err)
	}
	var prompt protocol.IDsReply
	if err := chain.Invoke(ctx, protocol.FnTokenize, &protocol.TextRequest{Handle: info.Handle, Text: "The quick"}, &prompt); err != nil {
		t.Fatal(err)
	}

	generate := func(p protocol.SamplingParams, f16 bool) []int32 {
		var h protocol.HandleReply
		if err := chain.Invoke(ctx, protocol.FnSamplerNew, &protocol.SamplerNew{Params: p}, &h); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := chain.Release(ctx, protocol.FnSamplerNew, h.Handle); err != nil {
				t.Fatal(err)
			}
		}()
		seq := slices.Clone(prompt.IDs)
		for step := range 12 {
			logits := randLogits(int(info.Vocab), uint64(len(seq)))
			req := &protocol.SampleRequest{Handle: h.Handle, History: seq}
			if f16 {
				req.F16 = protocol.EncodeFloat16(logits)
			} else {
				req.F32 = edge.EncodeF32(logits)
			}
			var rep protocol.SampleReply
			if err := chain.Invoke(ctx, protocol.FnSample, req, &rep); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			// The pick must be among the top-k logits (k = 1 when greedy).
			k := int(p.TopK)
			if p.Temperature == 0 {
				k = 1
			}
			order := make([]int, len(logits))
			for i := range order {
				order[i] = i
			}
			slices.SortStableFunc(order, func(a, b int) int {
				if logits[a] > logits[b] {
					return -1
				}
				if logits[a] < logits[b] {
					return 1
				}
				return 0
			})
			if !slices.Contains(order[:k], int(rep.ID)) {
				t.Fatalf("step %d: id %d not in the top %d %v", step, rep.ID, k, order[:k])
			}
			seq = append(seq, rep.ID)
		}
		var text protocol.TextReply
		if err := chain.Invoke(ctx, protocol.FnDetokenize, &protocol.IDsRequest{Handle: info.Handle, IDs: seq}, &text); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(text.Text, "The quick") {
			t.Fatalf("detokenized %q lost the prompt", text.Text)
		}
		return seq[len(prompt.IDs):]
	}
	greedy := generate(protocol.SamplingParams{}, false)
	if g16 := generate(protocol.SamplingParams{}, true); !slices.Equal(greedy, g16) {
		t.Fatalf("greedy f32 %v != f16 %v", greedy, g16)
	}
	p := protocol.SamplingParams{Temperature: 1.5, TopK: 8, Seed: 77}
	a, b := generate(p, false), generate(p, false)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different tokens: %v %v", a, b)
	}
	if slices.Equal(a, greedy) {
		t.Fatalf("temperature 1.5 top-8 sampling gave the greedy sequence %v", a)
	}
	p.Seed = 78
	if c := generate(p, false); slices.Equal(a, c) {
		t.Fatalf("seeds 77 and 78 gave the same 12 tokens %v", a)
	}
	// Errors answered by the plugin come back as protocol errors.
	var rep protocol.SampleReply
	err = chain.Invoke(ctx, protocol.FnSample, &protocol.SampleRequest{Handle: 63, F32: edge.EncodeF32([]float32{1})}, &rep)
	var pe *protocol.Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Message, "bad sampler handle") {
		t.Fatalf("plugin error = %v", err)
	}
}

func TestCompileEdgeFlag(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, edgehost.Config{})
	tests := []struct {
		path  string
		fns   int    // exported ABI functions
		error string // "" for success
	}{
		{"", len(edge.Functions()), ""}, // all but edge_tokenizer_attach
		{pluginPath, 3, ""},
		{tokenizerCPath, 3, ""},
		{"/nonexistent/edge.wasm", 0, "no such file"},
	}
	for _, tc := range tests {
		m, err := r.CompileEdge(ctx, tc.path)
		if tc.error != "" {
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Fatalf("CompileEdge(%q) error = %v, want %q", tc.path, err, tc.error)
			}
			continue
		}
		if err != nil || len(m.Functions()) != tc.fns {
			t.Fatalf("CompileEdge(%q) = %v, %v; want %d functions", tc.path, m.Functions(), err, tc.fns)
		}
	}
}

func TestDiskCache(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	wasm, err := os.ReadFile(pluginPath)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		r := newRuntime(t, edgehost.Config{CacheDir: dir})
		if _, err := r.Compile(ctx, "c-sampler", wasm); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		r.Close(ctx)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("cache dir empty: %v", err)
	}
}

func TestInterruptibleDeadlineAndCancel(t *testing.T) {
	ctx := context.Background()
	// Which modules are instrumented: those whose opcodes the rewriter
	// decodes, unless Config.CloseOnContextDone says otherwise.
	inst := newRuntime(t, edgehost.Config{CallTimeout: 300 * time.Millisecond})
	safe := newRuntime(t, edgehost.Config{CallTimeout: 300 * time.Millisecond, CloseOnContextDone: true})
	for _, c := range []struct {
		name string
		r    *edgehost.Runtime
		wasm []byte
		want bool
	}{
		{"embedded", inst, nil, true},
		{"loop", inst, plugin(1, 1, loopBody), true},
		{"simd", inst, plugin(1, 1, append(append([]byte{0xfd, 0x0c}, make([]byte, 16)...), 0x1a, 0x00)), true},
		// The rewriter will not add its poll import to a module that
		// already imports that name.
		{"imports the poll function", inst, pluginImporting([][2]string{{"edgeseek_interrupt", "poll"}}, 1, 1, loopBody), false},
		{"embedded, CloseOnContextDone", safe, nil, false},
		{"loop, CloseOnContextDone", safe, plugin(1, 1, loopBody), false},
	} {
		var m *edgehost.Module
		var err error
		if c.wasm == nil {
			m, err = c.r.CompileEmbedded(ctx)
		} else {
			m, err = c.r.Compile(ctx, c.name, c.wasm)
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Interruptible() != c.want {
			t.Errorf("%s: interruptible %v, want %v", c.name, m.Interruptible(), c.want)
		}
	}
	// Both ways, deadlines and cancellation stop a loop that never returns.
	sampleReq := &protocol.SampleRequest{Handle: 1, F32: edge.EncodeF32([]float32{1, 2})}
	for _, r := range []*edgehost.Runtime{inst, safe} {
		loop, err := r.Compile(ctx, "loop", plugin(1, 1, loopBody))
		if err != nil {
			t.Fatal(err)
		}
		in, err := loop.Instantiate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = in.Invoke(ctx, protocol.FnSample, sampleReq, &protocol.SampleReply{})
		if !errors.Is(err, edgehost.ErrModuleFailed) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("interruptible %v: loop call = %v, want the deadline", loop.Interruptible(), err)
		}
		if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
			t.Fatalf("interruptible %v: deadline of 300ms took %v", loop.Interruptible(), d)
		}
		in2, err := loop.Instantiate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(50*time.Millisecond, cancel)
		err = in2.Invoke(cctx, protocol.FnSample, sampleReq, &protocol.SampleReply{})
		if !errors.Is(err, edgehost.ErrModuleFailed) || !strings.Contains(err.Error(), "canceled") {
			t.Fatalf("interruptible %v: cancelled call = %v, want the instance to fail", loop.Interruptible(), err)
		}
	}
}

// TestGarbageCollectionDuringGuestLoop: an instrumented guest loop calls
// into Go often enough that a garbage collection started while it spins
// completes long before the call's deadline. (Without those calls the
// collection's stop-the-world waits for the guest, and with it the timer
// that should end the call: the host hangs and this test times out.)
func TestGarbageCollectionDuringGuestLoop(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, edgehost.Config{CallTimeout: 2 * time.Second})
	loop, err := r.Compile(ctx, "loop", plugin(1, 1, loopBody))
	if err != nil {
		t.Fatal(err)
	}
	if !loop.Interruptible() {
		t.Fatal("the loop module was not instrumented")
	}
	in, err := loop.Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	gcTook := make(chan time.Duration, 1)
	time.AfterFunc(200*time.Millisecond, func() {
		t0 := time.Now()
		runtime.GC()
		gcTook <- time.Since(t0)
	})
	err = in.Invoke(ctx, protocol.FnSample, &protocol.SampleRequest{Handle: 1, F32: edge.EncodeF32([]float32{1})}, &protocol.SampleReply{})
	callTook := time.Since(start)
	if !errors.Is(err, edgehost.ErrModuleFailed) || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("loop call = %v, want the deadline", err)
	}
	select {
	case d := <-gcTook:
		if d > time.Second {
			t.Fatalf("a garbage collection during the guest loop took %v", d)
		}
		t.Logf("GC during the guest loop: %v; call ended by its deadline after %v", d, callTook)
	default:
		t.Fatalf("the garbage collection had not finished when the 2s call ended (%v)", callTook)
	}
}

// TestCompileSampler: the --sampler choices, and the modules a sampler
// plugin may not be.
func TestCompileSampler(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, edgehost.Config{})
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, choice := range []string{"", edgehost.SamplerBuiltin, pluginPath} {
		m, err := r.CompileSampler(ctx, choice)
		if err != nil {
			t.Fatalf("%q: %v", choice, err)
		}
		if !m.Has(protocol.FnSample) || !m.Has(protocol.FnSamplerNew) || m.Has(protocol.FnTokenize) {
			t.Errorf("%q: exports %v", choice, m.Functions())
		}
	}
	if m, err := r.CompileSampler(ctx, edgehost.SamplerEdge); m != nil || err != nil {
		t.Errorf("%q: %v, %v; want no module", edgehost.SamplerEdge, m, err)
	}
	for _, tc := range []struct{ path, want string }{
		{file("edge.wasm", edgehost.Embedded()), "also exports edge_"},
		{file("sample-only.wasm", plugin(1, 1, trapBody)), "must export edge_sampler_new and edge_sample"},
		{filepath.Join(dir, "missing.wasm"), "no such file"},
	} {
		if _, err := r.CompileSampler(ctx, tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.path, err, tc.want)
		}
	}
}

// TestGoEdgeGarbageCollected: the Go edge's garbage is collected between
// calls. In a Go reactor the collector's mark workers only run when the
// export yields; without that, an instance grew by each call's garbage
// (tokenizing a 3 KB word: ~80 KB) until it ran out of memory.
func TestGoEdgeGarbageCollected(t *testing.T) {
	ctx := context.Background()
	in := goEdge(t, newRuntime(t, edgehost.Config{}))
	var info protocol.SessionInfo
	if err := in.Invoke(ctx, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: testTokenizer(t)}, &info); err != nil {
		t.Fatal(err)
	}
	start := in.MemoryBytes()
	for i := range 1500 {
		text := strings.Repeat(string(rune('a'+i%26)), 2000+i%1000) // one piece, merged every time
		var rep protocol.IDsReply
		if err := in.Invoke(ctx, protocol.FnTokenize, &protocol.TextRequest{Handle: info.Handle, Text: text}, &rep); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if grew := in.MemoryBytes() - start; grew > 48<<20 {
		t.Fatalf("memory grew by %d MB over 1,500 calls: garbage is not collected", grew>>20)
	}
}
